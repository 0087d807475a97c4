package tenantkms_test

import (
	"context"
	"errors"
	"testing"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// versionDenial refuses, terminally, every unwrap of one TMK version: a
// key that wraps but will not unwrap what it wrapped.
type versionDenial struct {
	keyseal.KMS
	version string
}

func (d *versionDenial) Unwrap(ctx context.Context, key keyseal.KeyRef, w keyseal.Wrapped, ec map[string]string) ([]byte, error) {
	if ec["keyseal:tmk_version"] == d.version {
		return nil, &keyseal.KMSError{Terminal: true, Reason: keyseal.ReasonAccessDenied, Code: "AccessDeniedException", Err: errors.New("injected")}
	}
	return d.KMS.Unwrap(ctx, key, w, ec)
}

// TestRotateKMSFailureLeavesNothingHalfWritten: the new version's wrap
// fails (transiently): no version, no audit entry, no row change; a retry
// rotates once.
func TestRotateKMSFailureLeavesNothingHalfWritten(t *testing.T) {
	// Wraps: 1-3 are the register (provision, key test, re-wrap), 4 is
	// the rotation's new version.
	e := newEnvWith(t, nil, func(k keyseal.KMS) keyseal.KMS { return &flakyKMS{KMS: k, failAt: 4} })
	e.byokTenant(t, "acme")
	ctx := context.Background()
	before := e.snapshot(t, "acme")
	if _, err := e.svc.Rotate(ctx, "acme", tenantkms.RotateTMK, "", "admin:alice"); code(err) != keyseal.EKMSUNAVAILABLE {
		t.Fatalf("rotate with a failing wrap: %v, want %s", err, keyseal.EKMSUNAVAILABLE)
	}
	e.requireUnchanged(t, "acme", before, "a failed rotation")
	if rot, err := e.svc.Rotate(ctx, "acme", tenantkms.RotateTMK, "", "admin:alice"); err != nil || rot.ActiveVersion != 2 {
		t.Fatalf("retry: %+v %v", rot, err)
	}
	if n := len(e.auditActions(t, "acme", keyseal.ActionRotate)); n != 1 {
		t.Fatalf("%d rotate entries, want 1", n)
	}
}

// TestRotateUnwrapCheckFailureSealsWithoutTheVersion: a key that wraps
// the new TMK but will not unwrap it never gets the version activated
// (it would lock the tenant out); the terminal failure seals, as any
// observed one does.
func TestRotateUnwrapCheckFailureSealsWithoutTheVersion(t *testing.T) {
	e := newEnvWith(t, nil, func(k keyseal.KMS) keyseal.KMS { return &versionDenial{KMS: k, version: "2"} })
	e.byokTenant(t, "acme")
	ctx := context.Background()
	if _, err := e.svc.Rotate(ctx, "acme", tenantkms.RotateTMK, "", "admin:alice"); code(err) != keyseal.ESEALED {
		t.Fatalf("rotate with a key that does not unwrap: %v, want %s", err, keyseal.ESEALED)
	}
	tn := e.tenant(t, "acme")
	if tn.ActiveVersion != 1 || tn.Status != keyseal.StatusSealed || len(e.versions(t, "acme")) != 1 {
		t.Fatalf("after the failed rotation: %+v, %d versions", tn, len(e.versions(t, "acme")))
	}
	if n := len(e.auditActions(t, "acme", keyseal.ActionRotate)); n != 0 {
		t.Fatalf("%d rotate entries after a failed rotation", n)
	}
}

// TestRotateStoreFailureLeavesNothingHalfWritten: the transaction that
// adds the version fails; a retry rotates once, to the same version
// number.
func TestRotateStoreFailureLeavesNothingHalfWritten(t *testing.T) {
	for _, typ := range []string{tenantkms.RotateTMK, tenantkms.RotateRewrap} {
		t.Run(typ, func(t *testing.T) {
			var flaky *flakyStore
			e := newEnvWith(t, func(s keyseal.Store) keyseal.Store { flaky = &flakyStore{Store: s}; return flaky }, nil)
			e.byokTenant(t, "acme")
			ctx := context.Background()
			before := e.snapshot(t, "acme")
			flaky.failing.Store(true)
			if _, err := e.svc.Rotate(ctx, "acme", typ, "", "admin:alice"); err == nil {
				t.Fatal("rotate with a failing store succeeded")
			}
			e.requireUnchanged(t, "acme", before, "a rotation whose write failed")
			if _, _, err := e.svc.SessionTMK(ctx, "acme"); err != nil {
				t.Fatalf("sessions after the failed rotation: %v", err)
			}
			flaky.failing.Store(false)
			rot, err := e.svc.Rotate(ctx, "acme", typ, "", "admin:alice")
			if err != nil {
				t.Fatalf("retry: %v", err)
			}
			if want := map[string]int{tenantkms.RotateTMK: 2, tenantkms.RotateRewrap: 1}[typ]; rot.ActiveVersion != want {
				t.Fatalf("active version %d after the retry, want %d", rot.ActiveVersion, want)
			}
		})
	}
}

// TestRewrapKMSFailureMidwayLeavesNothingHalfWritten: the re-wrap of the
// second of two versions fails: neither blob changes.
func TestRewrapKMSFailureMidwayLeavesNothingHalfWritten(t *testing.T) {
	// Wraps: 1-3 register, 4 the tmk rotation, 5 and 6 the re-wraps of
	// versions 1 and 2.
	e := newEnvWith(t, nil, func(k keyseal.KMS) keyseal.KMS { return &flakyKMS{KMS: k, failAt: 6} })
	e.byokTenant(t, "acme")
	ctx := context.Background()
	if _, err := e.svc.Rotate(ctx, "acme", tenantkms.RotateTMK, "", "admin:alice"); err != nil {
		t.Fatal(err)
	}
	before := e.snapshot(t, "acme")
	if _, err := e.svc.Rotate(ctx, "acme", tenantkms.RotateRewrap, "", "admin:alice"); err == nil {
		t.Fatal("rewrap with a failing wrap succeeded")
	}
	e.requireUnchanged(t, "acme", before, "a rewrap that failed half-way")
	if n := len(e.auditActions(t, "acme", keyseal.ActionRewrap)); n != 0 {
		t.Fatalf("%d rewrap entries", n)
	}
}

// TestRevokeStoreFailureLeavesTheBlob: the erasing write fails: the blob,
// the tenant's state, the chain and the outbox are as before; the retry
// erases once, with one event.
func TestRevokeStoreFailureLeavesTheBlob(t *testing.T) {
	var flaky *flakyStore
	e := newEnvWith(t, func(s keyseal.Store) keyseal.Store { flaky = &flakyStore{Store: s}; return flaky }, nil)
	e.byokTenant(t, "acme")
	ctx := context.Background()
	before := e.snapshot(t, "acme")
	flaky.failing.Store(true)
	if _, err := e.svc.Revoke(ctx, "acme", 1, "admin:alice"); err == nil {
		t.Fatal("revoke with a failing store succeeded")
	}
	e.requireUnchanged(t, "acme", before, "a revoke whose write failed")
	if tn := e.tenant(t, "acme"); tn.Status != keyseal.StatusActive {
		t.Fatalf("tenant after the failed revoke: %+v", tn)
	}
	flaky.failing.Store(false)
	if _, err := e.svc.Revoke(ctx, "acme", 1, "admin:alice"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if n := e.events.count(keyseal.EventSealed); n != 1 {
		t.Fatalf("%d sealed events, want 1", n)
	}
	if n := len(e.auditActions(t, "acme", keyseal.ActionRevoke)); n != 1 {
		t.Fatalf("%d revoke entries, want 1", n)
	}
}
