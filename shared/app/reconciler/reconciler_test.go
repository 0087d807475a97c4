package reconciler_test

import (
	"context"
	"strings"
	"testing"

	"github.com/keyseal/keyseal/shared/app/reconciler"
)

// TestNewNeedsTableAndBus: the function names what it lacks, and reads the
// organization id into organization mode.
func TestNewNeedsTableAndBus(t *testing.T) {
	_, err := reconciler.New(context.Background(), func(string) string { return "" })
	for _, v := range []string{"KEYSEAL_TABLE", "KEYSEAL_EVENT_BUS"} {
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Fatalf("without %s: %v", v, err)
		}
	}
	env := map[string]string{"KEYSEAL_TABLE": "t", "KEYSEAL_EVENT_BUS": "b", "KEYSEAL_EVENT_ORG_ID": "o-a1b2c3d4e5",
		"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "x"}
	r, err := reconciler.New(context.Background(), func(k string) string { return env[k] })
	if err != nil || r.Bus != "b" || r.OrgID != "o-a1b2c3d4e5" {
		t.Fatalf("%v %+v", err, r)
	}
}
