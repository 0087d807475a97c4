package faultproxy

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	keyA = "1234abcd-12ab-34cd-56ef-1234567890ab"
	keyB = "0987dcba-09fe-87dc-65ba-ab0987654321"
)

func arn(id string) string { return "arn:aws:kms:us-east-1:000000000000:key/" + id }

// seen is one request as the upstream received it.
type seen struct {
	method, path, host string
	header             http.Header
	body               []byte
}

// upstream stands in for LocalStack: it records what reaches it and answers
// with a fixed KMS-like response.
type upstream struct {
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []seen
}

const upstreamReply = `{"KeyId":"from-upstream","CiphertextBlob":"AAEC"}`

func newUpstream(t *testing.T) *upstream {
	t.Helper()
	u := &upstream{}
	u.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		u.mu.Lock()
		u.reqs = append(u.reqs, seen{r.Method, r.URL.Path, r.Host, r.Header.Clone(), body})
		u.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-RequestId", "upstream-request-id")
		_, _ = io.WriteString(w, upstreamReply)
	}))
	t.Cleanup(u.srv.Close)
	return u
}

func (u *upstream) count() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.reqs)
}

func (u *upstream) last(t *testing.T) seen {
	t.Helper()
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.reqs) == 0 {
		t.Fatal("no request reached the upstream")
	}
	return u.reqs[len(u.reqs)-1]
}

// fixture is a started proxy in front of a recording upstream, with a
// client that opens a fresh connection per request (so a dropped one does
// not affect the next).
type fixture struct {
	t      *testing.T
	up     *upstream
	proxy  *Proxy
	url    string
	client *http.Client
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	up := newUpstream(t)
	p, err := New(up.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	base, err := p.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	tr := &http.Transport{DisableKeepAlives: true}
	t.Cleanup(tr.CloseIdleConnections)
	return &fixture{t: t, up: up, proxy: p, url: base, client: &http.Client{Transport: tr, Timeout: time.Minute}}
}

// reply is a response read whole.
type reply struct {
	status int
	header http.Header
	body   []byte
}

// do sends a KMS JSON request for op with body and returns the response or
// the client's error.
func (f *fixture) do(ctx context.Context, op, body string) (*reply, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, f.url+"/", strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "TrentService."+op)
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	return &reply{resp.StatusCode, resp.Header, b}, nil
}

// must is do for requests that must get an answer.
func (f *fixture) must(op, body string) *reply {
	f.t.Helper()
	r, err := f.do(context.Background(), op, body)
	if err != nil {
		f.t.Fatalf("%s %s: %v", op, body, err)
	}
	return r
}

func encrypt(keyID string) string {
	return `{"KeyId":"` + keyID + `","Plaintext":"aGVsbG8="}`
}

// wantAWSError checks an AWS JSON 1.1 error answer.
func wantAWSError(t *testing.T, r *reply, status int, code string) map[string]string {
	t.Helper()
	if r.status != status {
		t.Fatalf("status %d, want %d (body %s)", r.status, status, r.body)
	}
	if got := r.header.Get("X-Amzn-ErrorType"); got != code {
		t.Errorf("X-Amzn-ErrorType %q, want %q", got, code)
	}
	if got := r.header.Get("Content-Type"); got != "application/x-amz-json-1.1" {
		t.Errorf("Content-Type %q, want application/x-amz-json-1.1", got)
	}
	if r.header.Get("X-Amzn-RequestId") == "" {
		t.Error("no X-Amzn-RequestId header")
	}
	var body map[string]string
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("error body %q: %v", r.body, err)
	}
	if body["__type"] != code || body["message"] == "" {
		t.Errorf("error body %s, want __type %q and a message", r.body, code)
	}
	return body
}

func TestPassForwardsRequestAndResponseUnchanged(t *testing.T) {
	f := newFixture(t)
	body := `{"KeyId":"` + arn(keyA) + `","Plaintext":"c2VjcmV0","EncryptionContext":{"tenant":"t1"}}`
	req, err := http.NewRequest(http.MethodPost, f.url+"/", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "TrentService.Encrypt")
	req.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc")
	req.Header.Set("X-Amz-Date", "20260101T000000Z")
	resp, err := f.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)

	if resp.StatusCode != http.StatusOK || string(got) != upstreamReply {
		t.Fatalf("client got %d %q, want the upstream's 200 %q", resp.StatusCode, got, upstreamReply)
	}
	if resp.Header.Get("X-Amzn-RequestId") != "upstream-request-id" {
		t.Errorf("upstream response header lost: %v", resp.Header)
	}
	s := f.up.last(t)
	if s.method != http.MethodPost || s.path != "/" || string(s.body) != body {
		t.Errorf("upstream got %s %s %q, want POST / %q", s.method, s.path, s.body, body)
	}
	// The Host the client signed must survive, or SigV4 would not verify.
	if want := strings.TrimPrefix(f.url, "http://"); s.host != want {
		t.Errorf("upstream saw Host %q, want the client's %q", s.host, want)
	}
	for _, h := range []string{"Content-Type", "X-Amz-Target", "Authorization", "X-Amz-Date"} {
		if s.header.Get(h) != req.Header.Get(h) {
			t.Errorf("header %s: upstream got %q, client sent %q", h, s.header.Get(h), req.Header.Get(h))
		}
	}
	for _, h := range []string{"X-Forwarded-For", "X-Forwarded-Host", "Forwarded"} {
		if v := s.header.Get(h); v != "" {
			t.Errorf("proxy added %s: %q", h, v)
		}
	}
	if f.proxy.Requests() != 1 {
		t.Errorf("Requests() = %d, want 1", f.proxy.Requests())
	}
}

func TestDenyAnswersAccessDeniedWithoutReachingUpstream(t *testing.T) {
	f := newFixture(t)
	f.proxy.Set(keyA, Deny)

	// The rule names the key ID; the request names the key by ARN.
	body := wantAWSError(t, f.must("Encrypt", encrypt(arn(keyA))), http.StatusBadRequest, "AccessDeniedException")
	if !strings.Contains(body["message"], "kms:Encrypt") || !strings.Contains(body["message"], keyA) {
		t.Errorf("message %q should name the action and the key", body["message"])
	}
	if n := f.up.count(); n != 0 {
		t.Fatalf("denied request reached the upstream (%d requests)", n)
	}
	if r := f.must("Encrypt", encrypt(keyB)); r.status != http.StatusOK {
		t.Fatalf("other key: status %d, want 200", r.status)
	}
	if n := f.up.count(); n != 1 {
		t.Fatalf("upstream saw %d requests, want only the other key's", n)
	}
	if f.proxy.Requests() != 2 {
		t.Errorf("Requests() = %d, want 2 (denied ones count)", f.proxy.Requests())
	}
}

func TestServerErrorAnswersKMSInternalException(t *testing.T) {
	f := newFixture(t)
	f.proxy.Set(keyA, ServerError)
	wantAWSError(t, f.must("Decrypt", `{"KeyId":"`+keyA+`","CiphertextBlob":"AAAA"}`), http.StatusInternalServerError, "KMSInternalException")
	if n := f.up.count(); n != 0 {
		t.Fatalf("failed request reached the upstream (%d requests)", n)
	}
}

func TestDropClosesConnectionWithoutAnswer(t *testing.T) {
	f := newFixture(t)
	f.proxy.Set(keyA, Drop)
	r, err := f.do(context.Background(), "Encrypt", encrypt(keyA))
	if err == nil {
		t.Fatalf("dropped request got an answer: %d %s", r.status, r.body)
	}
	if n := f.up.count(); n != 0 {
		t.Fatalf("dropped request reached the upstream (%d requests)", n)
	}
	if f.proxy.Requests() != 1 {
		t.Errorf("Requests() = %d, want 1", f.proxy.Requests())
	}
	// The proxy itself keeps serving.
	if r := f.must("Encrypt", encrypt(keyB)); r.status != http.StatusOK {
		t.Fatalf("after a drop: status %d, want 200", r.status)
	}
}

// manualClock replaces the proxy's timer: each delay is announced on asked
// and lasts until the test sends on release.
type manualClock struct {
	asked   chan time.Duration
	release chan time.Time
}

func useManualClock(p *Proxy) *manualClock {
	c := &manualClock{asked: make(chan time.Duration, 8), release: make(chan time.Time)}
	p.after = func(d time.Duration) <-chan time.Time {
		c.asked <- d
		return c.release
	}
	return c
}

func TestDelayHoldsRequestUntilItElapses(t *testing.T) {
	f := newFixture(t)
	clock := useManualClock(f.proxy)
	f.proxy.SetDelay(keyA, 5*time.Second)

	type result struct {
		r   *reply
		err error
	}
	done := make(chan result, 1)
	go func() {
		r, err := f.do(context.Background(), "Encrypt", encrypt(keyA))
		done <- result{r, err}
	}()
	if d := <-clock.asked; d != 5*time.Second {
		t.Fatalf("proxy waited %v, want the rule's 5s", d)
	}
	// The request is now parked in the delay: nothing has gone upstream
	// and the client has no answer.
	select {
	case res := <-done:
		t.Fatalf("client answered before the delay elapsed: %+v", res)
	default:
	}
	if n := f.up.count(); n != 0 {
		t.Fatalf("delayed request reached the upstream early (%d requests)", n)
	}
	clock.release <- time.Now()
	res := <-done
	if res.err != nil || res.r.status != http.StatusOK {
		t.Fatalf("after the delay: %+v", res)
	}
	if n := f.up.count(); n != 1 {
		t.Fatalf("upstream saw %d requests after the delay, want 1", n)
	}

	// Another key is not delayed: it never asks the clock.
	if r := f.must("Encrypt", encrypt(keyB)); r.status != http.StatusOK {
		t.Fatalf("undelayed key: status %d", r.status)
	}
	select {
	case d := <-clock.asked:
		t.Fatalf("undelayed key waited %v", d)
	default:
	}
}

func TestDelayThenFault(t *testing.T) {
	f := newFixture(t)
	clock := useManualClock(f.proxy)
	f.proxy.SetDelay(keyA, time.Second)
	f.proxy.Set(keyA, Deny)
	done := make(chan *reply, 1)
	go func() { done <- f.must("Encrypt", encrypt(keyA)) }()
	<-clock.asked
	clock.release <- time.Now()
	wantAWSError(t, <-done, http.StatusBadRequest, "AccessDeniedException")
}

func TestDelayEndsWhenClientGivesUp(t *testing.T) {
	f := newFixture(t)
	clock := useManualClock(f.proxy)
	f.proxy.SetDelay("*", time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := f.do(ctx, "Encrypt", encrypt(keyA))
		errc <- err
	}()
	<-clock.asked // parked in the delay, never released
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Fatalf("client error %v, want context.Canceled", err)
	}
	if n := f.up.count(); n != 0 {
		t.Fatalf("abandoned request reached the upstream (%d requests)", n)
	}
}

func TestCloseEndsPendingDelays(t *testing.T) {
	f := newFixture(t)
	clock := useManualClock(f.proxy)
	f.proxy.SetDelay("*", time.Hour)
	errc := make(chan error, 1)
	go func() {
		_, err := f.do(context.Background(), "Encrypt", encrypt(keyA))
		errc <- err
	}()
	<-clock.asked
	if err := f.proxy.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err == nil {
		t.Fatal("request pending in a delay got an answer after Close")
	}
	if err := f.proxy.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if n := f.up.count(); n != 0 {
		t.Fatalf("request reached the upstream after Close (%d requests)", n)
	}
}

func TestStarMatchesEveryRequest(t *testing.T) {
	f := newFixture(t)
	f.proxy.Set("*", Deny)
	for _, tc := range []struct{ op, body string }{
		{"Encrypt", encrypt(keyA)},
		{"ListKeys", `{}`},
		{"CreateKey", `{"Description":"no key id"}`},
		{"Encrypt", `not json at all`},
		{"ListKeys", ``},
	} {
		wantAWSError(t, f.must(tc.op, tc.body), http.StatusBadRequest, "AccessDeniedException")
	}
	if n := f.up.count(); n != 0 {
		t.Fatalf("upstream reached %d times under a deny-all rule", n)
	}
}

func TestRequestsWithoutKeyMatchOnlyStar(t *testing.T) {
	f := newFixture(t)
	f.proxy.Set(keyA, Deny)
	f.proxy.Set("", Deny) // an empty match matches nothing
	for _, body := range []string{`{}`, `not json`, encrypt(keyB)} {
		if r := f.must("ListKeys", body); r.status != http.StatusOK {
			t.Fatalf("%q: status %d, want 200", body, r.status)
		}
	}
}

func TestMostRecentMatchingRuleWins(t *testing.T) {
	f := newFixture(t)
	status := func(key string) int { return f.must("Encrypt", encrypt(key)).status }

	f.proxy.Set("*", Deny)
	f.proxy.Set(keyA, Pass)
	if a, b := status(keyA), status(keyB); a != http.StatusOK || b != http.StatusBadRequest {
		t.Fatalf("deny-all then pass keyA: keyA %d keyB %d, want 200 and 400", a, b)
	}
	f.proxy.Set(keyA, ServerError)
	if a := status(keyA); a != http.StatusInternalServerError {
		t.Fatalf("keyA rule replaced by error: %d, want 500", a)
	}
	// Setting "*" again makes it the newest rule, so it wins over keyA's.
	f.proxy.Set("*", Deny)
	if a := status(keyA); a != http.StatusBadRequest {
		t.Fatalf("deny-all set last: keyA %d, want 400", a)
	}
}

func TestClearRestoresForwarding(t *testing.T) {
	f := newFixture(t)
	clock := useManualClock(f.proxy)
	f.proxy.Set("*", Drop)
	f.proxy.SetDelay("*", time.Hour)
	f.proxy.Clear()
	for _, key := range []string{keyA, keyB} {
		if r := f.must("Encrypt", encrypt(key)); r.status != http.StatusOK {
			t.Fatalf("after Clear: status %d, want 200", r.status)
		}
	}
	select {
	case d := <-clock.asked:
		t.Fatalf("a cleared delay still applied: %v", d)
	default:
	}
	if n := f.up.count(); n != 2 {
		t.Fatalf("upstream saw %d requests, want 2", n)
	}
}

func TestDecryptWithoutKeyIDMatchesTheCiphertextsKey(t *testing.T) {
	f := newFixture(t)
	f.proxy.Set(keyA, Deny)
	// LocalStack's ciphertext blobs start with the key ID.
	blob := func(key string) string {
		return base64.StdEncoding.EncodeToString(append([]byte(key), make([]byte, 40)...))
	}
	wantAWSError(t, f.must("Decrypt", `{"CiphertextBlob":"`+blob(keyA)+`"}`), http.StatusBadRequest, "AccessDeniedException")
	if r := f.must("Decrypt", `{"CiphertextBlob":"`+blob(keyB)+`"}`); r.status != http.StatusOK {
		t.Fatalf("other key's ciphertext: status %d, want 200", r.status)
	}
	// A blob not in LocalStack's layout names no key.
	if r := f.must("Decrypt", `{"CiphertextBlob":"`+base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{1}, 64))+`"}`); r.status != http.StatusOK {
		t.Fatalf("opaque ciphertext: status %d, want 200", r.status)
	}
}

func TestOversizedBodyIsRefused(t *testing.T) {
	f := newFixture(t)
	big := `{"KeyId":"` + keyA + `","Plaintext":"` + strings.Repeat("A", maxBody) + `"}`
	r := f.must("Encrypt", big)
	wantAWSError(t, r, http.StatusRequestEntityTooLarge, "RequestEntityTooLargeException")
	if n := f.up.count(); n != 0 {
		t.Fatalf("oversized request reached the upstream")
	}
}

func TestUpstreamDownAnswers502(t *testing.T) {
	up := httptest.NewServer(http.NotFoundHandler())
	dead := up.URL
	up.Close()
	p, err := New(dead)
	if err != nil {
		t.Fatal(err)
	}
	base, err := p.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	resp, err := http.Post(base+"/", "application/x-amz-json-1.1", strings.NewReader(encrypt(keyA)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("status %d, want 502", resp.StatusCode)
	}
}

func TestStartAcceptsOnlyLoopback(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "[::]:0", "192.0.2.1:0", "example.com:0", "127.0.0.1"} {
		p, err := New("http://127.0.0.1:4566")
		if err != nil {
			t.Fatal(err)
		}
		if base, err := p.Start(addr); err == nil {
			p.Close()
			t.Errorf("Start(%q) = %q, want an error", addr, base)
		}
	}
	p, err := New("http://127.0.0.1:4566")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	base, err := p.Start("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(base)
	if err != nil || u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Port() == "0" || u.Port() == "" {
		t.Fatalf("base URL %q, want http://127.0.0.1:<port>", base)
	}
	if _, err := p.Start("127.0.0.1:0"); err == nil {
		t.Error("second Start succeeded")
	}
	p.Close()
	if _, err := p.Start("127.0.0.1:0"); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func TestNewRejectsBadUpstream(t *testing.T) {
	for _, u := range []string{"", "127.0.0.1:4566", "ftp://127.0.0.1", "http://", "://x"} {
		if _, err := New(u); err == nil {
			t.Errorf("New(%q) succeeded", u)
		}
	}
}

func TestSetPanicsOnUnknownFault(t *testing.T) {
	p, err := New("http://127.0.0.1:4566")
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("Set with an unknown fault did not panic")
		}
	}()
	p.Set(keyA, Fault("denied"))
}
