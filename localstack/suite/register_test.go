//go:build integration

package suite

import (
	"net/http"
	"strings"
	"testing"
)

// TestRegistrationErrors: with the AWS KMS provider configured, the
// registration body is checked by it before any step-up token is spent:
// malformed and alias ARNs get 400 invalid_key_arn with the expected form,
// a customer role without an external id is refused (the stack only lets
// keyseal assume roles with one), and providers this server lacks say what
// it supports.
func TestRegistrationErrors(t *testing.T) {
	e := newEnv(t, nil)
	tn := e.newTenant()
	admin := e.adminToken(tn.ID, "alice")
	const key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	for _, tc := range []struct {
		body         map[string]any
		status       int
		code, saying string
	}{
		{map[string]any{"provider": "aws-kms", "key_arn": "not-an-arn"}, 400, "invalid_key_arn", "arn:aws:kms:REGION:ACCOUNT:key/KEY_ID"},
		{map[string]any{"provider": "aws-kms", "key_arn": "arn:aws:kms:us-east-1:123456789012:alias/mine"}, 400, "invalid_key_arn", "describe-key"},
		{map[string]any{"provider": "aws-kms", "key_arn": "arn:aws:kms:us-east-1:12345:key/abc"}, 400, "invalid_key_arn", "KEY_ID"},
		{map[string]any{"provider": "aws-kms", "key_arn": key, "role_arn": "arn:aws:iam::123456789012:role/keyseal"}, 400, "invalid_request", "role_arn needs external_id"},
		{map[string]any{"provider": "aws-kms", "key_name": "projects/p/locations/l/keyRings/r/cryptoKeys/k"}, 400, "invalid_request", "does not take key_name"},
		{map[string]any{"provider": "local", "key_id": "k"}, 422, "provider_not_configured", "supports: aws-kms"},
		{map[string]any{"provider": "azure-kv", "key_url": "https://v.vault.azure.net/keys/k"}, 422, "provider_not_configured", "supports: aws-kms"},
	} {
		// A step-up token that must survive: validation comes first.
		step := e.stepUp(admin)
		r := e.call(http.MethodPut, "/admin/tenant-kms", admin, step, tc.body).adminError(tc.status, tc.code)
		if !strings.Contains(r.raw, tc.saying) {
			t.Fatalf("%v: %s does not say %q", tc.body, r.raw, tc.saying)
		}
		if tc.code == "invalid_key_arn" && r.body["expected_format"] != "arn:aws:kms:REGION:ACCOUNT:key/KEY_ID" {
			t.Fatalf("%v: no expected_format in %s", tc.body, r.raw)
		}
		// The token was not burnt by the bad body.
		e.call(http.MethodPost, "/admin/tenant-kms/unseal", admin, step, nil).adminError(http.StatusConflict, "not_sealed")
	}
}
