package keyevents

import (
	"context"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/memstore"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// recorder is a Checker that records which tenants were verified.
type recorder struct {
	mu  sync.Mutex
	ids []string
}

func (r *recorder) Check(_ context.Context, id string) (tenantkms.Outcome, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids = append(r.ids, id)
	return tenantkms.OutcomeHealthy, nil
}

func (r *recorder) checked() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(slices.Values(r.ids))
}

// tenant creates a tenant row on key (byok says whether it is the
// customer's).
func tenant(t *testing.T, s *memstore.Store, id, keyID string, byok bool) {
	t.Helper()
	now := time.Now()
	tn := &keyseal.Tenant{ID: id, Key: keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: keyID}, BYOK: byok,
		Status: keyseal.StatusActive, ActiveVersion: 1, CreatedAt: now, UpdatedAt: now}
	v := keyseal.TMKVersion{TenantID: id, Version: 1, Wrapped: []byte{1}, Key: tn.Key, SigningPublicKey: []byte{2}, CreatedAt: now}
	rec := keyseal.AuditRecord{At: now, Action: keyseal.ActionTenantProvision, Severity: keyseal.SeverityInfo, Actor: "test"}
	if err := s.CreateTenant(t.Context(), tn, v, rec); err != nil {
		t.Fatal(err)
	}
}

func readEvent(t *testing.T, name string) []byte {
	t.Helper()
	raw, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

const testKey = "arn:aws:kms:eu-west-1:210987654321:key/4f7c2a9e-1b3d-4e8f-a6c5-0d9e8b7a6f51"

// TestHandlerVerifiesTenantsOfTheKey: an event naming a key verifies
// exactly the BYOK tenants using it; an ignored event verifies none.
func TestHandlerVerifiesTenantsOfTheKey(t *testing.T) {
	s := memstore.New()
	tenant(t, s, "acme", testKey, true)
	tenant(t, s, "beta", testKey, true)
	tenant(t, s, "other", testKey+"0", true)
	tenant(t, s, "platform", testKey, false) // not a customer key: never indexed
	rec := &recorder{}
	h := &Handler{Index: s, Tenants: rec}
	res, err := h.Handle(t.Context(), readEvent(t, "disable-key.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.checked(); !slices.Equal(got, []string{"acme", "beta"}) {
		t.Fatalf("verified %v, want acme and beta", got)
	}
	if res.Event != "DisableKey" || len(res.Checked) != 2 || res.Checked["acme"] != tenantkms.OutcomeHealthy {
		t.Fatalf("result %+v", res)
	}
	for _, f := range []string{"encrypt-ignored.json", "ec2-ignored.json", "disconnect-custom-key-store.json"} {
		if _, err := h.Handle(t.Context(), readEvent(t, f)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := h.Handle(t.Context(), []byte("garbage")); err != nil {
		t.Fatalf("a malformed event must be dropped, not fail the invocation: %v", err)
	}
	if got := rec.checked(); len(got) != 2 {
		t.Fatalf("ignored events verified %v", got)
	}
}

// TestHandlerBoundsPushedVerifies: a burst of events for one tenant makes
// one verify now and one deferred to the interval's end, never more.
func TestHandlerBoundsPushedVerifies(t *testing.T) {
	s := memstore.New()
	tenant(t, s, "acme", testKey, true)
	rec := &recorder{}
	h := &Handler{Index: s, Tenants: rec, Limiter: NewLimiter(200 * time.Millisecond)}
	var wg sync.WaitGroup
	start := time.Now()
	for range 20 {
		wg.Go(func() {
			if _, err := h.Handle(t.Context(), readEvent(t, "disable-key.json")); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := len(rec.checked()); got != 2 {
		t.Fatalf("%d verifies for 20 events inside one interval, want 2 (one now, one deferred)", got)
	}
	if d := time.Since(start); d < 200*time.Millisecond {
		t.Fatalf("the second verify ran after %v, before the interval", d)
	}
}

func TestLimiterReserve(t *testing.T) {
	now := time.Unix(1000, 0)
	l := NewLimiter(time.Second)
	l.now = func() time.Time { return now }
	expect := func(wantWait time.Duration, wantOK bool) {
		t.Helper()
		if w, ok := l.Reserve("acme"); w != wantWait || ok != wantOK {
			t.Fatalf("Reserve at %v = %v, %v; want %v, %v", now.Unix(), w, ok, wantWait, wantOK)
		}
	}
	expect(0, true)                        // first: now
	expect(time.Second, true)              // inside the interval: deferred to its end
	expect(0, false)                       // one is deferred: joins it
	now = now.Add(1500 * time.Millisecond) // the deferred one ran at +1 s
	expect(500*time.Millisecond, true)     // next slot: +2 s
	now = now.Add(2 * time.Second)
	expect(0, true)
	if w, ok := l.Reserve("beta"); w != 0 || !ok {
		t.Fatal("the bound is per tenant")
	}
}
