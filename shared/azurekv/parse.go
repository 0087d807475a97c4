package azurekv

import (
	"net/url"
	"slices"
	"strings"

	"github.com/keyseal/keyseal/shared/internal/lazyre"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// AccessTenantID is the Access field of an azure-kv KeyRef naming the
// customer's Entra tenant; without it keyseal's configured tenant is used.
const AccessTenantID = "azure_tenant_id"

// ExpectedKeyURL is the form ParseKey accepts, quoted in its errors.
const ExpectedKeyURL = "https://VAULT.vault.azure.net/keys/NAME[/VERSION]"

var (
	// vaultHostPattern: a vault or Managed HSM name under the public,
	// China and US Government clouds' Key Vault domains.
	vaultHostPattern = lazyre.New(`^[a-z0-9](?:[a-z0-9-]{1,22}[a-z0-9])?\.(?:vault\.azure\.net|vault\.azure\.cn|vault\.usgovcloudapi\.net|managedhsm\.azure\.net|managedhsm\.azure\.cn|managedhsm\.usgovcloudapi\.net)$`)
	keyNamePattern   = lazyre.New(`^[0-9A-Za-z-]{1,127}$`)
	versionPattern   = lazyre.New(`^[0-9a-fA-F]{32}$`)
	guidPattern      = lazyre.New(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// fields are the registration fields azure-kv takes.
var fields = []string{"key_url", AccessTenantID}

// ParseKey implements keyseal.Provider: EKEYURL for a key_url that is not a
// Key Vault or Managed HSM key URL, EINVALID for the other fields. The
// KeyRef's KeyID is the URL normalized (lower-case host, no trailing
// slash); a URL naming a version pins every wrap to that version.
func (p *Provider) ParseKey(in map[string]string) (keyseal.KeyRef, error) {
	for name := range in {
		if !slices.Contains(fields, name) {
			return keyseal.KeyRef{}, keyseal.Errorf(keyseal.EINVALID, "provider azure-kv does not take %s (it takes %s)", name, strings.Join(fields, ", "))
		}
	}
	raw, tenant := in["key_url"], in[AccessTenantID]
	if raw == "" {
		return keyseal.KeyRef{}, keyseal.Errorf(keyseal.EINVALID, "key_url is required for provider azure-kv")
	}
	k, err := parseKeyURL(raw)
	if err != nil {
		return keyseal.KeyRef{}, keyseal.Errorf(keyseal.EKEYURL, "key_url must be a Key Vault key URL of the form %s (or a Managed HSM / sovereign-cloud host): %s; `az keyvault key show --vault-name VAULT --name NAME --query key.kid` prints it", ExpectedKeyURL, err.Error()).
			With("expected_format", ExpectedKeyURL)
	}
	if tenant != "" && !guidPattern.MatchString(tenant) {
		return keyseal.KeyRef{}, keyseal.Errorf(keyseal.EINVALID, "azure_tenant_id must be the Entra tenant id, a GUID (`az account show --query tenantId`)")
	}
	ref := keyseal.KeyRef{Provider: keyseal.ProviderAzure, KeyID: k.String()}
	if tenant != "" {
		ref.Access = map[string]string{AccessTenantID: strings.ToLower(tenant)}
	}
	return ref, nil
}

// keyURL is a parsed key URL.
type keyURL struct {
	Vault   string // https://HOST
	Name    string
	Version string // empty: the key's current version
}

func (k keyURL) String() string {
	s := k.Vault + "/keys/" + k.Name
	if k.Version != "" {
		s += "/" + k.Version
	}
	return s
}

// keyURLError is a client-safe reason a key URL is refused.
type keyURLError string

func (e keyURLError) Error() string { return string(e) }

func parseKeyURL(raw string) (keyURL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return keyURL{}, keyURLError("it is not a URL")
	case u.Scheme != "https":
		return keyURL{}, keyURLError("the scheme must be https")
	case u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Port() != "" || u.Opaque != "":
		return keyURL{}, keyURLError("it must carry no user, port, query or fragment")
	}
	host := strings.ToLower(u.Hostname())
	if !vaultHostPattern.MatchString(host) {
		return keyURL{}, keyURLError("the host must be VAULT.vault.azure.net, VAULT.managedhsm.azure.net or their .cn / .usgovcloudapi.net forms")
	}
	if u.RawPath != "" {
		return keyURL{}, keyURLError("the path must not be percent-encoded")
	}
	parts := strings.Split(strings.TrimSuffix(u.Path, "/"), "/")
	if len(parts) < 3 || len(parts) > 4 || parts[0] != "" || parts[1] != "keys" {
		return keyURL{}, keyURLError("the path must be /keys/NAME or /keys/NAME/VERSION")
	}
	k := keyURL{Vault: "https://" + host, Name: parts[2]}
	if !keyNamePattern.MatchString(k.Name) {
		return keyURL{}, keyURLError("the key name must be 1-127 letters, digits and dashes")
	}
	if len(parts) == 4 {
		if !versionPattern.MatchString(parts[3]) {
			return keyURL{}, keyURLError("the key version must be 32 hex digits")
		}
		k.Version = strings.ToLower(parts[3])
	}
	return k, nil
}
