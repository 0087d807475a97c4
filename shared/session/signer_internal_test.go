package session

import (
	"crypto/rand"
	"testing"
	"time"
)

// TestSignerMatchesGoJOSE checks the hand-written compact JWS against
// go-jose's for the same key and claims, byte for byte (Ed25519 is
// deterministic), including the fallback for ids that need escaping.
func TestSignerMatchesGoJOSE(t *testing.T) {
	tmk := make([]byte, 32)
	if _, err := rand.Read(tmk); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 23, 12, 0, 0, 123, time.FixedZone("x", 3600))
	for _, tc := range []struct{ tenant, agent string }{
		{"acme", "agt_1"},
		{"acme-corp-2", "agt_0123456789abcdef"},
		{"acme", `agt<&>"\` + "\u00e9"},
	} {
		s, err := NewSigner(tmk, tc.tenant, 3)
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Mint(tc.agent, now, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		key, _ := SigningKey(tmk, tc.tenant, 3)
		want, err := mintJOSE(key, tc.tenant, 3, tc.agent, got.SessionID, now, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s/%s:\n got  %+v\n want %+v", tc.tenant, tc.agent, got, want)
		}
	}
}
