package tenantkms_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/boltstore"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/localkms"
	"github.com/keyseal/keyseal/shared/metrics"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// BenchmarkSweep10kTenants measures one poller sweep over 10,000 tenants
// against a fake KMS answering each call after 40 ms (a verify is a wrap
// plus an unwrap, so 80 ms per tenant), at the default concurrency of 64.
// The store lives on tmpfs when the machine has one, so the figure is
// keyseal and KMS latency rather than this disk's fsync. Metrics are on, as
// in the Lambda, with the EMF lines written to a counter instead of stdout.
// It reports the sweep's wall time (ns/op), the peak Go heap during the
// sweep and the EMF documents per sweep.
//
//	go test -run '^$' -bench Sweep10k -benchtime 1x ./shared/tenantkms/
func BenchmarkSweep10kTenants(b *testing.B) {
	const tenants = 10_000
	var emf lineCounter
	dir := b.TempDir()
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "keyseal-bench-"); err == nil {
			dir = d
			defer os.RemoveAll(d)
		}
	}
	store, err := boltstore.Open(dir + "/keyseal.db")
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	lk, err := localkms.Open("")
	if err != nil {
		b.Fatal(err)
	}
	platform, err := lk.CreateKey()
	if err != nil {
		b.Fatal(err)
	}
	svc := tenantkms.New(store, keyseal.Providers{keyseal.ProviderLocal: lk}, tenantkms.Options{
		PlatformKey: keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: platform}, KMSTimeout: 5 * time.Second,
		Metrics: metrics.New(&emf, "bench"), Log: discardLogger(),
	})
	ctx := context.Background()
	// Provision in parallel: bolt serialises the writes, the wraps overlap.
	var next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := next.Add(1); i <= tenants; i = next.Add(1) {
				if _, err := svc.Provision(ctx, fmt.Sprintf("tenant-%05d", i), tenantkms.ActorSystem); err != nil {
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
	lk.SetLatency(40 * time.Millisecond)

	var peak atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-stop:
				return
			case <-t.C:
			}
		}
	}()
	b.ResetTimer()
	for b.Loop() {
		stats, err := svc.Sweep(ctx, tenantkms.AllShards())
		if err != nil {
			b.Fatal(err)
		}
		if stats.Tenants != tenants || stats.Outcomes[tenantkms.OutcomeHealthy] != tenants {
			b.Fatalf("sweep: %+v", stats)
		}
	}
	b.StopTimer()
	close(stop)
	<-sampled
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
	b.ReportMetric(b.Elapsed().Seconds()/float64(b.N), "s/sweep")
	b.ReportMetric(float64(emf.lines.Load())/float64(b.N), "emf-docs/sweep")
}

// lineCounter is an io.Writer that counts the lines written to it.
type lineCounter struct{ lines atomic.Int64 }

func (c *lineCounter) Write(p []byte) (int, error) {
	c.lines.Add(int64(bytes.Count(p, []byte{'\n'})))
	return len(p), nil
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
