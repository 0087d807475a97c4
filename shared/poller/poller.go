// Package poller is the verify/unseal poller Lambda's handler.
//
// Why a rate(1 minute) rule that sweeps twice instead of a Step Functions
// wait loop: EventBridge schedules fire at most once a minute, and docs/contract.md §4
// wants a 30 s cadence. One invocation that sweeps, waits out the rest of
// 30 s and sweeps again gives that cadence with one rule, one function and
// no state machine to pay for per transition or to keep alive; the Lambda
// timeout (75 s) plus reserved concurrency 1 guarantee invocations never
// overlap, and an in-process lock guarantees the two sweeps never do.
package poller

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// Input is the optional constant input of the schedule rule. Shards lets an
// operator split the tenants over several rules (each with its own function)
// once one invocation cannot sweep them all in time.
type Input struct {
	Shards []int `json:"shards"`
}

// Handler sweeps Sweeps times per invocation, Interval apart.
type Handler struct {
	Tenants  *tenantkms.Service
	Interval time.Duration
	Sweeps   int
	Log      *slog.Logger
}

// Result reports the sweeps of one invocation.
type Result struct {
	Sweeps []tenantkms.SweepStats `json:"sweeps"`
}

// Handle serves one scheduled invocation. It never fails the invocation for
// a tenant's error: EventBridge would retry and overlap the next minute.
func (h *Handler) Handle(ctx context.Context, raw json.RawMessage) (Result, error) {
	shards, err := parseShards(raw)
	if err != nil {
		h.Log.Error("poller input", "err", err)
		return Result{}, nil
	}
	var res Result
	for i := range h.Sweeps {
		start := time.Now()
		stats, err := h.Tenants.Sweep(ctx, shards)
		h.Log.Info("sweep", "n", i+1, "tenants", stats.Tenants, "outcomes", stats.Outcomes,
			"list_errors", stats.ListErrors, "ms", stats.Duration.Milliseconds())
		if err != nil {
			h.Log.Error("sweep", "n", i+1, "err", err)
		}
		res.Sweeps = append(res.Sweeps, stats)
		if i == h.Sweeps-1 {
			break
		}
		select {
		case <-time.After(time.Until(start.Add(h.Interval))):
		case <-ctx.Done():
			return res, nil
		}
	}
	return res, nil
}

// parseShards reads Input from a scheduled event (the rule's constant
// input) or falls back to every shard (a plain "Scheduled Event").
func parseShards(raw json.RawMessage) ([]int, error) {
	var in Input
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &in) // a CloudWatch scheduled event has no "shards"
	}
	if len(in.Shards) == 0 {
		return tenantkms.AllShards(), nil
	}
	for _, s := range in.Shards {
		if s < 0 || s >= keyseal.PollShards {
			return nil, fmt.Errorf("shard %d out of range 0-%d", s, keyseal.PollShards-1)
		}
	}
	return in.Shards, nil
}
