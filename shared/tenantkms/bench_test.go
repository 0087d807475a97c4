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
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/boltstore"
	"github.com/keyseal/keyseal/shared/internal/testclock"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/localkms"
	"github.com/keyseal/keyseal/shared/metrics"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// BenchmarkSweep measures the poller's sweeps over many tenants against a
// fake KMS answering each call after 40 ms (a verify is a wrap plus an
// unwrap, so 80 ms per tenant). The store lives on tmpfs when the machine
// has one, so the figure is keyseal and KMS latency rather than this
// disk's fsync. Metrics are on, as in the Lambda, with the EMF lines
// written to a counter instead of stdout.
//
// Each iteration is one minute of polling on a test clock, as one
// scheduled invocation does it: a timed sweep at a whole minute since the
// last recorded verify (every tenant's last_verified_at is due: the sweep
// that writes), then an untimed sweep 30 s later with the KMS answering at
// once (nothing is due: it writes nothing). It reports the timed sweep's
// wall time and its ratio to the floor (tenants x 2 calls x 40 ms /
// concurrency), the peak Go heap in use during the timed sweeps (in MiB and in
// bytes per tenant), and the tenant row writes per tenant per hour over
// both sweeps (the old poller wrote every verify: 120).
//
// KEYSEAL_BENCH_TENANTS (default 10,000) and KEYSEAL_BENCH_CONCURRENCY
// (default 64, the production default) size it; the default stays quick at
// -benchtime 1x. The 100,000-tenant figure of the README:
//
//	KEYSEAL_BENCH_TENANTS=100000 KEYSEAL_BENCH_CONCURRENCY=512 \
//	  go test -run '^$' -bench Sweep -benchtime 1x -timeout 30m ./shared/tenantkms/
func BenchmarkSweep(b *testing.B) {
	tenants := benchEnv(b, "KEYSEAL_BENCH_TENANTS", 10_000)
	concurrency := benchEnv(b, "KEYSEAL_BENCH_CONCURRENCY", 64)
	const latency = 40 * time.Millisecond
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
	svc := tenantkms.New(store, keyseal.Providers{keyseal.ProviderLocal: lk}, tenantkms.Options{
		PlatformKey: keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: platform}, KMSTimeout: 5 * time.Second,
		Concurrency: concurrency, Metrics: metrics.New(&emf, "bench"), Log: discardLogger(), Now: clock.Now,
	})
	ctx := context.Background()
	// Provision in parallel: bolt serialises the writes, the wraps overlap.
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= int64(tenants); i = next.Add(1) {
				if _, err := svc.Provision(ctx, fmt.Sprintf("tenant-%06d", i), tenantkms.ActorSystem); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	sweep := func() {
		stats, err := svc.Sweep(ctx, tenantkms.AllShards())
		if err != nil {
			b.Fatal(err)
		}
		if stats.Tenants != tenants || stats.Outcomes[tenantkms.OutcomeHealthy] != tenants {
			b.Fatalf("sweep: %+v", stats)
		}
	}
	runtime.GC()
	store.writes.Store(0)

	var peak atomic.Uint64
	var timed atomic.Bool // sample the timed sweeps only
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&m)
			if timed.Load() && m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	const poll = 30 * time.Second
	clock.Advance(tenantkms.VerifiedEvery - poll)
	b.ResetTimer()
	for range b.N {
		clock.Advance(poll) // a minute since the last recorded verify
		lk.SetLatency(latency)
		timed.Store(true)
		sweep()
		timed.Store(false)
		b.StopTimer()
		clock.Advance(poll)
		lk.SetLatency(0)
		sweep()
		b.StartTimer()
	}
	b.StopTimer()
	close(stop)
	<-sampled
	perSweep := b.Elapsed() / time.Duration(b.N)
	floor := time.Duration(tenants) * 2 * latency / time.Duration(concurrency)
	b.ReportMetric(perSweep.Seconds(), "s/sweep")
	b.ReportMetric(floor.Seconds(), "floor-s")
	b.ReportMetric(float64(perSweep)/float64(floor), "x-floor")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
	b.ReportMetric(float64(peak.Load())/float64(tenants), "heap-B/tenant")
	b.ReportMetric(float64(store.writes.Load())/float64(tenants)/float64(b.N)*60, "writes/tenant/h")
	b.ReportMetric(float64(emf.lines.Load())/float64(2*b.N), "emf-docs/sweep")
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

// writeCounter is a store that counts the tenant row writes.
type writeCounter struct {
	keyseal.Store
	writes atomic.Int64
}

func (w *writeCounter) UpdateTenant(ctx context.Context, t *keyseal.Tenant, c keyseal.Change) error {
	w.writes.Add(1)
	return w.Store.UpdateTenant(ctx, t, c)
}

// lineCounter is an io.Writer that counts the lines written to it.
type lineCounter struct{ lines atomic.Int64 }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.lines.Add(int64(bytes.Count(p, []byte{'\n'})))
	return len(p), nil
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
