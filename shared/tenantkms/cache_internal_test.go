package tenantkms

import (
	"context"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/internal/testclock"
)

// TestCacheSignerLivesAndDiesWithTheTMK: the session signer is derived once
// per cache entry and goes exactly when the TMK does (drop, TTL, a new put).
func TestCacheSignerLivesAndDiesWithTheTMK(t *testing.T) {
	clock := testclock.New(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	c := newCache(time.Minute, clock.Now)
	ctx := context.Background()
	loads := 0
	load := func(context.Context) ([]byte, error) {
		loads++
		return []byte("0123456789abcdef0123456789abcdef"), nil
	}
	signer := func() any {
		t.Helper()
		sg, err := c.signer(ctx, "acme", 1, load)
		if err != nil {
			t.Fatal(err)
		}
		return sg
	}
	first := signer()
	if again := signer(); again != first || loads != 1 {
		t.Fatalf("second session: same signer %v, loads %d; want the cached one, 1 load", again == first, loads)
	}

	c.drop("acme") // seal, revoke, terminal failure
	if c.lookupSigner("acme", 1) != nil {
		t.Fatal("signer survives drop")
	}
	afterDrop := signer()
	if afterDrop == first || loads != 2 {
		t.Fatalf("after drop: new signer %v, loads %d; want a fresh unwrap and derivation", afterDrop != first, loads)
	}

	clock.Advance(time.Minute) // TTL
	if c.lookupSigner("acme", 1) != nil {
		t.Fatal("signer outlives the TMK's TTL")
	}
	if afterTTL := signer(); afterTTL == afterDrop || loads != 3 {
		t.Fatalf("after TTL: new signer %v, loads %d", afterTTL != afterDrop, loads)
	}

	c.put("acme", 1, []byte("another TMK, another signing key!")) // unseal, rotation
	if c.lookupSigner("acme", 1) != nil {
		t.Fatal("a new TMK entry kept the previous entry's signer")
	}
}
