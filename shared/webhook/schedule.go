package webhook

import (
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The Standard Webhooks retry schedule: the delay before attempt n+1
// after attempt n failed. Attempt 1 is immediate; past the table every
// delay is the last entry, until RetryWindow after the first attempt.
var schedule = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour}

// RetryWindow is how long after the first attempt another may be made.
const RetryWindow = 72 * time.Hour

// MaxRetryAfter caps a receiver's Retry-After.
const MaxRetryAfter = 10 * time.Hour

// Jitter is the spread of each scheduled delay: it is multiplied by a
// factor drawn uniformly from [1-Jitter, 1+Jitter), so retries of many
// subscriptions failing together do not arrive together.
const Jitter = 0.10

// NextRetry says when the attempt after a failed attempt (numbered from
// 1) is due, and false when none is left: the scheduled delay with
// jitter, or the receiver's Retry-After (delta seconds or an HTTP date)
// when that is longer, capped at MaxRetryAfter and at the window's end.
// A scheduled attempt that would fall past RetryWindow after first is not
// made. rnd returns values in [0, 1) (rand.Float64 when nil).
func NextRetry(attempt int, first, now time.Time, retryAfter string, rnd func() float64) (time.Time, bool) {
	if rnd == nil {
		rnd = rand.Float64
	}
	if attempt < 1 {
		attempt = 1
	}
	base := schedule[min(attempt, len(schedule))-1]
	delay := time.Duration(float64(base) * (1 - Jitter + 2*Jitter*rnd()))
	end := first.Add(RetryWindow)
	next := now.Add(delay)
	if next.After(end) {
		return time.Time{}, false
	}
	if ra, ok := parseRetryAfter(retryAfter, now); ok && ra > delay {
		ra = min(ra, MaxRetryAfter, end.Sub(now))
		next = now.Add(max(ra, delay))
	}
	return next, true
}

// parseRetryAfter reads Retry-After as delta seconds or an HTTP date,
// relative to now.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > int64(MaxRetryAfter/time.Second) {
			return MaxRetryAfter, true
		}
		return time.Duration(n) * time.Second, true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return t.Sub(now), true
}
