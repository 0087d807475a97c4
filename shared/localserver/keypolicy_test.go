package localserver_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/keyseal/keyseal/shared/localserver"
)

// TestKeyPolicyQuery: the key-policy route's query through the local
// server's HTTP: a provider dev mode lacks is 422, an unknown one or
// another provider's field 400, and a local key gets the AWS-shaped
// statements.
func TestKeyPolicyQuery(t *testing.T) {
	s := devServer(t, t.TempDir(), nil)
	a := newTenantAdmin(t, s, "newco")
	wantError(t, a.call(http.MethodGet, "/admin/tenant-kms/key-policy?provider=gcp-kms", ""), 422, "provider_not_configured")
	wantError(t, a.call(http.MethodGet, "/admin/tenant-kms/key-policy?provider=azure-kv&key_url=https://v.vault.azure.net/keys/k", ""), 422, "provider_not_configured")
	wantError(t, a.call(http.MethodGet, "/admin/tenant-kms/key-policy?provider=oracle-kms", ""), 400, "invalid_request")
	wantError(t, a.call(http.MethodGet, "/admin/tenant-kms/key-policy?provider=local&key_arn=arn:aws:kms:eu-west-1:111122223333:key/x", ""), 400, "invalid_request")
	r := a.call(http.MethodGet, "/admin/tenant-kms/key-policy?provider=local&key_id="+localKey(t, s, ""), "")
	if r.status != http.StatusOK || r.body["provider"] != "local" || r.body["principal"] != localserver.DevServicePrincipal ||
		!strings.Contains(r.raw, `"kms:EncryptionContext:keyseal:tenant":"newco"`) {
		t.Fatalf("local key policy: %d %s", r.status, r.raw)
	}
	if r := a.call(http.MethodGet, "/admin/tenant-kms/key-policy", ""); r.status != http.StatusOK || r.body["provider"] != "aws-kms" {
		t.Fatalf("default key policy: %d %s", r.status, r.raw)
	}
}
