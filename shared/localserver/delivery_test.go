package localserver_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/localserver"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// delivery is one request a receiver verified.
type delivery struct {
	id, typ string
	event   keyseal.Event
	at      time.Time
}

// receiver is a real local endpoint on 127.0.0.1 that verifies every
// delivery with the Standard Webhooks library (not keyseal's signer) and
// answers answer(n) to the nth request (200 when nil).
type receiver struct {
	t      testing.TB
	srv    *httptest.Server
	answer func(n int) int
	// hang, when set, holds every request open until the test ends.
	hang    bool
	release chan struct{}

	mu       sync.Mutex
	secret   string
	requests int
	got      []delivery
	arrived  chan struct{}
}

func newReceiver(t testing.TB, answer func(n int) int) *receiver {
	t.Helper()
	r := &receiver{t: t, answer: answer, release: make(chan struct{}), arrived: make(chan struct{}, 100)}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(func() {
		close(r.release)
		r.srv.Close()
	})
	return r
}

func (r *receiver) url() string { return r.srv.URL + "/hook" }

func (r *receiver) setSecret(s string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.secret = s
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	if r.hang {
		select {
		case <-r.release:
		case <-req.Context().Done():
		}
		return
	}
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.requests++
	n, secret := r.requests, r.secret
	r.mu.Unlock()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		r.t.Errorf("receiver: secret %v", err)
		w.WriteHeader(http.StatusInternalServerError)
		return
	}
	if err := wh.Verify(body, req.Header); err != nil {
		r.t.Errorf("receiver: delivery does not verify: %v", err)
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	var e keyseal.Event
	if err := json.Unmarshal(body, &e); err != nil {
		r.t.Errorf("receiver: body %q: %v", body, err)
	}
	r.mu.Lock()
	r.got = append(r.got, delivery{id: req.Header.Get("webhook-id"), typ: e.Type, event: e, at: time.Now()})
	r.mu.Unlock()
	r.arrived <- struct{}{}
	code := http.StatusOK
	if r.answer != nil {
		code = r.answer(n)
	}
	w.WriteHeader(code)
}

func (r *receiver) deliveries() []delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]delivery(nil), r.got...)
}

// await waits until the receiver verified n deliveries; the deadline only
// stops a broken run.
func (r *receiver) await(n int, within time.Duration) []delivery {
	r.t.Helper()
	deadline := time.After(within)
	for {
		if got := r.deliveries(); len(got) >= n {
			return got
		}
		select {
		case <-r.arrived:
		case <-deadline:
			r.t.Fatalf("receiver got %d deliveries in %s, want %d: %+v", len(r.deliveries()), within, n, r.deliveries())
		}
	}
}

// subscribe creates a subscription of the demo tenant to url and returns
// its id and secret.
func subscribe(t testing.TB, s *localserver.Server, url string, events ...string) (string, string) {
	t.Helper()
	evs, _ := json.Marshal(events)
	r := do(t, s, http.MethodPost, "/admin/webhooks", bearer(s.Credentials.AdminToken), `{"url":"`+url+`","events":`+string(evs)+`}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create webhook: %d %s", r.status, r.raw)
	}
	return r.body["id"].(string), r.body["secret"].(string)
}

func subscribeReceiver(t testing.TB, s *localserver.Server, rec *receiver, events ...string) string {
	t.Helper()
	id, secret := subscribe(t, s, rec.url(), events...)
	rec.setSecret(secret)
	return id
}

func sendTest(t testing.TB, s *localserver.Server, id string) string {
	t.Helper()
	r := do(t, s, http.MethodPost, "/admin/webhooks/"+id+"/test", bearer(s.Credentials.AdminToken), "")
	if r.status != http.StatusAccepted {
		t.Fatalf("test event: %d %s", r.status, r.raw)
	}
	return r.body["event_id"].(string)
}

func setKey(t testing.TB, s *localserver.Server, state string) {
	t.Helper()
	if r := do(t, s, http.MethodPost, "/dev/kms/keys/"+s.Credentials.KMSKeyID+"/state", nil, `{"state":"`+state+`"}`); r.status != http.StatusOK {
		t.Fatalf("key %s: %d %s", state, r.status, r.raw)
	}
}

func sweep(t testing.TB, s *localserver.Server) {
	t.Helper()
	if _, err := s.App.Tenants.Sweep(context.Background(), tenantkms.AllShards()); err != nil {
		t.Fatal(err)
	}
}

// attempts is GET /admin/webhooks/{id}/deliveries, newest first.
func attempts(t testing.TB, s *localserver.Server, id string) []keyseal.DeliveryAttempt {
	t.Helper()
	r := do(t, s, http.MethodGet, "/admin/webhooks/"+id+"/deliveries", bearer(s.Credentials.AdminToken), "")
	if r.status != http.StatusOK {
		t.Fatalf("deliveries: %d %s", r.status, r.raw)
	}
	var out struct {
		Deliveries []keyseal.DeliveryAttempt `json:"deliveries"`
	}
	if err := json.Unmarshal([]byte(r.raw), &out); err != nil {
		t.Fatal(err)
	}
	return out.Deliveries
}

// awaitAttempts waits until the deliveries route lists n attempts (the
// record is written after the receiver answered).
func awaitAttempts(t testing.TB, s *localserver.Server, id string, n int) []keyseal.DeliveryAttempt {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		a := attempts(t, s, id)
		if len(a) >= n {
			return a
		}
		if time.Now().After(deadline) {
			t.Fatalf("attempts %+v, want %d", a, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDevModeSealDeliversVerifiedWebhook: with the real poller (0.5 s),
// disabling the key gets the receiver a verified tenant.kms.sealed within
// one poll plus one second: the sweep wakes the drain, the drain enqueues
// and wakes the worker.
func TestDevModeSealDeliversVerifiedWebhook(t *testing.T) {
	const poll = 500 * time.Millisecond
	// The drain's own interval is a minute: only the sweep's wake-up can
	// meet the deadline.
	s := devServer(t, t.TempDir(), map[string]string{"KEYSEAL_POLL_INTERVAL": poll.String(), "KEYSEAL_OUTBOX_INTERVAL": "1m"})
	rec := newReceiver(t, nil)
	id := subscribeReceiver(t, s, rec, keyseal.EventSealed)
	start := time.Now()
	setKey(t, s, "disabled")
	got := rec.await(1, poll+time.Second)
	t.Logf("key disabled -> verified tenant.kms.sealed in %s (poll %s)", got[0].at.Sub(start), poll)
	var sd keyseal.SealedData
	if got[0].typ != keyseal.EventSealed || got[0].id != got[0].event.ID || got[0].event.TenantID != localserver.DemoTenant ||
		got[0].event.DecodeData(&sd) != nil || sd.Reason != keyseal.ReasonKeyDisabled {
		t.Fatalf("delivery %+v", got[0])
	}
	if a := awaitAttempts(t, s, id, 1); len(a) != 1 || a[0].Outcome != keyseal.DeliveryDelivered || a[0].ResponseCode != 200 || a[0].EventID != got[0].id {
		t.Fatalf("attempts %+v", a)
	}
}

// TestDevModeRetriesWithTheSameID: a receiver answering 503 twice gets
// the retries with the same webhook-id, then the delivery succeeds; the
// deliveries route shows each attempt (outcome, code, latency, next
// retry). KEYSEAL_WEBHOOK_RETRY_SCALE shortens the 5 s and 5 min delays.
func TestDevModeRetriesWithTheSameID(t *testing.T) {
	s := devServer(t, t.TempDir(), map[string]string{"KEYSEAL_WEBHOOK_RETRY_SCALE": "0.002"})
	rec := newReceiver(t, func(n int) int {
		if n <= 2 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	id := subscribeReceiver(t, s, rec, keyseal.EventSealed)
	eventID := sendTest(t, s, id)
	got := rec.await(3, 10*time.Second)
	for _, d := range got {
		if d.id != eventID || d.typ != keyseal.EventWebhookTest {
			t.Fatalf("delivery %+v, want webhook-id %s on every attempt", d, eventID)
		}
	}
	a := awaitAttempts(t, s, id, 3)
	if len(a) != 3 {
		t.Fatalf("attempts %+v, want 3", a)
	}
	for i, want := range []struct {
		n       int
		outcome string
		code    int
	}{{3, keyseal.DeliveryDelivered, 200}, {2, keyseal.DeliveryRetrying, 503}, {1, keyseal.DeliveryRetrying, 503}} {
		if a[i].Attempt != want.n || a[i].Outcome != want.outcome || a[i].ResponseCode != want.code || a[i].EventID != eventID ||
			a[i].LatencyMS < 0 || (want.outcome == keyseal.DeliveryRetrying) != (a[i].NextRetryAt != nil) {
			t.Fatalf("attempt %d: %+v, want %+v", i, a[i], want)
		}
	}
	time.Sleep(300 * time.Millisecond)
	if n := len(rec.deliveries()); n != 3 {
		t.Fatalf("receiver got %d deliveries after success, want 3", n)
	}
}

// TestDevModeTestEventGoesToThatSubscriptionOnly: POST .../test reaches
// the subscription it names and no other of the tenant.
func TestDevModeTestEventGoesToThatSubscriptionOnly(t *testing.T) {
	s := devServer(t, t.TempDir(), nil)
	a, b := newReceiver(t, nil), newReceiver(t, nil)
	idA := subscribeReceiver(t, s, a, keyseal.EventSealed)
	subscribeReceiver(t, s, b, keyseal.EventSealed)
	eventID := sendTest(t, s, idA)
	got := a.await(1, 5*time.Second)
	var td keyseal.WebhookTestData
	if got[0].typ != keyseal.EventWebhookTest || got[0].id != eventID || got[0].event.DecodeData(&td) != nil || td.WebhookID != idA {
		t.Fatalf("delivery %+v", got[0])
	}
	waitOutboxEmpty(t, s)
	time.Sleep(2 * localserver.DeliveryInterval)
	if n := len(b.deliveries()); n != 0 {
		t.Fatalf("the other subscription got %d deliveries", n)
	}
}

func waitOutboxEmpty(t testing.TB, s *localserver.Server) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		left, err := s.App.Store.ListOutbox(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("outbox not drained: %d left", len(left))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDevModeGoneDisablesTheSubscription: a 410 disables the subscription
// (shown with its reason, audited as webhook.disable), and nothing more is
// delivered to it: a later seal is not sent.
func TestDevModeGoneDisablesTheSubscription(t *testing.T) {
	s := devServer(t, t.TempDir(), nil)
	rec := newReceiver(t, func(int) int { return http.StatusGone })
	id := subscribeReceiver(t, s, rec, keyseal.EventSealed)
	sendTest(t, s, id)
	rec.await(1, 5*time.Second)
	deadline := time.Now().Add(5 * time.Second)
	var w map[string]any
	for {
		r := do(t, s, http.MethodGet, "/admin/webhooks", bearer(s.Credentials.AdminToken), "")
		ws, _ := r.body["webhooks"].([]any)
		if len(ws) == 1 {
			w, _ = ws[0].(map[string]any)
		}
		if w["disabled"] == true || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if w["disabled"] != true || !strings.Contains(w["disabled_reason"].(string), "410") {
		t.Fatalf("subscription after a 410: %+v", w)
	}
	r := do(t, s, http.MethodGet, "/admin/audit", bearer(s.Credentials.AdminToken), "")
	if r.status != http.StatusOK || !strings.Contains(r.raw, keyseal.ActionWebhookDisable) || !strings.Contains(r.raw, id) {
		t.Fatalf("audit has no webhook.disable for %s: %s", id, r.raw)
	}
	setKey(t, s, "disabled")
	sweep(t, s)
	waitOutboxEmpty(t, s)
	time.Sleep(2 * localserver.DeliveryInterval)
	if n := len(rec.deliveries()); n != 1 {
		t.Fatalf("a disabled subscription got %d deliveries, want the one 410", n)
	}
}

// TestDevModeDeliveryIsDurableAcrossRestart: a job pending when the
// server stops (the receiver down, its retry due in ~5 s) is delivered by
// the next start on the same data dir, once the receiver is up.
func TestDevModeDeliveryIsDurableAcrossRestart(t *testing.T) {
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // the receiver is down: connections are refused
	s, stop := startServer(t, dir, nil, localserver.Options{})
	id, secret := subscribe(t, s, "http://"+addr+"/hook", keyseal.EventSealed)
	eventID := sendTest(t, s, id)
	if a := awaitAttempts(t, s, id, 1); a[0].Outcome != keyseal.DeliveryRetrying || a[0].ResponseCode != 0 || a[0].Error == "" {
		t.Fatalf("first attempt to a receiver that is down: %+v", a[0])
	}
	stop()

	rec := &receiver{t: t, release: make(chan struct{}), arrived: make(chan struct{}, 100), secret: secret}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the receiver's port was taken meanwhile: %v", err)
	}
	rec.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(rec.serve)}}
	rec.srv.Start()
	t.Cleanup(func() {
		close(rec.release)
		rec.srv.Close()
	})
	s2 := devServer(t, dir, nil)
	got := rec.await(1, 15*time.Second)
	if got[0].id != eventID || got[0].typ != keyseal.EventWebhookTest {
		t.Fatalf("delivery after restart %+v, want event %s", got[0], eventID)
	}
	if a := awaitAttempts(t, s2, id, 2); len(a) != 2 || a[0].Attempt != 2 || a[0].Outcome != keyseal.DeliveryDelivered {
		t.Fatalf("attempts after restart %+v", a)
	}
}

// TestDevModeHangingReceiverDoesNotStallOthers: a receiver that never
// answers and one that streams forever do not hold up the delivery of the
// same seal to a third subscription.
func TestDevModeHangingReceiverDoesNotStallOthers(t *testing.T) {
	s := devServer(t, t.TempDir(), nil)
	hang := newReceiver(t, nil)
	hang.hang = true
	subscribe(t, s, hang.url(), keyseal.EventSealed)
	release := make(chan struct{})
	stream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		chunk := []byte(strings.Repeat("x", 1024))
		for {
			select {
			case <-release:
				return
			case <-r.Context().Done():
				return
			default:
			}
			if _, err := w.Write(chunk); err != nil {
				return
			}
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(func() {
		close(release)
		stream.Close()
	})
	subscribe(t, s, stream.URL+"/hook", keyseal.EventSealed)
	fast := newReceiver(t, nil)
	subscribeReceiver(t, s, fast, keyseal.EventSealed)
	setKey(t, s, "disabled")
	start := time.Now()
	sweep(t, s)
	got := fast.await(1, 3*time.Second) // the client's timeout is 15 s
	t.Logf("seal -> fast receiver in %s beside a hanging and a streaming one", got[0].at.Sub(start))
}

// BenchmarkSealToDelivery measures dev mode end to end: from the sweep
// that finds the key disabled to the receiver's verified tenant.kms.sealed
// (the seal committed with its outbox event, the drain woken as the
// poller wakes it, the fan-out into the durable queue, the worker's signed
// POST over real HTTP). Each iteration runs sealRounds seal/unseal cycles
// and reports the median and the worst.
//
//	go test -run '^$' -bench SealToDelivery -benchtime 5x ./shared/localserver/
func BenchmarkSealToDelivery(b *testing.B) {
	const sealRounds = 5
	s := devServer(b, b.TempDir(), nil)
	rec := newReceiver(b, nil)
	subscribeReceiver(b, s, rec, keyseal.EventSealed)
	var took []time.Duration
	for b.Loop() {
		for range sealRounds {
			setKey(b, s, "enabled")
			sweep(b, s)
			setKey(b, s, "disabled")
			start := time.Now()
			sweep(b, s)
			s.DrainNow()
			got := rec.await(len(took)+1, 10*time.Second)
			took = append(took, got[len(got)-1].at.Sub(start))
		}
	}
	slices.Sort(took)
	var sum time.Duration
	for _, d := range took {
		sum += d
	}
	b.ReportMetric(float64(sum.Microseconds())/1000/float64(len(took)), "ms-seal-to-delivery")
	b.ReportMetric(float64(took[len(took)/2].Microseconds())/1000, "median-ms")
	b.ReportMetric(float64(took[len(took)-1].Microseconds())/1000, "max-ms")
}
