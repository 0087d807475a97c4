package tenantkms_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strconv"
	"testing"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/session"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// newCMK creates another local key, the target of a migration.
func (e *env) newCMK(t *testing.T) keyseal.KeyRef {
	t.Helper()
	id, err := e.kms.CreateKey()
	if err != nil {
		t.Fatal(err)
	}
	return keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: id}
}

// addVersion stores TMK version n of a BYOK tenant, wrapped under its CMK
// straight through the local provider (no rotation service needed, and the
// service's KMS wrappers see none of these calls).
func (e *env) addVersion(t *testing.T, id string, n int) {
	t.Helper()
	ctx := context.Background()
	tmk := make([]byte, 32)
	rand.Read(tmk)
	w, err := e.kms.Wrap(ctx, e.cmk, tmk, map[string]string{"keyseal:tenant": id, "keyseal:purpose": "tmk", "keyseal:tmk_version": strconv.Itoa(n)})
	if err != nil {
		t.Fatal(err)
	}
	pub, err := session.PublicKey(tmk, id, n)
	if err != nil {
		t.Fatal(err)
	}
	tn := e.tenant(t, id)
	v := keyseal.TMKVersion{TenantID: id, Version: n, Wrapped: w.Blob, KeyVersion: w.KeyVersion, Key: e.cmk, SigningPublicKey: pub, CreatedAt: e.clock.Now()}
	if err := e.store.UpdateTenant(ctx, tn, keyseal.Change{NewVersions: []keyseal.TMKVersion{v}}); err != nil {
		t.Fatal(err)
	}
}

func requireError(t *testing.T, err error, code, key string) {
	t.Helper()
	ke, ok := errors.AsType[*keyseal.Error](err)
	if !ok || ke.Code != code || (key != "" && ke.Extra["key"] != key) {
		t.Fatalf("migrate: %v, want %s with key %q", err, code, key)
	}
}

// TestMigrate moves every live version from the old CMK to the new one in
// one step, with one critical byok.kms.migrate entry naming both keys; the
// TMKs themselves are unchanged. Afterwards the old key no longer matters
// (disabling it does not seal) and the new one does.
func TestMigrate(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.byokTenant(t, "acme")
	e.addVersion(t, "acme", 2)
	next := e.newCMK(t)
	before, _, err := e.svc.SessionTMK(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}

	// The platform key is never used in between: migrating works with it
	// out of service.
	if err := e.kms.SetState(e.platform, "disabled"); err != nil {
		t.Fatal(err)
	}
	tn, err := e.svc.Migrate(ctx, "acme", next, "admin:alice")
	if err != nil {
		t.Fatalf("migrate: %v", err)
	}
	if !tn.BYOK || !tn.Key.Equal(next) {
		t.Fatalf("after migrate: %+v", tn)
	}
	vs, _ := e.store.Versions(ctx, "acme")
	for _, v := range vs {
		if !v.Key.Equal(next) {
			t.Fatalf("version %d still under %+v", v.Version, v.Key)
		}
	}
	entries := e.auditActions(t, "acme", keyseal.ActionMigrate)
	if len(entries) != 1 || entries[0].Severity != keyseal.SeverityCritical || entries[0].Actor != "admin:alice" ||
		entries[0].Details["previous_key_id"] != e.cmk.KeyID || entries[0].Details["key_id"] != next.KeyID {
		t.Fatalf("migrate audit: %+v", entries)
	}

	e.setState(t, "disabled") // the old key
	if out, err := e.svc.Check(ctx, "acme"); err != nil || out != tenantkms.OutcomeHealthy {
		t.Fatalf("check with the old key disabled: %v %v", out, err)
	}
	e.clock.Advance(cacheTTL + 1)
	if got, _, err := e.svc.SessionTMK(ctx, "acme"); err != nil || !bytes.Equal(got, before) {
		t.Fatalf("session TMK after migrate (cache expired): err %v, same TMK %v", err, bytes.Equal(got, before))
	}
	if err := e.kms.SetState(next.KeyID, "disabled"); err != nil {
		t.Fatal(err)
	}
	if out, err := e.svc.Check(ctx, "acme"); err != nil || out != tenantkms.OutcomeSealed {
		t.Fatalf("check with the new key disabled: %v %v", out, err)
	}
}

// TestMigrateRefusals: no CMK yet, the same key, a new key that fails its
// test (422 key new), an old key that cannot unwrap (503 key old): each
// changes nothing about the key, the versions or the chain.
func TestMigrateRefusals(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	mustProvision(t, e, "plain")
	_, err := e.svc.Migrate(ctx, "plain", e.cmk, "admin:alice")
	requireError(t, err, keyseal.ENOTFOUND, "")

	e.byokTenant(t, "acme")
	before := e.snapshot(t, "acme")
	_, err = e.svc.Migrate(ctx, "acme", e.cmk, "admin:alice")
	requireError(t, err, keyseal.ECONFLICT, "")

	next := e.newCMK(t)
	if err := e.kms.SetState(next.KeyID, "access_denied"); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Migrate(ctx, "acme", next, "admin:alice")
	requireError(t, err, keyseal.ECMKACCESS, "new")
	if ke, _ := errors.AsType[*keyseal.Error](err); ke.Extra["reason"] != keyseal.ReasonAccessDenied {
		t.Fatalf("reason: %v", ke.Extra)
	}
	e.requireUnchanged(t, "acme", before, "a failed migration")

	if err := e.kms.SetState(next.KeyID, "enabled"); err != nil {
		t.Fatal(err)
	}
	e.setState(t, "disabled") // the old key
	e.clock.Advance(cacheTTL + 1)
	_, err = e.svc.Migrate(ctx, "acme", next, "admin:alice")
	requireError(t, err, keyseal.ESEALED, "old")
	after := e.tenant(t, "acme")
	if !after.Key.Equal(e.cmk) {
		t.Fatalf("key moved although the old key failed: %+v", after.Key)
	}
	vs, _ := e.store.Versions(ctx, "acme")
	if len(vs) != 1 || !bytes.Equal(vs[0].Wrapped, before.versions[0].Wrapped) {
		t.Fatal("versions changed although the old key failed")
	}
	if n := len(e.auditActions(t, "acme", keyseal.ActionMigrate)); n != 0 {
		t.Fatalf("%d migrate entries after refusals", n)
	}
}

// TestMigrateFailureHalfWayLeavesNothing fails the re-wrap of the second of
// two versions under the new key (the first is already re-wrapped in
// memory), then the store's write: neither leaves a version, the key or
// an audit entry changed, and a retry succeeds.
func TestMigrateFailureHalfWayLeavesNothing(t *testing.T) {
	// Wraps through the service: 1 provisions v1, 2 tests the CMK, 3
	// re-wraps v1 under it; migrate: 4 tests the new key, 5 re-wraps v1,
	// 6 re-wraps v2 (v2 itself is added straight through the provider).
	var flaky *flakyStore
	e := newEnvWith(t, func(s keyseal.Store) keyseal.Store { flaky = &flakyStore{Store: s}; return flaky },
		func(k keyseal.KMS) keyseal.KMS { return &flakyKMS{KMS: k, failAt: 6} })
	ctx := context.Background()
	e.byokTenant(t, "acme")
	e.addVersion(t, "acme", 2)
	next := e.newCMK(t)
	before := e.snapshot(t, "acme")

	_, err := e.svc.Migrate(ctx, "acme", next, "admin:alice")
	requireError(t, err, keyseal.ECMKACCESS, "new")
	e.requireUnchanged(t, "acme", before, "a failed migration")

	flaky.failing.Store(true)
	if _, err := e.svc.Migrate(ctx, "acme", next, "admin:alice"); err == nil {
		t.Fatal("migrate with a failing store succeeded")
	}
	e.requireUnchanged(t, "acme", before, "a failed migration")

	flaky.failing.Store(false)
	if _, err := e.svc.Migrate(ctx, "acme", next, "admin:alice"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if tn := e.tenant(t, "acme"); !tn.Key.Equal(next) {
		t.Fatalf("after retry: %+v", tn.Key)
	}
	for _, n := range []int{1, 2} {
		vs, _ := e.store.Versions(ctx, "acme")
		if !vs[n-1].Key.Equal(next) {
			t.Fatalf("v%d not under the new key after retry", n)
		}
	}
}

// gate is a waiver gate that refuses while closed.
type gate struct{ closed bool }

func (g *gate) Require(context.Context, string) error {
	if g.closed {
		return keyseal.Errorf(keyseal.EWAIVERREACK, "acknowledge again").With("waiver_version", "v2")
	}
	return nil
}

// TestWaiverGatesRegisterAndMigrate: a closed gate refuses both before
// anything is written (no tenant provisioned), and never disturbs a running
// tenant's sessions.
func TestWaiverGatesRegisterAndMigrate(t *testing.T) {
	g := &gate{}
	e := newEnvOpts(t, tenantkms.Options{Waiver: g})
	ctx := context.Background()
	e.byokTenant(t, "acme")
	g.closed = true
	_, err := e.svc.Register(ctx, "newco", e.cmk, "admin:alice")
	requireError(t, err, keyseal.EWAIVERREACK, "")
	if _, err := e.store.GetTenant(ctx, "newco"); code(err) != keyseal.ENOTFOUND {
		t.Fatalf("a refused register provisioned the tenant: %v", err)
	}
	before := e.snapshot(t, "acme")
	_, err = e.svc.Migrate(ctx, "acme", e.newCMK(t), "admin:alice")
	requireError(t, err, keyseal.EWAIVERREACK, "")
	e.requireUnchanged(t, "acme", before, "a failed migration")
	e.clock.Advance(cacheTTL + 1)
	if _, _, err := e.svc.SessionTMK(ctx, "acme"); err != nil {
		t.Fatalf("a new waiver version broke a running tenant: %v", err)
	}
}
