package policydoc_test

import (
	"testing"

	"github.com/keyseal/keyseal/shared/buspolicy/policydoc"
)

// TestAdmits: the reconcile's statement is found in a policy whose
// Statement is a single object; an empty policy admits nobody; a policy
// that is not JSON is an error (the list form is the reconcile's tests').
func TestAdmits(t *testing.T) {
	policy := `{"Version":"2012-10-17","Statement":{"Sid":"keyseal-account-111122223333","Effect":"Allow"}}`
	if ok, err := policydoc.Admits(policy, "111122223333"); err != nil || !ok {
		t.Fatalf("single statement object: %v %v", ok, err)
	}
	if ok, err := policydoc.Admits("", "111122223333"); err != nil || ok {
		t.Fatalf("empty policy: %v %v", ok, err)
	}
	if _, err := policydoc.Admits("{", "111122223333"); err == nil {
		t.Fatal("bad JSON accepted")
	}
}
