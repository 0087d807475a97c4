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

// latencyEnv is a BYOK tenant whose verifies take what the test scripts
// on the local KMS (each call waits perCall; a verify makes two), checked
// after advancing the test clock by step.
type latencyEnv struct {
	*env
	log *writeLog
}

func (e latencyEnv) check(t *testing.T, perCall, step time.Duration) {
	t.Helper()
	e.kms.SetLatency(perCall)
	e.clock.Advance(step)
	if out, err := e.svc.Check(context.Background(), "t1"); err != nil || out != tenantkms.OutcomeHealthy {
		t.Fatalf("check: %s, %v", out, err)
	}
}

func newLatencyEnv(t *testing.T) latencyEnv {
	t.Helper()
	e, log := newWriteLogEnv(t)
	e.byokTenant(t, "t1")
	return latencyEnv{e, log}
}

// TestLatencyAtABoundaryKeepsItsClass: a tenant whose verify alternates
// between just under and just over 100 ms (each call waits 45 or 55 ms)
// costs one row write a minute, and every minute's write records the
// same class, elevated, whichever side of 100 ms its sample fell on; a
// real drop is recorded by the next minute's write, two polls later.
func TestLatencyAtABoundaryKeepsItsClass(t *testing.T) {
	e := newLatencyEnv(t)
	e.check(t, 55*time.Millisecond, tenantkms.VerifiedEvery) // 110 ms, a minute on: written
	if got := e.tenant(t, "t1").LatencyClass; got != tenantkms.LatencyElevated {
		t.Fatalf("class after a 110 ms verify: %q", got)
	}
	n := len(e.log.writes())
	for minute := range 4 {
		e.check(t, 45*time.Millisecond, pollInterval) // 90 ms or more: under 100, not under 80
		e.check(t, 55*time.Millisecond-time.Duration(minute%2)*10*time.Millisecond, pollInterval)
		if got := e.tenant(t, "t1"); got.LatencyClass != tenantkms.LatencyElevated {
			t.Fatalf("minute %d: the row records %q after a %d ms verify, want elevated", minute, got.LatencyClass, got.LastLatencyMS)
		}
	}
	if got := len(e.log.writes()) - n; got != 4 {
		t.Fatalf("%d row writes in 4 minutes of polls, want 4", got)
	}
	e.check(t, 10*time.Millisecond, pollInterval) // a real drop: about 20 ms
	e.check(t, 10*time.Millisecond, pollInterval)
	if got := e.tenant(t, "t1"); got.LatencyClass != tenantkms.LatencyNormal {
		t.Fatalf("two polls after a drop to %d ms: class %q, want normal", got.LastLatencyMS, got.LatencyClass)
	}
	// Wider than the band (70 and 110 ms): the class changes, yet only
	// the minute's write records it.
	n = len(e.log.writes())
	for range 2 {
		e.check(t, 55*time.Millisecond, pollInterval)
		e.check(t, 35*time.Millisecond, pollInterval)
	}
	if got := len(e.log.writes()) - n; got != 2 {
		t.Fatalf("%d row writes in 2 minutes of a latency scattered across 100 ms, want 2", got)
	}
}

// TestLatencyAtHighKeepsItsEpisode: a verify latency recorded at 210 and
// 190 ms on alternate minutes (calls of 105 and 95 ms), with a 150 ms
// poll between two records, starts one degradation episode with the first
// 210 ms record and keeps it (190 is not under 160, and the poll between
// records is no record) at one row write a minute; a real drop ends it at
// the next minute's write.
func TestLatencyAtHighKeepsItsEpisode(t *testing.T) {
	e := newLatencyEnv(t)
	e.check(t, 10*time.Millisecond, tenantkms.VerifiedEvery)
	n := len(e.log.writes())
	e.check(t, 105*time.Millisecond, tenantkms.VerifiedEvery) // 210 ms, recorded: the episode starts
	got := e.tenant(t, "t1")
	if got.DegradedSince == nil || got.LatencyClass != tenantkms.LatencyHigh {
		t.Fatalf("after a recorded 210 ms: since %v, class %q (want set, high)", got.DegradedSince, got.LatencyClass)
	}
	since := *got.DegradedSince
	for minute := range 4 {
		e.check(t, 75*time.Millisecond, pollInterval)                                               // 150 ms between two records
		e.check(t, 95*time.Millisecond+time.Duration(1-minute%2)*10*time.Millisecond, pollInterval) // the minute's record: 210 or 190 ms
		if got := e.tenant(t, "t1"); got.DegradedSince == nil || !got.DegradedSince.Equal(since) {
			t.Fatalf("minute %d, recorded %d ms: episode since %v, want kept since %v", minute, got.LastLatencyMS, got.DegradedSince, since)
		}
	}
	if got := len(e.log.writes()) - n; got != 5 {
		t.Fatalf("%d row writes in 5 minutes around 200 ms, want 5", got)
	}
	e.check(t, 10*time.Millisecond, pollInterval)
	e.check(t, 10*time.Millisecond, pollInterval)
	if got := e.tenant(t, "t1"); got.DegradedSince != nil || got.LatencyClass != tenantkms.LatencyNormal {
		t.Fatalf("a minute after a drop: since %v, class %q", got.DegradedSince, got.LatencyClass)
	}
}
