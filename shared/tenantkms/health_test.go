package tenantkms_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

func TestClassifyLatency(t *testing.T) {
	for _, c := range []struct {
		ms   int64
		want string
	}{
		{0, tenantkms.LatencyNormal}, {40, tenantkms.LatencyNormal}, {99, tenantkms.LatencyNormal},
		{100, tenantkms.LatencyElevated}, {150, tenantkms.LatencyElevated}, {200, tenantkms.LatencyElevated},
		{201, tenantkms.LatencyHigh}, {500, tenantkms.LatencyHigh},
		{501, tenantkms.LatencyCritical}, {60000, tenantkms.LatencyCritical},
	} {
		if got := tenantkms.ClassifyLatency(c.ms); got != c.want {
			t.Errorf("ClassifyLatency(%d) = %s, want %s", c.ms, got, c.want)
		}
	}
}

func health(t *testing.T, e *env, id string) tenantkms.Health {
	t.Helper()
	h, err := e.svc.Health(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func commands(h tenantkms.Health) string {
	var b strings.Builder
	for _, r := range h.Remediation {
		b.WriteString(r.Action + ": " + r.Command + "\n")
	}
	return b.String()
}

func TestHealthHealthy(t *testing.T) {
	e := newEnv(t)
	e.byokTenant(t, "t1")
	h := health(t, e, "t1")
	if h.Status != tenantkms.HealthHealthy || !h.Checks.CMKAccessible || !h.Checks.TMKValid || h.Checks.KeyState != keyseal.KeyStateEnabled ||
		h.Sealed || h.Cached || h.LatencyClass != tenantkms.LatencyNormal || h.Diagnosis != "" || h.Remediation != nil ||
		!h.CheckedAt.Equal(e.clock.Now()) || h.KeyID != e.cmk.KeyID {
		t.Fatalf("health = %+v", h)
	}
}

// TestHealthKeyStates: each key state gives its verdict, diagnosis and the
// remediation naming the tenant's key, and the probe never changes the
// tenant: no seal, no audit entry, no event.
func TestHealthKeyStates(t *testing.T) {
	for _, c := range []struct {
		state, status, reason, keyState string
		actions                         []string
	}{
		{"disabled", tenantkms.HealthUnhealthy, keyseal.ReasonKeyDisabled, keyseal.KeyStateDisabled, []string{"enable-key", "verify"}},
		{"pending_deletion", tenantkms.HealthUnhealthy, keyseal.ReasonPendingDeletion, keyseal.KeyStatePendingDeletion,
			[]string{"cancel-key-deletion", "enable-key", "verify"}},
		{"access_denied", tenantkms.HealthUnhealthy, keyseal.ReasonAccessDenied, keyseal.KeyStateUnknown, []string{"restore-access"}},
		{"unreachable", tenantkms.HealthDegraded, keyseal.ReasonUnreachable, keyseal.KeyStateUnknown, []string{"check-kms-health", "verify"}},
	} {
		t.Run(c.state, func(t *testing.T) {
			e := newEnv(t)
			e.byokTenant(t, "t1")
			before := e.tenant(t, "t1")
			entries := len(e.auditActions(t, "t1", ""))
			e.setState(t, c.state)
			h := health(t, e, "t1")
			var actions []string
			for _, r := range h.Remediation {
				actions = append(actions, r.Action)
			}
			if h.Status != c.status || h.Reason != c.reason || h.Checks.KeyState != c.keyState || h.Checks.CMKAccessible || h.Checks.TMKValid ||
				h.Diagnosis == "" || strings.Join(actions, ",") != strings.Join(c.actions, ",") {
				t.Fatalf("health = %+v", h)
			}
			if !strings.Contains(commands(h), e.cmk.KeyID) {
				t.Errorf("remediation does not name the key %s:\n%s", e.cmk.KeyID, commands(h))
			}
			after := e.tenant(t, "t1")
			if after.Status != keyseal.StatusActive || after.Revision != before.Revision || after.LastVerifyError != "" ||
				len(e.auditActions(t, "t1", "")) != entries || e.events.count(keyseal.EventSealed) != 0 {
				t.Fatalf("the probe changed the tenant: %+v (was %+v)", after, before)
			}
		})
	}
}

// TestHealthSealedTenant: a sealed tenant is unhealthy even when its key
// answers again, and the remediation is the unseal.
func TestHealthSealedTenant(t *testing.T) {
	e := newEnv(t)
	e.byokTenant(t, "t1")
	e.setState(t, "disabled")
	if _, err := e.svc.Sweep(context.Background(), tenantkms.AllShards()); err != nil {
		t.Fatal(err)
	}
	if e.tenant(t, "t1").Status != keyseal.StatusSealed {
		t.Fatal("not sealed")
	}
	e.setState(t, "enabled")
	h := health(t, e, "t1")
	if h.Status != tenantkms.HealthUnhealthy || !h.Sealed || h.TenantStatus != keyseal.StatusSealed || !h.Checks.CMKAccessible ||
		!h.Checks.TMKValid || len(h.Remediation) != 1 || h.Remediation[0].Action != "unseal" {
		t.Fatalf("health = %+v", h)
	}
}

// TestHealthRateLimit: one live probe per tenant per second; callers
// inside the second get the last result, marked cached, and make no KMS
// call. Time moves only on the test clock.
func TestHealthRateLimit(t *testing.T) {
	e := newEnv(t)
	e.byokTenant(t, "t1")
	e.byokTenant(t, "t2")
	first := health(t, e, "t1")
	wraps, unwraps := e.kms.Calls()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			h, err := e.svc.Health(context.Background(), "t1")
			if err != nil || !h.Cached || !h.CheckedAt.Equal(first.CheckedAt) {
				t.Errorf("health = %+v, %v; want the first result, cached", h, err)
			}
		})
	}
	e.clock.Advance(999 * time.Millisecond)
	wg.Wait()
	if h := health(t, e, "t1"); !h.Cached {
		t.Fatalf("999 ms later: %+v, want cached", h)
	}
	if w, u := e.kms.Calls(); w != wraps || u != unwraps {
		t.Fatalf("cached answers made KMS calls: wraps %d -> %d, unwraps %d -> %d", wraps, w, unwraps, u)
	}
	// Another tenant has its own second.
	if h := health(t, e, "t2"); h.Cached {
		t.Fatalf("t2: %+v, want a live probe", h)
	}
	e.clock.Advance(time.Millisecond)
	e.setState(t, "disabled")
	h := health(t, e, "t1")
	if h.Cached || h.Status != tenantkms.HealthUnhealthy || !h.CheckedAt.Equal(e.clock.Now()) {
		t.Fatalf("a second later: %+v, want a live probe seeing the disabled key", h)
	}
}

// TestHealthLatencyClasses: the slower call sets latency_ms and its class;
// high and critical degrade. Each latency is a lower bound the local key
// waits for; the bands above it are wide.
func TestHealthLatencyClasses(t *testing.T) {
	for _, c := range []struct {
		latency       time.Duration
		class, status string
	}{
		{120 * time.Millisecond, tenantkms.LatencyElevated, tenantkms.HealthHealthy},
		{250 * time.Millisecond, tenantkms.LatencyHigh, tenantkms.HealthDegraded},
		{600 * time.Millisecond, tenantkms.LatencyCritical, tenantkms.HealthDegraded},
	} {
		t.Run(c.class, func(t *testing.T) {
			e := newEnv(t)
			e.byokTenant(t, "t1")
			if err := e.kms.SetKeyLatency(e.cmk.KeyID, c.latency); err != nil {
				t.Fatal(err)
			}
			h := health(t, e, "t1")
			if h.LatencyMS < c.latency.Milliseconds() || h.LatencyClass != c.class || h.Status != c.status {
				t.Fatalf("health = %+v, want class %s, status %s", h, c.class, c.status)
			}
			if c.status == tenantkms.HealthDegraded && (h.Diagnosis == "" || h.Remediation == nil) {
				t.Fatalf("degraded without diagnosis: %+v", h)
			}
		})
	}
}

func TestHealthUnknownTenant(t *testing.T) {
	e := newEnv(t)
	if _, err := e.svc.Health(context.Background(), "nobody"); code(err) != keyseal.ETENANT {
		t.Fatalf("err = %v, want %s", err, keyseal.ETENANT)
	}
}
