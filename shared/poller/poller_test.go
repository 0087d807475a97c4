package poller_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/boltstore"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/localkms"
	"github.com/keyseal/keyseal/shared/memstore"
	"github.com/keyseal/keyseal/shared/metrics"
	"github.com/keyseal/keyseal/shared/poller"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// testInterval is the poll interval of these tests: long enough for a
// sweep of a few tenants on a busy machine, since every invocation ends by
// its start plus two intervals.
const testInterval = 300 * time.Millisecond

type fixture struct {
	svc *tenantkms.Service
	kms *localkms.Provider
}

func newFixture(t *testing.T, tenants ...string) fixture {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "k.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	lk, _ := localkms.Open("")
	platform, _ := lk.CreateKey()
	svc := tenantkms.New(store, keyseal.Providers{keyseal.ProviderLocal: lk}, tenantkms.Options{
		PlatformKey: keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: platform}, KMSTimeout: 10 * time.Second})
	for _, id := range tenants {
		if _, err := svc.Provision(context.Background(), id, "test"); err != nil {
			t.Fatal(err)
		}
	}
	return fixture{svc: svc, kms: lk}
}

func (f fixture) handler() *poller.Handler {
	// A fresh service per handler: each invocation is its own process.
	return &poller.Handler{Tenants: f.svc, Interval: testInterval, Sweeps: 2, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
}

func handler(t *testing.T, tenants ...string) *poller.Handler {
	t.Helper()
	return newFixture(t, tenants...).handler()
}

// TestScheduledEventSweepsTwice: a plain EventBridge scheduled event sweeps
// every shard, twice.
func TestScheduledEventSweepsTwice(t *testing.T) {
	h := handler(t, "acme", "globex", "initech")
	ev := json.RawMessage(`{"version":"0","id":"1","detail-type":"Scheduled Event","source":"aws.events","detail":{}}`)
	res, err := h.Handle(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Sweeps) != 2 {
		t.Fatalf("%d sweeps, want 2", len(res.Sweeps))
	}
	for _, s := range res.Sweeps {
		if s.Tenants != 3 || s.Outcomes[tenantkms.OutcomeHealthy] != 3 {
			t.Fatalf("sweep: %+v", s)
		}
	}
}

// TestShardInput: the rule's constant input can restrict a sweep to some
// shards; a bad input is logged and sweeps nothing rather than failing the
// invocation (which EventBridge would retry into the next minute).
func TestShardInput(t *testing.T) {
	h := handler(t, "acme")
	shard := keyseal.ShardOf("acme")
	other := (shard + 1) % keyseal.PollShards
	in, _ := json.Marshal(poller.Input{Shards: []int{other}})
	res, err := h.Handle(context.Background(), in)
	if err != nil || res.Sweeps[0].Tenants != 0 {
		t.Fatalf("other shard: %+v %v", res, err)
	}
	in, _ = json.Marshal(poller.Input{Shards: []int{shard, shard}})
	if res, err = h.Handle(context.Background(), in); err != nil || res.Sweeps[0].Tenants != 1 || len(res.Shards) != 1 {
		t.Fatalf("own shard, named twice: %+v %v", res, err)
	}
	if res, err = h.Handle(context.Background(), json.RawMessage(`{"shards":[99]}`)); err != nil || len(res.Sweeps) != 0 {
		t.Fatalf("bad shard: %+v %v", res, err)
	}
}

// TestCanceledInvocationStops: a Lambda deadline between sweeps ends the
// invocation cleanly.
func TestCanceledInvocationStops(t *testing.T) {
	h := handler(t, "acme")
	h.Interval = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	res, err := h.Handle(ctx, nil)
	if err != nil || len(res.Sweeps) != 1 {
		t.Fatalf("%+v %v", res, err)
	}
}

// TestInvocationEndsWithItsMinute: the sweeps of an invocation end by its
// start plus Sweeps × Interval (the next minute's start), even when the
// KMS is so slow that a sweep would run far past it.
func TestInvocationEndsWithItsMinute(t *testing.T) {
	f := newFixture(t, "acme", "globex")
	h := f.handler()
	f.kms.SetLatency(3 * time.Second) // a verify: 6 s; two sweeps: 12 s without the bound
	began := time.Now()
	res, err := h.Handle(context.Background(), nil)
	if took := time.Since(began); err != nil || took > 2*time.Second {
		t.Fatalf("invocation took %v (%v), want about %v", took, err, 2*testInterval)
	}
	if len(res.Sweeps) != 1 || res.Sweeps[0].Outcomes[tenantkms.OutcomeHealthy] != 0 {
		t.Fatalf("sweeps %+v, want one cut short", res.Sweeps)
	}
}

// TestStaleEventSweepsNothing: a worker event that arrives after its
// minute is over (Lambda's async queue held it) sweeps nothing, so it
// never overlaps the next minute's sweeps.
func TestStaleEventSweepsNothing(t *testing.T) {
	h := handler(t, "acme")
	in, _ := json.Marshal(poller.Input{Shards: []int{keyseal.ShardOf("acme")}, Start: time.Now().Add(-3 * testInterval)})
	if res, err := h.Handle(context.Background(), in); err != nil || len(res.Sweeps) != 0 {
		t.Fatalf("stale event: %+v %v", res, err)
	}
	// And a scheduled event's "time" is its minute's start.
	ev := fmt.Sprintf(`{"detail-type":"Scheduled Event","source":"aws.events","time":%q,"detail":{}}`,
		time.Now().Add(-time.Minute).UTC().Format(time.RFC3339))
	if res, err := h.Handle(context.Background(), json.RawMessage(ev)); err != nil || len(res.Sweeps) != 0 {
		t.Fatalf("stale scheduled event: %+v %v", res, err)
	}
}

func TestPlan(t *testing.T) {
	const c, budget = 64, 15 * time.Second
	capacity := c * budget // the work one invocation sweeps in budget
	even := func(total time.Duration) []keyseal.ShardStats {
		var st []keyseal.ShardStats
		for s := range keyseal.PollShards {
			st = append(st, keyseal.ShardStats{Shard: s, Tenants: 100, Work: total / keyseal.PollShards})
		}
		return st
	}
	for _, tc := range []struct {
		name   string
		stats  []keyseal.ShardStats
		max    int
		groups int
	}{
		{"no measurement", nil, 16, 1},
		{"fits one invocation", even(capacity * 9 / 10), 16, 1},
		{"just over", even(capacity + capacity/10), 16, 2},
		{"100k tenants at 80 ms: two shards are 15.6 s", even(100_000 * 80 * time.Millisecond), 16, 16},
		{"50k tenants at 80 ms: three shards are 11.7 s", even(50_000 * 80 * time.Millisecond), 16, 6},
		{"capped by MaxGroups", even(100 * capacity), 4, 4},
		{"capped by the shards", even(100 * capacity), 99, keyseal.PollShards},
		{"skewed", []keyseal.ShardStats{{Shard: 3, Work: capacity}, {Shard: 9, Work: capacity / 2}, {Shard: 12, Work: capacity / 2}}, 16, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			groups := poller.Plan(tc.stats, c, budget, tc.max)
			if len(groups) != tc.groups {
				t.Fatalf("%d groups, want %d: %v", len(groups), tc.groups, groups)
			}
			var all []int
			work := map[int]time.Duration{}
			for _, st := range tc.stats {
				work[st.Shard] = st.Work
			}
			var loads []time.Duration
			for _, g := range groups {
				if len(g) == 0 || !slices.IsSorted(g) {
					t.Fatalf("group %v: empty or unsorted", g)
				}
				all = append(all, g...)
				var load time.Duration
				for _, s := range g {
					load += work[s]
				}
				loads = append(loads, load)
			}
			slices.Sort(all)
			if !slices.Equal(all, tenantkms.AllShards()) {
				t.Fatalf("groups %v do not cover each shard once", groups)
			}
			// Balanced: when the work fits the groups, every group fits the budget.
			if tc.groups < tc.max && tc.groups < keyseal.PollShards {
				for i, l := range loads {
					if l > capacity {
						t.Errorf("group %d: %v of work, over one invocation's %v", i, l, capacity)
					}
				}
			}
		})
	}
}

// fakeWorker records the payloads the dispatcher queues; fail refuses the
// groups it names by first shard.
type fakeWorker struct {
	mu       sync.Mutex
	payloads []poller.Input
	fail     map[int]bool
}

func (w *fakeWorker) InvokeAsync(_ context.Context, payload []byte) error {
	var in poller.Input
	if err := json.Unmarshal(payload, &in); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fail[in.Shards[0]] {
		return errors.New("TooManyRequestsException: Rate Exceeded")
	}
	w.payloads = append(w.payloads, in)
	return nil
}

// emitted records the metrics a handler emits.
type emitted struct {
	mu     sync.Mutex
	values []metrics.Value
}

func (e *emitted) Emit(values ...metrics.Value) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.values = append(e.values, values...)
}

// of returns the values emitted as name.
func (e *emitted) of(name string) []float64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []float64
	for _, v := range e.values {
		if v.Name == name {
			if v.Unit != metrics.Count {
				panic(name + " is not a Count")
			}
			out = append(out, v.Values...)
		}
	}
	return out
}

// tenantsOfEveryShard returns ids covering every poll shard.
func tenantsOfEveryShard() []string {
	var ids []string
	seen := map[int]bool{}
	for i := 0; len(seen) < keyseal.PollShards; i++ {
		id := fmt.Sprintf("tenant-%03d", i)
		ids = append(ids, id)
		seen[keyseal.ShardOf(id)] = true
	}
	return ids
}

// TestDispatcherFansOut: with measurements that one invocation cannot
// sweep in half the interval, the scheduled invocation plans groups,
// queues one worker invocation per group but its own (each with its
// shards and the minute's start), sweeps its own group only, and the
// workers' payloads sweep the rest: every tenant exactly once per sweep,
// and every shard's measurement recorded for the next minute.
func TestDispatcherFansOut(t *testing.T) {
	ids := tenantsOfEveryShard()
	f := newFixture(t, ids...)
	stats := memstore.New()
	// Measured last minute: 2.5 invocations' worth of work at concurrency 8.
	var last []keyseal.ShardStats
	for s := range keyseal.PollShards {
		last = append(last, keyseal.ShardStats{Shard: s, Tenants: 10, Work: 5 * 8 * (testInterval / 2) / 2 / keyseal.PollShards, MeasuredAt: time.Now()})
	}
	if err := stats.PutShardStats(context.Background(), last); err != nil {
		t.Fatal(err)
	}
	worker := &fakeWorker{}
	h := f.handler()
	em := &emitted{}
	h.Stats, h.Fanout, h.Metrics = stats, &poller.Fanout{Worker: worker, Concurrency: 8, MaxGroups: 16}, em
	minute := time.Now().Truncate(time.Millisecond)
	ev := fmt.Sprintf(`{"detail-type":"Scheduled Event","source":"aws.events","time":%q,"detail":{}}`, minute.UTC().Format(time.RFC3339Nano))
	res, err := h.Handle(context.Background(), json.RawMessage(ev))
	if err != nil {
		t.Fatal(err)
	}
	if res.Groups != 3 || res.Dispatched != 2 || res.DispatchErrors != 0 || len(worker.payloads) != 2 {
		t.Fatalf("plan: %d groups, %d dispatched, %d errors, payloads %+v", res.Groups, res.Dispatched, res.DispatchErrors, worker.payloads)
	}
	// A minute that fans out reports its errors, none too: the alarm's
	// series has data whenever the poller dispatches.
	if got := em.of(metrics.PollDispatchErrors); !slices.Equal(got, []float64{0}) {
		t.Fatalf("PollDispatchErrors %v, want [0]", got)
	}
	swept := map[string]int{}
	count := func(shards []int, sweep tenantkms.SweepStats) {
		for _, id := range ids {
			if slices.Contains(shards, keyseal.ShardOf(id)) {
				swept[id]++
			}
		}
		want := 0
		for _, id := range ids {
			if slices.Contains(shards, keyseal.ShardOf(id)) {
				want++
			}
		}
		if sweep.Tenants != want {
			t.Fatalf("shards %v: swept %d tenants, want %d", shards, sweep.Tenants, want)
		}
	}
	count(res.Shards, res.Sweeps[0])
	for _, p := range worker.payloads {
		if !p.Start.Equal(minute) {
			t.Fatalf("worker start %v, want the scheduled time %v", p.Start, minute)
		}
		// The worker is the same code without a Fanout, in its own process.
		w := newWorker(f, stats)
		payload, _ := json.Marshal(p)
		wres, err := w.Handle(context.Background(), payload)
		if err != nil || len(wres.Sweeps) == 0 || !slices.Equal(wres.Shards, p.Shards) {
			t.Fatalf("worker %v: %+v %v", p.Shards, wres, err)
		}
		count(p.Shards, wres.Sweeps[0])
	}
	for _, id := range ids {
		if swept[id] != 1 {
			t.Fatalf("tenant %s (shard %d) swept %d times in the first sweeps, want 1", id, keyseal.ShardOf(id), swept[id])
		}
	}
	got, _ := stats.ShardStats(context.Background())
	for _, st := range got {
		if !st.MeasuredAt.After(minute.Add(-time.Second)) || st.Tenants == 0 || st.Work <= 0 {
			t.Fatalf("shard %d not measured this minute: %+v", st.Shard, st)
		}
	}
}

func newWorker(f fixture, stats keyseal.PollStats) *poller.Handler {
	w := f.handler()
	w.Stats = stats
	return w
}

// TestOneGroupFailing: a refused worker invoke is counted, logged and
// emitted as PollDispatchErrors (which an alarm watches); the other groups
// are queued and the dispatcher sweeps its own group as
// planned, not the failed one's.
func TestOneGroupFailing(t *testing.T) {
	f := newFixture(t, tenantsOfEveryShard()...)
	stats := memstore.New()
	var last []keyseal.ShardStats
	for s := range keyseal.PollShards {
		last = append(last, keyseal.ShardStats{Shard: s, Work: 5 * 8 * (testInterval / 2) / 2 / keyseal.PollShards})
	}
	_ = stats.PutShardStats(context.Background(), last)
	groups := poller.Plan(last, 8, testInterval/2, 16)
	worker := &fakeWorker{fail: map[int]bool{groups[1][0]: true}}
	h := f.handler()
	em := &emitted{}
	h.Stats, h.Fanout, h.Metrics = stats, &poller.Fanout{Worker: worker, Concurrency: 8, MaxGroups: 16}, em
	res, err := h.Handle(context.Background(), nil)
	if err != nil || res.Groups != 3 || res.Dispatched != 1 || res.DispatchErrors != 1 || !slices.Equal(res.Shards, groups[0]) {
		t.Fatalf("%+v %v", res, err)
	}
	if got := em.of(metrics.PollDispatchErrors); !slices.Equal(got, []float64{1}) {
		t.Fatalf("PollDispatchErrors %v, want [1]", got)
	}
	if len(worker.payloads) != 1 || !slices.Equal(worker.payloads[0].Shards, groups[2]) {
		t.Fatalf("queued %+v, want group 2 %v", worker.payloads, groups[2])
	}
	if len(res.Sweeps) != 2 {
		t.Fatalf("%d own sweeps, want 2", len(res.Sweeps))
	}
}

// TestNoMeasurementSweepsAllAndRecords: a new deployment's first minute is
// one group, and its first sweep records every shard for the next plan.
func TestNoMeasurementSweepsAllAndRecords(t *testing.T) {
	f := newFixture(t, tenantsOfEveryShard()...)
	stats := memstore.New()
	worker := &fakeWorker{}
	h := f.handler()
	h.Stats, h.Fanout = stats, &poller.Fanout{Worker: worker, Concurrency: 8, MaxGroups: 16}
	res, err := h.Handle(context.Background(), nil)
	if err != nil || res.Groups != 1 || len(worker.payloads) != 0 || len(res.Shards) != keyseal.PollShards {
		t.Fatalf("%+v %v", res, err)
	}
	if got, _ := stats.ShardStats(context.Background()); len(got) != keyseal.PollShards {
		t.Fatalf("%d shards recorded, want %d", len(got), keyseal.PollShards)
	}
}

// TestNoIntervalNoMinute: the local server's handler (one sweep a tick,
// no interval) has no minute to end with, so a plain call sweeps.
func TestNoIntervalNoMinute(t *testing.T) {
	h := handler(t, "acme")
	h.Interval, h.Sweeps = 0, 1
	if res, err := h.Handle(context.Background(), nil); err != nil || len(res.Sweeps) != 1 || res.Sweeps[0].Tenants != 1 {
		t.Fatalf("%+v %v", res, err)
	}
}
