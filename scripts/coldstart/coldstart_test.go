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
	"strconv"
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
// b.N = 1 before its real count): the minimal function, then every
// Lambda as make build builds it for dev (AWS only), then every Lambda
// with both cloud SDKs (an environment configuring GCP and Azure).
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
	dev, err := coldstart.DevVariant(context.Background(), root)
	if err != nil {
		return nil, err
	}
	var all []coldstart.Binary
	for i, v := range []coldstart.Variant{dev, coldstart.FullVariant} {
		sub := filepath.Join(dir, strconv.Itoa(i))
		if err := os.Mkdir(sub, 0o755); err != nil {
			return nil, err
		}
		bins, err := coldstart.Build(context.Background(), root, sub, v)
		if err != nil {
			return nil, err
		}
		if i > 0 {
			bins = bins[1:] // one minimal function
		}
		all = append(all, bins...)
	}
	return all, nil
})

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// startable skips t in -short mode (it builds every Lambda) and returns
// the closed loopback address the Lambdas' endpoints point at.
func startable(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds every Lambda")
	}
	closed, err := coldstart.ClosedAddr()
	if err != nil {
		t.Fatal(err)
	}
	return closed
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
	closed := startable(t)
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
			t.Errorf("%s (%s): init %v", bin.Name, bin.Variant, res.Init)
		}
		if bin.Name == coldstart.Minimal && string(res.Response) != `"ok"` {
			t.Errorf("minimal answered %q, want \"ok\"", res.Response)
		}
	}
}

// gcpEnv and azureEnv configure one provider as the CDK stack would.
var (
	gcpEnv = []string{`KEYSEAL_GCP_CREDENTIALS={"type":"external_account","audience":"//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/aws/providers/keyseal",` +
		`"subject_token_type":"urn:ietf:params:aws:token-type:aws4_request","token_url":"https://sts.googleapis.com/v1/token",` +
		`"credential_source":{"environment_id":"aws1","regional_cred_verification_url":"https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"}}`,
		"KEYSEAL_GCP_SERVICE_ACCOUNT=keyseal@keyseal-dev.iam.gserviceaccount.com"}
	azureEnv = []string{"KEYSEAL_AZURE_CLIENT_ID=11111111-2222-3333-4444-555555555555", "KEYSEAL_AZURE_TENANT_ID=66666666-7777-8888-9999-000000000000",
		"KEYSEAL_AZURE_CLIENT_SECRET_ARN=arn:aws:secretsmanager:us-east-1:111122223333:secret:keyseal-dev-azure-AbC123"}
)

// TestTaggedBuildRefusesAConfiguredProvider: session-issue built as make
// build builds it for dev (-tags keyseal_nogcp,keyseal_noazure), started
// with KEYSEAL_GCP_* (KEYSEAL_AZURE_*) set, fails its init naming the
// variable and the tag to drop, never serving without that provider;
// the full build started with KEYSEAL_GCP_* reaches its first GET /next
// (Google's client connects on first use, not at init).
func TestTaggedBuildRefusesAConfiguredProvider(t *testing.T) {
	closed := startable(t)
	var tagged, full coldstart.Binary
	for _, bin := range binaries(t) {
		switch {
		case bin.Name != "session-issue":
		case bin.Variant == coldstart.FullVariant.Name:
			full = bin
		default:
			tagged = bin
		}
	}
	if tagged.Path == "" || full.Path == "" {
		t.Fatal("session-issue is not built in both variants")
	}
	env := coldstart.Env("session-issue", closed)
	for _, c := range []struct {
		vars []string
		want []string
	}{
		{gcpEnv, []string{"KEYSEAL_GCP_CREDENTIALS", "-tags keyseal_nogcp", "rebuild without that tag"}},
		{azureEnv, []string{"KEYSEAL_AZURE_CLIENT_ID", "-tags keyseal_noazure", "rebuild without that tag"}},
	} {
		_, err := coldstart.Run(context.Background(), tagged.Path, append(env, c.vars...), nil, runTimeout)
		for _, want := range c.want {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s with %s: %v, want an init error naming %q", tagged.Variant, c.want[0], err, want)
			}
		}
	}
	if _, err := coldstart.Run(context.Background(), full.Path, append(env, gcpEnv...), nil, runTimeout); err != nil {
		t.Errorf("%s with KEYSEAL_GCP_CREDENTIALS: %v", full.Variant, err)
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
	closed := startable(t)
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
				t.Errorf("%s (%s): %s allocates %d bytes at init (at most %d): build it on first use", bin.Name, bin.Variant, pkg, n, maxKeysealInitBytes)
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
			inits[key(bin)] = append(inits[key(bin)], res.Init)
			if trace {
				res, err := coldstart.Run(context.Background(), bin.Path, append(env, "GODEBUG=inittrace=1"), nil, runTimeout)
				if err != nil {
					b.Fatal(err)
				}
				traces[key(bin)] = append(traces[key(bin)], coldstart.InitTrace(res.Stderr))
				traced[key(bin)] = append(traced[key(bin)], res.Init)
			}
		}
	}
	b.StopTimer()
	if b.N == 1 && flag.Lookup("test.benchtime").Value.String() != "1x" {
		return // the probe run before the requested count: no table
	}
	floor := coldstart.Median(inits[coldstart.Minimal])
	var table strings.Builder
	fmt.Fprintf(&table, "\ncold start, %d execs each (exec → first GET /next), host build; ratio: median over the minimal function's\n", b.N)
	worst := map[string]float64{}
	variant := ""
	for _, bin := range bins {
		if bin.Name == coldstart.Minimal {
			continue
		}
		if bin.Variant != variant {
			variant = bin.Variant
			fmt.Fprintf(&table, "\n%s\n%-22s %10s %10s %7s %12s\n", variant, "function", "median", "p90", "ratio", "bytes")
			fmt.Fprintf(&table, "%-22s %8.2fms %8.2fms %6.2fx %12d\n", coldstart.Minimal, ms(floor), ms(coldstart.P90(inits[coldstart.Minimal])), 1.0, bins[0].Size)
		}
		med := coldstart.Median(inits[key(bin)])
		ratio := float64(med) / float64(floor)
		fmt.Fprintf(&table, "%-22s %8.2fms %8.2fms %6.2fx %12d\n", bin.Name, ms(med), ms(coldstart.P90(inits[key(bin)])), ratio, bin.Size)
		b.ReportMetric(ratio, metric(bin)+"-x")
		worst[bin.Variant] = max(worst[bin.Variant], ratio)
	}
	for _, bin := range bins {
		if bin.Name != coldstart.Minimal && worst[bin.Variant] > 0 {
			b.ReportMetric(worst[bin.Variant], metric(coldstart.Binary{Name: "worst", Variant: bin.Variant})+"-x")
			delete(worst, bin.Variant)
		}
	}
	b.ReportMetric(ms(floor), "minimal-ms")
	if trace {
		for _, bin := range bins {
			label := bin.Name
			if bin.Variant != "" {
				label += " (" + bin.Variant + ")"
			}
			writeTrace(&table, label, traces[key(bin)], coldstart.Median(traced[key(bin)]))
		}
	}
	fmt.Print(table.String())
}

// key names one binary across the variants.
func key(bin coldstart.Binary) string {
	if bin.Variant == "" {
		return bin.Name
	}
	return bin.Variant + "/" + bin.Name
}

// metric is a benchmark metric's name for bin: the function, with
// "+clouds" for the full build (a unit may not hold spaces).
func metric(bin coldstart.Binary) string {
	if bin.Variant == coldstart.FullVariant.Name {
		return bin.Name + "+clouds"
	}
	return bin.Name
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
