package tenantkms_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/metrics"
	"github.com/keyseal/keyseal/shared/session"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

func (e *env) versions(t *testing.T, id string) []keyseal.TMKVersion {
	t.Helper()
	vs, err := e.store.Versions(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}

// mintToken signs a session token with the tenant's active TMK now.
func (e *env) mintToken(t *testing.T, id string) (string, int) {
	t.Helper()
	tmk, v, err := e.svc.SessionTMK(context.Background(), id)
	if err != nil {
		t.Fatalf("SessionTMK: %v", err)
	}
	b, err := session.Mint(tmk, id, v, "agent-1", e.clock.Now(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	return b.Token, v
}

func (e *env) tokenVerifies(t *testing.T, id, token string) bool {
	t.Helper()
	_, err := session.Verify(token, session.JWKS(id, e.versions(t, id)), e.clock.Now())
	return err == nil
}

func TestRotateTMKAddsActiveVersion(t *testing.T) {
	for _, typ := range []string{tenantkms.RotateTMK, tenantkms.RotateDEK} {
		t.Run(typ, func(t *testing.T) {
			e := newEnv(t)
			e.byokTenant(t, "acme")
			ctx := context.Background()
			old, _ := e.mintToken(t, "acme")
			e.clock.Advance(10 * time.Second) // inside the token's minute

			rot, err := e.svc.Rotate(ctx, "acme", typ, "DEK recovery", "admin:alice")
			if err != nil {
				t.Fatalf("Rotate: %v", err)
			}
			if rot.ActiveVersion != 2 || !rot.RotatedAt.Equal(e.clock.Now()) {
				t.Fatalf("rotation = %+v, want version 2 at %v", rot, e.clock.Now())
			}
			tn := e.tenant(t, "acme")
			if tn.ActiveVersion != 2 || tn.Status != keyseal.StatusActive || !tn.Key.Equal(e.cmk) {
				t.Fatalf("tenant after rotation: %+v", tn)
			}
			vs := e.versions(t, "acme")
			if len(vs) != 2 || vs[0].Wrapped == nil || vs[1].Wrapped == nil || !vs[1].Key.Equal(e.cmk) {
				t.Fatalf("versions after rotation: %+v", vs)
			}
			if got := tenantkms.RotatedAt(tn, vs); !got.Equal(rot.RotatedAt) {
				t.Fatalf("RotatedAt = %v, want %v", got, rot.RotatedAt)
			}
			if n := len(session.JWKS("acme", vs).Keys); n != 2 {
				t.Fatalf("JWKS has %d keys, want 2 (older versions stay)", n)
			}
			if !e.tokenVerifies(t, "acme", old) {
				t.Fatal("a token of version 1 stopped verifying after a rotation")
			}
			if _, v := e.mintToken(t, "acme"); v != 2 {
				t.Fatalf("sessions sign with version %d, want 2", v)
			}
			entries := e.auditActions(t, "acme", keyseal.ActionRotate)
			if len(entries) != 1 {
				t.Fatalf("%d rotate entries, want 1", len(entries))
			}
			d := entries[0].Details
			if entries[0].Actor != "admin:alice" || d["reason"] != "DEK recovery" || d["rotation_type"] != typ || d["active_version"] != "2" {
				t.Fatalf("rotate entry: %+v", entries[0])
			}
		})
	}
}

func TestRewrapKeepsTMKsAndVersion(t *testing.T) {
	e := newEnv(t)
	e.byokTenant(t, "acme")
	ctx := context.Background()
	if _, err := e.svc.Rotate(ctx, "acme", tenantkms.RotateTMK, "", "admin:alice"); err != nil {
		t.Fatal(err)
	}
	before := e.versions(t, "acme")
	token, _ := e.mintToken(t, "acme")
	rot, err := e.svc.Rotate(ctx, "acme", tenantkms.RotateRewrap, "yearly", "admin:alice")
	if err != nil {
		t.Fatalf("rewrap: %v", err)
	}
	if rot.ActiveVersion != 2 {
		t.Fatalf("rewrap moved the active version to %d", rot.ActiveVersion)
	}
	after := e.versions(t, "acme")
	for i := range after {
		if bytes.Equal(after[i].Wrapped, before[i].Wrapped) {
			t.Fatalf("version %d was not re-wrapped", after[i].Version)
		}
		if !after[i].CreatedAt.Equal(before[i].CreatedAt) || !bytes.Equal(after[i].SigningPublicKey, before[i].SigningPublicKey) {
			t.Fatalf("version %d changed beyond its blob", after[i].Version)
		}
	}
	if !e.tokenVerifies(t, "acme", token) {
		t.Fatal("a token stopped verifying after a rewrap")
	}
	// A fresh process unwraps the re-wrapped blob to the same TMK.
	fresh := e.withMetrics(nil)
	tmk, _, err := fresh.SessionTMK(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	want, _, _ := e.svc.SessionTMK(ctx, "acme")
	if !bytes.Equal(tmk, want) {
		t.Fatal("the re-wrapped TMK differs")
	}
	if n := len(e.auditActions(t, "acme", keyseal.ActionRewrap)); n != 1 {
		t.Fatalf("%d rewrap entries, want 1", n)
	}
}

func TestRotateRefusals(t *testing.T) {
	e := newEnv(t)
	e.byokTenant(t, "acme")
	ctx := context.Background()
	if _, err := e.svc.Rotate(ctx, "acme", "kek", "", "admin:alice"); code(err) != keyseal.EINVALID {
		t.Fatalf("unknown type: %v, want %s", err, keyseal.EINVALID)
	}
	if _, err := e.svc.Rotate(ctx, "nobody", tenantkms.RotateTMK, "", "admin:alice"); code(err) != keyseal.ETENANT {
		t.Fatalf("unknown tenant: %v, want %s", err, keyseal.ETENANT)
	}

	// Sealed: 503, and nothing written at all.
	e.setState(t, "disabled")
	if out, err := e.svc.Check(ctx, "acme"); err != nil || out != tenantkms.OutcomeSealed {
		t.Fatalf("check: %v %v", out, err)
	}
	e.setState(t, "enabled") // the row still says sealed: rotate must go by it
	before := e.tenant(t, "acme")
	versions := e.versions(t, "acme")
	for _, typ := range []string{tenantkms.RotateTMK, tenantkms.RotateDEK, tenantkms.RotateRewrap} {
		if _, err := e.svc.Rotate(ctx, "acme", typ, "", "admin:alice"); code(err) != keyseal.ESEALED {
			t.Fatalf("%s on a sealed tenant: %v, want %s", typ, err, keyseal.ESEALED)
		}
	}
	if after := e.tenant(t, "acme"); after.Revision != before.Revision {
		t.Fatalf("a refused rotation wrote the tenant row: %+v", after)
	}
	if vs := e.versions(t, "acme"); len(vs) != len(versions) || !bytes.Equal(vs[0].Wrapped, versions[0].Wrapped) {
		t.Fatal("a refused rotation wrote a version")
	}
	if n := len(e.auditActions(t, "acme", keyseal.ActionRotate)) + len(e.auditActions(t, "acme", keyseal.ActionRewrap)); n != 0 {
		t.Fatalf("%d rotation entries for a sealed tenant", n)
	}
}

func TestRevokeOlderVersionErasesIt(t *testing.T) {
	e := newEnv(t)
	e.byokTenant(t, "acme")
	ctx := context.Background()
	old, _ := e.mintToken(t, "acme")
	if _, err := e.svc.Rotate(ctx, "acme", tenantkms.RotateTMK, "", "admin:alice"); err != nil {
		t.Fatal(err)
	}
	current, _ := e.mintToken(t, "acme")

	rev, err := e.svc.Revoke(ctx, "acme", 1, "admin:alice")
	if err != nil {
		t.Fatalf("Revoke: %v", err)
	}
	if rev.Version != 1 || rev.TenantRevoked || !rev.BackupsExpireAt.Equal(rev.RevokedAt.Add(35*24*time.Hour)) {
		t.Fatalf("revocation = %+v", rev)
	}
	vs := e.versions(t, "acme")
	if vs[0].Wrapped != nil || vs[0].RevokedAt == nil || !vs[0].RevokedAt.Equal(rev.RevokedAt) {
		t.Fatalf("version 1 after revoke: %+v", vs[0])
	}
	if e.tokenVerifies(t, "acme", old) {
		t.Fatal("a token of the revoked version still verifies")
	}
	if !e.tokenVerifies(t, "acme", current) {
		t.Fatal("a token of the live version stopped verifying")
	}
	if tn := e.tenant(t, "acme"); tn.Status != keyseal.StatusActive {
		t.Fatalf("revoking an older version changed the tenant: %+v", tn)
	}
	if _, _, err := e.svc.SessionTMK(ctx, "acme"); err != nil {
		t.Fatalf("sessions after revoking an older version: %v", err)
	}
	entries := e.auditActions(t, "acme", keyseal.ActionRevoke)
	if len(entries) != 1 || entries[0].Severity != keyseal.SeverityCritical || entries[0].Actor != "admin:alice" || entries[0].Details["version"] != "1" {
		t.Fatalf("revoke entries: %+v", entries)
	}
	if n := e.events.count(keyseal.EventSealed); n != 0 {
		t.Fatalf("%d sealed events for an older version's revoke", n)
	}

	// A rewrap leaves the erased version erased.
	if _, err := e.svc.Rotate(ctx, "acme", tenantkms.RotateRewrap, "", "admin:alice"); err != nil {
		t.Fatal(err)
	}
	if vs := e.versions(t, "acme"); vs[0].Wrapped != nil {
		t.Fatal("a rewrap brought an erased blob back")
	}

	if _, err := e.svc.Revoke(ctx, "acme", 1, "admin:alice"); code(err) != keyseal.EREVOKEDVERSION {
		t.Fatalf("second revoke: %v, want %s", err, keyseal.EREVOKEDVERSION)
	}
	if _, err := e.svc.Revoke(ctx, "acme", 7, "admin:alice"); code(err) != keyseal.ENOTFOUND {
		t.Fatalf("unknown version: %v, want %s", err, keyseal.ENOTFOUND)
	}
	if n := len(e.auditActions(t, "acme", keyseal.ActionRevoke)); n != 1 {
		t.Fatalf("%d revoke entries after refused revokes, want 1", n)
	}
}

func TestRevokeActiveVersionRevokesTenantUntilRotate(t *testing.T) {
	e := newEnv(t)
	e.byokTenant(t, "acme")
	ctx := context.Background()
	token, _ := e.mintToken(t, "acme")

	rev, err := e.svc.Revoke(ctx, "acme", 1, "admin:alice")
	if err != nil || !rev.TenantRevoked {
		t.Fatalf("Revoke(active): %+v %v", rev, err)
	}
	tn := e.tenant(t, "acme")
	if tn.Status != keyseal.StatusRevoked || tn.SealReason != keyseal.ReasonRevoked || tn.SealedSince == nil {
		t.Fatalf("tenant after revoking the active version: %+v", tn)
	}
	if e.tokenVerifies(t, "acme", token) {
		t.Fatal("a token of the revoked active version still verifies")
	}
	// Even the process that cached the TMK must refuse.
	if _, _, err := e.svc.SessionTMK(ctx, "acme"); code(err) != keyseal.ESEALED || !strings.Contains(keyseal.ErrorMessage(err), "revoked") {
		t.Fatalf("session of a revoked tenant: %v", err)
	}
	if err := e.svc.Unseal(ctx, "acme", "admin:alice"); code(err) != keyseal.EREVOKED {
		t.Fatalf("unseal of a revoked tenant: %v, want %s", err, keyseal.EREVOKED)
	}
	if out, err := e.svc.Check(ctx, "acme"); err != nil || out != tenantkms.OutcomeSkipped {
		t.Fatalf("poll of a revoked tenant: %v %v", out, err)
	}
	if _, err := e.svc.Rotate(ctx, "acme", tenantkms.RotateRewrap, "", "admin:alice"); code(err) != keyseal.ESEALED {
		t.Fatalf("rewrap of a revoked tenant: %v, want %s", err, keyseal.ESEALED)
	}
	if n := e.events.count(keyseal.EventSealed); n != 1 {
		t.Fatalf("%d sealed events, want 1", n)
	}

	// Only a tmk rotation brings it back, on a fresh version.
	rot, err := e.svc.Rotate(ctx, "acme", tenantkms.RotateTMK, "after revoke", "admin:alice")
	if err != nil || rot.ActiveVersion != 2 {
		t.Fatalf("rotate out of revoked: %+v %v", rot, err)
	}
	tn = e.tenant(t, "acme")
	if tn.Status != keyseal.StatusActive || tn.SealedSince != nil || tn.SealReason != "" {
		t.Fatalf("tenant after the rotation: %+v", tn)
	}
	if _, v := e.mintToken(t, "acme"); v != 2 {
		t.Fatalf("session version %d, want 2", v)
	}
	if e.tokenVerifies(t, "acme", token) {
		t.Fatal("the revoked version's token verifies again after the rotation")
	}
	if n := e.events.count(keyseal.EventUnsealed); n != 1 {
		t.Fatalf("%d unsealed events, want 1", n)
	}
	entries := e.auditActions(t, "acme", keyseal.ActionRotate)
	if len(entries) != 1 || entries[0].Severity != keyseal.SeverityCritical || entries[0].Details["restored_from"] != keyseal.StatusRevoked {
		t.Fatalf("rotate entries: %+v", entries)
	}
}

// TestRevokeWorksWhileSealed: crypto-erasure needs no KMS, so a customer
// can erase even when keyseal cannot reach the key.
func TestRevokeWorksWhileSealed(t *testing.T) {
	e := newEnv(t)
	e.byokTenant(t, "acme")
	ctx := context.Background()
	e.setState(t, "disabled")
	if out, _ := e.svc.Check(ctx, "acme"); out != tenantkms.OutcomeSealed {
		t.Fatalf("check: %v", out)
	}
	sealed := e.tenant(t, "acme")
	if _, err := e.svc.Revoke(ctx, "acme", 1, "admin:alice"); err != nil {
		t.Fatalf("revoke while sealed: %v", err)
	}
	tn := e.tenant(t, "acme")
	if tn.Status != keyseal.StatusRevoked || !tn.SealedSince.Equal(*sealed.SealedSince) {
		t.Fatalf("tenant: %+v (sealed_since must stay %v)", tn, sealed.SealedSince)
	}
	if n := e.events.count(keyseal.EventSealed); n != 1 {
		t.Fatalf("%d sealed events, want 1 (the seal; sealed -> revoked is no new seal)", n)
	}
	// With the key back, a tmk rotation restores it; the key still off refuses.
	if _, err := e.svc.Rotate(ctx, "acme", tenantkms.RotateTMK, "", "admin:alice"); code(err) != keyseal.ECMKACCESS {
		t.Fatalf("rotate with the key disabled: %v, want %s", err, keyseal.ECMKACCESS)
	}
	if tn := e.tenant(t, "acme"); tn.Status != keyseal.StatusRevoked || len(e.versions(t, "acme")) != 1 {
		t.Fatalf("a failed rotation changed the revoked tenant: %+v", tn)
	}
	e.setState(t, "enabled")
	if _, err := e.svc.Rotate(ctx, "acme", tenantkms.RotateTMK, "", "admin:alice"); err != nil {
		t.Fatalf("rotate with the key back: %v", err)
	}
}

// TestRotationAgeCountsFromLastRotation: KeyRotationAgeDays measures the
// active version, which only a tmk rotation renews (a rewrap does not).
func TestRotationAgeCountsFromLastRotation(t *testing.T) {
	e := newEnv(t)
	e.byokTenant(t, "acme")
	ctx := context.Background()
	age := func() float64 {
		t.Helper()
		rec := &metricsRecorder{}
		if _, err := e.withMetrics(rec).Sweep(ctx, tenantkms.AllShards()); err != nil {
			t.Fatal(err)
		}
		return one(t, metrics.KeyRotationAgeDays, rec.series(t, metrics.KeyRotationAgeDays, metrics.None))
	}
	e.clock.Advance(100 * 24 * time.Hour)
	if got := age(); got < 99.9 {
		t.Fatalf("age before rotation = %v, want 100", got)
	}
	if _, err := e.svc.Rotate(ctx, "acme", tenantkms.RotateRewrap, "", "admin:alice"); err != nil {
		t.Fatal(err)
	}
	if got := age(); got < 99.9 {
		t.Fatalf("age after a rewrap = %v, want still 100", got)
	}
	if _, err := e.svc.Rotate(ctx, "acme", tenantkms.RotateTMK, "", "admin:alice"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(24 * time.Hour)
	if got := age(); got < 0.99 || got > 1.01 {
		t.Fatalf("age a day after a tmk rotation = %v, want 1", got)
	}
}
