package tenantkms_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/boltstore"
	"github.com/keyseal/keyseal/shared/internal/testclock"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/localkms"
	"github.com/keyseal/keyseal/shared/metrics"
	"github.com/keyseal/keyseal/shared/poller"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// BenchmarkSweep measures the poller's sweeps over many tenants against a
// fake KMS answering each call after 40 ms (a verify is a wrap plus an
// unwrap, so 80 ms per tenant), split into shard groups as the scheduled
// poller's fan-out would split them (poller.Plan), each group its own
// service (its own process on AWS) with its own concurrency, all groups
// sweeping at once against one store. The store lives on tmpfs when the
// machine has one, so the figure is keyseal and KMS latency rather than
// this disk's fsync. Metrics are on, as in the Lambda, with the EMF lines
// written to a counter instead of stdout.
//
// The plan is the one the dispatcher makes from a measurement of every
// shard at the floor (its tenants × 2 calls × 40 ms: what a minute without
// CPU contention records); the groups-next metric is the plan the timed
// sweeps' own measurement gives for the next minute.
//
// Each iteration is one minute of polling on a test clock, as one
// scheduled invocation and its workers do it: a sweep at a whole minute
// since the last recorded verify (every tenant's last_verified_at is due:
// the sweep that writes), then a sweep 30 s later (nothing is due: only a
// latency class change writes), both at 40 ms. It reports the slower
// sweep's wall time and its ratio to the floor (tenants × 2 calls × 40 ms
// / total concurrency, the groups' concurrency summed), the peak Go heap
// in use during the sweeps over the heap before them, in all and per
// group (the groups share one heap here: the share is that peak divided
// by the groups), and the tenant row writes per tenant per hour over the
// last minute (the first minute also pays each tenant's first latency
// class change; run two iterations for the steady state) beside the first
// minute's, and how many of the last minute's writes started or ended a
// degradation episode. The poller before issue 12 wrote every verify: 120.
//
// KEYSEAL_BENCH_TENANTS (default 10,000) and KEYSEAL_BENCH_CONCURRENCY
// (checks in flight per group, default 64, the production default) size
// it; the default plans one group and stays quick at -benchtime 1x. The
// 100,000-tenant figure of the README:
//
//	KEYSEAL_BENCH_TENANTS=100000 go test -run '^$' -bench Sweep -benchtime 2x -timeout 30m ./shared/tenantkms/
func BenchmarkSweep(b *testing.B) {
	tenants := benchEnv(b, "KEYSEAL_BENCH_TENANTS", 10_000)
	concurrency := benchEnv(b, "KEYSEAL_BENCH_CONCURRENCY", 64)
	const latency = 40 * time.Millisecond
	const poll = 30 * time.Second
	var emf lineCounter
	dir := b.TempDir()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "keyseal-bench-"); err == nil {
			dir = d
			defer os.RemoveAll(d)
		}
	}
	bolt, err := boltstore.Open(dir + "/keyseal.db")
	if err != nil {
		b.Fatal(err)
	}
	defer bolt.Close()
	store := &writeCounter{Store: bolt}
	lk, err := localkms.Open("")
	if err != nil {
		b.Fatal(err)
	}
	platform, err := lk.CreateKey()
	if err != nil {
		b.Fatal(err)
	}
	clock := testclock.New(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	options := func(concurrency int) tenantkms.Options {
		return tenantkms.Options{PlatformKey: keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: platform}, KMSTimeout: 5 * time.Second,
			Concurrency: concurrency, Metrics: metrics.New(&emf, "bench"), Log: discardLogger(), Now: clock.Now}
	}
	ctx := context.Background()
	// Provision in parallel: bolt serialises the writes, the wraps overlap.
	// The provisioning service (and the TMKs it cached) is gone after.
	perShard := provisionTenants(b, tenantkms.New(store, keyseal.Providers{keyseal.ProviderLocal: lk}, options(8)), tenants)
	if b.Failed() {
		return
	}

	var floorStats []keyseal.ShardStats
	for shard, n := range perShard {
		floorStats = append(floorStats, keyseal.ShardStats{Shard: shard, Tenants: n, Work: time.Duration(n) * 2 * latency})
	}
	groups := poller.Plan(floorStats, concurrency, poll/2, keyseal.PollShards)
	workers := make([]*tenantkms.Service, len(groups))
	for i := range workers {
		workers[i] = tenantkms.New(store, keyseal.Providers{keyseal.ProviderLocal: lk}, options(concurrency))
	}
	// sweep runs every group's sweep at once, as the dispatcher and its
	// workers do, and returns the wall time until the last one ended and
	// what the groups measured.
	sweep := func() (time.Duration, []keyseal.ShardStats) {
		var mu sync.Mutex
		var measured []keyseal.ShardStats
		var swept int
		var wg sync.WaitGroup
		start := time.Now()
		for i, g := range groups {
			wg.Go(func() {
				stats, err := workers[i].Sweep(ctx, g)
				if err != nil {
					b.Error(err)
				}
				mu.Lock()
				defer mu.Unlock()
				if stats.Outcomes[tenantkms.OutcomeHealthy] != stats.Tenants {
					b.Errorf("group %v: %+v", g, stats.Outcomes)
				}
				swept += stats.Tenants
				measured = append(measured, stats.Shards...)
			})
		}
		wg.Wait()
		took := time.Since(start)
		if swept != tenants {
			b.Fatalf("swept %d tenants, want %d", swept, tenants)
		}
		return took, measured
	}
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	baseline := m.HeapInuse

	var peak atomic.Uint64
	var sweeping atomic.Bool // sample during the sweeps only
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&m)
			if sweeping.Load() && m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	lk.SetLatency(latency)
	clock.Advance(tenantkms.VerifiedEvery - poll)
	var slowest time.Duration
	var firstWrites, lastWrites int64
	var nextPlan [][]int
	cpuBefore := cpuTime()
	b.ResetTimer()
	var lastEpisodes int64
	for i := range b.N {
		store.writes.Store(0)
		store.episodes.Store(0)
		sweeping.Store(true)
		clock.Advance(poll) // a minute since the last recorded verify
		took, measured := sweep()
		slowest = max(slowest, took)
		clock.Advance(poll)
		took, _ = sweep()
		slowest = max(slowest, took)
		sweeping.Store(false)
		nextPlan = poller.Plan(measured, concurrency, poll/2, keyseal.PollShards)
		if i == 0 {
			firstWrites = store.writes.Load()
		}
		lastWrites, lastEpisodes = store.writes.Load(), store.episodes.Load()
	}
	b.StopTimer()
	cpu := cpuTime() - cpuBefore
	close(stop)
	<-sampled
	floor := time.Duration(tenants) * 2 * latency / time.Duration(len(groups)*concurrency)
	heap := float64(peak.Load()) - float64(baseline)
	b.ReportMetric(float64(len(groups)), "groups")
	b.ReportMetric(float64(len(nextPlan)), "groups-next")
	b.ReportMetric(slowest.Seconds(), "s/sweep")
	b.ReportMetric(floor.Seconds(), "floor-s")
	b.ReportMetric(float64(slowest)/float64(floor), "x-floor")
	b.ReportMetric(heap/(1<<20), "sweep-heap-MiB")
	b.ReportMetric(heap/float64(len(groups))/(1<<20), "heap-MiB/group")
	b.ReportMetric(heap/float64(tenants), "heap-B/tenant")
	b.ReportMetric(float64(lastWrites)/float64(tenants)*60, "writes/tenant/h")
	b.ReportMetric(float64(firstWrites)/float64(tenants)*60, "first-min-writes/tenant/h")
	b.ReportMetric(float64(lastEpisodes)/float64(tenants)*60, "episode-writes/tenant/h")
	b.ReportMetric(float64(emf.lines.Load())/float64(2*b.N*len(groups)), "emf-docs/sweep/group")
	b.ReportMetric(float64(cpu)/float64(time.Millisecond)/float64(2*b.N*tenants), "cpu-ms/verify")
}

// cpuTime is the process's user plus system CPU time so far: what a
// verify costs this process (keyseal, the local KMS and the bbolt store
// together; a Lambda has DynamoDB's network time instead of bbolt's CPU).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// provisionTenants provisions tenant-000001... on svc from 8 goroutines
// and returns how many landed in each poll shard.
func provisionTenants(b *testing.B, svc *tenantkms.Service, tenants int) [keyseal.PollShards]int {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var perShard [keyseal.PollShards]int
	for range 8 {
		wg.Go(func() {
			for i := next.Add(1); i <= int64(tenants); i = next.Add(1) {
				id := fmt.Sprintf("tenant-%06d", i)
				if _, err := svc.Provision(context.Background(), id, tenantkms.ActorSystem); err != nil {
					b.Error(err)
					return
				}
				mu.Lock()
				perShard[keyseal.ShardOf(id)]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return perShard
}

// benchEnv reads a positive integer benchmark setting, or def.
func benchEnv(b *testing.B, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		b.Fatalf("%s=%q: want a positive integer", name, v)
	}
	return n
}

// writeCounter is a store that counts the tenant row writes, and among
// them those that start or end a degradation episode.
type writeCounter struct {
	keyseal.Store
	writes   atomic.Int64
	episodes atomic.Int64
	degraded sync.Map // tenant id -> bool: in an episode as last written
}

func (w *writeCounter) UpdateTenant(ctx context.Context, t *keyseal.Tenant, c keyseal.Change) error {
	w.writes.Add(1)
	now := t.DegradedSince != nil
	if was, _ := w.degraded.Swap(t.ID, now); was != nil && was.(bool) != now || was == nil && now {
		w.episodes.Add(1)
	}
	return w.Store.UpdateTenant(ctx, t, c)
}

// lineCounter is an io.Writer that counts the lines written to it.
type lineCounter struct{ lines atomic.Int64 }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.lines.Add(int64(bytes.Count(p, []byte{'\n'})))
	return len(p), nil
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
