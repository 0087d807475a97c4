package gcpkms

import (
	"strings"
	"testing"

	"github.com/keyseal/keyseal/shared/keyseal"
)

func TestParseKey(t *testing.T) {
	const name = "projects/acme-prod/locations/europe-west1/keyRings/keyseal/cryptoKeys/tmk"
	const sa = "keyseal-kms@acme-prod.iam.gserviceaccount.com"
	plain := New(nil)
	imp := New(nil, WithServiceAccounts(func(string) (API, error) { return nil, nil }))
	for _, c := range []struct {
		name   string
		p      *Provider
		in     map[string]string
		code   string // "" when accepted
		substr string
	}{
		{"key", plain, map[string]string{"key_name": name}, "", ""},
		{"global location", plain, map[string]string{"key_name": "projects/my-project-123/locations/global/keyRings/r_1/cryptoKeys/K-2"}, "", ""},
		{"with service account", imp, map[string]string{"key_name": name, "service_account": sa}, "", ""},
		{"missing", plain, map[string]string{}, keyseal.EINVALID, "key_name is required"},
		{"version path", plain, map[string]string{"key_name": name + "/cryptoKeyVersions/3"}, keyseal.EKEYNAME, "pass the CryptoKey (" + name + ")"},
		{"key ring only", plain, map[string]string{"key_name": "projects/acme-prod/locations/global/keyRings/keyseal"}, keyseal.EKEYNAME, ExpectedKeyName},
		{"full URL", plain, map[string]string{"key_name": "https://cloudkms.googleapis.com/v1/" + name}, keyseal.EKEYNAME, ExpectedKeyName},
		{"trailing slash", plain, map[string]string{"key_name": name + "/"}, keyseal.EKEYNAME, ExpectedKeyName},
		{"bad key id", plain, map[string]string{"key_name": strings.Replace(name, "/tmk", "/t.mk", 1)}, keyseal.EKEYNAME, ExpectedKeyName},
		{"AWS field", plain, map[string]string{"key_name": name, "key_arn": "arn:aws:kms:us-east-1:111122223333:key/x"}, keyseal.EINVALID, "gcp-kms does not take key_arn (it takes key_name, service_account)"},
		{"bad service account", imp, map[string]string{"key_name": name, "service_account": "not-an-email"}, keyseal.EINVALID, "service account email"},
		{"user email", imp, map[string]string{"key_name": name, "service_account": "alice@example.com"}, keyseal.EINVALID, "service account email"},
		{"service account, no impersonation", plain, map[string]string{"key_name": name, "service_account": sa}, keyseal.EPROVIDER, "cannot impersonate"},
	} {
		t.Run(c.name, func(t *testing.T) {
			k, err := c.p.ParseKey(c.in)
			if c.code == "" {
				want := keyseal.KeyRef{Provider: keyseal.ProviderGCP, KeyID: c.in["key_name"]}
				if s := c.in["service_account"]; s != "" {
					want.Access = map[string]string{AccessServiceAccount: s}
				}
				if err != nil || !k.Equal(want) {
					t.Fatalf("ParseKey = %+v, %v; want %+v", k, err, want)
				}
				return
			}
			if keyseal.ErrorCode(err) != c.code || !strings.Contains(keyseal.ErrorMessage(err), c.substr) {
				t.Fatalf("ParseKey = %v; want %s containing %q", err, c.code, c.substr)
			}
		})
	}
}
