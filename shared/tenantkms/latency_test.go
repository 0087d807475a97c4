package tenantkms_test

import (
	"context"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/tenantkms"
)

func TestPolledLatencyClass(t *testing.T) {
	for _, tc := range []struct {
		prev string
		ms   int64
		want string
	}{
		{"", 99, tenantkms.LatencyNormal},
		{"", 100, tenantkms.LatencyElevated},
		{"", 600, tenantkms.LatencyCritical},
		// Up at the threshold, from any class.
		{tenantkms.LatencyNormal, 100, tenantkms.LatencyElevated},
		{tenantkms.LatencyNormal, 201, tenantkms.LatencyHigh},
		{tenantkms.LatencyElevated, 501, tenantkms.LatencyCritical},
		// Down only under 0.8 of the class's lower threshold.
		{tenantkms.LatencyElevated, 99, tenantkms.LatencyElevated},
		{tenantkms.LatencyElevated, 80, tenantkms.LatencyElevated},
		{tenantkms.LatencyElevated, 79, tenantkms.LatencyNormal},
		{tenantkms.LatencyHigh, 170, tenantkms.LatencyHigh},
		{tenantkms.LatencyHigh, 160, tenantkms.LatencyElevated},
		{tenantkms.LatencyCritical, 401, tenantkms.LatencyCritical},
		{tenantkms.LatencyCritical, 400, tenantkms.LatencyHigh},
		// A big drop goes as far down as the scaled thresholds say.
		{tenantkms.LatencyCritical, 40, tenantkms.LatencyNormal},
		{tenantkms.LatencyCritical, 120, tenantkms.LatencyElevated},
		// An unknown recorded class is no history.
		{"bogus", 95, tenantkms.LatencyNormal},
	} {
		if got := tenantkms.PolledLatencyClass(tc.prev, tc.ms); got != tc.want {
			t.Errorf("PolledLatencyClass(%q, %d) = %q, want %q", tc.prev, tc.ms, got, tc.want)
		}
	}
}

// TestLatencyAtABoundaryKeepsItsClass: a tenant whose verify alternates
// between just under and just over 100 ms (scripted on the local KMS:
// each call waits 45 or 55 ms, a verify makes two) is recorded elevated
// once and its row is not rewritten on every poll; a real drop and a real
// rise are each recorded by the first verify that sees them.
func TestLatencyAtABoundaryKeepsItsClass(t *testing.T) {
	e, log := newWriteLogEnv(t)
	ctx := context.Background()
	e.byokTenant(t, "t1")
	check := func(perCall time.Duration) {
		t.Helper()
		e.kms.SetLatency(perCall)
		e.clock.Advance(time.Second) // never a minute: only a class change writes
		if out, err := e.svc.Check(ctx, "t1"); err != nil || out != tenantkms.OutcomeHealthy {
			t.Fatalf("check: %s, %v", out, err)
		}
	}
	check(55 * time.Millisecond) // 110 ms: elevated
	if got := e.tenant(t, "t1").LatencyClass; got != tenantkms.LatencyElevated {
		t.Fatalf("class after a 110 ms verify: %q", got)
	}
	n := len(log.writes())
	for range 3 {
		check(45 * time.Millisecond) // 90 ms and more: under 100, not under 80
		check(55 * time.Millisecond)
	}
	if got := len(log.writes()); got != n {
		t.Fatalf("a latency alternating around 100 ms wrote the row %d times in 6 polls, want 0", got-n)
	}
	if got := e.tenant(t, "t1").LatencyClass; got != tenantkms.LatencyElevated {
		t.Fatalf("class: %q, want elevated", got)
	}
	check(10 * time.Millisecond) // a real drop: about 20 ms
	if got := e.tenant(t, "t1"); got.LatencyClass != tenantkms.LatencyNormal || len(log.writes()) != n+1 {
		t.Fatalf("after a drop to %d ms: class %q, %d writes (want normal, 1)", got.LastLatencyMS, got.LatencyClass, len(log.writes())-n)
	}
	check(110 * time.Millisecond) // a real rise: 220 ms
	if got := e.tenant(t, "t1"); got.LatencyClass != tenantkms.LatencyHigh || len(log.writes()) != n+2 {
		t.Fatalf("after a rise to %d ms: class %q, %d writes (want high, 2)", got.LastLatencyMS, got.LatencyClass, len(log.writes())-n)
	}
}
