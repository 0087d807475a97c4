package lazyre_test

import (
	"slices"
	"testing"

	"github.com/keyseal/keyseal/shared/internal/lazyre"
)

// TestCompiledOnFirstUse: New does not compile (an invalid expression
// does not panic there), the first use does.
func TestCompiledOnFirstUse(t *testing.T) {
	bad := lazyre.New(`(`)
	defer func() {
		if recover() == nil {
			t.Fatal("an invalid expression did not panic on first use")
		}
	}()
	bad.MatchString("x")
}

func TestMethods(t *testing.T) {
	re := lazyre.New(`AADSTS(\d+)`)
	if !re.MatchString("error AADSTS7000215: bad secret") || re.MatchString("AADSTS") {
		t.Error("MatchString")
	}
	if got := re.FindStringSubmatch("x AADSTS90002 y"); !slices.Equal(got, []string{"AADSTS90002", "90002"}) {
		t.Errorf("FindStringSubmatch: %q", got)
	}
	if got := re.FindStringIndex("x AADSTS90002 y"); !slices.Equal(got, []int{2, 13}) {
		t.Errorf("FindStringIndex: %v", got)
	}
}
