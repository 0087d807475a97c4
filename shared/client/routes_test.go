package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/client"
)

// recorder answers every request 200 {} and records its method, path and
// step-up header.
type recorder struct {
	mu   sync.Mutex
	seen []string
	step map[string]bool
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := req.Method + " " + req.URL.EscapedPath()
	r.seen = append(r.seen, key)
	if r.step == nil {
		r.step = map[string]bool{}
	}
	r.step[key] = req.Header.Get(auth.StepUpHeader) != ""
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader(`{}`)), Header: http.Header{}, Request: req}, nil
}

// matches reports whether a concrete path fits a Table pattern.
func matches(pattern, path string) bool {
	ps, xs := strings.Split(pattern, "/"), strings.Split(path, "/")
	if len(ps) != len(xs) {
		return false
	}
	for i := range ps {
		if strings.HasPrefix(ps[i], "{") || ps[i] == xs[i] {
			continue
		}
		return false
	}
	return true
}

// TestEveryRouteHasAMethod fails when a row of api.Table has no client
// method (or a method calls a route the table lacks), and when a step-up
// route is called without the step-up header.
func TestEveryRouteHasAMethod(t *testing.T) {
	rec := &recorder{}
	c := client.MustNew("http://keyseal.test/prod", "tok").WithHTTPClient(&http.Client{Transport: rec})
	ctx := context.Background()
	calls := []func() error{
		func() error { _, err := c.Health(ctx); return err },
		func() error { _, err := c.Session(ctx); return err },
		func() error { _, err := c.JWKS(ctx, "demo"); return err },
		func() error { _, err := c.TenantKMS(ctx); return err },
		func() error {
			_, err := c.Register(ctx, "su", "aws-kms", map[string]string{"key_arn": "a"})
			return err
		},
		func() error { _, err := c.Deregister(ctx, "su"); return err },
		func() error { _, err := c.TenantHealth(ctx); return err },
		func() error { _, err := c.Unseal(ctx, "su"); return err },
		func() error { _, err := c.Rotate(ctx, client.RotateRequest{RotationType: "tmk"}); return err },
		func() error { _, err := c.RevokeVersion(ctx, "su", 2, "demo"); return err },
		func() error { _, err := c.Migrate(ctx, "su", "local", map[string]string{"key_id": "k"}); return err },
		func() error { _, err := c.KeyPolicy(ctx, "", nil); return err },
		func() error { _, err := c.Waiver(ctx); return err },
		func() error {
			_, err := c.AcknowledgeWaiver(ctx, client.WaiverAck{AcknowledgedBy: "a@b.c"})
			return err
		},
		func() error { _, err := c.WaiverStatus(ctx); return err },
		func() error { _, err := c.EventForwarding(ctx); return err },
		func() error { _, err := c.StepUp(ctx); return err },
		func() error { _, err := c.CreateAgent(ctx, "w"); return err },
		func() error { _, err := c.Agents(ctx); return err },
		func() error { _, err := c.RevokeAgent(ctx, "ag_1"); return err },
		func() error {
			_, err := c.Audit(ctx, client.AuditQuery{Action: "x", Limit: 5, Cursor: "9"})
			return err
		},
		func() error { _, err := c.VerifyAudit(ctx); return err },
		func() error { _, err := c.VerifyCheckpoint(ctx, "cp"); return err },
		func() error { _, err := c.Checkpoint(ctx); return err },
		func() error { _, err := c.CheckpointKey(ctx); return err },
		func() error { _, err := c.CreateWebhook(ctx, client.WebhookRequest{URL: "https://x"}); return err },
		func() error { _, err := c.Webhooks(ctx); return err },
		func() error { return c.DeleteWebhook(ctx, "wh_1") },
		func() error { _, err := c.RotateWebhookSecret(ctx, "wh_1"); return err },
		func() error { _, err := c.TestWebhook(ctx, "wh_1"); return err },
		func() error { _, err := c.Deliveries(ctx, "wh_1", 3); return err },
	}
	// The OpenAPI document's route joins the table with issue 13's OpenAPI
	// work; from then on the method is held to it like the others.
	for _, r := range api.Table {
		if r.Method == http.MethodGet && r.Path == "/openapi.json" {
			calls = append(calls, func() error { _, err := c.OpenAPI(ctx); return err })
		}
	}
	for i, f := range calls {
		if err := f(); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	hit := map[string]bool{}
	for _, s := range rec.seen {
		method, path, _ := strings.Cut(s, " ")
		path = strings.TrimPrefix(path, "/prod")
		found := false
		for _, r := range api.Table {
			if r.Method == method && matches(r.Path, path) {
				hit[r.Method+" "+r.Path] = true
				found = true
				if rec.step[s] != r.StepUp {
					t.Errorf("%s: step-up header sent %v, route needs it %v", s, rec.step[s], r.StepUp)
				}
			}
		}
		if !found {
			t.Errorf("client calls %s, which api.Table lacks", s)
		}
	}
	for _, r := range api.Table {
		// The console's page and assets are the browser's, not the client's.
		if r.Path == "/console" || strings.HasPrefix(r.Path, "/console/") {
			continue
		}
		if !hit[r.Method+" "+r.Path] {
			t.Errorf("api.Table's %s %s has no client method", r.Method, r.Path)
		}
	}
}

// errorAnswer is a transport answering one canned response.
type errorAnswer struct {
	status int
	header http.Header
	body   string
}

func (a errorAnswer) RoundTrip(req *http.Request) (*http.Response, error) {
	h := a.header
	if h == nil {
		h = http.Header{}
	}
	return &http.Response{StatusCode: a.status, Body: io.NopCloser(strings.NewReader(a.body)), Header: h, Request: req}, nil
}

// TestErrorBodies checks both error body styles, and a body that is
// neither, come back as *Error with the code and message.
func TestErrorBodies(t *testing.T) {
	for _, c := range []struct {
		name   string
		answer errorAnswer
		code   string
		msg    string
		reason string
	}{
		{"admin", errorAnswer{status: 502, body: `{"error":"unseal_failed","message":"KMS check failed: DisabledException","reason":"access_denied"}`},
			"unseal_failed", "KMS check failed: DisabledException", "access_denied"},
		{"agent", errorAnswer{status: 503, body: `{"error":{"type":"tenant_sealed","message":"tenant is sealed"}}`},
			"tenant_sealed", "tenant is sealed", ""},
		{"gateway", errorAnswer{status: 502, body: `Bad Gateway`}, "", "Bad Gateway", ""},
		{"empty", errorAnswer{status: 500}, "", "Internal Server Error", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := client.MustNew("http://keyseal.test", "").WithHTTPClient(&http.Client{Transport: c.answer})
			_, err := cl.Unseal(context.Background(), "su")
			e, ok := errors.AsType[*client.Error](err)
			if !ok {
				t.Fatalf("error %v is not a *client.Error", err)
			}
			if e.Status != c.answer.status || e.Code != c.code || e.Message != c.msg || e.ExtraString("reason") != c.reason {
				t.Fatalf("got %+v", e)
			}
			if client.ErrorCode(err) != c.code {
				t.Fatalf("ErrorCode %q", client.ErrorCode(err))
			}
		})
	}
}

// TestNoRetry: a failing non-idempotent call is sent exactly once.
func TestNoRetry(t *testing.T) {
	var n int
	rt := roundTripFunc(func(req *http.Request) (*http.Response, error) {
		n++
		return &http.Response{StatusCode: 503, Body: io.NopCloser(strings.NewReader(`{"error":"store_unavailable","message":"m"}`)),
			Header: http.Header{"Retry-After": {"2"}}, Request: req}, nil
	})
	c := client.MustNew("http://keyseal.test", "t").WithHTTPClient(&http.Client{Transport: rt})
	_, err := c.Rotate(context.Background(), client.RotateRequest{RotationType: "tmk"})
	if e, ok := errors.AsType[*client.Error](err); !ok || e.RetryAfter != "2" || n != 1 {
		t.Fatalf("err %v, %d requests", err, n)
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestNewRefusesBadURLs(t *testing.T) {
	for _, u := range []string{"", "localhost:8080", "ftp://x", "http://", "http://x/?a=1"} {
		if _, err := client.New(u, ""); err == nil {
			t.Errorf("New(%q) accepted", u)
		}
	}
}
