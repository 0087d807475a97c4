package deliverq_test

import (
	"os"
	"regexp"
	"slices"
	"testing"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// TestRuleMatchesTheCatalogue: the stack's bus rule (infra/stack,
// another module) sends exactly the catalogue and webhook.test to the
// webhook queue, so a new event type is delivered on AWS too.
func TestRuleMatchesTheCatalogue(t *testing.T) {
	src, err := os.ReadFile("../../infra/stack/webhooks.go")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?s)var DeliveredTypes = \[\]string\{(.*?)\n\}`).FindSubmatch(src)
	if block == nil {
		t.Fatal("no DeliveredTypes in infra/stack/webhooks.go")
	}
	var got []string
	for _, m := range regexp.MustCompile(`"([^"]+)"`).FindAllSubmatch(block[1], -1) {
		got = append(got, string(m[1]))
	}
	want := append(slices.Clone(keyseal.EventTypes), keyseal.EventWebhookTest)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("rule's detail types %v, want the catalogue %v", got, want)
	}
}
