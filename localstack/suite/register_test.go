//go:build integration

package suite

import (
	"context"
	"maps"
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
	admin := e.admin(tn.ID)
	ctx := context.Background()
	const key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	for _, tc := range []struct {
		body         map[string]string
		status       int
		code, saying string
	}{
		{map[string]string{"provider": "aws-kms", "key_arn": "not-an-arn"}, 400, "invalid_key_arn", "arn:aws:kms:REGION:ACCOUNT:key/KEY_ID"},
		{map[string]string{"provider": "aws-kms", "key_arn": "arn:aws:kms:us-east-1:123456789012:alias/mine"}, 400, "invalid_key_arn", "describe-key"},
		{map[string]string{"provider": "aws-kms", "key_arn": "arn:aws:kms:us-east-1:12345:key/abc"}, 400, "invalid_key_arn", "KEY_ID"},
		{map[string]string{"provider": "aws-kms", "key_arn": key, "role_arn": "arn:aws:iam::123456789012:role/keyseal"}, 400, "invalid_request", "role_arn needs external_id"},
		{map[string]string{"provider": "aws-kms", "key_name": "projects/p/locations/l/keyRings/r/cryptoKeys/k"}, 400, "invalid_request", "does not take key_name"},
		{map[string]string{"provider": "local", "key_id": "k"}, 422, "provider_not_configured", "supports: aws-kms"},
		{map[string]string{"provider": "azure-kv", "key_url": "https://v.vault.azure.net/keys/k"}, 422, "provider_not_configured", "supports: aws-kms"},
	} {
		// A step-up token that must survive: validation comes first.
		step := e.stepUpWith(admin)
		fields := maps.Clone(tc.body)
		delete(fields, "provider")
		_, err := admin.Register(ctx, step, tc.body["provider"], fields)
		r := wantAPIError(t, err, tc.status, tc.code)
		if !strings.Contains(string(r.Body), tc.saying) {
			t.Fatalf("%v: %s does not say %q", tc.body, r.Body, tc.saying)
		}
		if tc.code == "invalid_key_arn" && r.ExtraString("expected_format") != "arn:aws:kms:REGION:ACCOUNT:key/KEY_ID" {
			t.Fatalf("%v: no expected_format in %s", tc.body, r.Body)
		}
		// The token was not burnt by the bad body.
		_, err = admin.Unseal(ctx, step)
		wantAPIError(t, err, http.StatusConflict, "not_sealed")
	}
}
