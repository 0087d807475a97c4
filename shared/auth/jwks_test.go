package auth_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/internal/testclock"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// jwksServer is a loopback identity provider JWKS endpoint whose document
// and status the test can change, counting the fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	body    []byte
	status  int
	fetches int
}

func newJWKSServer(t *testing.T, body []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{body: body, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		defer s.mu.Unlock()
		s.fetches++
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(s.status)
		w.Write(s.body)
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(status int, body []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.body = status, body
}

func (s *jwksServer) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.fetches
}

func urlVerifier(t *testing.T, url string, now func() time.Time) *auth.AdminVerifier {
	t.Helper()
	v, err := auth.NewAdminVerifier(auth.AdminConfig{JWKSURL: url, Issuer: issuer, Audience: audience, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestJWKSURL walks one verifier through the life of an identity provider:
// lazy first fetch, caching, a key rotation picked up through the unknown
// kid, the refetch rate limit, the periodic refresh, and an outage during
// which cached keys keep working.
func TestJWKSURL(t *testing.T) {
	ctx := context.Background()
	old := newIDP(t, "-1")
	srv := newJWKSServer(t, old.jwks(t))
	clk := testclock.New(t0)
	v := urlVerifier(t, srv.URL, clk.Now)
	expectFetches := func(want int, when string) {
		t.Helper()
		if got := srv.count(); got != want {
			t.Fatalf("%s: %d JWKS fetches, want %d", when, got, want)
		}
	}
	verify := func(p *idp, kid string) error {
		t.Helper()
		claims := with(goodClaims(), "iat", clk.Now().Unix(), "exp", clk.Now().Add(time.Hour).Unix())
		_, err := v.Verify(ctx, "Bearer "+p.sign(t, jose.ES256, kid, claims))
		return err
	}

	expectFetches(0, "after NewAdminVerifier")
	for range 3 {
		if err := verify(old, ""); err != nil {
			t.Fatal(err)
		}
	}
	expectFetches(1, "three verifications")

	// The identity provider rotates to new keys with new kids.
	rotated := newIDP(t, "-2")
	srv.serve(http.StatusOK, rotated.jwks(t))
	clk.Advance(10 * time.Second)
	if err := verify(rotated, ""); keyseal.ErrorCode(err) != keyseal.EUNAUTHORIZED {
		t.Fatalf("new kid 10 s after a fetch: %v, want unauthorized (rate limit)", err)
	}
	expectFetches(1, "new kid within 30 s of the last fetch")
	clk.Advance(25 * time.Second)
	if err := verify(rotated, ""); err != nil {
		t.Fatalf("rotated key not picked up: %v", err)
	}
	expectFetches(2, "new kid 35 s after the last fetch")
	if err := verify(old, ""); keyseal.ErrorCode(err) != keyseal.EUNAUTHORIZED {
		t.Fatalf("withdrawn key still accepted: %v", err)
	}

	// Made-up kids cannot make keyseal hammer the identity provider.
	for range 5 {
		if err := verify(rotated, "made-up"); keyseal.ErrorCode(err) != keyseal.EUNAUTHORIZED {
			t.Fatalf("made-up kid: %v", err)
		}
	}
	expectFetches(2, "made-up kids right after a fetch")
	clk.Advance(31 * time.Second)
	if err := verify(rotated, "made-up"); keyseal.ErrorCode(err) != keyseal.EUNAUTHORIZED {
		t.Fatalf("made-up kid: %v", err)
	}
	if err := verify(rotated, "made-up"); keyseal.ErrorCode(err) != keyseal.EUNAUTHORIZED {
		t.Fatalf("made-up kid: %v", err)
	}
	expectFetches(3, "two made-up kids 31 s later")

	// Known kids use the cache until it is 10 minutes old.
	clk.Advance(9 * time.Minute)
	if err := verify(rotated, ""); err != nil {
		t.Fatal(err)
	}
	expectFetches(3, "known kid, cache 9 min old")
	clk.Advance(time.Minute)
	if err := verify(rotated, ""); err != nil {
		t.Fatal(err)
	}
	expectFetches(4, "known kid, cache 10 min old")

	// An outage after keys were cached: the refresh fails, the cached keys
	// keep verifying, and the failed refresh is not retried on every call.
	srv.serve(http.StatusServiceUnavailable, []byte(`{"error":"down"}`))
	clk.Advance(10 * time.Minute)
	for range 3 {
		if err := verify(rotated, ""); err != nil {
			t.Fatalf("cached keys must survive an outage: %v", err)
		}
	}
	expectFetches(5, "outage")
	clk.Advance(31 * time.Second)
	if err := verify(rotated, ""); err != nil {
		t.Fatal(err)
	}
	expectFetches(6, "outage, 31 s later")
}

// TestJWKSURLConcurrentFirstUse: callers arriving together share one fetch.
func TestJWKSURLConcurrentFirstUse(t *testing.T) {
	p := newIDP(t, "-1")
	srv := newJWKSServer(t, p.jwks(t))
	v := urlVerifier(t, srv.URL, fixedClock)
	token := "Bearer " + p.sign(t, jose.RS256, "", goodClaims())
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			_, err := v.Verify(context.Background(), token)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.count(); n != 1 {
		t.Fatalf("%d fetches for 16 concurrent first verifications, want 1", n)
	}
}

// TestJWKSURLNothingCached: when the keys cannot be fetched and none are
// cached, Verify fails with an infrastructure error (500 "internal error"),
// not a 401 that would blame the caller's token; a later call tries again.
func TestJWKSURLNothingCached(t *testing.T) {
	p := newIDP(t, "-1")
	for name, setup := range map[string]func(*jwksServer){
		"server error":       func(s *jwksServer) { s.serve(http.StatusInternalServerError, nil) },
		"not a JWKS":         func(s *jwksServer) { s.serve(http.StatusOK, []byte("<html>")) },
		"no usable key":      func(s *jwksServer) { s.serve(http.StatusOK, []byte(`{"keys":[]}`)) },
		"connection refused": func(s *jwksServer) { s.Close() },
	} {
		t.Run(name, func(t *testing.T) {
			srv := newJWKSServer(t, p.jwks(t))
			setup(srv)
			v := urlVerifier(t, srv.URL, fixedClock)
			token := "Bearer " + p.sign(t, jose.ES256, "", goodClaims())
			_, err := v.Verify(context.Background(), token)
			var appErr *keyseal.Error
			if err == nil || errors.As(err, &appErr) || keyseal.ErrorMessage(err) != "internal error" {
				t.Fatalf("got %v, want a plain infrastructure error", err)
			}
			if name == "connection refused" {
				return
			}
			srv.serve(http.StatusOK, p.jwks(t))
			if _, err := v.Verify(context.Background(), token); err != nil {
				t.Fatalf("recovered identity provider: %v", err)
			}
		})
	}
}
