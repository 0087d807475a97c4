// Package coldstart measures the Lambdas' cold start: it builds every
// functions/* Lambda the way `make build` does (but for the host's
// architecture) beside a minimal aws-lambda-go function, execs each under a
// fake Lambda Runtime API on loopback, and times exec → the first
// GET /runtime/invocation/next, which is what Lambda bills as init.
// BenchmarkColdStart (make bench) prints the table; nothing here is a test
// of speed.
package coldstart

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Minimal is the name of the floor: testdata/minimal, a function that
// returns a constant.
const Minimal = "minimal"

// Binary is one built bootstrap.
type Binary struct {
	Name string
	// Variant is the build it comes from (Variant.Name); empty for the
	// minimal function.
	Variant string
	Path    string
	Size    int64
}

// Variant is one way to build the Lambdas: a label and go build tags.
type Variant struct {
	Name string
	Tags string
}

// FullVariant links every provider's SDK: the build of an environment
// that configures GCP and Azure (no keyseal_nogcp, no keyseal_noazure).
var FullVariant = Variant{Name: "with GCP and Azure", Tags: "lambda.norpc"}

// DevVariant is what `make build` builds for ENV=dev: the tags
// scripts/buildtags picks from root's cdk.json (AWS only while dev
// configures neither cloud).
func DevVariant(ctx context.Context, root string) (Variant, error) {
	cmd := exec.CommandContext(ctx, "go", "run", "./scripts/buildtags", "-env", "dev")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return Variant{}, fmt.Errorf("go run ./scripts/buildtags -env dev: %w", err)
	}
	tags := strings.TrimSpace(string(out))
	name := "make build (dev)"
	if strings.Contains(tags, "keyseal_nogcp") && strings.Contains(tags, "keyseal_noazure") {
		name = "AWS only"
	}
	return Variant{Name: name, Tags: tags}, nil
}

// Build builds the Lambdas under root/functions with the variant's tags
// and make build's other flags (-trimpath -ldflags='-s -w', CGO off) for
// the host into dir, and the minimal function (tags lambda.norpc), in one
// go build each, and returns them with the minimal function first.
func Build(ctx context.Context, root, dir string, v Variant) ([]Binary, error) {
	mains, err := filepath.Glob(filepath.Join(root, "functions", "*", "main.go"))
	if err != nil || len(mains) == 0 {
		return nil, fmt.Errorf("no functions/*/main.go under %s", root)
	}
	bins := []Binary{{Name: Minimal}}
	var pkgs []string
	for _, m := range mains {
		name := filepath.Base(filepath.Dir(m))
		bins = append(bins, Binary{Name: name, Variant: v.Name})
		pkgs = append(pkgs, "./functions/"+name)
	}
	for _, b := range []struct {
		tags string
		pkgs []string
	}{{"lambda.norpc", []string{"./scripts/coldstart/testdata/minimal"}}, {v.Tags, pkgs}} {
		args := append([]string{"build", "-tags", b.tags, "-trimpath", "-ldflags=-s -w", "-o", dir + string(filepath.Separator)}, b.pkgs...)
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build -tags %s: %w\n%s", b.tags, err, out)
		}
	}
	for i := range bins {
		bins[i].Path = filepath.Join(dir, bins[i].Name)
		st, err := os.Stat(bins[i].Path)
		if err != nil {
			return nil, fmt.Errorf("built %s: %w", bins[i].Name, err)
		}
		bins[i].Size = st.Size()
	}
	return bins, nil
}

// Env is the environment Lambda gives the function name as the CDK stack
// configures it (infra/stack/functions.go, the dev environment without
// GCP or Azure), with fake credentials in the environment as Lambda puts a
// role's there, and every AWS endpoint (and the admin JWKS URL) at the
// loopback address closed, so that a network call at init fails at once
// instead of reaching anything.
func Env(name, closed string) []string {
	const account, region = "111122223333", "us-east-1"
	kmsKey := func(id string) string { return "arn:aws:kms:" + region + ":" + account + ":key/" + id }
	env := map[string]string{
		// What the Lambda service sets (provided.al2023).
		"AWS_LAMBDA_FUNCTION_NAME":        "keyseal-dev-" + name,
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "256",
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/keyseal-dev-" + name,
		"AWS_LAMBDA_LOG_STREAM_NAME":      "2026/01/01/[$LATEST]00000000000000000000000000000000",
		"AWS_EXECUTION_ENV":               "AWS_Lambda_provided.al2023",
		"AWS_REGION":                      region,
		"AWS_DEFAULT_REGION":              region,
		"AWS_ACCESS_KEY_ID":               "ASIAFAKEFAKEFAKEFAKE",
		"AWS_SECRET_ACCESS_KEY":           "fake/secret/fake/secret/fake/secret/fake",
		"AWS_SESSION_TOKEN":               "fake-session-token",
		"_HANDLER":                        "bootstrap",
		"LAMBDA_TASK_ROOT":                "/var/task",
		"LAMBDA_RUNTIME_DIR":              "/var/runtime",
		"TZ":                              ":UTC",
		"LANG":                            "en_US.UTF-8",
		"PATH":                            "/usr/local/bin:/usr/bin/:/bin:/opt/bin",
		// The harness's: nothing at init may reach the network.
		"AWS_ENDPOINT_URL": "http://" + closed,
		// The stack's, for every function.
		"KEYSEAL_STAGE":     "dev",
		"KEYSEAL_LOG_LEVEL": "info",
	}
	kms := map[string]bool{"session-issue": true, "admin-tenant-kms": true, "unseal": true, "health": true, "verify-poller": true, "verify-poller-worker": true, "key-events": true}
	audit := map[string]bool{"session-issue": true, "admin-tenant-kms": true, "unseal": true, "verify-poller": true, "verify-poller-worker": true, "webhook-deliver": true, "key-events": true}
	admin := map[string]bool{"admin-tenant-kms": true, "unseal": true, "health": true}
	switch name {
	case "event-publisher": // the stream's reader has no table access
		env["KEYSEAL_EVENT_BUS"] = "keyseal-dev"
	case "bus-policy": // the key-ref index and the bus, no KMS
		env["KEYSEAL_TABLE"] = "keyseal-dev-table"
		env["KEYSEAL_EVENT_BUS"] = "keyseal-dev"
	default:
		env["KEYSEAL_TABLE"] = "keyseal-dev-table"
		env["KEYSEAL_PLATFORM_KEY_ID"] = kmsKey("1234abcd-12ab-34cd-56ef-1234567890ab")
	}
	if kms[name] {
		env["KEYSEAL_TMK_CACHE_TTL"], env["KEYSEAL_SESSION_TTL"], env["KEYSEAL_KMS_TIMEOUT"] = "5m", "5m", "5s"
	}
	if audit[name] {
		env["KEYSEAL_AUDIT_SIGNING_KEY_ID"] = kmsKey("0987dcba-09fe-87dc-65ba-ab0987654321")
	}
	if admin[name] {
		env["KEYSEAL_ADMIN_JWKS_URL"] = "http://" + closed + "/.well-known/jwks.json"
		env["KEYSEAL_ADMIN_ISSUER"] = "https://idp.dev.example.com/"
		env["KEYSEAL_ADMIN_AUDIENCE"] = "keyseal-admin"
		env["KEYSEAL_ADMIN_TENANT_CLAIM"] = "tenant_id"
		env["KEYSEAL_STEPUP_ACR_VALUES"] = "mfa"
		env["KEYSEAL_SERVICE_PRINCIPAL"] = "arn:aws:iam::" + account + ":root"
	}
	switch name {
	case "admin-tenant-kms":
		env["KEYSEAL_EVENT_BUS_ARN"] = "arn:aws:events:" + region + ":" + account + ":event-bus/keyseal-dev"
	case "verify-poller":
		env["KEYSEAL_POLL_INTERVAL"] = "30s"
		env["KEYSEAL_POLL_WORKER"] = "arn:aws:lambda:" + region + ":" + account + ":function:keyseal-dev-verify-poller-worker"
	case "verify-poller-worker":
		env["KEYSEAL_POLL_INTERVAL"] = "30s"
	case "webhook-deliver":
		env["KEYSEAL_WEBHOOK_QUEUE_URL"] = "https://sqs." + region + ".amazonaws.com/" + account + "/keyseal-dev-webhooks"
		env["KEYSEAL_WEBHOOK_DLQ_URL"] = "https://sqs." + region + ".amazonaws.com/" + account + "/keyseal-dev-webhooks-dlq"
	}
	out := make([]string, 0, len(env))
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}

// ClosedAddr returns a loopback address nothing listens on (a port just
// released), so a connection to it is refused at once.
func ClosedAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// Result is one cold start.
type Result struct {
	// Init is exec → the first GET /runtime/invocation/next.
	Init time.Duration
	// Invoke is that GET's answer → the invocation's response, when an
	// event was given.
	Invoke time.Duration
	// Response is the function's answer to the event.
	Response []byte
	// Stderr is what the process wrote there (GODEBUG=inittrace output).
	Stderr string
}

// Run execs path with env under a fresh fake Runtime API and returns its
// init time. With a non-nil event, the first GET /next is answered with it
// and Run also waits for the response; the process is killed after that.
// A process that reports an init error, exits or takes more than timeout
// is an error carrying its stderr.
func Run(ctx context.Context, path string, env []string, event []byte, timeout time.Duration) (Result, error) {
	api := newRuntimeAPI(event)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return Result{}, err
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: timeout}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, path)
	cmd.Env = append(env[:len(env):len(env)], "AWS_LAMBDA_RUNTIME_API="+ln.Addr().String())
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	exited := make(chan error, 1)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return Result{}, err
	}
	go func() { exited <- cmd.Wait() }()
	var res Result
	fail := func(format string, args ...any) (Result, error) {
		_ = cmd.Process.Kill()
		<-exited
		return Result{}, fmt.Errorf("%s: %s; stderr:\n%s", filepath.Base(path), fmt.Sprintf(format, args...), stderr.String())
	}
	deadline := time.After(timeout)
	var next time.Time
	select {
	case next = <-api.next:
		res.Init = next.Sub(start)
	case body := <-api.initError:
		return fail("init error %s", body)
	case err := <-exited:
		exited <- err
		return fail("exited before its first GET /next: %v", err)
	case <-deadline:
		return fail("no GET /next within %s", timeout)
	}
	if event != nil {
		select {
		case r := <-api.response:
			if r.err {
				return fail("invocation error %s", r.body)
			}
			res.Invoke, res.Response = r.at.Sub(next), r.body
		case err := <-exited:
			exited <- err
			return fail("exited during the invocation: %v", err)
		case <-deadline:
			return fail("no response within %s", timeout)
		}
	}
	_ = cmd.Process.Kill()
	<-exited
	res.Stderr = stderr.String()
	return res, nil
}

// The Runtime API's paths (2018-06-01), as the Lambda service serves them.
const (
	pathNext      = "/2018-06-01/runtime/invocation/next"
	pathInvoke    = "/2018-06-01/runtime/invocation/"
	pathInitError = "/2018-06-01/runtime/init/error"
	requestID     = "8476a536-e9f4-11e8-9739-2dfe598c3fcd"
)

type response struct {
	at   time.Time
	body []byte
	err  bool
}

// runtimeAPI is a fake of the Lambda Runtime API for one process: it
// notes the first GET /next, answers it with the event (or holds it, as
// Lambda holds it between invocations), and takes the response or error.
type runtimeAPI struct {
	event     []byte
	once      sync.Once
	next      chan time.Time
	response  chan response
	initError chan []byte
}

func newRuntimeAPI(event []byte) *runtimeAPI {
	return &runtimeAPI{event: event, next: make(chan time.Time, 1), response: make(chan response, 1), initError: make(chan []byte, 1)}
}

func (a *runtimeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	at := time.Now()
	switch {
	case r.Method == http.MethodGet && r.URL.Path == pathNext:
		first := false
		a.once.Do(func() { first = true; a.next <- at })
		if !first || a.event == nil {
			<-r.Context().Done() // held until the process is killed
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Lambda-Runtime-Aws-Request-Id", requestID)
		h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(at.Add(30*time.Second).UnixMilli(), 10))
		h.Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:us-east-1:111122223333:function:coldstart")
		h.Set("Lambda-Runtime-Trace-Id", "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1")
		_, _ = w.Write(a.event)
	case r.Method == http.MethodPost && r.URL.Path == pathInitError:
		body, _ := io.ReadAll(r.Body)
		a.initError <- body
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, pathInvoke+requestID+"/"):
		body, _ := io.ReadAll(r.Body)
		kind := strings.TrimPrefix(r.URL.Path, pathInvoke+requestID+"/")
		if kind != "response" && kind != "error" {
			http.NotFound(w, r)
			return
		}
		select {
		case a.response <- response{at: at, body: body, err: kind == "error"}:
		default:
		}
		w.WriteHeader(http.StatusAccepted)
	default:
		http.Error(w, "not a Runtime API path: "+r.Method+" "+r.URL.Path, http.StatusNotFound)
	}
}

// Trace is what GODEBUG=inittrace=1 printed for one process.
type Trace struct {
	// Packages: clock milliseconds of each package's init functions.
	Packages map[string]float64
	// Bytes: what each package's init functions allocated.
	Bytes map[string]int
	// MainAt is when the last package init ended (ms since the runtime
	// started): main runs from there.
	MainAt float64
}

// InitTrace reads GODEBUG=inittrace=1 output.
func InitTrace(stderr string) Trace {
	t := Trace{Packages: map[string]float64{}, Bytes: map[string]int{}}
	for line := range strings.Lines(stderr) {
		// init PKG @0.5 ms, 0.12 ms clock, 1234 bytes, 5 allocs
		f := strings.Fields(line)
		if len(f) < 7 || f[0] != "init" || f[5] != "ms" || f[6] != "clock," || !strings.HasPrefix(f[2], "@") {
			continue
		}
		at, err1 := strconv.ParseFloat(f[2][1:], 64)
		ms, err2 := strconv.ParseFloat(f[4], 64)
		bytes, err3 := strconv.Atoi(f[7])
		if err1 == nil && err2 == nil && err3 == nil && len(f) >= 9 && f[8] == "bytes," {
			t.Packages[f[1]] += ms
			t.Bytes[f[1]] += bytes
			t.MainAt = max(t.MainAt, at+ms)
		}
	}
	return t
}

// Median and P90 of samples (nearest rank); 0 for none.
func Median(s []time.Duration) time.Duration { return quantile(s, 0.5) }

// P90 is the 90th percentile (nearest rank).
func P90(s []time.Duration) time.Duration { return quantile(s, 0.9) }

func quantile(s []time.Duration, q float64) time.Duration {
	if len(s) == 0 {
		return 0
	}
	c := append([]time.Duration(nil), s...)
	sort.Slice(c, func(i, j int) bool { return c[i] < c[j] })
	rank := int(math.Ceil(q * float64(len(c))))
	return c[max(rank-1, 0)]
}
