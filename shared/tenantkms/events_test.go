package tenantkms_test

import (
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// drain returns the events in the outbox and empties it, so each step of
// a test sees only what its transition wrote.
func (e *env) drain(t *testing.T) []keyseal.Event {
	t.Helper()
	es, err := e.store.ListOutbox(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.AckOutbox(context.Background(), es); err != nil {
		t.Fatal(err)
	}
	return es
}

// wantEvents checks that exactly the given types were written (in any
// order within the step) and that each decodes to its want data.
func wantEvents(t *testing.T, step string, got []keyseal.Event, tenantID string, want map[string]any) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d events %s, want %d", step, len(got), types(got), len(want))
	}
	for _, ev := range got {
		w, ok := want[ev.Type]
		if !ok {
			t.Fatalf("%s: unexpected %s event (%s)", step, ev.Type, ev.Data)
		}
		if ev.ID == "" || ev.TenantID != tenantID || ev.Time == "" {
			t.Fatalf("%s: %s event envelope %+v", step, ev.Type, ev)
		}
		dst := reflect.New(reflect.TypeOf(w))
		if err := json.Unmarshal(ev.Data, dst.Interface()); err != nil {
			t.Fatalf("%s: %s data %s: %v", step, ev.Type, ev.Data, err)
		}
		if got := dst.Elem().Interface(); !reflect.DeepEqual(got, w) {
			t.Fatalf("%s: %s data %+v, want %+v", step, ev.Type, got, w)
		}
	}
}

func types(es []keyseal.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Type
	}
	return out
}

// TestEventCatalogueTransitions: each admin and poller transition writes
// exactly its catalogue events with the documented data, and a step
// without a transition writes none.
func TestEventCatalogueTransitions(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const id = "t1"
	e.byokTenant(t, id)
	wantEvents(t, "register", e.drain(t), id, map[string]any{
		keyseal.EventRegistered: keyseal.RegisteredData{Provider: keyseal.ProviderLocal, KeyID: e.cmk.KeyID}})

	if _, err := e.svc.Rotate(ctx, id, tenantkms.RotateTMK, "scheduled", "admin:test"); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "rotate tmk", e.drain(t), id, map[string]any{
		keyseal.EventRotated: keyseal.RotatedData{RotationType: tenantkms.RotateTMK, Version: 2, Reason: "scheduled"}})
	if _, err := e.svc.Rotate(ctx, id, tenantkms.RotateRewrap, "cmk rotated", "admin:test"); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "rewrap", e.drain(t), id, map[string]any{
		keyseal.EventRotated: keyseal.RotatedData{RotationType: tenantkms.RotateRewrap, Version: 2, Reason: "cmk rotated"}})

	if _, err := e.svc.Revoke(ctx, id, 1, "admin:test"); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "revoke old", e.drain(t), id, map[string]any{keyseal.EventRevoked: keyseal.RevokedData{Version: 1, WasActive: false}})

	next, err := e.kms.CreateKey()
	if err != nil {
		t.Fatal(err)
	}
	nextKey := keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: next}
	if _, err := e.svc.Migrate(ctx, id, nextKey, "admin:test"); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "migrate", e.drain(t), id, map[string]any{keyseal.EventMigrated: keyseal.MigratedData{
		OldProvider: keyseal.ProviderLocal, OldKeyID: e.cmk.KeyID, NewProvider: keyseal.ProviderLocal, NewKeyID: next}})
	e.cmk = nextKey

	// Seal by the poller, a second failing poll (no transition), a failed
	// forced unseal, then the poller's unseal.
	e.setState(t, "disabled")
	sealedAt := e.clock.Now().UTC()
	if out, _ := e.svc.Check(ctx, id); out != tenantkms.OutcomeSealed {
		t.Fatalf("Check = %s, want sealed", out)
	}
	wantEvents(t, "seal", e.drain(t), id, map[string]any{keyseal.EventSealed: keyseal.SealedData{
		Reason: keyseal.ReasonKeyDisabled, SealedSince: sealedAt, LastError: "DisabledException"}})
	e.clock.Advance(time.Minute)
	_, _ = e.svc.Check(ctx, id)
	_ = e.svc.Unseal(ctx, id, "admin:test")
	wantEvents(t, "still sealed", e.drain(t), id, nil)
	e.setState(t, "enabled")
	if out, err := e.svc.Check(ctx, id); out != tenantkms.OutcomeUnsealed || err != nil {
		t.Fatalf("Check = %s %v, want unsealed", out, err)
	}
	wantEvents(t, "poller unseal", e.drain(t), id, map[string]any{keyseal.EventUnsealed: keyseal.UnsealedData{Trigger: keyseal.TriggerPoller}})

	// An admin's forced unseal.
	e.setState(t, "disabled")
	_, _ = e.svc.Check(ctx, id)
	e.drain(t)
	e.setState(t, "enabled")
	if err := e.svc.Unseal(ctx, id, "admin:test"); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "forced unseal", e.drain(t), id, map[string]any{keyseal.EventUnsealed: keyseal.UnsealedData{Trigger: keyseal.TriggerAdmin}})

	// Revoking the active version: revoked (was active) and sealed in one
	// transaction; the tmk rotation out of revoked unseals (admin).
	revokedAt := e.clock.Now().UTC()
	if _, err := e.svc.Revoke(ctx, id, 2, "admin:test"); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "revoke active", e.drain(t), id, map[string]any{
		keyseal.EventRevoked: keyseal.RevokedData{Version: 2, WasActive: true},
		keyseal.EventSealed:  keyseal.SealedData{Reason: keyseal.ReasonRevoked, SealedSince: revokedAt, LastError: "TMKVersionRevoked"}})
	if _, err := e.svc.Rotate(ctx, id, tenantkms.RotateTMK, "restore", "admin:test"); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "restore", e.drain(t), id, map[string]any{
		keyseal.EventRotated:  keyseal.RotatedData{RotationType: tenantkms.RotateTMK, Version: 3, Reason: "restore"},
		keyseal.EventUnsealed: keyseal.UnsealedData{Trigger: keyseal.TriggerAdmin}})

	if _, err := e.svc.Deregister(ctx, id, "admin:test"); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, "deregister", e.drain(t), id, map[string]any{
		keyseal.EventDeregistered: keyseal.DeregisteredData{Provider: keyseal.ProviderLocal, KeyID: next}})
}

// TestHealthDegradedOncePerEpisode: verify latency high for five minutes
// of polls announces one tenant.kms.health_degraded; staying high
// announces nothing more; back to normal and high again for five minutes
// announces one more. A second service on the same store (a restart, a
// second poller) does not announce again.
func TestHealthDegradedOncePerEpisode(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const id = "t1"
	e.byokTenant(t, id)
	e.drain(t)
	poll := func(svc *tenantkms.Service) {
		t.Helper()
		if out, err := svc.Check(ctx, id); out != tenantkms.OutcomeHealthy || err != nil {
			t.Fatalf("Check = %s %v", out, err)
		}
	}
	setLatency := func(d time.Duration) {
		t.Helper()
		if err := e.kms.SetKeyLatency(e.cmk.KeyID, d); err != nil {
			t.Fatal(err)
		}
	}
	// 130 ms each for wrap and unwrap: a verify of about 260 ms, high.
	setLatency(130 * time.Millisecond)
	// Registration recorded a verify now; the episode is sampled by the
	// verifies that record a minute (the row's once-a-minute write).
	e.clock.Advance(tenantkms.VerifiedEvery)
	start := e.clock.Now().UTC()
	for range 5 { // polls at 0..4 min: high, not yet for five minutes
		poll(e.svc)
		e.clock.Advance(time.Minute)
	}
	wantEvents(t, "high for 4 min", e.drain(t), id, nil)
	poll(e.svc) // 5 min
	got := e.drain(t)
	if len(got) != 1 || got[0].Type != keyseal.EventHealthDegraded {
		t.Fatalf("after 5 min high: %s, want one health_degraded", types(got))
	}
	var d keyseal.HealthDegradedData
	if err := got[0].DecodeData(&d); err != nil || d.LatencyClass != tenantkms.LatencyHigh || d.LatencyMS <= 200 || d.LatencyMS > 500 || !d.Since.Equal(start) {
		t.Fatalf("health_degraded data %+v (%v), want high, 201-500 ms, since %v", d, err, start)
	}
	if tn := e.tenant(t, id); tn.DegradedSince == nil || !tn.DegradedSince.Equal(start) || !tn.DegradedNotified {
		t.Fatalf("row after the announcement: degraded_since %v notified %v", tn.DegradedSince, tn.DegradedNotified)
	}
	restarted := tenantkms.New(e.store, keyseal.Providers{keyseal.ProviderLocal: e.kms}, tenantkms.Options{CacheTTL: cacheTTL, Now: e.clock.Now})
	for range 3 {
		e.clock.Advance(time.Minute)
		poll(e.svc)
		poll(restarted)
	}
	wantEvents(t, "still high", e.drain(t), id, nil)

	setLatency(0)
	e.clock.Advance(time.Minute)
	poll(e.svc)
	if tn := e.tenant(t, id); tn.DegradedSince != nil || tn.DegradedNotified {
		t.Fatalf("normal latency kept the episode: %v %v", tn.DegradedSince, tn.DegradedNotified)
	}
	setLatency(130 * time.Millisecond)
	for range 5 {
		e.clock.Advance(time.Minute)
		poll(restarted)
	}
	wantEvents(t, "second episode, 4 min", e.drain(t), id, nil)
	e.clock.Advance(time.Minute)
	poll(e.svc)
	if got := e.drain(t); len(got) != 1 || got[0].Type != keyseal.EventHealthDegraded {
		t.Fatalf("second episode: %s, want one health_degraded", types(got))
	}
}

// TestRotationDueOncePerVersion: the active version aged past 90 days
// announces tenant.kms.rotation_due once, a second sweep (or a restarted
// poller) none, and after a tmk rotation the new version announces once
// more when it is 90 days old.
func TestRotationDueOncePerVersion(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const id = "t1"
	e.byokTenant(t, id)
	e.drain(t)
	sweep := func(svc *tenantkms.Service) {
		t.Helper()
		if _, err := svc.Sweep(ctx, tenantkms.AllShards()); err != nil {
			t.Fatal(err)
		}
	}
	created := e.tenant(t, id).CreatedAt
	e.clock.Advance(tenantkms.RotationDueAge - time.Hour)
	sweep(e.svc)
	wantEvents(t, "89 days", e.drain(t), id, nil)
	e.clock.Advance(2 * time.Hour)
	sweep(e.svc)
	wantEvents(t, "90 days", e.drain(t), id, map[string]any{
		keyseal.EventRotationDue: keyseal.RotationDueData{Version: 1, CreatedAt: created, AgeDays: 90}})
	restarted := tenantkms.New(e.store, keyseal.Providers{keyseal.ProviderLocal: e.kms}, tenantkms.Options{CacheTTL: cacheTTL, Now: e.clock.Now})
	e.clock.Advance(24 * time.Hour)
	sweep(e.svc)
	sweep(restarted)
	wantEvents(t, "second sweep", e.drain(t), id, nil)
	if tn := e.tenant(t, id); tn.RotationDueNotified != 1 {
		t.Fatalf("rotation_due_notified_version = %d, want 1", tn.RotationDueNotified)
	}

	rot, err := e.svc.Rotate(ctx, id, tenantkms.RotateTMK, "due", "admin:test")
	if err != nil {
		t.Fatal(err)
	}
	e.drain(t) // the rotated event
	sweep(e.svc)
	wantEvents(t, "fresh version", e.drain(t), id, nil)
	e.clock.Advance(tenantkms.RotationDueAge + time.Minute)
	sweep(restarted)
	sweep(e.svc)
	wantEvents(t, "new version at 90 days", e.drain(t), id, map[string]any{
		keyseal.EventRotationDue: keyseal.RotationDueData{Version: 2, CreatedAt: rot.RotatedAt.UTC(), AgeDays: 90}})
}
