package lambdainvoke_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/keyseal/keyseal/shared/awsconfig"
	"github.com/keyseal/keyseal/shared/awsconfig/awsreq/awsreqtest"
	"github.com/keyseal/keyseal/shared/poller/lambdainvoke"
)

const (
	accessKey = "AKIDTEST"
	secretKey = "secret"
)

// answer is what fakeLambda sends for one request: a status,
// X-Amzn-ErrorType and a JSON body; hangup closes the connection instead.
type answer struct {
	status    int
	errorType string
	body      string
	hangup    bool
}

// fakeLambda speaks the Lambda Invoke REST protocol on loopback
// (POST /2015-03-31/functions/{name}/invocations): 202 and an empty body
// for a queued Event invocation, or the answers a test queues, with the
// headers and JSON body Lambda sends. It checks every request's SigV4
// signature itself (awsreqtest.SigV4Error), independently of the SDK's signer.
type fakeLambda struct {
	mu       sync.Mutex
	requests []*http.Request
	bodies   []string
	sigErrs  []error
	answers  []answer // consumed in order; then 202s
}

func (f *fakeLambda) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, r)
	f.bodies = append(f.bodies, string(body))
	f.sigErrs = append(f.sigErrs, awsreqtest.SigV4Error(r, body, awsreqtest.Key{AccessKeyID: accessKey, SecretAccessKey: secretKey}, "eu-west-1", "lambda", "x-amz-invocation-type"))
	a := answer{status: http.StatusAccepted}
	if len(f.answers) > 0 {
		a, f.answers = f.answers[0], f.answers[1:]
	}
	f.mu.Unlock()
	if a.hangup {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	w.Header().Set("X-Amzn-RequestId", "c0ffee00-0000-4000-8000-000000000001")
	if a.errorType != "" {
		w.Header().Set("X-Amzn-ErrorType", a.errorType)
	}
	if a.body != "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(a.status)
	io.WriteString(w, a.body)
}

// seenRequests, seenBodies and seenSigErrs are what the fake has
// recorded, read under its lock: the race detector cannot see that a
// record was made before the client read the answer over the socket.
func (f *fakeLambda) seenRequests() []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.requests)
}

func (f *fakeLambda) seenBodies() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.bodies)
}

func (f *fakeLambda) seenSigErrs() []error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.sigErrs)
}

// config is the aws.Config of an app whose Lambda endpoint is srv's.
func config(srv *httptest.Server, sessionToken string) aws.Config {
	return aws.Config{
		Region:       "eu-west-1",
		Credentials:  credentials.NewStaticCredentialsProvider(accessKey, secretKey, sessionToken),
		HTTPClient:   srv.Client(),
		BaseEndpoint: aws.String(srv.URL),
	}
}

func invoker(t *testing.T, f *fakeLambda, function, sessionToken string) *lambdainvoke.Invoker {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	inv := lambdainvoke.New(config(srv, sessionToken), function)
	lambdainvoke.SetRetryDelay(inv, time.Millisecond)
	return inv
}

func TestInvokeAsyncQueuesAnEventInvocation(t *testing.T) {
	f := &fakeLambda{}
	inv := invoker(t, f, "keyseal-prod-verify-poller-worker", "")
	payload := `{"shards":[3,7],"start":"2026-12-02T01:17:00Z"}`
	if err := inv.InvokeAsync(context.Background(), []byte(payload)); err != nil {
		t.Fatal(err)
	}
	if len(f.seenRequests()) != 1 {
		t.Fatalf("%d requests, want 1", len(f.seenRequests()))
	}
	r := f.seenRequests()[0]
	if r.Method != http.MethodPost || r.URL.EscapedPath() != "/2015-03-31/functions/keyseal-prod-verify-poller-worker/invocations" {
		t.Errorf("request %s %s", r.Method, r.URL.EscapedPath())
	}
	if got := r.Header.Get("X-Amz-Invocation-Type"); got != "Event" {
		t.Errorf("X-Amz-Invocation-Type %q, want Event", got)
	}
	if got := r.Header.Get("X-Amz-Security-Token"); got != "" {
		t.Errorf("X-Amz-Security-Token %q without a session token", got)
	}
	if f.seenSigErrs()[0] != nil {
		t.Errorf("not a valid SigV4 signature for lambda in eu-west-1: %v", f.seenSigErrs()[0])
	}
	if f.seenBodies()[0] != payload {
		t.Errorf("body %q, want the payload as is", f.seenBodies()[0])
	}
}

// TestInvokeAsyncEscapesAnARN: a full ARN is one path segment, its colons
// escaped as the SDK escapes them (and signed as sent).
func TestInvokeAsyncEscapesAnARN(t *testing.T) {
	f := &fakeLambda{}
	arn := "arn:aws:lambda:eu-west-1:111122223333:function:keyseal-prod-verify-poller-worker"
	if err := invoker(t, f, arn, "").InvokeAsync(context.Background(), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	r := f.seenRequests()[0]
	if want := "/2015-03-31/functions/arn%3Aaws%3Alambda%3Aeu-west-1%3A111122223333%3Afunction%3Akeyseal-prod-verify-poller-worker/invocations"; r.URL.EscapedPath() != want {
		t.Errorf("path %s, want %s", r.URL.EscapedPath(), want)
	}
	if r.URL.Path != "/2015-03-31/functions/"+arn+"/invocations" {
		t.Errorf("path decodes to %s", r.URL.Path)
	}
	if f.seenSigErrs()[0] != nil {
		t.Errorf("signature: %v", f.seenSigErrs()[0])
	}
}

// TestInvokeAsyncCarriesTheBodyIntact: bytes JSON would re-encode, and a
// body larger than one read, arrive as given and are what is signed.
func TestInvokeAsyncCarriesTheBodyIntact(t *testing.T) {
	f := &fakeLambda{}
	payload := `{"shards":[0, 15],"start":"2026-12-02T01:17:00.123456789+01:00","note":"\u00e9 <&> ` + strings.Repeat("x", 70_000) + `"}`
	if err := invoker(t, f, "fn", "").InvokeAsync(context.Background(), []byte(payload)); err != nil {
		t.Fatal(err)
	}
	if f.seenBodies()[0] != payload {
		t.Errorf("body of %d bytes differs from the %d-byte payload", len(f.seenBodies()[0]), len(payload))
	}
	if f.seenRequests()[0].ContentLength != int64(len(payload)) {
		t.Errorf("Content-Length %d, want %d", f.seenRequests()[0].ContentLength, len(payload))
	}
	if f.seenSigErrs()[0] != nil {
		t.Errorf("signature: %v", f.seenSigErrs()[0])
	}
}

// TestInvokeAsyncSendsTheSessionToken: the execution role's credentials
// are temporary; Lambda refuses them without their token, which must be
// signed too.
func TestInvokeAsyncSendsTheSessionToken(t *testing.T) {
	f := &fakeLambda{}
	if err := invoker(t, f, "fn", "the-session-token").InvokeAsync(context.Background(), []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	if got := f.seenRequests()[0].Header.Get("X-Amz-Security-Token"); got != "the-session-token" {
		t.Errorf("X-Amz-Security-Token %q", got)
	}
	if f.seenSigErrs()[0] != nil {
		t.Errorf("signature: %v", f.seenSigErrs()[0])
	}
}

func TestInvokeAsyncErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answer   answer
		requests int // one retry of a throttle or a server error
		code     string
		message  string
	}{
		{"throttled", answer{429, "TooManyRequestsException",
			`{"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded."}`, false},
			2, "TooManyRequestsException", "Rate Exceeded."},
		{"no such function", answer{404, "ResourceNotFoundException",
			`{"Type":"User","message":"Function not found: arn:aws:lambda:eu-west-1:111122223333:function:nope"}`, false},
			1, "ResourceNotFoundException", "Function not found: arn:aws:lambda:eu-west-1:111122223333:function:nope"},
		{"not allowed", answer{403, "AccessDeniedException:http://internal.amazon.com/coral/com.amazon.coral.service/",
			`{"Message":"User: arn:aws:sts::111122223333:assumed-role/x is not authorized to perform: lambda:InvokeFunction"}`, false},
			1, "AccessDeniedException", "User: arn:aws:sts::111122223333:assumed-role/x is not authorized to perform: lambda:InvokeFunction"},
		{"type in the body only", answer{400, "", `{"__type":"com.amazonaws.lambda#InvalidRequestContentException","Message":"Could not parse request body"}`, false},
			1, "InvalidRequestContentException", "Could not parse request body"},
		{"service error", answer{503, "ServiceException", `{"Type":"Service","message":"Internal error"}`, false},
			2, "ServiceException", "Internal error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeLambda{answers: []answer{tc.answer, tc.answer}}
			err := invoker(t, f, "nope", "").InvokeAsync(context.Background(), []byte(`{}`))
			var e *lambdainvoke.Error
			if !errors.As(err, &e) || e.Function != "nope" || e.StatusCode != tc.answer.status || e.Code != tc.code || e.Message != tc.message {
				t.Fatalf("error %#v (%v)", e, err)
			}
			for _, want := range []string{"invoke nope", fmt.Sprint(tc.answer.status), tc.code, tc.message} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
			if len(f.seenRequests()) != tc.requests {
				t.Errorf("%d requests, want %d", len(f.seenRequests()), tc.requests)
			}
		})
	}
}

// TestInvokeAsyncRetriesOnce: a throttle, a server error or a closed
// connection is retried once, and a second success is a success.
func TestInvokeAsyncRetriesOnce(t *testing.T) {
	for name, first := range map[string]answer{
		"throttled":         {status: 429, errorType: "TooManyRequestsException"},
		"server error":      {status: 500, errorType: "ServiceException"},
		"connection closed": {hangup: true},
	} {
		t.Run(name, func(t *testing.T) {
			f := &fakeLambda{answers: []answer{first}}
			if err := invoker(t, f, "fn", "").InvokeAsync(context.Background(), []byte(`{"n":1}`)); err != nil {
				t.Fatal(err)
			}
			if len(f.seenRequests()) != 2 || f.seenBodies()[1] != `{"n":1}` || f.seenSigErrs()[1] != nil {
				t.Fatalf("%d requests, retry body %q, signature %v", len(f.seenRequests()), f.seenBodies()[len(f.seenBodies())-1], f.seenSigErrs()[len(f.seenSigErrs())-1])
			}
		})
	}
	f := &fakeLambda{answers: []answer{{hangup: true}, {hangup: true}, {hangup: true}}}
	if err := invoker(t, f, "fn", "").InvokeAsync(context.Background(), []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "invoke fn") {
		t.Fatalf("two closed connections: %v", err)
	}
	if len(f.seenRequests()) != 2 {
		t.Fatalf("%d requests, want 2", len(f.seenRequests()))
	}
}

// TestInvokeAsyncRefusesANonQueuedAnswer: a 200 (a synchronous invocation
// answered) is not the queued invocation the fan-out asked for.
func TestInvokeAsyncRefusesANonQueuedAnswer(t *testing.T) {
	f := &fakeLambda{answers: []answer{{status: 200, body: `null`}}}
	if err := invoker(t, f, "fn", "").InvokeAsync(context.Background(), []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "status 200") {
		t.Fatalf("error %v, want status 200 refused", err)
	}
}

// TestInvokeAsyncStopsWithItsContext: a request Lambda does not answer
// ends when the dispatcher's context does, and is not retried.
func TestInvokeAsyncStopsWithItsContext(t *testing.T) {
	arrived, release := make(chan struct{}, 2), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		arrived <- struct{}{}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lambdainvoke.New(config(srv, ""), "fn").InvokeAsync(ctx, []byte(`{}`)) }()
	<-arrived
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "invoke fn") {
			t.Fatalf("error %v, want the cancellation, naming the function", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("InvokeAsync did not return after its context was canceled")
	}
	if len(arrived) != 0 {
		t.Fatal("a canceled invoke was retried")
	}
}

// recorder is an aws.HTTPClient that answers 202 and keeps the URLs.
type recorder struct{ urls []string }

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	r.urls = append(r.urls, req.URL.String())
	return &http.Response{StatusCode: http.StatusAccepted, Body: http.NoBody, Header: http.Header{}}, nil
}

// TestEndpoints: the endpoint comes from where the SDK's Lambda client
// would take it in a config from shared/awsconfig: AWS_ENDPOINT_URL_LAMBDA,
// then AWS_ENDPOINT_URL (LocalStack), then the region's public endpoint.
func TestEndpoints(t *testing.T) {
	for _, tc := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{}, "https://lambda.eu-west-1.amazonaws.com/2015-03-31/functions/fn/invocations"},
		{map[string]string{"AWS_ENDPOINT_URL": "http://localhost:4566"}, "http://localhost:4566/2015-03-31/functions/fn/invocations"},
		{map[string]string{"AWS_ENDPOINT_URL": "http://localhost:4566/", "AWS_ENDPOINT_URL_LAMBDA": "http://lambda.local:9001"},
			"http://lambda.local:9001/2015-03-31/functions/fn/invocations"},
		{map[string]string{"AWS_ENDPOINT_URL": "http://localhost:4566/", "AWS_ENDPOINT_URL_DYNAMODB": "http://ddb.local:8000"},
			"http://localhost:4566/2015-03-31/functions/fn/invocations"},
		{map[string]string{"AWS_ENDPOINT_URL": "http://localhost:4566", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"},
			"https://lambda.eu-west-1.amazonaws.com/2015-03-31/functions/fn/invocations"},
	} {
		env := map[string]string{"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": accessKey, "AWS_SECRET_ACCESS_KEY": secretKey}
		for k, v := range tc.env {
			env[k] = v
		}
		cfg, err := awsconfig.FromEnv(func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		rec := &recorder{}
		cfg.HTTPClient = rec
		if err := lambdainvoke.New(cfg, "fn").InvokeAsync(context.Background(), []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
		if len(rec.urls) != 1 || rec.urls[0] != tc.want {
			t.Errorf("%v: requests %v, want %s", tc.env, rec.urls, tc.want)
		}
	}
}
