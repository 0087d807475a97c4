package tenantkms_test

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/metrics"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// metricsRecorder is a tenantkms.Metrics that keeps every Emit call.
type metricsRecorder struct {
	mu    sync.Mutex
	calls [][]metrics.Value
}

func (r *metricsRecorder) Emit(values ...metrics.Value) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := make([]metrics.Value, len(values))
	for i, v := range values {
		c[i] = metrics.Value{Name: v.Name, Unit: v.Unit, Values: append([]float64(nil), v.Values...)}
	}
	r.calls = append(r.calls, c)
}

// series returns every value emitted under name, in order, failing the test
// when the name was emitted with another unit.
func (r *metricsRecorder) series(t *testing.T, name string, unit metrics.Unit) []float64 {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []float64
	for _, c := range r.calls {
		for _, v := range c {
			if v.Name != name {
				continue
			}
			if v.Unit != unit {
				t.Fatalf("%s emitted in %q, want %q", name, v.Unit, unit)
			}
			out = append(out, v.Values...)
		}
	}
	return out
}

func (r *metricsRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.calls)
}

// withMetrics returns a second service on the env's store and KMS that
// reports to rec (its own, empty TMK cache: a fresh process).
func (e *env) withMetrics(rec tenantkms.Metrics) *tenantkms.Service {
	return tenantkms.New(e.store, keyseal.Providers{keyseal.ProviderLocal: e.kms}, tenantkms.Options{
		CacheTTL: cacheTTL, KMSTimeout: time.Second, Now: e.clock.Now, Metrics: rec, Log: discardLogger()})
}

// registerWithNewKey registers a tenant under a CMK of its own and returns
// the key id, so its key's state can change apart from the others'.
func (e *env) registerWithNewKey(t *testing.T, id string) string {
	t.Helper()
	keyID, err := e.kms.CreateKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Register(context.Background(), id, keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: keyID}, "admin:test"); err != nil {
		t.Fatal(err)
	}
	return keyID
}

func one(t *testing.T, name string, got []float64) float64 {
	t.Helper()
	if len(got) != 1 {
		t.Fatalf("%s emitted %d values %v, want 1", name, len(got), got)
	}
	return got[0]
}

// TestSweepEmitsMetrics: a sweep over healthy, sealed, degraded and revoked
// tenants emits the four alarm metrics once, with the values the contract
// defines.
func TestSweepEmitsMetrics(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	start := e.clock.Now()
	mustProvision(t, e, "old") // its TMK version is the oldest
	e.clock.Advance(10 * 24 * time.Hour)
	mustProvision(t, e, "new1")
	mustProvision(t, e, "new2")
	disabled := e.registerWithNewKey(t, "sealed")
	unreachable := e.registerWithNewKey(t, "degraded")
	mustProvision(t, e, "revoked")
	rv := e.tenant(t, "revoked")
	rv.Status = keyseal.StatusRevoked
	if err := e.store.UpdateTenant(ctx, rv, keyseal.Change{}); err != nil {
		t.Fatal(err)
	}
	if err := e.kms.SetState(disabled, "disabled"); err != nil {
		t.Fatal(err)
	}
	if err := e.kms.SetState(unreachable, "unreachable"); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(cacheTTL / 2) // "degraded" verified at registration: inside the TTL

	rec := &metricsRecorder{}
	stats, err := e.withMetrics(rec).Sweep(ctx, tenantkms.AllShards())
	if err != nil {
		t.Fatal(err)
	}
	o := stats.Outcomes
	if stats.Tenants != 6 || o[tenantkms.OutcomeHealthy] != 3 || o[tenantkms.OutcomeSealed] != 1 ||
		o[tenantkms.OutcomeDegraded] != 1 || o[tenantkms.OutcomeSkipped] != 1 {
		t.Fatalf("sweep stats = %+v, want 3 healthy, 1 sealed, 1 degraded, 1 skipped", stats)
	}
	if rec.count() != 1 {
		t.Fatalf("%d Emit calls for a sweep of 6 tenants, want 1", rec.count())
	}
	if got := one(t, "SealedTenants", rec.series(t, metrics.SealedTenants, metrics.Count)); got != 2 {
		t.Errorf("SealedTenants = %v, want 2 (one sealed, one revoked)", got)
	}
	if got := one(t, "KMSFailures", rec.series(t, metrics.KMSFailures, metrics.Count)); got != 2 {
		t.Errorf("KMSFailures = %v, want 2 (the sealed and the degraded tenant)", got)
	}
	latencies := rec.series(t, metrics.KMSLatency, metrics.Milliseconds)
	if len(latencies) != 3 {
		t.Errorf("%d KMSLatency values, want one per healthy tenant (3)", len(latencies))
	}
	for _, l := range latencies {
		if l < 0 || math.IsNaN(l) {
			t.Errorf("KMSLatency value %v", l)
		}
	}
	wantAge := e.clock.Now().Sub(start).Hours() / 24
	if got := one(t, "KeyRotationAgeDays", rec.series(t, metrics.KeyRotationAgeDays, metrics.None)); math.Abs(got-wantAge) > 1e-9 {
		t.Errorf("KeyRotationAgeDays = %v, want %v (the oldest verified version)", got, wantAge)
	}
	if stats.Verified != 3 || stats.KMSFailures != 2 || math.Abs(stats.MaxKeyAgeDays-wantAge) > 1e-9 {
		t.Errorf("sweep stats = %+v, want 3 verified, 2 KMS failures, max key age %v", stats, wantAge)
	}
}

// TestSweepBatchesLatencies: latencies go out at most metrics.MaxValues per
// Emit, and none is lost or counted twice.
func TestSweepBatchesLatencies(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const tenants = 2*metrics.MaxValues + 17
	for i := range tenants {
		mustProvision(t, e, fmt.Sprintf("t%03d", i))
	}
	rec := &metricsRecorder{}
	stats, err := e.withMetrics(rec).Sweep(ctx, tenantkms.AllShards())
	if err != nil {
		t.Fatal(err)
	}
	if stats.Verified != tenants {
		t.Fatalf("%d verified, want %d", stats.Verified, tenants)
	}
	if got := len(rec.series(t, metrics.KMSLatency, metrics.Milliseconds)); got != tenants {
		t.Fatalf("%d KMSLatency values, want %d", got, tenants)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.calls) != 3 {
		t.Fatalf("%d Emit calls, want 3 (two full batches, then the sweep's summary)", len(rec.calls))
	}
	for i, c := range rec.calls {
		for _, v := range c {
			if v.Name == metrics.KMSLatency && len(v.Values) > metrics.MaxValues {
				t.Errorf("call %d carries %d latencies, over %d", i, len(v.Values), metrics.MaxValues)
			}
		}
	}
	// The summary is the last call and carries the counts, even when 0.
	last := rec.calls[len(rec.calls)-1]
	names := map[string]float64{}
	for _, v := range last {
		names[v.Name] = v.Values[0]
	}
	if names[metrics.SealedTenants] != 0 || names[metrics.KMSFailures] != 0 || len(names) != 4 {
		t.Fatalf("summary = %+v, want SealedTenants 0, KMSFailures 0, KMSLatency and KeyRotationAgeDays", last)
	}
}

// TestSweepWithoutVerifiesOmitsLatencyAndAge: when no tenant verified there
// is no latency or key age to report, only the counts.
func TestSweepWithoutVerifiesOmitsLatencyAndAge(t *testing.T) {
	e := newEnv(t)
	e.byokTenant(t, "t1")
	e.setState(t, "access_denied")
	rec := &metricsRecorder{}
	if _, err := e.withMetrics(rec).Sweep(context.Background(), tenantkms.AllShards()); err != nil {
		t.Fatal(err)
	}
	if got := one(t, "SealedTenants", rec.series(t, metrics.SealedTenants, metrics.Count)); got != 1 {
		t.Errorf("SealedTenants = %v, want 1", got)
	}
	if got := one(t, "KMSFailures", rec.series(t, metrics.KMSFailures, metrics.Count)); got != 1 {
		t.Errorf("KMSFailures = %v, want 1", got)
	}
	if n := len(rec.series(t, metrics.KMSLatency, metrics.Milliseconds)) + len(rec.series(t, metrics.KeyRotationAgeDays, metrics.None)); n != 0 {
		t.Errorf("%d latency or age values from a sweep with no verify", n)
	}
}

func TestSessionUnwrapFailureEmitsKMSFailures(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.byokTenant(t, "t1")
	rec := &metricsRecorder{}
	svc := e.withMetrics(rec)
	if _, _, err := svc.SessionTMK(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	if rec.count() != 0 {
		t.Fatalf("a successful unwrap emitted %d documents", rec.count())
	}
	e.setState(t, "disabled")
	e.clock.Advance(cacheTTL) // the cached TMK expired: the next session unwraps
	if _, _, err := svc.SessionTMK(ctx, "t1"); code(err) != keyseal.ESEALED {
		t.Fatalf("SessionTMK = %v, want %s", err, keyseal.ESEALED)
	}
	if got := one(t, "KMSFailures", rec.series(t, metrics.KMSFailures, metrics.Count)); got != 1 {
		t.Fatalf("KMSFailures = %v, want 1", got)
	}
	// The tenant is sealed now: sessions are refused without a KMS call,
	// so nothing more is counted.
	if _, _, err := svc.SessionTMK(ctx, "t1"); code(err) != keyseal.ESEALED {
		t.Fatalf("SessionTMK = %v, want %s", err, keyseal.ESEALED)
	}
	if rec.count() != 1 {
		t.Fatalf("%d documents after a refused session, want still 1", rec.count())
	}
}

// TestSessionKMSFailuresCountCallsNotCallers: callers sharing one failed
// unwrap (single flight) count it once, so a burst of agents against a
// failing key does not inflate the alarm.
func TestSessionKMSFailuresCountCallsNotCallers(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.byokTenant(t, "t1")
	rec := &metricsRecorder{}
	svc := e.withMetrics(rec)
	e.setState(t, "unreachable") // transient, inside the TTL: no seal
	e.kms.SetLatency(20 * time.Millisecond)
	_, before := e.kms.Calls()
	var wg sync.WaitGroup
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := svc.SessionTMK(ctx, "t1"); code(err) != keyseal.EKMSUNAVAILABLE {
				t.Errorf("SessionTMK = %v, want %s", err, keyseal.EKMSUNAVAILABLE)
			}
		}()
	}
	wg.Wait()
	_, after := e.kms.Calls()
	var sum float64
	for _, v := range rec.series(t, metrics.KMSFailures, metrics.Count) {
		sum += v
	}
	if after == before || sum != float64(after-before) {
		t.Fatalf("KMSFailures sum %v for %d failed unwraps (30 callers), want one per unwrap", sum, after-before)
	}
}
