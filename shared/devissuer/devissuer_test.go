package devissuer_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/devissuer"
	"github.com/keyseal/keyseal/shared/keyseal"
)

const (
	devIssuer   = "keyseal-dev"
	devAudience = "keyseal-admin"
)

func devVerifier(t *testing.T, d *devissuer.Issuer) *auth.AdminVerifier {
	t.Helper()
	v, err := auth.NewAdminVerifier(auth.AdminConfig{JWKS: d.JWKS(), Issuer: devIssuer, Audience: devAudience})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestDevIssuer(t *testing.T) {
	// A directory that does not exist yet, as on a first `make run`.
	path := filepath.Join(t.TempDir(), ".keyseal", "dev-admin-issuer.json")
	d, err := devissuer.New(path, devIssuer, devAudience)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v, want mode 0600", fi, err)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil || len(entries) != 1 {
		t.Fatalf("key directory holds %v (%v), want only the key file", entries, err)
	}
	authTime := time.Now().Add(-time.Minute)
	tok, err := d.Mint(devissuer.Claims{Subject: "dev", TenantID: "demo", TTL: time.Hour, AuthTime: authTime,
		ACR: "mfa", AMR: []string{"pwd", "mfa"}, Roles: []string{auth.AdminRole}})
	if err != nil {
		t.Fatal(err)
	}

	// A restart reloads the same key: tokens minted before keep verifying.
	again, err := devissuer.New(path, devIssuer, devAudience)
	if err != nil {
		t.Fatal(err)
	}
	if string(again.JWKS()) != string(d.JWKS()) {
		t.Fatalf("JWKS changed across restarts:\n%s\n%s", d.JWKS(), again.JWKS())
	}
	var set struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(d.JWKS(), &set); err != nil || len(set.Keys) != 1 {
		t.Fatalf("JWKS %s: %v", d.JWKS(), err)
	}
	if _, private := set.Keys[0]["d"]; private {
		t.Fatalf("JWKS leaks the private key: %s", d.JWKS())
	}
	a, err := devVerifier(t, again).Verify(context.Background(), "Bearer "+tok)
	if err != nil {
		t.Fatalf("dev token after restart: %v", err)
	}
	if a.Subject != "dev" || a.TenantID != "demo" || a.ACR != "mfa" || !slices.Equal(a.AMR, []string{"pwd", "mfa"}) ||
		a.AuthTime.Unix() != authTime.Unix() {
		t.Fatalf("dev admin %+v", a)
	}
}

func TestDevIssuerClaims(t *testing.T) {
	d, err := devissuer.New(filepath.Join(t.TempDir(), "key.json"), devIssuer, devAudience)
	if err != nil {
		t.Fatal(err)
	}
	v := devVerifier(t, d)
	verify := func(c devissuer.Claims) (*auth.Admin, error) {
		t.Helper()
		tok, err := d.Mint(c)
		if err != nil {
			t.Fatal(err)
		}
		return v.Verify(context.Background(), "Bearer "+tok)
	}
	if a, err := verify(devissuer.Claims{Subject: "s", TenantID: "demo", Scope: "openid keyseal:admin"}); err != nil || !a.AuthTime.IsZero() || a.AMR != nil {
		t.Fatalf("scope role, default TTL, no auth context: %+v %v", a, err)
	}
	if _, err := verify(devissuer.Claims{Subject: "s", TenantID: "demo", TTL: -2 * time.Minute, Roles: []string{auth.AdminRole}}); keyseal.ErrorCode(err) != keyseal.EUNAUTHORIZED {
		t.Fatalf("negative TTL must mint an expired token: %v", err)
	}
	if _, err := verify(devissuer.Claims{Subject: "s", TenantID: "demo", TTL: time.Hour}); keyseal.ErrorCode(err) != keyseal.EFORBIDDEN {
		t.Fatalf("no role: %v", err)
	}
}

func TestDevIssuerRejectsBadKeyFile(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"not JSON":        "not json",
		"incomplete":      `{"kty":"EC"}`,
		"public key only": "",
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
		if content == "" {
			d, err := devissuer.New(filepath.Join(dir, "source.json"), devIssuer, devAudience)
			if err != nil {
				t.Fatal(err)
			}
			var set struct {
				Keys []json.RawMessage `json:"keys"`
			}
			if err := json.Unmarshal(d.JWKS(), &set); err != nil {
				t.Fatal(err)
			}
			content = string(set.Keys[0])
		}
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := devissuer.New(path, devIssuer, devAudience)
		if err == nil || !strings.Contains(err.Error(), "delete it") {
			t.Errorf("%s: %v, want a refusal telling how to recover", name, err)
		}
		if b, _ := os.ReadFile(path); string(b) != content {
			t.Errorf("%s: the bad key file was overwritten", name)
		}
	}
}
