package awskms_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/keyseal/keyseal/shared/awskms"
)

// TestPolicyFor: Encrypt and Decrypt bound to the tenant's encryption
// context, DescribeKey in its own statement without a condition (it has
// no encryption context), all three actions for the principal given.
func TestPolicyFor(t *testing.T) {
	p := awskms.PolicyFor("arn:aws:iam::111122223333:root", "acme")
	raw, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	got := string(raw)
	for _, want := range []string{
		`"statement":{"Sid":"KeysealWrapTenantKeys","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["kms:Encrypt","kms:Decrypt"],"Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:keyseal:tenant":"acme"}}}`,
		`{"Sid":"KeysealDescribeKey","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":["kms:DescribeKey"],"Resource":"*"}`,
		`"principal":"arn:aws:iam::111122223333:root"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("policy %s lacks %s", got, want)
		}
	}
	if len(p.Statements) != 2 {
		t.Fatalf("%d statements", len(p.Statements))
	}
}
