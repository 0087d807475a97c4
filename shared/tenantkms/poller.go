package tenantkms

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/keyseal/keyseal/shared/internal/wait"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/metrics"
)

// Outcome is what one poll did to one tenant.
type Outcome string

// Poll outcomes.
const (
	OutcomeHealthy  Outcome = "healthy"  // verified, was active
	OutcomeUnsealed Outcome = "unsealed" // verified, was sealed: auto-unsealed
	OutcomeSealed   Outcome = "sealed"   // failed and is (now or still) sealed
	OutcomeDegraded Outcome = "degraded" // failed transiently inside the cache TTL
	OutcomeSkipped  Outcome = "skipped"  // revoked: nothing to verify
	OutcomeError    Outcome = "error"    // the store failed; nothing decided
)

// Check verifies one tenant live and applies the result: auto-unseal on
// success of a sealed tenant, seal on failure per the taxonomy of docs/contract.md §4.
func (s *Service) Check(ctx context.Context, tenantID string) (Outcome, error) {
	r := s.check(ctx, tenantID)
	return r.outcome, r.err
}

// checked is what one check did, with what a sweep's metrics need.
type checked struct {
	outcome Outcome
	err     error
	// verified says the live verify succeeded; latency and keyCreated are
	// set only then.
	verified   bool
	latency    time.Duration
	keyCreated time.Time
	// kmsFailed says the live verify failed with a KMS error, whatever the
	// store did next.
	kmsFailed bool
}

func (s *Service) check(ctx context.Context, tenantID string) checked {
	t, err := s.getTenant(ctx, tenantID)
	if err != nil {
		return checked{outcome: OutcomeError, err: err}
	}
	if t.Status == keyseal.StatusRevoked {
		return checked{outcome: OutcomeSkipped}
	}
	res, err := s.verify(ctx, t)
	if err == nil {
		// The TMK the verify unwrapped is thrown away: the poller serves no
		// session, so caching it would only hold key material resident.
		r := checked{outcome: OutcomeHealthy, verified: true, latency: res.latency, keyCreated: res.created}
		if t.Status != keyseal.StatusSealed {
			r.err = s.recordVerified(ctx, t, res)
			return r
		}
		err := s.unseal(ctx, t.ID, ActorPoller, "auto", res)
		switch {
		case keyseal.ErrorCode(err) == keyseal.ENOTSEALED: // an admin or another poller won the race
		case err != nil:
			r.outcome, r.err = OutcomeError, err
		default:
			r.outcome = OutcomeUnsealed
		}
		return r
	}
	var kerr *keyseal.KMSError
	if !errors.As(err, &kerr) {
		return checked{outcome: OutcomeError, err: err}
	}
	r := checked{kmsFailed: true}
	sealed, err := s.fail(ctx, t, kerr, true)
	switch {
	case err != nil:
		r.outcome, r.err = OutcomeError, err
	case sealed != nil:
		r.outcome = OutcomeSealed
	default:
		r.outcome = OutcomeDegraded
	}
	return r
}

// recordVerified records a successful verify on the tenant row, and only
// when the row needs it (see needsVerifiedWrite): a healthy tenant costs
// one write per VerifiedEvery, not one per poll, whatever its latency
// does. The announcements ride on that write: a verify whose write is due
// and that moves the degradation episode or finds the active version due
// for rotation (announce) writes through mutate instead, its events in
// the same transaction, deciding anew on the fresh row: of two pollers or
// a poller restarted mid-way, one commits the transition and the other
// finds it already recorded. So the episode is sampled once per
// VerifiedEvery, by the verify that records the minute: a latency that
// swings across 200 ms from poll to poll (a starved CPU) neither starts
// nor ends an episode, nor writes, between two records.
func (s *Service) recordVerified(ctx context.Context, t *keyseal.Tenant, res verification) error {
	now := s.now()
	verified := func(next *keyseal.Tenant) {
		next.LatencyClass = PolledLatencyClass(RecordedLatencyClass(next), res.latency.Milliseconds())
		next.LastVerifiedAt = &now
		next.LastLatencyMS = res.latency.Milliseconds()
		next.LastVerifyError = ""
	}
	if !needsVerifiedWrite(t, now) {
		return nil
	}
	if probe := t.Clone(); !s.announce(probe, res, now, nil) {
		return s.note(ctx, t, verified)
	}
	_, err := s.mutate(ctx, t.ID, func(cur *keyseal.Tenant) (keyseal.Change, error) {
		if cur.Status != keyseal.StatusActive {
			return keyseal.Change{}, errNoChange // sealed meanwhile: the seal is the news
		}
		var c keyseal.Change
		var evErr error
		s.announce(cur, res, now, func(typ string, data any) {
			ev, err := s.event(typ, cur.ID, data)
			evErr = errors.Join(evErr, err)
			c.Events = append(c.Events, ev)
		})
		if evErr != nil {
			return keyseal.Change{}, evErr
		}
		verified(cur)
		return c, nil
	})
	if errors.Is(err, errNoChange) {
		return nil
	}
	return err
}

// VerifiedEvery is how often a healthy tenant's last_verified_at is
// refreshed: at most once per VerifiedEvery, so the stored value lags the
// last successful verify by less than VerifiedEvery. The seal decision
// (fail) reads the stored value, so a transient outage seals as
// unreachable no later than one cache TTL plus one poll after the last
// success, and up to VerifiedEvery earlier than one TTL after it when the
// last success was one whose write was skipped: early, never late, which
// is the safe side of the kill switch.
const VerifiedEvery = time.Minute

// needsVerifiedWrite says whether a successful verify that announces
// nothing must still write the row: the last error is to be cleared, or
// last_verified_at is missing or VerifiedEvery old. Anything else (a
// fresher timestamp, another latency) leaves the row as it is.
//
// A latency class change alone does not write either: the class (with
// the hysteresis of PolledLatencyClass) and what it means for the
// degradation episode (announce) are recorded by the row's next write, at
// most VerifiedEvery (two polls) later. So a healthy tenant costs one
// write per VerifiedEvery however its latency wanders; a per-change write
// made a latency scattered across 100 ms (two 40 ms calls on a busy CPU)
// cost up to one write per poll, and one at 200 ms an episode started and
// ended on alternate polls.
func needsVerifiedWrite(t *keyseal.Tenant, now time.Time) bool {
	if t.LastVerifyError != "" || t.LastVerifiedAt == nil {
		return true
	}
	return !now.Before(t.LastVerifiedAt.Add(VerifiedEvery))
}

// DegradedAfter is how long the verify latency must stay high or critical
// before tenant.kms.health_degraded (seed 004's High Latency alert).
const DegradedAfter = 5 * time.Minute

// announce applies a successful verify to the poller's announcement state
// on t (degraded_since, degraded_notified, rotation_due_notified_version)
// and reports whether it changed anything; emit (nil for a dry run) gets
// each event the change announces. It changes t only on a transition: a
// run of high latency starting, lasting DegradedAfter (the event), or
// ending (any verify below high); the active version passing
// RotationDueAge for the first time (the event). A verify that is none of
// these leaves t alone, so the row needs no write for it.
func (s *Service) announce(t *keyseal.Tenant, res verification, now time.Time, emit func(typ string, data any)) bool {
	if emit == nil {
		emit = func(string, any) {}
	}
	changed := false
	ms := res.latency.Milliseconds()
	// The class with hysteresis: a latency hovering at 200 ms neither
	// starts nor ends an episode on every poll.
	switch class := PolledLatencyClass(RecordedLatencyClass(t), ms); {
	case class != LatencyHigh && class != LatencyCritical:
		if t.DegradedSince != nil || t.DegradedNotified {
			t.DegradedSince, t.DegradedNotified, changed = nil, false, true
		}
	case t.DegradedSince == nil:
		since := now
		t.DegradedSince, t.DegradedNotified, changed = &since, false, true
	case !t.DegradedNotified && now.Sub(*t.DegradedSince) >= DegradedAfter:
		emit(keyseal.EventHealthDegraded, keyseal.HealthDegradedData{LatencyClass: class, LatencyMS: ms, Since: *t.DegradedSince})
		t.DegradedNotified, changed = true, true
	}
	if res.version == t.ActiveVersion && t.RotationDueNotified != res.version && now.Sub(res.created) > RotationDueAge {
		emit(keyseal.EventRotationDue, keyseal.RotationDueData{Version: res.version, CreatedAt: res.created,
			AgeDays: int(now.Sub(res.created) / (24 * time.Hour))})
		t.RotationDueNotified, changed = res.version, true
	}
	return changed
}

// SweepStats summarises one sweep.
type SweepStats struct {
	Tenants  int             `json:"tenants"`
	Outcomes map[Outcome]int `json:"outcomes"`
	// ListErrors counts shards whose listing failed part-way.
	ListErrors int           `json:"list_errors"`
	Duration   time.Duration `json:"duration_ns"`
	// Verified counts the successful live verifies (one KMSLatency sample
	// each); KMSFailures the tenants whose live verify failed.
	Verified    int `json:"verified"`
	KMSFailures int `json:"kms_failures"`
	// MaxLatency is the slowest successful verify (wrap plus unwrap).
	MaxLatency time.Duration `json:"max_latency_ns"`
	// MaxKeyAgeDays is the age of the oldest active TMK version among the
	// verified tenants: the KeyRotationAgeDays metric.
	MaxKeyAgeDays float64 `json:"max_key_age_days"`
	// Shards measures each swept shard (in the order asked for): its
	// tenants and the summed durations of their checks, what the poller's
	// fan-out plans the next minute's groups by (keyseal.PollStats).
	Shards []keyseal.ShardStats `json:"shards"`
}

// ErrSweepRunning is returned when a sweep is asked for while the previous
// one in this process is still running: sweeps never overlap.
var ErrSweepRunning = errors.New("a sweep is already running")

// AllShards lists every poll shard.
func AllShards() []int {
	shards := make([]int, keyseal.PollShards)
	for i := range shards {
		shards[i] = i
	}
	return shards
}

// Sweep checks every tenant of the given shards with at most
// Options.Concurrency checks in flight. Each check has its own deadline
// (three KMS timeouts: wrap, unwrap and the store writes), and one tenant's
// failure never stops the sweep.
//
// With Options.Metrics set, a sweep emits KMSLatency in batches of
// metrics.MaxValues as verifies complete (memory stays bounded however
// many tenants there are), then once at its end SealedTenants, KMSFailures,
// the last latencies and, when a tenant verified, KeyRotationAgeDays. A
// sweep cut short by ctx still reports what it saw.
func (s *Service) Sweep(ctx context.Context, shards []int) (SweepStats, error) {
	if !s.sweeping.TryLock() {
		return SweepStats{}, ErrSweepRunning
	}
	defer s.sweeping.Unlock()
	start := time.Now()
	stats := SweepStats{Outcomes: map[Outcome]int{}}
	var latencies []float64 // milliseconds not yet emitted; nil without Metrics
	var shardTenants [keyseal.PollShards]int
	var shardWork [keyseal.PollShards]time.Duration
	var mu sync.Mutex
	ids := make(chan string)
	var wg sync.WaitGroup
	for range s.opt.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				began := time.Now()
				r := s.checkWithin(ctx, id)
				took := time.Since(began)
				if r.err != nil {
					s.opt.Log.Error("poll tenant", "tenant_id", id, "err", r.err)
				}
				shard := keyseal.ShardOf(id)
				var full []float64
				mu.Lock()
				shardTenants[shard]++
				shardWork[shard] += took
				stats.Tenants++
				stats.Outcomes[r.outcome]++
				if r.kmsFailed {
					stats.KMSFailures++
				}
				if r.verified {
					stats.Verified++
					stats.MaxLatency = max(stats.MaxLatency, r.latency)
					stats.MaxKeyAgeDays = max(stats.MaxKeyAgeDays, s.ageDays(r.keyCreated))
					if s.opt.Metrics != nil {
						latencies = append(latencies, float64(r.latency)/float64(time.Millisecond))
						if len(latencies) == metrics.MaxValues {
							full, latencies = latencies, make([]float64, 0, metrics.MaxValues)
						}
					}
				}
				mu.Unlock()
				if full != nil {
					s.emit(metrics.Value{Name: metrics.KMSLatency, Unit: metrics.Milliseconds, Values: full})
				}
			}
		}()
	}
	// Every shard is listed at once: a slow or failing listing of one shard
	// delays none of the others, and each shard's store time is bounded by
	// ListBudget, however the store behaves (the time spent waiting for the
	// checks to take its ids is not store time and is not bounded).
	var lists sync.WaitGroup
	for _, shard := range shards {
		lists.Go(func() {
			if err := s.listShard(ctx, shard, ids); err != nil {
				s.opt.Log.Error("list poll shard", "shard", shard, "err", err)
				mu.Lock()
				stats.ListErrors++
				mu.Unlock()
			}
		})
	}
	lists.Wait()
	close(ids)
	wg.Wait()
	stats.Duration = time.Since(start)
	measured := s.now()
	for _, shard := range shards {
		stats.Shards = append(stats.Shards, keyseal.ShardStats{Shard: shard, Tenants: shardTenants[shard],
			Work: shardWork[shard], MeasuredAt: measured})
	}
	s.emitSweep(stats, latencies)
	return stats, ctx.Err()
}

// emitSweep emits a finished sweep's metrics in one document. A sweep in
// which no tenant verified has no latency and no key age to report, rather
// than a misleading 0.
func (s *Service) emitSweep(stats SweepStats, latencies []float64) {
	if s.opt.Metrics == nil {
		return
	}
	values := []metrics.Value{
		{Name: metrics.SealedTenants, Unit: metrics.Count,
			Values: []float64{float64(stats.Outcomes[OutcomeSealed] + stats.Outcomes[OutcomeSkipped])}},
		{Name: metrics.KMSFailures, Unit: metrics.Count, Values: []float64{float64(stats.KMSFailures)}},
	}
	if len(latencies) > 0 {
		values = append(values, metrics.Value{Name: metrics.KMSLatency, Unit: metrics.Milliseconds, Values: latencies})
	}
	if stats.Verified > 0 {
		values = append(values, metrics.Value{Name: metrics.KeyRotationAgeDays, Unit: metrics.None, Values: []float64{stats.MaxKeyAgeDays}})
	}
	s.opt.Metrics.Emit(values...)
}

// ageDays is how many days ago created was, in fractions of a day so the
// 90-day alarm fires on the day it is due; never negative, whatever the
// clocks that wrote it.
func (s *Service) ageDays(created time.Time) float64 {
	return max(0, s.now().Sub(created).Hours()/24)
}

// checkWithin checks one tenant within one check deadline (three KMS
// timeouts: wrap, unwrap and the store writes). A check the store failed
// (throttled, 5xx, lost answers after the SDK's own retries) is tried
// again inside the same deadline: every write is conditional and a lost
// answer is settled by the store, so a second try never doubles a seal,
// and it is what keeps a 30% fault rate from skipping a tenant's seal for
// a whole poll interval.
func (s *Service) checkWithin(ctx context.Context, id string) checked {
	cctx, cancel := context.WithTimeout(ctx, 3*s.opt.KMSTimeout)
	defer cancel()
	r := s.check(cctx, id)
	for attempt := 1; attempt < checkAttempts && keyseal.ErrorCode(r.err) == keyseal.EUNAVAILABLE && cctx.Err() == nil; attempt++ {
		r = s.check(cctx, id)
	}
	return r
}

// checkAttempts bounds the tries of one tenant's check in one sweep.
const checkAttempts = 3

// listShard sends the ids of one shard to ids. A failed page is retried
// from its cursor (pages already sent are not sent again) while the
// shard's listing budget lasts: the time spent in the store's calls and
// the pauses between retries, not the time spent handing ids to the
// checks, which on a large sweep far exceeds it. Each attempt has its own
// deadline, so one request the store never answers costs one attempt, not
// the budget.
func (s *Service) listShard(ctx context.Context, shard int, ids chan<- string) error {
	budget := s.opt.ListBudget
	cursor := ""
	for attempt := 0; ; {
		start := time.Now()
		actx, cancel := context.WithTimeout(ctx, min(s.opt.ListAttemptTimeout, budget))
		page, next, err := s.store.ListTenants(actx, shard, cursor, 500)
		cancel()
		budget -= time.Since(start)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			attempt++
			pause := min(listBackoff<<min(attempt, 5), time.Second, budget)
			if budget <= 0 || wait.Sleep(ctx, pause) != nil {
				return fmt.Errorf("listing budget spent: %w", err)
			}
			budget -= pause
			continue
		}
		attempt = 0
		for _, id := range page {
			select {
			case ids <- id:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if next == "" {
			return nil
		}
		cursor = next
	}
}

// listBackoff is the first pause before a failed shard page is retried.
const listBackoff = 25 * time.Millisecond
