package localserver_test

import (
	"context"
	"maps"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/localserver"
	"github.com/keyseal/keyseal/shared/outbox"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// tee records what the drain publishes and passes it on.
type tee struct {
	next outbox.Sink
	mu   sync.Mutex
	got  []keyseal.Event
}

func (t *tee) Publish(ctx context.Context, es []keyseal.Event) []error {
	errs := t.next.Publish(ctx, es)
	t.mu.Lock()
	defer t.mu.Unlock()
	for i, e := range es {
		if errs[i] == nil {
			t.got = append(t.got, e)
		}
	}
	return errs
}

func (t *tee) of(typ string) []keyseal.Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []keyseal.Event
	for _, e := range t.got {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// awaitDrained waits until the outbox is empty and at least want events of
// typ went out. The deadline only stops a broken run; nothing is timed.
func awaitDrained(t *testing.T, s *localserver.Server, rec *tee, typ string, want int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		left, err := s.App.Store.ListOutbox(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 0 && len(rec.of(typ)) >= want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox not drained: %d left, %d %s published", len(left), len(rec.of(typ)), typ)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// startRecording starts a dev-mode server (manual sweeps, a 20 ms drain)
// whose published events rec records; extra settings override.
func startRecording(t *testing.T, extra map[string]string) (*localserver.Server, *tee) {
	t.Helper()
	dir := t.TempDir()
	vars := map[string]string{"KEYSEAL_LOG_LEVEL": "error", "KEYSEAL_POLL_INTERVAL": "1h", "KEYSEAL_OUTBOX_INTERVAL": "20ms"}
	maps.Copy(vars, extra)
	ctx, cancel := context.WithCancel(context.Background())
	a, l, err := localserver.Wire(ctx, func(k string) string { return vars[k] }, localserver.ModeDev, dir)
	if err != nil {
		t.Fatal(err)
	}
	rec := &tee{next: l.Events}
	l.Events = rec
	s, err := localserver.Start(ctx, a, l, localserver.Options{Addr: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cancel()
		s.Close()
		a.Close()
	})
	return s, rec
}

// TestDevModeSealPublishesOneEventThroughTheDrain: dev mode publishes
// events from the outbox, not from the request: a seal reached by many
// racing paths (sweeps, sessions, forced unseals that fail) publishes
// exactly one tenant.kms.sealed, and the recovery exactly one
// tenant.kms.unsealed, each with its own id.
func TestDevModeSealPublishesOneEventThroughTheDrain(t *testing.T) {
	s, rec := startRecording(t, map[string]string{"KEYSEAL_TMK_CACHE_TTL": "1s"})
	key := "/dev/kms/keys/" + s.Credentials.KMSKeyID + "/state"
	if r := do(t, s, http.MethodPost, key, nil, `{"state":"disabled"}`); r.status != http.StatusOK {
		t.Fatalf("disable: %d %s", r.status, r.raw)
	}
	time.Sleep(time.Second) // let the 1 s TMK cache run out, so the session path sees the KMS too
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() { _, _ = s.App.Tenants.Sweep(context.Background(), tenantkms.AllShards()) })
		wg.Go(func() { do(t, s, http.MethodPost, "/agent/v1/session", bearer(s.Credentials.AgentKey), "") })
	}
	wg.Wait()
	if v := do(t, s, http.MethodGet, "/admin/tenant-kms", bearer(s.Credentials.AdminToken), ""); v.body["status"] != "sealed" {
		t.Fatalf("not sealed: %s", v.raw)
	}
	awaitDrained(t, s, rec, keyseal.EventSealed, 1)
	sealed := rec.of(keyseal.EventSealed)
	var sd keyseal.SealedData
	if len(sealed) != 1 || sealed[0].DecodeData(&sd) != nil || sealed[0].ID == "" || sealed[0].TenantID != localserver.DemoTenant ||
		sd.Reason != keyseal.ReasonKeyDisabled || sd.LastError == "" || sd.SealedSince.IsZero() {
		t.Fatalf("sealed events %+v, want exactly one for the demo tenant, key_disabled, with an id", sealed)
	}

	if r := do(t, s, http.MethodPost, key, nil, `{"state":"enabled"}`); r.status != http.StatusOK {
		t.Fatalf("enable: %d %s", r.status, r.raw)
	}
	for range 4 {
		wg.Go(func() { _, _ = s.App.Tenants.Sweep(context.Background(), tenantkms.AllShards()) })
	}
	wg.Wait()
	awaitDrained(t, s, rec, keyseal.EventUnsealed, 1)
	unsealed := rec.of(keyseal.EventUnsealed)
	var ud keyseal.UnsealedData
	if len(unsealed) != 1 || unsealed[0].DecodeData(&ud) != nil || unsealed[0].ID == sealed[0].ID || ud.Trigger != keyseal.TriggerPoller {
		t.Fatalf("unsealed events %+v, want exactly one with its own id", unsealed)
	}
	if n := len(rec.of(keyseal.EventSealed)); n != 1 {
		t.Fatalf("%d sealed events in the end, want 1", n)
	}
}

// TestDevModeRotatePublishesOneRotatedEvent: a tmk rotation over HTTP
// publishes exactly one tenant.kms.rotated through the drain, with the
// catalogue's data.
func TestDevModeRotatePublishesOneRotatedEvent(t *testing.T) {
	s, rec := startRecording(t, nil)
	r := do(t, s, http.MethodPost, "/admin/tenant-kms/rotate", bearer(s.Credentials.AdminToken), `{"rotation_type":"tmk","reason":"drill"}`)
	if r.status != http.StatusOK {
		t.Fatalf("rotate: %d %s", r.status, r.raw)
	}
	awaitDrained(t, s, rec, keyseal.EventRotated, 1)
	rotated := rec.of(keyseal.EventRotated)
	var d keyseal.RotatedData
	if len(rotated) != 1 || rotated[0].DecodeData(&d) != nil || rotated[0].TenantID != localserver.DemoTenant ||
		d != (keyseal.RotatedData{RotationType: "tmk", Version: 2, Reason: "drill"}) {
		t.Fatalf("rotated events %+v (data %+v), want one tmk rotation to version 2, reason drill", rotated, d)
	}
}
