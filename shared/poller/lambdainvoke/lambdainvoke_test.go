package lambdainvoke_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/keyseal/keyseal/shared/poller/lambdainvoke"
)

// fakeLambda speaks the Lambda Invoke REST protocol on loopback
// (POST /2015-03-31/functions/{name}/invocations): 202 and an empty body
// for a queued Event invocation, or the error a test asks for, with the
// headers and JSON body Lambda sends.
type fakeLambda struct {
	mu       sync.Mutex
	requests []*http.Request
	bodies   []string
	// fail, when set, is answered instead: status, X-Amzn-ErrorType, body.
	fail *struct {
		status    int
		errorType string
		body      string
	}
}

func (f *fakeLambda) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.requests = append(f.requests, r)
	f.bodies = append(f.bodies, string(body))
	fail := f.fail
	f.mu.Unlock()
	w.Header().Set("X-Amzn-RequestId", "c0ffee00-0000-4000-8000-000000000001")
	if fail != nil {
		w.Header().Set("X-Amzn-ErrorType", fail.errorType)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(fail.status)
		io.WriteString(w, fail.body)
		return
	}
	w.WriteHeader(http.StatusAccepted)
}

func client(t *testing.T, f *fakeLambda) *lambda.Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return lambda.NewFromConfig(aws.Config{
		Region:      "eu-west-1",
		Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		HTTPClient:  srv.Client(),
	}, func(o *lambda.Options) {
		o.BaseEndpoint = aws.String(srv.URL)
		o.RetryMaxAttempts = 1
	})
}

func TestInvokeAsyncQueuesAnEventInvocation(t *testing.T) {
	f := &fakeLambda{}
	inv := lambdainvoke.New(client(t, f), "keyseal-prod-verify-poller-worker")
	payload := `{"shards":[3,7],"start":"2026-12-02T01:17:00Z"}`
	if err := inv.InvokeAsync(context.Background(), []byte(payload)); err != nil {
		t.Fatal(err)
	}
	if len(f.requests) != 1 {
		t.Fatalf("%d requests, want 1", len(f.requests))
	}
	r := f.requests[0]
	if r.Method != http.MethodPost || r.URL.Path != "/2015-03-31/functions/keyseal-prod-verify-poller-worker/invocations" {
		t.Errorf("request %s %s", r.Method, r.URL.Path)
	}
	if got := r.Header.Get("X-Amz-Invocation-Type"); got != "Event" {
		t.Errorf("X-Amz-Invocation-Type %q, want Event", got)
	}
	if auth := r.Header.Get("Authorization"); !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDTEST/") ||
		!strings.Contains(auth, "/eu-west-1/lambda/aws4_request") {
		t.Errorf("not SigV4-signed for lambda: %q", auth)
	}
	var got map[string]any
	if err := json.Unmarshal([]byte(f.bodies[0]), &got); err != nil || f.bodies[0] != payload {
		t.Errorf("body %q (%v), want the payload as is", f.bodies[0], err)
	}
}

func TestInvokeAsyncErrors(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    int
		errorType string
		body      string
		is        func(error) bool
	}{
		{"throttled", 429, "TooManyRequestsException",
			`{"Reason":"ReservedFunctionConcurrentInvocationLimitExceeded","Type":"User","message":"Rate Exceeded."}`,
			func(err error) bool { var e *types.TooManyRequestsException; return errors.As(err, &e) }},
		{"no such function", 404, "ResourceNotFoundException",
			`{"Type":"User","message":"Function not found: arn:aws:lambda:eu-west-1:111122223333:function:nope"}`,
			func(err error) bool { var e *types.ResourceNotFoundException; return errors.As(err, &e) }},
		{"not allowed", 403, "AccessDeniedException",
			`{"Message":"User: arn:aws:sts::111122223333:assumed-role/x is not authorized to perform: lambda:InvokeFunction"}`,
			func(err error) bool { return strings.Contains(err.Error(), "AccessDenied") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeLambda{}
			f.fail = &struct {
				status    int
				errorType string
				body      string
			}{tc.status, tc.errorType, tc.body}
			err := lambdainvoke.New(client(t, f), "nope").InvokeAsync(context.Background(), []byte(`{}`))
			if err == nil || !tc.is(err) || !strings.Contains(err.Error(), "invoke nope") {
				t.Fatalf("error %v", err)
			}
		})
	}
}

// TestInvokeAsyncRefusesANonQueuedAnswer: a 200 (a synchronous invocation
// answered) is not the queued invocation the fan-out asked for.
func TestInvokeAsyncRefusesANonQueuedAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `null`) }))
	defer srv.Close()
	c := lambda.NewFromConfig(aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", ""),
		HTTPClient: srv.Client()}, func(o *lambda.Options) { o.BaseEndpoint = aws.String(srv.URL) })
	if err := lambdainvoke.New(c, "fn").InvokeAsync(context.Background(), []byte(`{}`)); err == nil || !strings.Contains(err.Error(), "status 200") {
		t.Fatalf("error %v, want status 200 refused", err)
	}
}
