package auth_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/keyseal/keyseal/shared/auth"
)

func TestNewAgentKey(t *testing.T) {
	key, hash, err := auth.NewAgentKey()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(strings.TrimPrefix(key, "ksa_"))
	if !strings.HasPrefix(key, "ksa_") || err != nil || len(raw) != 32 {
		t.Fatalf("key %q: want ksa_ and 32 bytes base64url without padding (%v)", key, err)
	}
	sum := sha256.Sum256([]byte(key))
	if hash != hex.EncodeToString(sum[:]) || auth.HashAgentKey(key) != hash {
		t.Fatalf("hash %q is not the hex SHA-256 of the key", hash)
	}
	other, otherHash, err := auth.NewAgentKey()
	if err != nil || other == key || otherHash == hash {
		t.Fatalf("two agent keys collide: %q %q (%v)", key, other, err)
	}
}

func TestHashAgentKey(t *testing.T) {
	// SHA-256 of "abc", a published test vector.
	if got := auth.HashAgentKey("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("HashAgentKey(abc) = %s", got)
	}
}

func TestBearerToken(t *testing.T) {
	for _, c := range []struct {
		header, want string
	}{
		{"Bearer abc", "abc"},
		{"bearer abc", "abc"},
		{"BEARER abc", "abc"},
		{"  Bearer   abc  ", "abc"},
		{"Bearer ksa_x-y_z", "ksa_x-y_z"},
		{"Bearer ", ""},
		{"Bearer", ""},
		{"Basic YWxhZGRpbjpvcGVuc2VzYW1l", ""},
		{"Bearerabc", ""},
		{"abc", ""},
		{"", ""},
	} {
		got, ok := auth.BearerToken(c.header)
		if got != c.want || ok != (c.want != "") {
			t.Errorf("BearerToken(%q) = %q, %v; want %q, %v", c.header, got, ok, c.want, c.want != "")
		}
	}
}
