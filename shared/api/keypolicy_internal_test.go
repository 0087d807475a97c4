package api

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/awskms"
	"github.com/keyseal/keyseal/shared/azurekv"
	"github.com/keyseal/keyseal/shared/azurekv/azcli"
	"github.com/keyseal/keyseal/shared/boltstore"
	"github.com/keyseal/keyseal/shared/gcpkms"
	"github.com/keyseal/keyseal/shared/gcpkms/gcpcli"
	"github.com/keyseal/keyseal/shared/gcpkms/gcpkmsfake"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/localkms"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

const (
	testPrincipal = "arn:aws:iam::123456789012:root"
	testSA        = "keyseal@keyseal-prod.iam.gserviceaccount.com"
	testClientID  = "11111111-2222-3333-4444-555555555555"
	testTenantID  = "99999999-8888-7777-6666-555555555555"
	testKeyName   = "projects/acme-prod/locations/global/keyRings/keyseal/cryptoKeys/tmk"
	testKeyURL    = "https://acme-keys.vault.azure.net/keys/tmk"
	testKeyARN    = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"
)

// keyPolicyDeps serves the key-policy route with every provider but, when
// without is set, that one; its service registers GCP keys in a fake.
func keyPolicyDeps(t *testing.T, without string) (*Deps, *gcpkmsfake.Server) {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "keyseal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	lk, err := localkms.Open("")
	if err != nil {
		t.Fatal(err)
	}
	platform, err := lk.CreateKey()
	if err != nil {
		t.Fatal(err)
	}
	fake, err := gcpkmsfake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Stop)
	client := fake.Client()
	// ParseKey is all the route asks of AWS and Azure: they need no
	// client.
	p := keyseal.Providers{keyseal.ProviderLocal: lk, keyseal.ProviderAWS: awskms.New(nil),
		keyseal.ProviderGCP: gcpkms.New(client), keyseal.ProviderAzure: azurekv.New(nil)}
	delete(p, without)
	svc := tenantkms.New(store, p, tenantkms.Options{KMSTimeout: 2 * time.Second, PlatformKey: keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: platform}})
	return &Deps{Tenants: svc, Keys: p, ServicePrincipal: testPrincipal, GCPServiceAccount: testSA,
		AzureClientID: testClientID, AzureTenantID: testTenantID}, fake
}

// getKeyPolicy calls the route as tenant's admin: the status, and the body
// as JSON (the error's code for a refusal).
func getKeyPolicy(t *testing.T, d *Deps, tenant string, query map[string]string) (int, string) {
	t.Helper()
	r := &Request{Admin: &auth.Admin{Subject: "alice", TenantID: tenant}}
	r.QueryStringParameters = query
	resp, err := d.keyPolicy(context.Background(), r)
	if err != nil {
		code := keyseal.ErrorCode(err)
		return StatusOf(code), code
	}
	b, err := json.Marshal(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	checkAnswer(t, http.MethodGet, "/admin/tenant-kms/key-policy", query, resp.Status, b)
	return resp.Status, string(b)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestKeyPolicyPerProvider: each provider's answer, filled in with the key
// of the query, and the AWS answer of old unchanged but for provider.
func TestKeyPolicyPerProvider(t *testing.T) {
	d, _ := keyPolicyDeps(t, "")
	policy := awskms.PolicyFor(testPrincipal, "acme")
	old := mustJSON(t, policy)
	withProvider := `{"provider":"aws-kms",` + old[1:]
	role := "arn:aws:iam::111122223333:role/keyseal-byok"
	gcpKey := keyseal.KeyRef{Provider: keyseal.ProviderGCP, KeyID: testKeyName}
	azKey := keyseal.KeyRef{Provider: keyseal.ProviderAzure, KeyID: testKeyURL}
	for _, c := range []struct {
		name  string
		query map[string]string
		want  string
	}{
		{"default", nil, withProvider},
		{"aws-kms", map[string]string{"provider": "aws-kms"}, withProvider},
		{"aws-kms with a key and a role", map[string]string{"provider": "aws-kms", "key_arn": testKeyARN, "role_arn": role, "external_id": "ext-123456"},
			mustJSON(t, AWSKeyPolicy{Provider: keyseal.ProviderAWS, KeyPolicy: awskms.PolicyFor(role, "acme"), Commands: []string{
				"aws kms get-key-policy --key-id " + testKeyARN + " --region eu-west-1 --policy-name default --output text > key-policy.json",
				"add the statement of GET /admin/tenant-kms/key-policy to key-policy.json, then: aws kms put-key-policy --key-id " + testKeyARN +
					" --region eu-west-1 --policy-name default --policy file://key-policy.json",
				"aws iam get-role --role-name keyseal-byok --query Role.AssumeRolePolicyDocument (keyseal assumes " + role + " with its external id)"}})},
		{"gcp-kms", map[string]string{"provider": "gcp-kms"}, mustJSON(t, gcpcli.GrantFor(testSA, keyseal.KeyRef{}))},
		{"gcp-kms with a key", map[string]string{"provider": "gcp-kms", "key_name": testKeyName}, mustJSON(t, gcpcli.GrantFor(testSA, gcpKey))},
		{"azure-kv", map[string]string{"provider": "azure-kv"}, mustJSON(t, azcli.GrantFor(testClientID, testTenantID, keyseal.KeyRef{}))},
		{"azure-kv with a key", map[string]string{"provider": "azure-kv", "key_url": testKeyURL}, mustJSON(t, azcli.GrantFor(testClientID, testTenantID, azKey))},
	} {
		status, body := getKeyPolicy(t, d, "acme", c.query)
		if status != http.StatusOK || body != c.want {
			t.Errorf("%s: %d\n%s\nwant\n%s", c.name, status, body, c.want)
		}
	}
	// The filled-in answers name the key's own coordinates.
	if _, body := getKeyPolicy(t, d, "acme", map[string]string{"provider": "gcp-kms", "key_name": testKeyName}); !strings.Contains(body,
		"gcloud kms keys add-iam-policy-binding tmk --keyring keyseal --location global --project acme-prod --member serviceAccount:"+testSA+
			" --role roles/cloudkms.cryptoKeyEncrypterDecrypter") || !strings.Contains(body, `"role":"roles/cloudkms.viewer"`) {
		t.Errorf("gcp answer: %s", body)
	}
	if _, body := getKeyPolicy(t, d, "acme", map[string]string{"provider": "azure-kv", "key_url": testKeyURL}); !strings.Contains(body,
		`"client_id":"`+testClientID+`","tenant_id":"`+testTenantID+`","role":"Key Vault Crypto User","role_definition_id":"12338af0-0e69-4776-bea7-57ae8d297424"`) ||
		!strings.Contains(body, `--scope \"$(az keyvault show --name acme-keys --query id -o tsv)/keys/tmk\"`) {
		t.Errorf("azure answer: %s", body)
	}
}

// TestKeyPolicyBadInput: an unknown provider, a malformed key, another
// provider's field are 400 with the provider's code; a provider this
// server lacks is 422.
func TestKeyPolicyBadInput(t *testing.T) {
	d, _ := keyPolicyDeps(t, keyseal.ProviderAzure)
	for _, c := range []struct {
		query  map[string]string
		status int
		code   string
	}{
		{map[string]string{"provider": "ibm-kp"}, 400, keyseal.EINVALID},
		{map[string]string{"provider": "gcp-kms", "key_name": "projects/p/keys/k"}, 400, keyseal.EKEYNAME},
		{map[string]string{"provider": "gcp-kms", "key_name": testKeyName + "/cryptoKeyVersions/1"}, 400, keyseal.EKEYNAME},
		{map[string]string{"provider": "gcp-kms", "key_arn": testKeyARN}, 400, keyseal.EINVALID},
		{map[string]string{"provider": "aws-kms", "key_arn": "arn:aws:kms:eu-west-1:111122223333:alias/x"}, 400, keyseal.EKEYARN},
		{map[string]string{"provider": "aws-kms", "key_name": testKeyName}, 400, keyseal.EINVALID},
		{map[string]string{"key_name": testKeyName}, 400, keyseal.EINVALID}, // the default provider, aws-kms, takes no key_name
		{map[string]string{"provider": "azure-kv"}, 422, keyseal.EPROVIDER},
		{map[string]string{"provider": "azure-kv", "key_url": testKeyURL}, 422, keyseal.EPROVIDER},
	} {
		if status, code := getKeyPolicy(t, d, "acme", c.query); status != c.status || code != c.code {
			t.Errorf("%v: %d %s, want %d %s", c.query, status, code, c.status, c.code)
		}
	}
	d, _ = keyPolicyDeps(t, "")
	if status, code := getKeyPolicy(t, d, "acme", map[string]string{"provider": "azure-kv", "key_url": "http://acme-keys.vault.azure.net/keys/tmk"}); status != 400 || code != keyseal.EKEYURL {
		t.Errorf("http key_url: %d %s", status, code)
	}
}

// TestKeyPolicyDefaultsToTheRegisteredKey: without a query, a tenant with
// a registered GCP key gets the GCP grant for that key.
func TestKeyPolicyDefaultsToTheRegisteredKey(t *testing.T) {
	d, fake := keyPolicyDeps(t, "")
	if err := fake.CreateKey(testKeyName); err != nil {
		t.Fatal(err)
	}
	key := keyseal.KeyRef{Provider: keyseal.ProviderGCP, KeyID: testKeyName}
	if _, err := d.Tenants.Register(context.Background(), "acme", key, "admin:test"); err != nil {
		t.Fatal(err)
	}
	want := mustJSON(t, gcpcli.GrantFor(testSA, key))
	for _, q := range []map[string]string{nil, {"provider": "gcp-kms"}} {
		if status, body := getKeyPolicy(t, d, "acme", q); status != 200 || body != want {
			t.Errorf("%v: %d %s\nwant %s", q, status, body, want)
		}
	}
	// Asked for another provider, it answers that one's.
	if _, body := getKeyPolicy(t, d, "acme", map[string]string{"provider": "aws-kms"}); !strings.HasPrefix(body, `{"provider":"aws-kms","statement":`) {
		t.Errorf("aws-kms for a GCP tenant: %s", body)
	}
}

// TestWithKeyPolicyPerProvider: cannot_access_cmk carries the AWS
// statements as required_key_policy and the GCP and Azure grants as
// required_grant, with the hint on access_denied.
func TestWithKeyPolicyPerProvider(t *testing.T) {
	d, _ := keyPolicyDeps(t, "")
	for _, c := range []struct {
		key   keyseal.KeyRef
		field string
		want  any
	}{
		{keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: testKeyARN}, "required_key_policy", awskms.PolicyFor(testPrincipal, "acme")},
		{keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: "k1"}, "required_key_policy", awskms.PolicyFor(testPrincipal, "acme")},
		{keyseal.KeyRef{Provider: keyseal.ProviderGCP, KeyID: testKeyName}, "required_grant", gcpcli.GrantFor(testSA, keyseal.KeyRef{Provider: keyseal.ProviderGCP, KeyID: testKeyName})},
		{keyseal.KeyRef{Provider: keyseal.ProviderAzure, KeyID: testKeyURL}, "required_grant", azcli.GrantFor(testClientID, testTenantID, keyseal.KeyRef{Provider: keyseal.ProviderAzure, KeyID: testKeyURL})},
	} {
		in := keyseal.Errorf(keyseal.ECMKACCESS, "keyseal cannot use the key").With("reason", keyseal.ReasonAccessDenied)
		var out *keyseal.Error
		if e, ok := d.withKeyPolicy(in, "acme", c.key).(*keyseal.Error); ok {
			out = e
		}
		if out == nil || mustJSON(t, out.Extra[c.field]) != mustJSON(t, c.want) || !strings.Contains(out.Message, c.field) {
			t.Errorf("%s: %+v", c.key.Provider, out)
		}
		other := map[string]string{"required_key_policy": "required_grant", "required_grant": "required_key_policy"}[c.field]
		if _, ok := out.Extra[other]; ok {
			t.Errorf("%s: carries %s too", c.key.Provider, other)
		}
	}
}
