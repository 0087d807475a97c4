package gcpkms

import (
	"slices"
	"strings"

	"github.com/keyseal/keyseal/shared/internal/lazyre"

	"github.com/keyseal/keyseal/shared/gcpkms/gcpcli"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// AccessServiceAccount is the Access field of a gcp-kms KeyRef: the
// customer's service account keyseal impersonates to reach the key.
const AccessServiceAccount = gcpcli.AccessServiceAccount

// ExpectedKeyName is the form ParseKey accepts, quoted in its errors.
const ExpectedKeyName = gcpcli.ExpectedKeyName

var (
	// Resource ids per Cloud KMS: key rings and keys are 1-63 of
	// [a-zA-Z0-9_-]; project ids 6-30 of [a-z0-9-] (domain-scoped ones
	// contain a colon and a dot).
	keyNamePattern = lazyre.New(`^projects/[a-z][a-z0-9.:-]{4,61}[a-z0-9]/locations/[a-z0-9-]{1,63}/keyRings/[a-zA-Z0-9_-]{1,63}/cryptoKeys/[a-zA-Z0-9_-]{1,63}$`)
	versionPattern = lazyre.New(`^(projects/[^/]+/locations/[^/]+/keyRings/[^/]+/cryptoKeys/[^/]+)/cryptoKeyVersions/`)
	// A service account email: NAME@PROJECT.iam.gserviceaccount.com, or a
	// Google-managed one under another domain.
	serviceAccountPattern = lazyre.New(`^[a-z0-9][a-z0-9-]{4,61}[a-z0-9]@[a-z0-9.-]+\.gserviceaccount\.com$`)
)

// fields are the registration fields gcp-kms takes.
var fields = []string{"key_name", AccessServiceAccount}

// ParseKey implements keyseal.Provider: EKEYNAME for a malformed key name
// (with a hint for a CryptoKeyVersion name), EINVALID for the other
// fields, EPROVIDER for a service_account on a server that cannot
// impersonate.
func (p *Provider) ParseKey(in map[string]string) (keyseal.KeyRef, error) {
	for name := range in {
		if !slices.Contains(fields, name) {
			return keyseal.KeyRef{}, keyseal.Errorf(keyseal.EINVALID, "provider gcp-kms does not take %s (it takes %s)", name, strings.Join(fields, ", "))
		}
	}
	name, sa := in["key_name"], in[AccessServiceAccount]
	if m := versionPattern.FindStringSubmatch(name); m != nil {
		return keyseal.KeyRef{}, keyseal.Errorf(keyseal.EKEYNAME, "key_name names a CryptoKeyVersion: pass the CryptoKey (%s), keyseal encrypts with its primary version", m[1]).
			With("expected_format", ExpectedKeyName)
	}
	switch {
	case name == "":
		return keyseal.KeyRef{}, keyseal.Errorf(keyseal.EINVALID, "key_name is required for provider gcp-kms (%s)", ExpectedKeyName)
	case !keyNamePattern.MatchString(name):
		return keyseal.KeyRef{}, keyseal.Errorf(keyseal.EKEYNAME, "key_name must be a Cloud KMS CryptoKey name of the form %s", ExpectedKeyName).
			With("expected_format", ExpectedKeyName)
	case sa != "" && !serviceAccountPattern.MatchString(sa):
		return keyseal.KeyRef{}, keyseal.Errorf(keyseal.EINVALID, "service_account must be a service account email (NAME@PROJECT.iam.gserviceaccount.com)")
	case sa != "" && p.clientFor == nil:
		return keyseal.KeyRef{}, keyseal.Errorf(keyseal.EPROVIDER, "this server cannot impersonate a service account for gcp-kms: register the key without service_account and grant keyseal's own identity roles/cloudkms.cryptoKeyEncrypterDecrypter on it")
	}
	k := keyseal.KeyRef{Provider: keyseal.ProviderGCP, KeyID: name}
	if sa != "" {
		k.Access = map[string]string{AccessServiceAccount: sa}
	}
	return k, nil
}
