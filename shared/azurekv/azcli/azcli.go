// Package azcli builds the az commands and role assignment a customer
// uses to grant keyseal a Key Vault (or Managed HSM) key and to fix it
// when it fails. It imports no Azure SDK, so the HTTP layer can answer the
// key-policy route without linking the Key Vault client.
package azcli

import (
	"strings"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// Roles a customer assigns keyseal's service principal on a key.
const (
	RoleCryptoUser      = "Key Vault Crypto User"
	RoleCryptoUserID    = "12338af0-0e69-4776-bea7-57ae8d297424"
	RoleHSMCryptoUser   = "Managed HSM Crypto User"
	RoleHSMCryptoUserID = "21dbd100-6940-42c2-9190-5d6cb909625b"
)

// PlaceholderClientID stands for keyseal's application (client) id in the
// commands of a server that was not told it (KEYSEAL_AZURE_CLIENT_ID).
const PlaceholderClientID = "KEYSEAL_CLIENT_ID"

// target is a key's az CLI arguments.
type target struct {
	hsm     bool
	vault   string // the vault or Managed HSM name
	name    string
	version string
}

// targetOf splits a key URL as azurekv.ParseKey normalized it
// (https://HOST/keys/NAME[/VERSION], lower-case host); an empty or other
// one gives the placeholders VAULT and NAME.
func targetOf(keyID string) target {
	rest, ok := strings.CutPrefix(keyID, "https://")
	host, path, _ := strings.Cut(rest, "/keys/")
	vault, domain, _ := strings.Cut(host, ".")
	name, version, _ := strings.Cut(path, "/")
	if !ok || vault == "" || domain == "" || name == "" || strings.Contains(version, "/") {
		return target{vault: "VAULT", name: "NAME"}
	}
	return target{hsm: strings.HasPrefix(domain, "managedhsm."), vault: vault, name: name, version: version}
}

// isVersion reports whether s is a Key Vault key version (32 hex digits).
func isVersion(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range strings.ToLower(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// on is the vault flag and the key name.
func (t target) on() string {
	flag := "--vault-name "
	if t.hsm {
		flag = "--hsm-name "
	}
	return flag + t.vault + " --name " + t.name
}

// resourceID is a command substitution printing the vault's (or HSM's)
// Azure resource id.
func (t target) resourceID() string {
	if t.hsm {
		return "$(az keyvault show --hsm-name " + t.vault + " --query id -o tsv)"
	}
	return "$(az keyvault show --name " + t.vault + " --query id -o tsv)"
}

func (t target) assign(clientID string) string {
	if t.hsm {
		return "az keyvault role assignment create --hsm-name " + t.vault + " --role \"" + RoleHSMCryptoUser + "\" --assignee " + clientID +
			" --scope /keys/" + t.name
	}
	return "az role assignment create --role \"" + RoleCryptoUser + "\" --assignee " + clientID + " --scope \"" + t.resourceID() + "/keys/" + t.name + "\""
}

func (t target) listAssignments(clientID string) string {
	if t.hsm {
		return "az keyvault role assignment list --hsm-name " + t.vault + " --assignee " + clientID + " --scope /keys/" + t.name
	}
	return "az role assignment list --assignee " + clientID + " --scope \"" + t.resourceID() + "/keys/" + t.name + "\""
}

func servicePrincipal(clientID string) string {
	return "az ad sp show --id " + clientID + " || az ad sp create --id " + clientID
}

func (t target) verify() string {
	return "az keyvault key show " + t.on() + " --query attributes.enabled -o tsv"
}

func orPlaceholder(clientID string) string {
	if clientID == "" {
		return PlaceholderClientID
	}
	return clientID
}

// Grant is what a customer grants keyseal on a Key Vault key: the answer
// of GET /admin/tenant-kms/key-policy for azure-kv, and required_grant of
// a cannot_access_cmk about an azure-kv key.
type Grant struct {
	Provider string `json:"provider"`
	// ClientID is keyseal's application (client) id, the assignee;
	// TenantID its home Entra tenant.
	ClientID         string `json:"client_id"`
	TenantID         string `json:"tenant_id,omitempty"`
	Role             string `json:"role"`
	RoleDefinitionID string `json:"role_definition_id"`
	// Scope is the key the role is assigned on: its Azure resource id
	// (the subscription and resource group are the vault's; the command
	// looks them up), or /keys/NAME on a Managed HSM.
	Scope string `json:"scope"`
	// Commands are run in the customer's tenant, in order: the service
	// principal of keyseal's app (made once per tenant), then the role
	// assignment.
	Commands []string `json:"commands"`
	Verify   string   `json:"verify"`
}

// GrantFor returns the role assignment that lets keyseal's app (clientID,
// home tenant tenantID) use key. A zero key fills the commands with the
// placeholders VAULT and NAME.
func GrantFor(clientID, tenantID string, key keyseal.KeyRef) Grant {
	t := targetOf(key.KeyID)
	id := orPlaceholder(clientID)
	g := Grant{Provider: keyseal.ProviderAzure, ClientID: id, TenantID: tenantID, Role: RoleCryptoUser, RoleDefinitionID: RoleCryptoUserID,
		Scope:    "/subscriptions/SUBSCRIPTION/resourceGroups/RESOURCE_GROUP/providers/Microsoft.KeyVault/vaults/" + t.vault + "/keys/" + t.name,
		Commands: []string{servicePrincipal(id), t.assign(id)}, Verify: t.listAssignments(id)}
	if t.hsm {
		// Managed HSM has its own local RBAC, scoped by path.
		g.Role, g.RoleDefinitionID, g.Scope = RoleHSMCryptoUser, RoleHSMCryptoUserID, "/keys/"+t.name
	}
	return g
}

// Advise returns the az steps that fix f on key for keyseal's app
// clientID (see keyseal.Advisor), nil for a problem it has none for. The
// version to enable is the one that wrapped the active TMK when known,
// else the one the key URL pins, else the key's current one.
func Advise(clientID string, key keyseal.KeyRef, f keyseal.Finding) []keyseal.Remedy {
	t := targetOf(key.KeyID)
	version := t.version
	if isVersion(f.KeyVersion) {
		version = strings.ToLower(f.KeyVersion)
	}
	enableCmd := "az keyvault key set-attributes " + t.on()
	if version != "" {
		enableCmd += " --version " + version
	}
	enable := keyseal.Remedy{Action: "enable-key", Command: enableCmd + " --enabled true"}
	verify := keyseal.Remedy{Action: "verify", Command: t.verify()}
	recover := keyseal.Remedy{Action: "recover-deleted-key", Command: "az keyvault key recover " + t.on()}
	id := orPlaceholder(clientID)
	metric := func(name string) string {
		return "az monitor metrics list --resource \"" + t.resourceID() + "\" --metric " + name
	}
	switch f.Problem {
	case keyseal.ReasonKeyDisabled:
		return []keyseal.Remedy{enable, verify}
	case keyseal.ReasonPendingDeletion:
		return []keyseal.Remedy{recover, enable, verify}
	case keyseal.ReasonKeyNotFound:
		// A deleted key answers 404 like a missing one: look in the
		// deleted keys (soft-delete keeps them 7 to 90 days).
		return []keyseal.Remedy{{Action: "show-deleted-key", Command: "az keyvault key show-deleted " + t.on()}, recover, verify}
	case keyseal.ReasonAccessDenied:
		return []keyseal.Remedy{{Action: "create-service-principal", Command: servicePrincipal(id)},
			{Action: "assign-crypto-user", Command: t.assign(id)},
			{Action: "check-role-assignment", Command: t.listAssignments(id)}}
	case keyseal.ReasonInvalidBlob:
		return []keyseal.Remedy{{Action: "list-key-versions", Command: "az keyvault key list-versions " + t.on() + " -o table"}}
	case keyseal.ReasonUnreachable:
		return []keyseal.Remedy{{Action: "check-vault-availability", Command: metric("Availability")}, verify}
	case keyseal.ProblemSlow:
		return []keyseal.Remedy{{Action: "check-vault-latency", Command: metric("ServiceApiLatency")}}
	}
	return nil
}
