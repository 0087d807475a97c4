package tenantkms

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
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
// success of a sealed tenant, seal on failure per the taxonomy of SPEC §4.
func (s *Service) Check(ctx context.Context, tenantID string) (Outcome, error) {
	t, err := s.getTenant(ctx, tenantID)
	if err != nil {
		return OutcomeError, err
	}
	if t.Status == keyseal.StatusRevoked {
		return OutcomeSkipped, nil
	}
	res, err := s.verify(ctx, t)
	if err == nil {
		s.cache.put(t.ID, res.version, res.tmk)
		if t.Status == keyseal.StatusSealed {
			err := s.unseal(ctx, t.ID, ActorPoller, "auto", res)
			if keyseal.ErrorCode(err) == keyseal.ENOTSEALED { // an admin or another poller won the race
				return OutcomeHealthy, nil
			}
			if err != nil {
				return OutcomeError, err
			}
			return OutcomeUnsealed, nil
		}
		return OutcomeHealthy, s.recordVerified(ctx, t, res)
	}
	var kerr *keyseal.KMSError
	if !errors.As(err, &kerr) {
		return OutcomeError, err
	}
	sealed, err := s.fail(ctx, t, kerr, true)
	switch {
	case err != nil:
		return OutcomeError, err
	case sealed != nil:
		return OutcomeSealed, nil
	default:
		return OutcomeDegraded, nil
	}
}

// recordVerified stores last_verified_at and latency. One attempt: on a
// concurrent change the other writer's row stands and the next poll records
// again.
func (s *Service) recordVerified(ctx context.Context, t *keyseal.Tenant, res verification) error {
	next := t.Clone()
	now := s.now()
	next.LastVerifiedAt = &now
	next.LastLatencyMS = res.latency.Milliseconds()
	next.LastVerifyError = ""
	next.UpdatedAt = now
	if err := s.store.UpdateTenant(ctx, next, keyseal.Change{}); err != nil && keyseal.ErrorCode(err) != keyseal.ECONFLICT {
		return err
	}
	return nil
}

// SweepStats summarises one sweep.
type SweepStats struct {
	Tenants  int             `json:"tenants"`
	Outcomes map[Outcome]int `json:"outcomes"`
	// ListErrors counts shards whose listing failed part-way.
	ListErrors int           `json:"list_errors"`
	Duration   time.Duration `json:"duration_ns"`
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
func (s *Service) Sweep(ctx context.Context, shards []int) (SweepStats, error) {
	if !s.sweeping.TryLock() {
		return SweepStats{}, ErrSweepRunning
	}
	defer s.sweeping.Unlock()
	start := time.Now()
	stats := SweepStats{Outcomes: map[Outcome]int{}}
	var mu sync.Mutex
	ids := make(chan string)
	var wg sync.WaitGroup
	for range s.opt.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for id := range ids {
				cctx, cancel := context.WithTimeout(ctx, 3*s.opt.KMSTimeout)
				outcome, err := s.Check(cctx, id)
				cancel()
				if err != nil {
					s.opt.Log.Error("poll tenant", "tenant_id", id, "err", err)
				}
				mu.Lock()
				stats.Tenants++
				stats.Outcomes[outcome]++
				mu.Unlock()
			}
		}()
	}
	for _, shard := range shards {
		if err := s.listShard(ctx, shard, ids); err != nil {
			s.opt.Log.Error("list poll shard", "shard", shard, "err", err)
			stats.ListErrors++
		}
	}
	close(ids)
	wg.Wait()
	stats.Duration = time.Since(start)
	return stats, ctx.Err()
}

func (s *Service) listShard(ctx context.Context, shard int, ids chan<- string) error {
	cursor := ""
	for {
		page, next, err := s.store.ListTenants(ctx, shard, cursor, 500)
		if err != nil {
			return err
		}
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
