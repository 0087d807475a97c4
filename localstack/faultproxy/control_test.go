package faultproxy

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// control sends a request to the proxy's control endpoint.
func (f *fixture) control(method, body string) (int, string) {
	f.t.Helper()
	req, err := http.NewRequest(method, f.url+ControlPath, strings.NewReader(body))
	if err != nil {
		f.t.Fatal(err)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestControlSetsAndClearsRules(t *testing.T) {
	f := newFixture(t)
	clock := useManualClock(f.proxy)

	if code, body := f.control(http.MethodPost, `{"match":"`+keyA+`","fault":"deny"}`); code != http.StatusNoContent {
		t.Fatalf("POST deny: %d %s", code, body)
	}
	wantAWSError(t, f.must("Encrypt", encrypt(keyA)), http.StatusBadRequest, "AccessDeniedException")

	if code, body := f.control(http.MethodPost, `{"match":"*","fault":"error"}`); code != http.StatusNoContent {
		t.Fatalf("POST error: %d %s", code, body)
	}
	wantAWSError(t, f.must("Encrypt", encrypt(keyB)), http.StatusInternalServerError, "KMSInternalException")

	// "fault": "" is Pass, and overrides the broader rule set before it.
	if code, body := f.control(http.MethodPost, `{"match":"`+keyB+`","fault":""}`); code != http.StatusNoContent {
		t.Fatalf("POST pass: %d %s", code, body)
	}
	if r := f.must("Encrypt", encrypt(keyB)); r.status != http.StatusOK {
		t.Fatalf("keyB after pass rule: %d", r.status)
	}

	// A delay-only rule leaves the fault rules alone.
	if code, body := f.control(http.MethodPost, `{"match":"`+keyB+`","delay":"2s"}`); code != http.StatusNoContent {
		t.Fatalf("POST delay: %d %s", code, body)
	}
	done := make(chan *reply, 1)
	go func() { done <- f.must("Encrypt", encrypt(keyB)) }()
	if d := <-clock.asked; d != 2*time.Second {
		t.Fatalf("delay %v, want 2s", d)
	}
	clock.release <- time.Now()
	if r := <-done; r.status != http.StatusOK {
		t.Fatalf("keyB after its delay: %d", r.status)
	}

	if code, body := f.control(http.MethodDelete, ""); code != http.StatusNoContent {
		t.Fatalf("DELETE: %d %s", code, body)
	}
	for _, key := range []string{keyA, keyB} {
		if r := f.must("Encrypt", encrypt(key)); r.status != http.StatusOK {
			t.Fatalf("after DELETE: %d", r.status)
		}
	}
	// Control requests are not KMS requests.
	if n := f.proxy.Requests(); n != 6 {
		t.Errorf("Requests() = %d, want the 6 KMS requests only", n)
	}
}

func TestControlRejectsBadRules(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		method, body string
		want         int
	}{
		{http.MethodPost, `{"match":"` + keyA + `","fault":"denied"}`, http.StatusBadRequest},
		{http.MethodPost, `{"match":"","fault":"deny"}`, http.StatusBadRequest},
		{http.MethodPost, `{"fault":"deny"}`, http.StatusBadRequest},
		{http.MethodPost, `{"match":"` + keyA + `"}`, http.StatusBadRequest},
		{http.MethodPost, `{"match":"` + keyA + `","fault":"deny","delay":"soon"}`, http.StatusBadRequest},
		{http.MethodPost, `{"match":"` + keyA + `","fault":"deny","extra":1}`, http.StatusBadRequest},
		{http.MethodPost, `not json`, http.StatusBadRequest},
		{http.MethodGet, ``, http.StatusMethodNotAllowed},
		{http.MethodPut, `{"match":"*","fault":"deny"}`, http.StatusMethodNotAllowed},
	} {
		code, body := f.control(tc.method, tc.body)
		if code != tc.want || !strings.Contains(body, `"error"`) {
			t.Errorf("%s %s: %d %s, want %d with an error message", tc.method, tc.body, code, body, tc.want)
		}
	}
	// None of them changed a rule, not even the one with a valid fault and
	// a bad delay.
	if r := f.must("Encrypt", encrypt(keyA)); r.status != http.StatusOK {
		t.Fatalf("a rejected control request changed the rules: %d", r.status)
	}
}
