package azurekv_test

import (
	"strings"
	"testing"

	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/azurekv"
	"github.com/keyseal/keyseal/shared/keyseal"
)

func TestParseKey(t *testing.T) {
	p := azurekv.New(nil)
	const ver = "0123456789abcdef0123456789abcdef"
	const tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	ok := []struct {
		in   map[string]string
		want keyseal.KeyRef
	}{
		{map[string]string{"key_url": "https://acme.vault.azure.net/keys/tmk"},
			keyseal.KeyRef{Provider: "azure-kv", KeyID: "https://acme.vault.azure.net/keys/tmk"}},
		{map[string]string{"key_url": "https://ACME.Vault.Azure.Net/keys/tmk/" + strings.ToUpper(ver)},
			keyseal.KeyRef{Provider: "azure-kv", KeyID: "https://acme.vault.azure.net/keys/tmk/" + ver}},
		{map[string]string{"key_url": "https://acme.vault.azure.net/keys/tmk/"},
			keyseal.KeyRef{Provider: "azure-kv", KeyID: "https://acme.vault.azure.net/keys/tmk"}},
		{map[string]string{"key_url": "https://acme-hsm.managedhsm.azure.net/keys/tmk"},
			keyseal.KeyRef{Provider: "azure-kv", KeyID: "https://acme-hsm.managedhsm.azure.net/keys/tmk"}},
		{map[string]string{"key_url": "https://acme.vault.azure.cn/keys/tmk"},
			keyseal.KeyRef{Provider: "azure-kv", KeyID: "https://acme.vault.azure.cn/keys/tmk"}},
		{map[string]string{"key_url": "https://acme.vault.usgovcloudapi.net/keys/tmk", "azure_tenant_id": strings.ToUpper(tenant)},
			keyseal.KeyRef{Provider: "azure-kv", KeyID: "https://acme.vault.usgovcloudapi.net/keys/tmk", Access: map[string]string{"azure_tenant_id": tenant}}},
	}
	for _, c := range ok {
		got, err := p.ParseKey(c.in)
		if err != nil || !got.Equal(c.want) {
			t.Errorf("ParseKey(%v) = %+v, %v; want %+v", c.in, got, err, c.want)
		}
	}

	bad := []struct {
		in      map[string]string
		code    string
		mention string
	}{
		{map[string]string{}, keyseal.EINVALID, "key_url is required"},
		{map[string]string{"key_arn": "arn:aws:kms:eu-west-1:111122223333:key/x"}, keyseal.EINVALID, "does not take key_arn (it takes key_url, azure_tenant_id)"},
		{map[string]string{"key_url": "https://acme.vault.azure.net/keys/tmk", "service_account": "a@b"}, keyseal.EINVALID, "service_account"},
		{map[string]string{"key_url": "http://acme.vault.azure.net/keys/tmk"}, keyseal.EKEYURL, "https"},
		{map[string]string{"key_url": "https://acme.vault.azure.net:8443/keys/tmk"}, keyseal.EKEYURL, "port"},
		{map[string]string{"key_url": "https://acme.vault.azure.net/keys/tmk?api-version=7.4"}, keyseal.EKEYURL, "query"},
		{map[string]string{"key_url": "https://evil.example.com/keys/tmk"}, keyseal.EKEYURL, "vault.azure.net"},
		{map[string]string{"key_url": "https://acme.vault.azure.net.evil.com/keys/tmk"}, keyseal.EKEYURL, "host"},
		{map[string]string{"key_url": "https://acme.vault.azure.net/secrets/tmk"}, keyseal.EKEYURL, "/keys/NAME"},
		{map[string]string{"key_url": "https://acme.vault.azure.net/keys"}, keyseal.EKEYURL, "/keys/NAME"},
		{map[string]string{"key_url": "https://acme.vault.azure.net/keys/tmk/v1/extra"}, keyseal.EKEYURL, "/keys/NAME"},
		{map[string]string{"key_url": "https://acme.vault.azure.net/keys/tmk/v1"}, keyseal.EKEYURL, "32 hex"},
		{map[string]string{"key_url": "https://acme.vault.azure.net/keys/tmk_1"}, keyseal.EKEYURL, "key name"},
		{map[string]string{"key_url": "https://acme.vault.azure.net/keys/tm%6B"}, keyseal.EKEYURL, "percent"},
		{map[string]string{"key_url": "acme.vault.azure.net/keys/tmk"}, keyseal.EKEYURL, ExpectedForm},
		{map[string]string{"key_url": "https://acme.vault.azure.net/keys/tmk", "azure_tenant_id": "contoso.onmicrosoft.com"}, keyseal.EINVALID, "GUID"},
	}
	for _, c := range bad {
		_, err := p.ParseKey(c.in)
		if keyseal.ErrorCode(err) != c.code || !strings.Contains(keyseal.ErrorMessage(err), c.mention) {
			t.Errorf("ParseKey(%v) = %v; want %s mentioning %q", c.in, err, c.code, c.mention)
		}
	}
}

// ExpectedForm is quoted by every invalid_key_url message.
const ExpectedForm = azurekv.ExpectedKeyURL

// TestInvalidKeyURLIsA400: the HTTP layer maps the new code to 400.
func TestInvalidKeyURLIsA400(t *testing.T) {
	if s := api.StatusOf(keyseal.EKEYURL); s != 400 {
		t.Fatalf("invalid_key_url answers %d, want 400", s)
	}
}
