package tenantkms_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// pollInterval is the production poll interval the bounds are stated in.
const pollInterval = 30 * time.Second

// writeLog is a store that records when (on the service's clock) each
// tenant row write was made.
type writeLog struct {
	keyseal.Store
	now func() time.Time
	mu  sync.Mutex
	at  []time.Time
}

func (w *writeLog) UpdateTenant(ctx context.Context, t *keyseal.Tenant, c keyseal.Change) error {
	w.mu.Lock()
	w.at = append(w.at, w.now())
	w.mu.Unlock()
	return w.Store.UpdateTenant(ctx, t, c)
}

func (w *writeLog) writes() []time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]time.Time(nil), w.at...)
}

// newWriteLogEnv is an env whose tenant row writes are logged.
func newWriteLogEnv(t *testing.T) (*env, *writeLog) {
	t.Helper()
	var log *writeLog
	e := newEnvWith(t, func(s keyseal.Store) keyseal.Store { log = &writeLog{Store: s}; return log }, nil)
	log.now = e.clock.Now
	return e, log
}

func TestSteadyHealthyTenantWritesAtMostOncePerMinute(t *testing.T) {
	e, log := newWriteLogEnv(t)
	ctx := context.Background()
	e.byokTenant(t, "t1")
	// An hour of polls, 25 to 35 s apart (sweep start and check order
	// jitter), every one a healthy verify.
	start := e.clock.Now()
	for i := 0; e.clock.Now().Sub(start) < time.Hour; i++ {
		e.clock.Advance(pollInterval - 5*time.Second + time.Duration(i%3)*5*time.Second)
		if out, err := e.svc.Check(ctx, "t1"); err != nil || out != tenantkms.OutcomeHealthy {
			t.Fatalf("poll %d: %s, %v", i, out, err)
		}
		// The stored last_verified_at never lags the verify by a minute.
		if lag := e.clock.Now().Sub(*e.tenant(t, "t1").LastVerifiedAt); lag >= tenantkms.VerifiedEvery {
			t.Fatalf("poll %d: last_verified_at lags %v", i, lag)
		}
	}
	ws := log.writes()
	for i := 1; i < len(ws); i++ {
		if gap := ws[i].Sub(ws[i-1]); gap < tenantkms.VerifiedEvery {
			t.Fatalf("writes %d and %d only %v apart", i-1, i, gap)
		}
	}
	if len(ws) > 60 || len(ws) < 30 {
		t.Fatalf("%d row writes in an hour of healthy polls, want 30..60", len(ws))
	}
}

func TestVerifyWritesWhatChanged(t *testing.T) {
	e, log := newWriteLogEnv(t)
	ctx := context.Background()
	e.byokTenant(t, "t1")
	e.clock.Advance(tenantkms.VerifiedEvery)
	check := func(want tenantkms.Outcome) {
		t.Helper()
		if out, err := e.svc.Check(ctx, "t1"); err != nil || out != want {
			t.Fatalf("check: %s, %v; want %s", out, err, want)
		}
	}
	check(tenantkms.OutcomeHealthy) // last_verified_at a minute old: written
	n := len(log.writes())
	e.clock.Advance(pollInterval)
	check(tenantkms.OutcomeHealthy)
	if got := len(log.writes()); got != n {
		t.Fatalf("a healthy verify 30 s after the last write wrote the row (%d writes, want %d)", got, n)
	}
	// A transient failure is recorded once; the same error again is not
	// rewritten.
	e.setState(t, "unreachable")
	e.clock.Advance(pollInterval)
	check(tenantkms.OutcomeDegraded)
	if got := len(log.writes()); got != n+1 || e.tenant(t, "t1").LastVerifyError == "" {
		t.Fatalf("first transient failure: %d writes (want %d), error %q", got, n+1, e.tenant(t, "t1").LastVerifyError)
	}
	e.clock.Advance(pollInterval)
	check(tenantkms.OutcomeDegraded)
	if got := len(log.writes()); got != n+1 {
		t.Fatalf("the same transient error again wrote the row: %d writes, want %d", got, n+1)
	}
	// Recovery clears the error at once, whatever the minute says.
	e.setState(t, "enabled")
	e.clock.Advance(time.Second)
	check(tenantkms.OutcomeHealthy)
	if got := e.tenant(t, "t1"); got.LastVerifyError != "" || !got.LastVerifiedAt.Equal(e.clock.Now()) {
		t.Fatalf("recovery not recorded: error %q, verified %v", got.LastVerifyError, got.LastVerifiedAt)
	}
}

// TestTransientOutageSealBound: after the last success at t0 and only
// transient failures since, the poller seals as unreachable no later than
// t0 + TTL + one poll; and not before t0 + TTL when t0's verify was the one
// recorded, or not before t0 + TTL - VerifiedEvery when its write was
// skipped (the stored last_verified_at lags).
func TestTransientOutageSealBound(t *testing.T) {
	for _, tc := range []struct {
		name string
		// skipped: t0 is a success 30 s after a recorded one, not written.
		skipped bool
	}{{"t0 recorded", false}, {"t0 write skipped", true}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			e.byokTenant(t, "t1")
			e.clock.Advance(tenantkms.VerifiedEvery)
			if out, err := e.svc.Check(ctx, "t1"); err != nil || out != tenantkms.OutcomeHealthy {
				t.Fatalf("check: %s, %v", out, err)
			}
			if tc.skipped {
				e.clock.Advance(pollInterval)
				if out, err := e.svc.Check(ctx, "t1"); err != nil || out != tenantkms.OutcomeHealthy {
					t.Fatalf("check: %s, %v", out, err)
				}
			}
			t0 := e.clock.Now()
			stored := *e.tenant(t, "t1").LastVerifiedAt
			if lag := t0.Sub(stored); tc.skipped != (lag > 0) || lag >= tenantkms.VerifiedEvery {
				t.Fatalf("stored last_verified_at lags t0 by %v", lag)
			}
			notBefore := t0.Add(cacheTTL)
			if tc.skipped {
				notBefore = notBefore.Add(-tenantkms.VerifiedEvery)
			}
			e.setState(t, "unreachable")
			for {
				e.clock.Advance(pollInterval)
				out, err := e.svc.Check(ctx, "t1")
				if err != nil {
					t.Fatal(err)
				}
				now := e.clock.Now()
				if out == tenantkms.OutcomeSealed {
					if now.Before(notBefore) {
						t.Fatalf("sealed at t0+%v, before t0+%v", now.Sub(t0), notBefore.Sub(t0))
					}
					if got := e.tenant(t, "t1"); got.SealReason != keyseal.ReasonUnreachable {
						t.Fatalf("seal reason %q", got.SealReason)
					}
					return
				}
				if out != tenantkms.OutcomeDegraded {
					t.Fatalf("outcome %s", out)
				}
				if now.Sub(t0) >= cacheTTL+pollInterval {
					t.Fatalf("still not sealed at t0+%v (bound: TTL+poll = %v)", now.Sub(t0), cacheTTL+pollInterval)
				}
			}
		})
	}
}

// countingKMS counts the unwraps that reach the KMS.
type countingKMS struct {
	keyseal.KMS
	unwraps atomic.Int64
}

func (c *countingKMS) Unwrap(ctx context.Context, key keyseal.KeyRef, w keyseal.Wrapped, ec map[string]string) ([]byte, error) {
	c.unwraps.Add(1)
	return c.KMS.Unwrap(ctx, key, w, ec)
}

func TestSweepFillsNoSessionCache(t *testing.T) {
	var k *countingKMS
	e := newEnvWith(t, nil, func(inner keyseal.KMS) keyseal.KMS { k = &countingKMS{KMS: inner}; return k })
	ctx := context.Background()
	e.byokTenant(t, "t1")
	e.byokTenant(t, "t2")
	e.clock.Advance(cacheTTL) // whatever registering cached has expired
	// t2 is sealed and auto-unsealed by sweeps: neither path caches.
	e.setState(t, "disabled")
	if _, err := e.svc.Check(ctx, "t2"); err != nil {
		t.Fatal(err)
	}
	e.setState(t, "enabled")
	if _, err := e.svc.Sweep(ctx, tenantkms.AllShards()); err != nil {
		t.Fatal(err)
	}
	if got := e.tenant(t, "t2").Status; got != keyseal.StatusActive {
		t.Fatalf("t2 %s after the sweep, want active", got)
	}
	for _, id := range []string{"t1", "t2"} {
		before := k.unwraps.Load()
		if _, _, err := e.svc.SessionTMK(ctx, id); err != nil {
			t.Fatal(err)
		}
		if k.unwraps.Load() != before+1 {
			t.Fatalf("%s: the first session after a sweep was served from a cache the sweep filled", id)
		}
		// The session path still fills it.
		if _, _, err := e.svc.SessionTMK(ctx, id); err != nil {
			t.Fatal(err)
		}
		if k.unwraps.Load() != before+1 {
			t.Fatalf("%s: the second session unwrapped again: the session path no longer caches", id)
		}
	}
}
