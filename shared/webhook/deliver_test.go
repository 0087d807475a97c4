package webhook_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/metrics"
	"github.com/keyseal/keyseal/shared/webhook"
)

// secret returns a new signing secret and its key bytes.
func secret(t testing.TB) (string, []byte) {
	t.Helper()
	s, err := webhook.NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	b, err := webhook.ParseSecret(s)
	if err != nil {
		t.Fatal(err)
	}
	return s, b
}

func event() keyseal.Event {
	return keyseal.Event{ID: "evt_01", Type: keyseal.EventSealed, TenantID: "acme", Data: json.RawMessage(`{"reason":"key_disabled"}`), Time: "2026-12-01T22:00:00Z"}
}

// resolver answers from a table: the DNS a test plays.
type resolver map[string][]netip.Addr

func (r resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, &net404{host}
}

type net404 struct{ host string }

func (e *net404) Error() string { return "no such host " + e.host }

// received is what a receiver saw.
type received struct {
	mu   sync.Mutex
	reqs []*http.Request
	body [][]byte
}

func (r *received) handler(status func(n int) int) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		b, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.reqs = append(r.reqs, req)
		r.body = append(r.body, b)
		n := len(r.reqs)
		r.mu.Unlock()
		w.WriteHeader(status(n))
	}
}

func (r *received) count() int { r.mu.Lock(); defer r.mu.Unlock(); return len(r.reqs) }

func always(code int) func(int) int { return func(int) int { return code } }

func target(url string) keyseal.Webhook {
	return keyseal.Webhook{ID: "wh_1", TenantID: "acme", URL: url, Events: []string{keyseal.EventSealed}}
}

// TestSignedDeliveryVerifiesWithLibrary: a delivery signed with [new,
// old] (the rotation overlap) verifies with the Standard Webhooks library
// holding either secret alone, and not with a third.
func TestSignedDeliveryVerifiesWithLibrary(t *testing.T) {
	var rec received
	srv := httptest.NewServer(rec.handler(always(204)))
	defer srv.Close()
	newS, newB := secret(t)
	oldS, oldB := secret(t)
	otherS, _ := secret(t)
	c := webhook.NewClient(webhook.Policy{Dev: true}, webhook.ClientOptions{})
	now := time.Now()
	a := c.Attempt(context.Background(), target(srv.URL+"/hook"), [][]byte{newB, oldB}, event(), 1, now, now)
	if a.Outcome != keyseal.DeliveryDelivered || a.ResponseCode != 204 || a.EventID != "evt_01" {
		t.Fatalf("attempt: %+v", a)
	}
	req, body := rec.reqs[0], rec.body[0]
	if sig := req.Header.Get("webhook-signature"); len(strings.Split(sig, " ")) != 2 {
		t.Fatalf("want two space-separated signatures, got %q", sig)
	}
	for _, s := range []string{newS, oldS} {
		wh, err := standardwebhooks.NewWebhook(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(body, req.Header); err != nil {
			t.Errorf("library refused a delivery signed with the secret it holds: %v", err)
		}
	}
	if wh, _ := standardwebhooks.NewWebhook(otherS); wh.Verify(body, req.Header) == nil {
		t.Error("a third secret verified the delivery")
	}
	var got keyseal.Event
	if err := json.Unmarshal(body, &got); err != nil || got.ID != "evt_01" || got.Type != keyseal.EventSealed || got.TenantID != "acme" {
		t.Fatalf("body %s: %v", body, err)
	}
	if req.Header.Get("Content-Type") != "application/json" || !strings.Contains(req.Header.Get("User-Agent"), "keyseal") ||
		req.Header.Get("webhook-id") != "evt_01" {
		t.Fatalf("headers: %v", req.Header)
	}
	// The library agrees with keyseal's signer on one secret too.
	wh, _ := standardwebhooks.NewWebhook(newS)
	want, _ := wh.Sign("evt_01", now, body)
	if got := webhook.Sign("evt_01", now, body, [][]byte{newB}); got != want {
		t.Fatalf("Sign = %q, library %q", got, want)
	}
}

// tlsClient returns a prod-policy client trusting srv's certificate and
// resolving names through r.
func tlsClient(srv *httptest.Server, p webhook.Policy, r webhook.Resolver) *webhook.Client {
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return webhook.NewClient(p, webhook.ClientOptions{Resolver: r, RootCAs: pool, Timeout: 2 * time.Second})
}

// TestDNSRebindingRefused: a name that resolves to 127.0.0.1 at delivery
// is refused by the dialer's check, whatever it resolved to at creation;
// the receiver (which would answer, its certificate covering the name)
// gets nothing.
func TestDNSRebindingRefused(t *testing.T) {
	var rec received
	srv := httptest.NewTLSServer(rec.handler(always(200)))
	defer srv.Close()
	port := srv.Listener.Addr().(interface{ String() string }).String()
	port = port[strings.LastIndex(port, ":"):]
	_, s := secret(t)
	now := time.Now()
	// The harness works: dev mode reaching the literal 127.0.0.1 delivers.
	ok := tlsClient(srv, webhook.Policy{Dev: true}, resolver{})
	if a := ok.Attempt(context.Background(), target(srv.URL), [][]byte{s}, event(), 1, now, now); a.Outcome != keyseal.DeliveryDelivered {
		t.Fatalf("control delivery: %+v", a)
	}
	r := resolver{"hooks.example.com": {netip.MustParseAddr("127.0.0.1")}, "meta.example.com": {netip.MustParseAddr("169.254.169.254")}}
	for _, tc := range []struct {
		p    webhook.Policy
		url  string
		want string
	}{
		{webhook.Policy{}, "https://hooks.example.com" + port + "/hook", "loopback"},
		{webhook.Policy{Dev: true}, "https://hooks.example.com" + port + "/hook", "loopback"},
		{webhook.Policy{}, "https://meta.example.com" + port + "/", "metadata"},
		{webhook.Policy{}, "https://169.254.169.254/latest/meta-data", "metadata"},
	} {
		before := rec.count()
		a := tlsClient(srv, tc.p, r).Attempt(context.Background(), target(tc.url), [][]byte{s}, event(), 1, now, now)
		if a.Outcome != keyseal.DeliveryRetrying || !strings.Contains(a.Error, tc.want) || a.ResponseCode != 0 {
			t.Errorf("%s: %+v, want retrying with %q", tc.url, a, tc.want)
		}
		if rec.count() != before {
			t.Errorf("%s: the receiver was reached", tc.url)
		}
	}
}

// TestRedirectNotFollowed: a 3xx is a failed attempt; its target
// receives nothing.
func TestRedirectNotFollowed(t *testing.T) {
	var there received
	dst := httptest.NewServer(there.handler(always(200)))
	defer dst.Close()
	src := httptest.NewServer(http.RedirectHandler(dst.URL+"/elsewhere", http.StatusTemporaryRedirect))
	defer src.Close()
	_, s := secret(t)
	now := time.Now()
	a := webhook.NewClient(webhook.Policy{Dev: true}, webhook.ClientOptions{}).Attempt(context.Background(), target(src.URL), [][]byte{s}, event(), 1, now, now)
	if a.Outcome != keyseal.DeliveryRetrying || a.ResponseCode != 307 || !strings.Contains(a.Error, "redirect") {
		t.Fatalf("attempt: %+v", a)
	}
	if there.count() != 0 {
		t.Fatal("the redirect was followed")
	}
}

// TestGigabyteStreamBounded: a receiver answering 200 with a gigabyte
// body costs a bounded read: the attempt returns at once, the
// connection is closed, little of the stream is ever sent.
func TestGigabyteStreamBounded(t *testing.T) {
	var sent atomic.Int64
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		w.WriteHeader(200)
		chunk := make([]byte, 32<<10)
		for sent.Load() < 1<<30 {
			n, err := w.Write(chunk)
			sent.Add(int64(n))
			if err != nil {
				return
			}
		}
	}))
	defer srv.Close()
	_, s := secret(t)
	var m0, m1 runtime.MemStats
	runtime.ReadMemStats(&m0)
	start, now := time.Now(), time.Now()
	a := webhook.NewClient(webhook.Policy{Dev: true}, webhook.ClientOptions{}).Attempt(context.Background(), target(srv.URL), [][]byte{s}, event(), 1, now, now)
	took := time.Since(start)
	if a.Outcome != keyseal.DeliveryDelivered {
		t.Fatalf("attempt: %+v", a)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatalf("the receiver is still streaming: %d bytes sent, the connection was not closed", sent.Load())
	}
	runtime.ReadMemStats(&m1)
	if took > 2*time.Second || sent.Load() > 64<<20 || m1.TotalAlloc-m0.TotalAlloc > 32<<20 {
		t.Fatalf("took %v, receiver sent %d bytes, %d bytes allocated", took, sent.Load(), m1.TotalAlloc-m0.TotalAlloc)
	}
}

// TestHangingReceiverTimesOut: a receiver that never answers ends the
// attempt at the client's timeout, as a retrying failure.
func TestHangingReceiverTimesOut(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	_, s := secret(t)
	start, now := time.Now(), time.Now()
	c := webhook.NewClient(webhook.Policy{Dev: true}, webhook.ClientOptions{Timeout: 300 * time.Millisecond})
	a := c.Attempt(context.Background(), target(srv.URL), [][]byte{s}, event(), 1, now, now)
	if took := time.Since(start); took > 2*time.Second || took < 300*time.Millisecond {
		t.Fatalf("attempt took %v with a 300ms timeout", took)
	}
	if a.Outcome != keyseal.DeliveryRetrying || !strings.Contains(a.Error, "timed out") || a.NextRetryAt == nil {
		t.Fatalf("attempt: %+v", a)
	}
	if strings.Contains(a.Error, srv.URL) {
		t.Fatalf("the error names the URL: %s", a.Error)
	}
}

// subs is an in-memory subscription service and store for the
// Deliverer's tests (wt11B builds the real ones).
type subs struct {
	mu       sync.Mutex
	hooks    map[string]*keyseal.Webhook
	secrets  [][]byte
	disabled map[string]string
	attempts []keyseal.DeliveryAttempt
}

func newSubs(s []byte, hooks ...keyseal.Webhook) *subs {
	m := &subs{hooks: map[string]*keyseal.Webhook{}, secrets: [][]byte{s}, disabled: map[string]string{}}
	for _, h := range hooks {
		m.hooks[h.ID] = &h
	}
	return m
}

func (m *subs) Targets(_ context.Context, e keyseal.Event) ([]keyseal.Webhook, error) {
	tenantID, eventType := e.TenantID, e.Type
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []keyseal.Webhook
	for _, h := range m.hooks {
		if h.TenantID == tenantID && !h.Disabled && strings.Contains(strings.Join(h.Events, " "), eventType) {
			out = append(out, *h)
		}
	}
	return out, nil
}

func (m *subs) SigningSecrets(context.Context, *keyseal.Webhook, time.Time) ([][]byte, error) {
	return m.secrets, nil
}

func (m *subs) Disable(_ context.Context, w *keyseal.Webhook, reason string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.hooks[w.ID].Disabled = true
	m.disabled[w.ID] = reason
	return nil
}

func (m *subs) GetWebhook(_ context.Context, tenantID, id string) (*keyseal.Webhook, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, ok := m.hooks[id]
	if !ok || h.TenantID != tenantID {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "no webhook %s", id)
	}
	c := *h
	return &c, nil
}

func (m *subs) RecordDelivery(_ context.Context, a keyseal.DeliveryAttempt) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.attempts = append(m.attempts, a)
	return nil
}

type counter struct{ n atomic.Int64 }

func (c *counter) Emit(values ...metrics.Value) {
	for _, v := range values {
		if v.Name == metrics.KeyDeliveryFailures {
			c.n.Add(int64(len(v.Values)))
		}
	}
}

func deliverer(m *subs, clock *time.Time, opts webhook.ClientOptions) (*webhook.Deliverer, *counter) {
	var c counter
	return &webhook.Deliverer{Client: webhook.NewClient(webhook.Policy{Dev: true}, opts), Subscriptions: m, Store: m, Metrics: &c,
		Now: func() time.Time { return *clock }}, &c
}

// TestGoneDisables: a 410 disables the subscription; the job is done and
// later jobs for it deliver nothing.
func TestGoneDisables(t *testing.T) {
	var rec received
	srv := httptest.NewServer(rec.handler(always(410)))
	defer srv.Close()
	_, s := secret(t)
	m := newSubs(s, target(srv.URL))
	now := time.Now()
	d, fails := deliverer(m, &now, webhook.ClientOptions{})
	jobs, err := d.FanOut(context.Background(), event())
	if err != nil || len(jobs) != 1 {
		t.Fatal(jobs, err)
	}
	r, err := d.Deliver(context.Background(), jobs[0])
	if err != nil || r.Action != webhook.Done || r.Attempt.Outcome != keyseal.DeliveryGone || r.Attempt.ResponseCode != 410 {
		t.Fatalf("%+v %v", r, err)
	}
	if !m.hooks["wh_1"].Disabled || !strings.Contains(m.disabled["wh_1"], "410") || len(m.attempts) != 1 || fails.n.Load() != 0 {
		t.Fatalf("disabled %v %q, attempts %d, failures %d", m.hooks["wh_1"].Disabled, m.disabled["wh_1"], len(m.attempts), fails.n.Load())
	}
	if r, err := d.Deliver(context.Background(), jobs[0]); err != nil || r.Action != webhook.Done || rec.count() != 1 {
		t.Fatalf("a disabled subscription was delivered to: %+v %v", r, err)
	}
}

// TestRetriesKeepTheID: a receiver failing twice gets three attempts
// with one webhook-id, each signed at its own timestamp, then the job is
// done; the attempts are recorded.
func TestRetriesKeepTheID(t *testing.T) {
	var rec received
	srv := httptest.NewServer(rec.handler(func(n int) int {
		if n < 3 {
			return 503
		}
		return 200
	}))
	defer srv.Close()
	sS, s := secret(t)
	m := newSubs(s, target(srv.URL))
	now := time.Now()
	d, _ := deliverer(m, &now, webhook.ClientOptions{})
	jobs, _ := d.FanOut(context.Background(), event())
	j := jobs[0]
	for i := 1; ; i++ {
		r, err := d.Deliver(context.Background(), j)
		if err != nil {
			t.Fatal(err)
		}
		if r.Action == webhook.Done {
			break
		}
		if r.Action != webhook.Retry || r.Next.Attempt != i+1 || !r.At.After(now) || r.Next.FirstAt.IsZero() {
			t.Fatalf("attempt %d: %+v", i, r)
		}
		j, now = r.Next, r.At
	}
	if rec.count() != 3 || len(m.attempts) != 3 {
		t.Fatalf("%d requests, %d recorded", rec.count(), len(m.attempts))
	}
	wh, _ := standardwebhooks.NewWebhook(sS)
	for i, req := range rec.reqs {
		if req.Header.Get("webhook-id") != "evt_01" || m.attempts[i].EventID != "evt_01" || m.attempts[i].Attempt != i+1 {
			t.Fatalf("attempt %d: id %q, recorded %+v", i+1, req.Header.Get("webhook-id"), m.attempts[i])
		}
		if err := wh.VerifyIgnoringTimestamp(rec.body[i], req.Header); err != nil {
			t.Fatalf("attempt %d: %v", i+1, err)
		}
	}
	if rec.reqs[0].Header.Get("webhook-timestamp") == rec.reqs[2].Header.Get("webhook-timestamp") {
		t.Fatal("a retry reused the first attempt's timestamp")
	}
}

// TestLastAttemptDeadLetters: a failure with no attempt left within the
// 3 days is dead-lettered and counted once in KeyDeliveryFailures.
func TestLastAttemptDeadLetters(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) }))
	defer srv.Close()
	_, s := secret(t)
	m := newSubs(s, target(srv.URL))
	now := time.Now()
	d, fails := deliverer(m, &now, webhook.ClientOptions{})
	j := webhook.Job{Event: event(), TenantID: "acme", WebhookID: "wh_1", Attempt: 12, FirstAt: now.Add(-67*time.Hour - 35*time.Minute)}
	r, err := d.Deliver(context.Background(), j)
	if err != nil || r.Action != webhook.DeadLetter || r.Attempt.Outcome != keyseal.DeliveryFailed || r.Attempt.NextRetryAt != nil || fails.n.Load() != 1 {
		t.Fatalf("%+v %v, failures %d", r, err, fails.n.Load())
	}
	// A subscription deleted meanwhile: nothing to deliver, nothing counted.
	j.WebhookID = "wh_gone"
	if r, err := d.Deliver(context.Background(), j); err != nil || r.Action != webhook.Done || fails.n.Load() != 1 {
		t.Fatalf("%+v %v", r, err)
	}
}

// TestDeliverAllSlowDoesNotStallOthers: one hanging receiver holds its
// slot until the timeout; the other subscriptions are delivered at once.
func TestDeliverAllSlowDoesNotStallOthers(t *testing.T) {
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	defer close(release)
	fastAt := make(chan time.Time, 4)
	fast := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fastAt <- time.Now() }))
	defer fast.Close()
	_, s := secret(t)
	hooks := []keyseal.Webhook{target(slow.URL)}
	for i := range 3 {
		h := target(fast.URL)
		h.ID = "wh_fast" + string(rune('a'+i))
		hooks = append(hooks, h)
	}
	m := newSubs(s, hooks...)
	now := time.Now()
	d, _ := deliverer(m, &now, webhook.ClientOptions{Timeout: time.Second})
	jobs, _ := d.FanOut(context.Background(), event())
	start := time.Now()
	out := d.DeliverAll(context.Background(), jobs, 2)
	if len(out) != 4 {
		t.Fatal(out)
	}
	for range 3 {
		if at := <-fastAt; at.Sub(start) > 500*time.Millisecond {
			t.Fatalf("a fast receiver waited %v behind the slow one", at.Sub(start))
		}
	}
	for _, o := range out {
		want := webhook.Done
		if o.Result.Attempt.WebhookID == "wh_1" {
			want = webhook.Retry
		}
		if o.Err != nil || o.Result.Action != want {
			t.Fatalf("%+v", o)
		}
	}
}

// TestAttemptHonoursRetryAfter: a 429 with Retry-After longer than the
// schedule's 5 s sets the next attempt by the receiver's word.
func TestAttemptHonoursRetryAfter(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusTooManyRequests)
	}))
	defer srv.Close()
	_, s := secret(t)
	now := time.Now()
	a := webhook.NewClient(webhook.Policy{Dev: true}, webhook.ClientOptions{}).Attempt(context.Background(), target(srv.URL), [][]byte{s}, event(), 1, now, now)
	if a.Outcome != keyseal.DeliveryRetrying || a.ResponseCode != 429 || a.NextRetryAt == nil || a.NextRetryAt.Sub(now) != 2*time.Minute {
		t.Fatalf("attempt: %+v", a)
	}
}

// TestRetryScaleShortensTheDelay: RetryScale multiplies the delay before
// the retry (here Retry-After's 120 s to 12 s); outside (0, 1] it is 1.
func TestRetryScaleShortensTheDelay(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	_, s := secret(t)
	for _, tc := range []struct {
		scale float64
		want  time.Duration
	}{{0.1, 12 * time.Second}, {1, 2 * time.Minute}, {0, 2 * time.Minute}, {3, 2 * time.Minute}} {
		now := time.Now()
		c := webhook.NewClient(webhook.Policy{Dev: true}, webhook.ClientOptions{RetryScale: tc.scale})
		a := c.Attempt(context.Background(), target(srv.URL), [][]byte{s}, event(), 1, now, now)
		if a.NextRetryAt == nil || a.NextRetryAt.Sub(now) != tc.want {
			t.Fatalf("scale %v: next retry %v after now, want %s", tc.scale, a.NextRetryAt, tc.want)
		}
	}
}

// TestRetryScaleShortensTheWindow: under a retry scale the 3-day window
// shrinks with the delays, so a rehearsal reaches the last attempt (and
// the dead-letter) in 72 h × scale, not after 3 real days of attempts.
func TestRetryScaleShortensTheWindow(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer srv.Close()
	_, s := secret(t)
	const scale = 0.01
	c := webhook.NewClient(webhook.Policy{Dev: true}, webhook.ClientOptions{RetryScale: scale})
	now := time.Now()
	// Attempt 7 waits 10 h (±10%) for the next: 6 min at this scale.
	// 30 min after the first attempt is 50 h of the scaled window: room
	// left. 39 min is 65 h: 10 h more would be past 72 h.
	a := c.Attempt(context.Background(), target(srv.URL), [][]byte{s}, event(), 7, now.Add(-30*time.Minute), now)
	if a.Outcome != keyseal.DeliveryRetrying || a.NextRetryAt == nil || a.NextRetryAt.Sub(now) < 5*time.Minute || a.NextRetryAt.Sub(now) > 7*time.Minute {
		t.Fatalf("30 min into the scaled window: %+v, want a retry in about 6 min", a)
	}
	a = c.Attempt(context.Background(), target(srv.URL), [][]byte{s}, event(), 7, now.Add(-39*time.Minute), now)
	if a.Outcome != keyseal.DeliveryFailed {
		t.Fatalf("39 min into a window of 72 h × %v: %s (next %v), want %s", scale, a.Outcome, a.NextRetryAt, keyseal.DeliveryFailed)
	}
}

// TestNoProxyFromEnvironment: HTTPS_PROXY is ignored; a proxy would dial
// addresses the policy never saw.
func TestNoProxyFromEnvironment(t *testing.T) {
	var proxied received
	proxy := httptest.NewServer(proxied.handler(always(200)))
	defer proxy.Close()
	t.Setenv("HTTPS_PROXY", proxy.URL)
	t.Setenv("HTTP_PROXY", proxy.URL)
	probe, _ := http.NewRequest("POST", "https://hooks.example.com/", nil)
	if u, err := http.ProxyFromEnvironment(probe); err != nil || u == nil {
		t.Skip("the process read the proxy environment before this test set it")
	}
	var rec received
	srv := httptest.NewTLSServer(rec.handler(always(200)))
	defer srv.Close()
	port := srv.URL[strings.LastIndex(srv.URL, ":"):]
	_, s := secret(t)
	now := time.Now()
	r := resolver{"hooks.example.com": {netip.MustParseAddr("127.0.0.1")}}
	a := tlsClient(srv, webhook.Policy{Dev: true}, r).Attempt(context.Background(), target("https://hooks.example.com"+port+"/"), [][]byte{s}, event(), 1, now, now)
	if proxied.count() != 0 || rec.count() != 0 || !strings.Contains(a.Error, "loopback") {
		t.Fatalf("proxy saw %d, receiver %d: %+v", proxied.count(), rec.count(), a)
	}
}
