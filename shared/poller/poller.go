// Package poller is the verify/unseal poller Lambda's handler.
//
// Why a rate(1 minute) rule that sweeps twice instead of a Step Functions
// wait loop: EventBridge schedules fire at most once a minute, and docs/contract.md §4
// wants a 30 s cadence. One invocation that sweeps, waits out the rest of
// 30 s and sweeps again gives that cadence with one rule, one function and
// no state machine to pay for per transition or to keep alive; the Lambda
// timeout (75 s) plus reserved concurrency 1 guarantee invocations never
// overlap, and an in-process lock guarantees the two sweeps never do.
//
// # Fan-out
//
// When one invocation cannot sweep every tenant in half the interval, the
// scheduled invocation (the dispatcher) splits the 16 poll shards into
// groups (Plan), keeps group 0 for itself and starts one invocation of the
// worker function per other group, asynchronously (InvocationType Event),
// with {"shards": [...], "start": <the minute's scheduled time>}. How it
// knows: every invocation records its first sweep's per-shard tenants and
// summed check durations (keyseal.PollStats, one DynamoDB item, one
// UpdateItem per group a minute), and the dispatcher reads them back (one
// GetItem a minute) and plans the next minute by them.
//
// Why asynchronous invokes rather than SQS or a Step Functions Map:
//   - Cost: one Invoke request per extra group a minute (15 groups: 650,000
//     a month, $0.13) and the workers' own duration, nothing else. SQS adds
//     a queue whose event source polls it around the clock; a Map adds
//     state transitions (Standard: about 2 million a month for 16 groups,
//     $50) or Express duration for the whole minute.
//   - Latency: the async queue starts a worker within tens of milliseconds
//     of the 202; an SQS event source adds its poll, a Map its state
//     machine start and per-state overhead.
//   - At-least-once: all three are; Lambda may deliver an async event twice.
//     A duplicate sweep is harmless (every state change is a conditional
//     write on the row's revision: a second sweep makes KMS calls, never a
//     second seal, unseal or audit entry), and retries are off (the stack
//     sets MaximumRetryAttempts 0 and MaximumEventAge 60 s): the next
//     minute does the same work, and a retry would overlap it.
//   - Overlap with the next minute: each group sweeps at start and start +
//     interval, within a context ending at start + sweeps × interval, the
//     next minute's scheduled time; an event that arrives after it sweeps
//     nothing. A shard's sweeps of one minute therefore end before the next
//     minute's begin, however the next plan groups it. SQS redelivery or a
//     Map's retries would each need the same guard.
//   - Failure of one group: its invocation is independent of the others;
//     a throttled or failed invoke is logged and counted (dispatch_errors,
//     and the PollDispatchErrors metric, which an alarm watches),
//     that group's shards miss one minute's sweeps, and the next minute
//     plans and dispatches afresh. The dispatcher never takes a failed
//     group over: its own sweep has the same budget. Push sealing (package
//     keyevents) does not depend on the poll, and a transient outage seals
//     by the stored last_verified_at, which a missed minute only ages.
package poller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/metrics"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// Input is the invocation's input: absent for the schedule rule's plain
// scheduled event, set by the dispatcher for a worker (or as a rule's
// constant input, for an operator who splits the shards over rules).
type Input struct {
	// Shards to sweep; none: every shard (and, with a Fanout, plan).
	Shards []int `json:"shards,omitempty"`
	// Start is the scheduled time of the minute this invocation serves:
	// sweep i starts at Start + i × Interval, and all of them end by
	// Start + Sweeps × Interval. Zero: the scheduled event's "time", or
	// the moment the invocation began.
	Start time.Time `json:"start,omitzero"`
}

// Invoker starts one worker invocation with payload, asynchronously.
type Invoker interface {
	InvokeAsync(ctx context.Context, payload []byte) error
}

// Fanout makes the schedule rule's invocation a dispatcher.
type Fanout struct {
	// Worker starts the other groups' invocations.
	Worker Invoker
	// Concurrency is each invocation's checks in flight
	// (KEYSEAL_POLL_CONCURRENCY; every group has the same).
	Concurrency int
	// MaxGroups bounds the groups (the worker's reserved concurrency
	// plus the dispatcher); at most keyseal.PollShards.
	MaxGroups int
}

// Handler sweeps Sweeps times per invocation, Interval apart, all within
// Sweeps × Interval of the invocation's start (no bound with Interval 0).
type Handler struct {
	Tenants  *tenantkms.Service
	Interval time.Duration
	Sweeps   int
	Log      *slog.Logger
	// Stats, when set, receives each invocation's first sweep's per-shard
	// measurement, and is what a Fanout plans by.
	Stats keyseal.PollStats
	// Fanout, when set (with Stats), splits the shards over parallel
	// invocations once one cannot sweep them in Interval / 2.
	Fanout *Fanout
	// Metrics receives metrics.PollDispatchErrors for each minute that
	// fans out; nil emits none.
	Metrics tenantkms.Metrics

	mu       sync.Mutex
	lastPlan [][]int // the previous plan, for a minute whose measurement cannot be read
}

// Result reports one invocation.
type Result struct {
	// Shards are the shards this invocation swept.
	Shards []int `json:"shards"`
	// Groups is the dispatcher's plan size (1: no fan-out); Dispatched and
	// DispatchErrors count the worker invocations queued and refused.
	Groups         int                    `json:"groups,omitempty"`
	Dispatched     int                    `json:"dispatched,omitempty"`
	DispatchErrors int                    `json:"dispatch_errors,omitempty"`
	Sweeps         []tenantkms.SweepStats `json:"sweeps"`
}

// callTimeout bounds the dispatcher's store read, each worker invoke and
// each measurement write.
const callTimeout = 5 * time.Second

// Handle serves one invocation. It never fails the invocation for a
// tenant's error: EventBridge or Lambda would retry and overlap the next
// minute.
func (h *Handler) Handle(ctx context.Context, raw json.RawMessage) (Result, error) {
	now := time.Now()
	in, err := parseInput(raw, now)
	if err != nil {
		h.Log.Error("poller input", "err", err)
		return Result{}, nil
	}
	if h.Interval > 0 { // without an interval (one sweep a tick, the local server's) there is no minute to end with
		end := in.Start.Add(time.Duration(h.Sweeps) * h.Interval)
		if !now.Before(end) {
			h.Log.Warn("stale poller invocation: its minute is over", "start", in.Start, "shards", in.Shards)
			return Result{}, nil
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, end)
		defer cancel()
	}
	res := Result{Shards: in.Shards}
	if len(in.Shards) == 0 {
		res.Shards = tenantkms.AllShards()
		if h.Fanout != nil && h.Stats != nil {
			res.Shards = h.dispatch(ctx, in.Start, &res)
		}
	}
	for i := range h.Sweeps {
		select {
		case <-time.After(time.Until(in.Start.Add(time.Duration(i) * h.Interval))):
		case <-ctx.Done():
			return res, nil
		}
		if ctx.Err() != nil { // a sweep that ran to the minute's end: no next one
			return res, nil
		}
		stats, err := h.Tenants.Sweep(ctx, res.Shards)
		h.Log.Info("sweep", "n", i+1, "shards", res.Shards, "tenants", stats.Tenants, "outcomes", stats.Outcomes,
			"list_errors", stats.ListErrors, "ms", stats.Duration.Milliseconds())
		if err != nil {
			h.Log.Error("sweep", "n", i+1, "err", err)
		}
		res.Sweeps = append(res.Sweeps, stats)
		if i == 0 && h.Stats != nil && !errors.Is(err, tenantkms.ErrSweepRunning) {
			h.record(stats)
		}
	}
	return res, nil
}

// record stores a first sweep's per-shard measurement. A sweep the
// minute's end cut short records what it measured: a lower bound of the
// work, which still grows the next plan, and each plan's sweeps measure
// more, until the groups fit.
func (h *Handler) record(stats tenantkms.SweepStats) {
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	defer cancel()
	if err := h.Stats.PutShardStats(ctx, stats.Shards); err != nil {
		h.Log.Error("record poll shard stats", "err", err)
	}
}

// dispatch plans the minute, queues a worker invocation per group but the
// first, and returns the first group's shards: the dispatcher's own.
func (h *Handler) dispatch(ctx context.Context, start time.Time, res *Result) []int {
	sctx, cancel := context.WithTimeout(ctx, callTimeout)
	stats, err := h.Stats.ShardStats(sctx)
	cancel()
	h.mu.Lock()
	groups := h.lastPlan
	if err == nil {
		groups = Plan(stats, h.Fanout.Concurrency, h.Interval/2, h.Fanout.MaxGroups)
		h.lastPlan = groups
	}
	h.mu.Unlock()
	if err != nil {
		h.Log.Error("read poll shard stats: keeping the last plan", "err", err, "groups", len(groups))
	}
	if len(groups) == 0 {
		groups = [][]int{tenantkms.AllShards()}
	}
	res.Groups = len(groups)
	var queued, failed atomic.Int32
	var wg sync.WaitGroup
	for _, g := range groups[1:] {
		wg.Go(func() {
			payload, _ := json.Marshal(Input{Shards: g, Start: start}) // ints and a time: cannot fail
			ictx, cancel := context.WithTimeout(ctx, callTimeout)
			defer cancel()
			if err := h.Fanout.Worker.InvokeAsync(ictx, payload); err != nil {
				failed.Add(1)
				h.Log.Error("dispatch poll group", "shards", g, "err", err)
				return
			}
			queued.Add(1)
		})
	}
	wg.Wait()
	res.Dispatched, res.DispatchErrors = int(queued.Load()), int(failed.Load())
	if len(groups) > 1 {
		if h.Metrics != nil {
			h.Metrics.Emit(metrics.Value{Name: metrics.PollDispatchErrors, Unit: metrics.Count, Values: []float64{float64(res.DispatchErrors)}})
		}
		h.Log.Info("poll fan-out", "groups", len(groups), "dispatched", res.Dispatched, "dispatch_errors", res.DispatchErrors,
			"own_shards", groups[0])
	}
	return groups[0]
}

// parseInput reads Input from a worker's payload or a rule's constant
// input, or takes a plain scheduled event's "time" as the minute's start.
// Shards are checked and deduplicated; the start defaults to now.
func parseInput(raw json.RawMessage, now time.Time) (Input, error) {
	var in Input
	var scheduled struct {
		Time time.Time `json:"time"`
	}
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &in)        // a CloudWatch scheduled event has no "shards"
		_ = json.Unmarshal(raw, &scheduled) // and a worker's payload no "time"
	}
	for _, s := range in.Shards {
		if s < 0 || s >= keyseal.PollShards {
			return Input{}, fmt.Errorf("shard %d out of range 0-%d", s, keyseal.PollShards-1)
		}
	}
	slices.Sort(in.Shards)
	in.Shards = slices.Compact(in.Shards)
	switch {
	case !in.Start.IsZero():
	case !scheduled.Time.IsZero():
		in.Start = scheduled.Time
	default:
		in.Start = now
	}
	// A start in the future (a clock ahead) waits no longer than now.
	if in.Start.After(now) {
		in.Start = now
	}
	return in, nil
}
