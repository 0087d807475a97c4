package coldstart_test

import (
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyseal/keyseal/scripts/coldstart"
)

const runTimeout = 20 * time.Second

// buildDir holds the binaries while the test binary runs (TestMain
// removes it).
var buildDir string

// build builds the binaries once per test binary (the benchmark runs at
// b.N = 1 before its real count).
var build = sync.OnceValues(func() ([]coldstart.Binary, error) {
	dir, err := os.MkdirTemp("", "keyseal-coldstart-")
	if err != nil {
		return nil, err
	}
	buildDir = dir
	root, err := filepath.Abs("../..")
	if err != nil {
		return nil, err
	}
	return coldstart.Build(context.Background(), root, dir)
})

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

func binaries(tb testing.TB) []coldstart.Binary {
	tb.Helper()
	bins, err := build()
	if err != nil {
		tb.Fatal(err)
	}
	return bins
}

// TestFakeRuntimeAPI: the minimal function, under the fake Runtime API,
// takes its first invocation from GET /next and posts its answer to
// /response, and every Lambda reaches its first GET /next with the
// stack's environment (no init error, no exit): so what the benchmark
// times is a real init.
func TestFakeRuntimeAPI(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every Lambda")
	}
	closed, err := coldstart.ClosedAddr()
	if err != nil {
		t.Fatal(err)
	}
	for _, bin := range binaries(t) {
		var event []byte
		if bin.Name == coldstart.Minimal {
			event = []byte(`{}`)
		}
		res, err := coldstart.Run(context.Background(), bin.Path, coldstart.Env(bin.Name, closed), event, runTimeout)
		if err != nil {
			t.Fatal(err)
		}
		if res.Init <= 0 {
			t.Errorf("%s: init %v", bin.Name, res.Init)
		}
		if bin.Name == coldstart.Minimal && string(res.Response) != `"ok"` {
			t.Errorf("minimal answered %q, want \"ok\"", res.Response)
		}
	}
}

// TestInitTrace reads GODEBUG=inittrace=1 lines, summing a package's
// init functions.
func TestInitTrace(t *testing.T) {
	got := coldstart.InitTrace("init runtime @0.01 ms, 0.02 ms clock, 0 bytes, 0 allocs\n" +
		"init regexp/syntax @0.1 ms, 0.25 ms clock, 9000 bytes, 20 allocs\nnot a trace line\n" +
		"init regexp/syntax @0.4 ms, 0.5 ms clock, 1 bytes, 1 allocs\n")
	if p := got.Packages; len(p) != 2 || p["runtime"] != 0.02 || p["regexp/syntax"] != 0.75 || got.MainAt != 0.9 || got.Bytes["regexp/syntax"] != 9001 {
		t.Fatalf("InitTrace: %v", got)
	}
}

// maxKeysealInitBytes bounds what one keyseal package's init may
// allocate: small lookup maps, no regexp, no table. (One compiled
// validation regexp was 40-360 KB; the largest package init left is
// shared/awskms's error-code maps, 1.7 KB.)
const maxKeysealInitBytes = 4 << 10

// TestKeysealPackagesBuildNothingAtInit: in every Lambda, started with
// the stack's environment, no keyseal package's init allocates more than
// maxKeysealInitBytes (GODEBUG=inittrace=1 counts bytes exactly): the
// regexps and tables a request may never need are built on first use.
func TestKeysealPackagesBuildNothingAtInit(t *testing.T) {
	if testing.Short() {
		t.Skip("builds every Lambda")
	}
	closed, err := coldstart.ClosedAddr()
	if err != nil {
		t.Fatal(err)
	}
	for _, bin := range binaries(t) {
		res, err := coldstart.Run(context.Background(), bin.Path, append(coldstart.Env(bin.Name, closed), "GODEBUG=inittrace=1"), nil, runTimeout)
		if err != nil {
			t.Fatal(err)
		}
		tr := coldstart.InitTrace(res.Stderr)
		if len(tr.Bytes) < 10 {
			t.Fatalf("%s: %d packages in the init trace: is GODEBUG=inittrace=1 read?", bin.Name, len(tr.Bytes))
		}
		for pkg, n := range tr.Bytes {
			if strings.HasPrefix(pkg, "github.com/keyseal/keyseal/") && n > maxKeysealInitBytes {
				t.Errorf("%s: %s allocates %d bytes at init (at most %d): build it on first use", bin.Name, pkg, n, maxKeysealInitBytes)
			}
		}
	}
}

// BenchmarkColdStart execs every Lambda and the minimal aws-lambda-go
// function b.N times each under the fake Runtime API, in a fresh random
// order each round so that they share the machine's noise, and prints per
// function the median and p90 init (exec → first GET /next), the ratio of
// its median to the minimal function's (the target is ≤ 2) and the host
// binary's size. Reported metrics: each function's ratio and the worst.
// KEYSEAL_COLDSTART_INITTRACE=1 also runs each with GODEBUG=inittrace=1
// and prints the packages whose init costs most (median clock ms; the
// trace itself slows init a little, so its rounds are not timed).
func BenchmarkColdStart(b *testing.B) {
	bins := binaries(b)
	closed, err := coldstart.ClosedAddr()
	if err != nil {
		b.Fatal(err)
	}
	trace := os.Getenv("KEYSEAL_COLDSTART_INITTRACE") == "1"
	inits := map[string][]time.Duration{}
	traces := map[string][]coldstart.Trace{}
	traced := map[string][]time.Duration{}
	b.ResetTimer()
	for range b.N {
		for _, i := range rand.Perm(len(bins)) {
			bin := bins[i]
			env := coldstart.Env(bin.Name, closed)
			res, err := coldstart.Run(context.Background(), bin.Path, env, nil, runTimeout)
			if err != nil {
				b.Fatal(err)
			}
			inits[bin.Name] = append(inits[bin.Name], res.Init)
			if trace {
				res, err := coldstart.Run(context.Background(), bin.Path, append(env, "GODEBUG=inittrace=1"), nil, runTimeout)
				if err != nil {
					b.Fatal(err)
				}
				traces[bin.Name] = append(traces[bin.Name], coldstart.InitTrace(res.Stderr))
				traced[bin.Name] = append(traced[bin.Name], res.Init)
			}
		}
	}
	b.StopTimer()
	if b.N == 1 && flag.Lookup("test.benchtime").Value.String() != "1x" {
		return // the probe run before the requested count: no table
	}
	floor := coldstart.Median(inits[coldstart.Minimal])
	var table strings.Builder
	fmt.Fprintf(&table, "\ncold start, %d execs each (exec → first GET /next), host build\n", b.N)
	fmt.Fprintf(&table, "%-18s %10s %10s %7s %12s\n", "function", "median", "p90", "ratio", "bytes")
	worst := 0.0
	for _, bin := range bins {
		med := coldstart.Median(inits[bin.Name])
		ratio := float64(med) / float64(floor)
		fmt.Fprintf(&table, "%-18s %8.2fms %8.2fms %6.2fx %12d\n", bin.Name, ms(med), ms(coldstart.P90(inits[bin.Name])), ratio, bin.Size)
		if bin.Name != coldstart.Minimal {
			b.ReportMetric(ratio, bin.Name+"-x")
			worst = max(worst, ratio)
		}
	}
	b.ReportMetric(worst, "worst-x")
	b.ReportMetric(ms(floor), "minimal-ms")
	if trace {
		for _, bin := range bins {
			writeTrace(&table, bin.Name, traces[bin.Name], coldstart.Median(traced[bin.Name]))
		}
	}
	fmt.Print(table.String())
}

// writeTrace prints the packages of one function whose median init clock
// is at least 0.05 ms, costliest first, the median total, when main
// started and when the traced process asked for its first invocation
// (the difference is main's own wiring).
func writeTrace(w *strings.Builder, name string, runs []coldstart.Trace, init time.Duration) {
	per := map[string][]float64{}
	var totals, mains []float64
	for _, run := range runs {
		total := 0.0
		mains = append(mains, run.MainAt)
		for pkg, v := range run.Packages {
			per[pkg] = append(per[pkg], v)
			total += v
		}
		totals = append(totals, total)
	}
	type row struct {
		pkg string
		ms  float64
	}
	var rows []row
	for pkg, v := range per {
		for len(v) < len(runs) { // absent from a run: 0 there
			v = append(v, 0)
		}
		if m := median(v); m >= 0.05 {
			rows = append(rows, row{pkg, m})
		}
	}
	sort.Slice(rows, func(i, j int) bool { return rows[i].ms > rows[j].ms })
	groups := map[string][]float64{}
	for _, run := range runs {
		sum := map[string]float64{}
		for pkg, v := range run.Packages {
			sum[origin(pkg)] += v
		}
		for _, g := range origins {
			groups[g] = append(groups[g], sum[g])
		}
	}
	fmt.Fprintf(w, "\n%s, median of %d traced runs: package init %.2f ms in all; main starts %.2f ms after the runtime, GET /next %.2f ms after exec\n",
		name, len(runs), median(totals), median(mains), ms(init))
	fmt.Fprint(w, "  by origin (medians):")
	for _, g := range origins {
		fmt.Fprintf(w, " %s %.2f ms;", g, median(groups[g]))
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		fmt.Fprintf(w, "  %6.2f ms  %s\n", r.ms, r.pkg)
	}
}

// origins are where linked packages come from, for the trace's summary.
var origins = []string{"Go", "AWS SDK", "Google", "Azure", "keyseal", "other"}

// origin names where pkg comes from: Go's standard library, the AWS SDK
// (and smithy), the Google SDK with its gRPC, protobuf, auth and
// OpenTelemetry dependencies, the Azure SDK with MSAL, keyseal, or other.
func origin(pkg string) string {
	first, _, _ := strings.Cut(pkg, "/")
	switch {
	case !strings.Contains(first, "."):
		return "Go"
	case strings.HasPrefix(pkg, "github.com/aws/"):
		return "AWS SDK"
	case first == "cloud.google.com" || first == "google.golang.org" || first == "go.opentelemetry.io" ||
		strings.HasPrefix(pkg, "github.com/googleapis/") || strings.HasPrefix(pkg, "github.com/google/s2a-go") ||
		strings.HasPrefix(pkg, "github.com/felixge/httpsnoop") || strings.HasPrefix(pkg, "github.com/go-logr/"):
		return "Google"
	case strings.HasPrefix(pkg, "github.com/Azure/") || strings.HasPrefix(pkg, "github.com/AzureAD/") ||
		strings.HasPrefix(pkg, "github.com/golang-jwt/") || strings.HasPrefix(pkg, "github.com/kylelemons/") || strings.HasPrefix(pkg, "github.com/pkg/browser"):
		return "Azure"
	case strings.HasPrefix(pkg, "github.com/keyseal/"):
		return "keyseal"
	}
	return "other"
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	c := slices.Clone(v)
	slices.Sort(c)
	return c[(len(c)-1)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
