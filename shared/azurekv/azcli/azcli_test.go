package azcli_test

import (
	"strings"
	"testing"

	"github.com/keyseal/keyseal/shared/azurekv/azcli"
	"github.com/keyseal/keyseal/shared/keyseal"
)

const (
	clientID  = "11111111-2222-3333-4444-555555555555"
	homeID    = "99999999-8888-7777-6666-555555555555"
	versionID = "0123456789abcdef0123456789abcdef"
)

func lines(r []keyseal.Remedy) string {
	var b strings.Builder
	for _, x := range r {
		b.WriteString(x.Action + ": " + x.Command + "\n")
	}
	return b.String()
}

// TestAdvise: the az commands per reason, exact, for a vault key and a
// Managed HSM key.
func TestAdvise(t *testing.T) {
	advise := func(key keyseal.KeyRef, f keyseal.Finding) []keyseal.Remedy { return azcli.Advise(clientID, key, f) }
	vaultKey := keyseal.KeyRef{Provider: keyseal.ProviderAzure, KeyID: "https://acme-keys.vault.azure.net/keys/tmk"}
	hsmKey := keyseal.KeyRef{Provider: keyseal.ProviderAzure, KeyID: "https://acme-hsm.managedhsm.azure.net/keys/tmk"}
	scope := `"$(az keyvault show --name acme-keys --query id -o tsv)/keys/tmk"`
	show := "verify: az keyvault key show --vault-name acme-keys --name tmk --query attributes.enabled -o tsv\n"
	recover := "recover-deleted-key: az keyvault key recover --vault-name acme-keys --name tmk\n"
	for _, c := range []struct {
		name    string
		key     keyseal.KeyRef
		problem string
		version string
		want    string
	}{
		{"disabled", vaultKey, keyseal.ReasonKeyDisabled, "",
			"enable-key: az keyvault key set-attributes --vault-name acme-keys --name tmk --enabled true\n" + show},
		{"disabled, the TMK's version", vaultKey, keyseal.ReasonKeyDisabled, versionID,
			"enable-key: az keyvault key set-attributes --vault-name acme-keys --name tmk --version " + versionID + " --enabled true\n" + show},
		{"deleted", vaultKey, keyseal.ReasonKeyNotFound, "",
			"show-deleted-key: az keyvault key show-deleted --vault-name acme-keys --name tmk\n" + recover + show},
		{"access denied", vaultKey, keyseal.ReasonAccessDenied, "",
			"create-service-principal: az ad sp show --id " + clientID + " || az ad sp create --id " + clientID + "\n" +
				`assign-crypto-user: az role assignment create --role "Key Vault Crypto User" --assignee ` + clientID + " --scope " + scope + "\n" +
				"check-role-assignment: az role assignment list --assignee " + clientID + " --scope " + scope + "\n"},
		{"invalid blob", vaultKey, keyseal.ReasonInvalidBlob, "",
			"list-key-versions: az keyvault key list-versions --vault-name acme-keys --name tmk -o table\n"},
		{"unreachable", vaultKey, keyseal.ReasonUnreachable, "",
			`check-vault-availability: az monitor metrics list --resource "$(az keyvault show --name acme-keys --query id -o tsv)" --metric Availability` + "\n" + show},
		{"slow", vaultKey, keyseal.ProblemSlow, "",
			`check-vault-latency: az monitor metrics list --resource "$(az keyvault show --name acme-keys --query id -o tsv)" --metric ServiceApiLatency` + "\n"},
		{"HSM disabled", hsmKey, keyseal.ReasonKeyDisabled, "",
			"enable-key: az keyvault key set-attributes --hsm-name acme-hsm --name tmk --enabled true\n" +
				"verify: az keyvault key show --hsm-name acme-hsm --name tmk --query attributes.enabled -o tsv\n"},
		{"HSM deleted", hsmKey, keyseal.ReasonKeyNotFound, "",
			"show-deleted-key: az keyvault key show-deleted --hsm-name acme-hsm --name tmk\n" +
				"recover-deleted-key: az keyvault key recover --hsm-name acme-hsm --name tmk\n" +
				"verify: az keyvault key show --hsm-name acme-hsm --name tmk --query attributes.enabled -o tsv\n"},
		{"HSM access denied", hsmKey, keyseal.ReasonAccessDenied, "",
			"create-service-principal: az ad sp show --id " + clientID + " || az ad sp create --id " + clientID + "\n" +
				`assign-crypto-user: az keyvault role assignment create --hsm-name acme-hsm --role "Managed HSM Crypto User" --assignee ` + clientID + " --scope /keys/tmk\n" +
				"check-role-assignment: az keyvault role assignment list --hsm-name acme-hsm --assignee " + clientID + " --scope /keys/tmk\n"},
		{"unknown problem", vaultKey, "something-else", "", ""},
	} {
		got := lines(advise(c.key, keyseal.Finding{Problem: c.problem, KeyVersion: c.version}))
		if got != c.want {
			t.Errorf("%s:\n got:\n%s\nwant:\n%s", c.name, got, c.want)
		}
	}
}

// TestAdvisePlaceholder: a server not told its client id says so in the
// command instead of naming nobody.
func TestAdvisePlaceholder(t *testing.T) {
	key := keyseal.KeyRef{Provider: keyseal.ProviderAzure, KeyID: "https://acme-keys.vault.azure.net/keys/tmk"}
	got := lines(azcli.Advise("", key, keyseal.Finding{Problem: keyseal.ReasonAccessDenied}))
	if !strings.Contains(got, "--assignee "+azcli.PlaceholderClientID+" ") {
		t.Fatalf("no placeholder:\n%s", got)
	}
}

func TestGrantFor(t *testing.T) {
	g := azcli.GrantFor(clientID, homeID, keyseal.KeyRef{Provider: keyseal.ProviderAzure, KeyID: "https://acme-keys.vault.azure.net/keys/tmk"})
	if g.Provider != keyseal.ProviderAzure || g.ClientID != clientID || g.TenantID != homeID || g.Role != "Key Vault Crypto User" ||
		g.RoleDefinitionID != "12338af0-0e69-4776-bea7-57ae8d297424" ||
		g.Scope != "/subscriptions/SUBSCRIPTION/resourceGroups/RESOURCE_GROUP/providers/Microsoft.KeyVault/vaults/acme-keys/keys/tmk" ||
		len(g.Commands) != 2 || g.Commands[0] != "az ad sp show --id "+clientID+" || az ad sp create --id "+clientID ||
		g.Commands[1] != `az role assignment create --role "Key Vault Crypto User" --assignee `+clientID+` --scope "$(az keyvault show --name acme-keys --query id -o tsv)/keys/tmk"` {
		t.Fatalf("grant = %+v", g)
	}
	h := azcli.GrantFor(clientID, homeID, keyseal.KeyRef{Provider: keyseal.ProviderAzure, KeyID: "https://acme-hsm.managedhsm.azure.net/keys/tmk"})
	if h.Role != "Managed HSM Crypto User" || h.RoleDefinitionID != "21dbd100-6940-42c2-9190-5d6cb909625b" || h.Scope != "/keys/tmk" ||
		h.Commands[1] != `az keyvault role assignment create --hsm-name acme-hsm --role "Managed HSM Crypto User" --assignee `+clientID+" --scope /keys/tmk" {
		t.Fatalf("HSM grant = %+v", h)
	}
	z := azcli.GrantFor("", "", keyseal.KeyRef{})
	if z.ClientID != azcli.PlaceholderClientID || !strings.Contains(z.Commands[1], "--name VAULT") || !strings.Contains(z.Commands[1], "/keys/NAME") {
		t.Fatalf("placeholder grant = %+v", z)
	}
}
