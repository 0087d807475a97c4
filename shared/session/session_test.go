package session_test

import (
	"bytes"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/session"
)

func tmk(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

func version(t *testing.T, key []byte, tenant string, v int) keyseal.TMKVersion {
	t.Helper()
	pub, err := session.PublicKey(key, tenant, v)
	if err != nil {
		t.Fatal(err)
	}
	return keyseal.TMKVersion{TenantID: tenant, Version: v, SigningPublicKey: pub}
}

func TestKeysAreDerivedPerTenantAndVersion(t *testing.T) {
	k := tmk(t)
	a1, _ := session.PublicKey(k, "acme", 1)
	again, _ := session.PublicKey(k, "acme", 1)
	a2, _ := session.PublicKey(k, "acme", 2)
	b1, _ := session.PublicKey(k, "globex", 1)
	if !bytes.Equal(a1, again) {
		t.Fatal("derivation is not deterministic")
	}
	if bytes.Equal(a1, a2) || bytes.Equal(a1, b1) {
		t.Fatal("versions or tenants share a signing key")
	}
	if tenant, v, ok := session.ParseKeyID(session.KeyID("acme", 7)); !ok || tenant != "acme" || v != 7 {
		t.Fatalf("kid round trip: %s %d %v", tenant, v, ok)
	}
	for _, bad := range []string{"", "acme", "acme:7", "acme:v", "acme:v0", ":v1"} {
		if _, _, ok := session.ParseKeyID(bad); ok {
			t.Errorf("ParseKeyID(%q) accepted", bad)
		}
	}
}

func TestMintAndVerify(t *testing.T) {
	k := tmk(t)
	now := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	b, err := session.Mint(k, "acme", 2, "agt_1", now, 5*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if b.TenantID != "acme" || b.TMKVersion != 2 || b.ExpiresIn != 300 || !b.ExpiresAt.Equal(now.Add(5*time.Minute)) || !strings.HasPrefix(b.SessionID, "ses_") {
		t.Fatalf("bundle: %+v", b)
	}
	set := session.JWKS("acme", []keyseal.TMKVersion{version(t, k, "acme", 1), version(t, k, "acme", 2)})
	c, err := session.Verify(b.Token, set, now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "agt_1" || c.TenantID != "acme" || c.TMKVersion != 2 || c.ID != b.SessionID {
		t.Fatalf("claims: %+v", c)
	}
	if _, err := session.Verify(b.Token, set, now.Add(5*time.Minute+time.Second)); err == nil {
		t.Fatal("token verifies after exp")
	}

	// Revoking version 2 drops its key from the JWKS: its tokens stop at once.
	revoked := version(t, k, "acme", 2)
	at := now
	revoked.RevokedAt = &at
	if _, err := session.Verify(b.Token, session.JWKS("acme", []keyseal.TMKVersion{version(t, k, "acme", 1), revoked}), now); err == nil {
		t.Fatal("token of a revoked version still verifies")
	}
	// A token signed from another TMK does not verify against this JWKS.
	forged, _ := session.Mint(tmk(t), "acme", 2, "agt_1", now, time.Minute)
	if _, err := session.Verify(forged.Token, set, now); err == nil {
		t.Fatal("token from another TMK verifies")
	}
}
