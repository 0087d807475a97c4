package webhook_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/webhook"
)

func mid() float64 { return 0.5 } // jitter factor exactly 1

// TestNextRetrySchedule walks the whole Standard Webhooks schedule with
// every attempt failing at once: 12 attempts fit in 3 days.
func TestNextRetrySchedule(t *testing.T) {
	first := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	want := []time.Duration{ // after attempt n, the delay before n+1
		5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour,
		10 * time.Hour, 10 * time.Hour, 10 * time.Hour, 10 * time.Hour, 10 * time.Hour, 10 * time.Hour,
	}
	now := first
	for i, d := range want {
		next, ok := webhook.NextRetry(i+1, first, now, "", mid)
		if !ok || next.Sub(now) != d {
			t.Fatalf("after attempt %d: %v %v, want +%v", i+1, next.Sub(now), ok, d)
		}
		now = next
	}
	if got := now.Sub(first); got != 67*time.Hour+35*time.Minute+5*time.Second {
		t.Fatalf("attempt 12 at +%v", got)
	}
	if next, ok := webhook.NextRetry(12, first, now, "", mid); ok {
		t.Fatalf("an attempt past 3 days: %v", next.Sub(first))
	}
	// Exactly at the window's end is still inside it.
	if _, ok := webhook.NextRetry(7, first, first.Add(62*time.Hour), "", mid); !ok {
		t.Fatal("an attempt at exactly 72 h was refused")
	}
}

func TestNextRetryJitter(t *testing.T) {
	first := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		attempt int
		base    time.Duration
	}{{1, 5 * time.Second}, {4, 2 * time.Hour}, {9, 10 * time.Hour}} {
		lo, _ := webhook.NextRetry(tc.attempt, first, first, "", func() float64 { return 0 })
		hi, _ := webhook.NextRetry(tc.attempt, first, first, "", func() float64 { return 0.999999 })
		if lo.Sub(first) != tc.base*9/10 || hi.Sub(first) >= tc.base*11/10 || hi.Sub(first) < tc.base*109/100 {
			t.Errorf("attempt %d: [%v, %v], want [0.9, 1.1) × %v", tc.attempt, lo.Sub(first), hi.Sub(first), tc.base)
		}
	}
	// The default source stays in the bounds too.
	for range 1000 {
		n, _ := webhook.NextRetry(2, first, first, "", nil)
		if d := n.Sub(first); d < 270*time.Second || d >= 330*time.Second {
			t.Fatalf("jittered 5 min delay %v", d)
		}
	}
}

func TestNextRetryRetryAfter(t *testing.T) {
	first := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	now := first.Add(time.Minute)
	date := func(d time.Duration) string { return now.Add(d).Format(http.TimeFormat) }
	for _, tc := range []struct {
		name       string
		attempt    int
		now        time.Time
		retryAfter string
		want       time.Duration // from now
		ok         bool
	}{
		{"seconds, longer than 5 s", 1, now, "120", 2 * time.Minute, true},
		{"seconds, shorter than the schedule: ignored", 4, now, "60", 2 * time.Hour, true},
		{"HTTP date", 2, now, date(time.Hour), time.Hour, true},
		{"HTTP date in the past: ignored", 2, now, date(-time.Hour), 5 * time.Minute, true},
		{"capped at 10 h", 1, now, "86400", 10 * time.Hour, true},
		{"HTTP date capped at 10 h", 1, now, date(48 * time.Hour), 10 * time.Hour, true},
		{"capped at the window's end", 2, first.Add(71 * time.Hour), "7200", time.Hour, true},
		{"garbage: ignored", 1, now, "soon", 5 * time.Second, true},
		{"negative: ignored", 1, now, "-5", 5 * time.Second, true},
		{"the schedule itself past the window", 6, first.Add(65 * time.Hour), "60", 0, false},
	} {
		next, ok := webhook.NextRetry(tc.attempt, first, tc.now, tc.retryAfter, mid)
		if ok != tc.ok || (ok && next.Sub(tc.now) != tc.want) {
			t.Errorf("%s: %v %v, want +%v %v", tc.name, next.Sub(tc.now), ok, tc.want, tc.ok)
		}
	}
}

// TestJobJSON: a job survives its queue message (SQS body, outbox item);
// first_at is absent before the first attempt.
func TestJobJSON(t *testing.T) {
	j := webhook.Job{Event: event(), TenantID: "acme", WebhookID: "wh_1", Attempt: 1}
	b, err := json.Marshal(j)
	if err != nil || strings.Contains(string(b), "first_at") {
		t.Fatalf("%s %v", b, err)
	}
	j.Attempt, j.FirstAt = 3, time.Date(2026, 12, 1, 0, 0, 5, 0, time.UTC)
	b, _ = json.Marshal(j)
	var back webhook.Job
	if err := json.Unmarshal(b, &back); err != nil || back.Attempt != 3 || !back.FirstAt.Equal(j.FirstAt) || back.Event.ID != "evt_01" || back.WebhookID != "wh_1" {
		t.Fatalf("%s -> %+v %v", b, back, err)
	}
}
