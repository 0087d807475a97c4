package tenantkms_test

import (
	"context"
	"testing"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/session"
)

func (e *env) signer(t *testing.T, id string) *session.Signer {
	t.Helper()
	sg, err := e.svc.SessionSigner(context.Background(), id)
	if err != nil {
		t.Fatalf("SessionSigner: %v", err)
	}
	return sg
}

// TestSessionSignerCachedBesideTheTMK: sessions reuse one derived signer
// while the TMK is cached, and get a fresh one (after a fresh unwrap) once
// the service drops the TMK: a revocation, a seal, the TTL.
func TestSessionSignerCachedBesideTheTMK(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.byokTenant(t, "acme")
	e.addVersion(t, "acme", 2) // an old version to revoke; 1 stays active
	first := e.signer(t, "acme")
	_, unwraps := e.kms.Calls()
	if again := e.signer(t, "acme"); again != first {
		t.Fatal("second session derived a new signer")
	}
	if _, u := e.kms.Calls(); u != unwraps {
		t.Fatalf("second session unwrapped %d times", u-unwraps)
	}

	if _, err := e.svc.Revoke(ctx, "acme", 2, "admin:test"); err != nil {
		t.Fatal(err)
	}
	afterRevoke := e.signer(t, "acme")
	if afterRevoke == first {
		t.Fatal("signer survives a revocation's cache drop")
	}

	e.clock.Advance(cacheTTL)
	afterTTL := e.signer(t, "acme")
	if afterTTL == afterRevoke {
		t.Fatal("signer outlives the cache TTL")
	}

	e.setState(t, "disabled")
	if _, err := e.svc.Check(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SessionSigner(ctx, "acme"); code(err) != keyseal.ESEALED {
		t.Fatalf("SessionSigner of a sealed tenant = %v, want %s", err, keyseal.ESEALED)
	}
	e.setState(t, "enabled")
	if err := e.svc.Unseal(ctx, "acme", "admin:test"); err != nil {
		t.Fatal(err)
	}
	if e.signer(t, "acme") == afterTTL {
		t.Fatal("signer survives a seal")
	}
}
