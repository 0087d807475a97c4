package auth_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/internal/testclock"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/memstore"
)

// testStore is the shared in-memory store with a fault hook for
// GetStepUp.
type testStore struct {
	*memstore.Store
	// getErr, when set, is returned by GetStepUp (fault injection).
	getErr error
	// puts counts the tokens stored.
	puts atomic.Int64
}

func (s *testStore) PutStepUp(ctx context.Context, tok keyseal.StepUpToken) error {
	s.puts.Add(1)
	return s.Store.PutStepUp(ctx, tok)
}

func (s *testStore) GetStepUp(ctx context.Context, hash string) (*keyseal.StepUpToken, error) {
	if s.getErr != nil {
		return nil, s.getErr
	}
	return s.Store.GetStepUp(ctx, hash)
}

// token looks a raw token up the way StepUp stores it: by its hash.
func (s *testStore) token(raw string) (keyseal.StepUpToken, bool) {
	sum := sha256.Sum256([]byte(raw))
	tok, err := s.Store.GetStepUp(context.Background(), hex.EncodeToString(sum[:]))
	if err != nil {
		return keyseal.StepUpToken{}, false
	}
	return *tok, true
}

// audit lists a tenant's audit entries, newest first.
func (s *testStore) audit(t *testing.T, tenantID string) []keyseal.AuditEntry {
	t.Helper()
	entries, err := s.ListAudit(context.Background(), tenantID, keyseal.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

// newStepUp returns a StepUp as the admin API configures it, on a clock
// standing at 12:00:00.7, so expiry truncation shows.
func newStepUp() (*auth.StepUp, *testStore, *testclock.Clock) {
	store := &testStore{Store: memstore.New()}
	clk := testclock.New(t0.Add(700 * time.Millisecond))
	return &auth.StepUp{Tokens: store, Audit: store, MaxAge: 300 * time.Second, ACRValues: []string{"mfa"}, TTL: 120 * time.Second, Now: clk.Now}, store, clk
}

func TestStepUpIssue(t *testing.T) {
	ctx := context.Background()
	s, store, clk := newStepUp()
	alice := &auth.Admin{Subject: "alice", TenantID: "acme", AuthTime: clk.Now().Add(-time.Minute), ACR: "mfa"}
	tok, exp, err := s.Issue(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "kst_") || len(tok) != 4+43 {
		t.Fatalf("token %q: want kst_ and 32 base64url bytes", tok)
	}
	if want := t0.Add(120 * time.Second); !exp.Equal(want) || exp.Location() != time.UTC {
		t.Fatalf("expires at %v, want %v (UTC, whole seconds)", exp, want)
	}
	stored, ok := store.token(tok)
	if !ok || stored.Subject != "alice" || stored.TenantID != "acme" || !stored.ExpiresAt.Equal(exp) || stored.Used {
		t.Fatalf("stored token %+v (found by hash: %v)", stored, ok)
	}
	if _, err := store.Store.GetStepUp(ctx, tok); err == nil {
		t.Fatal("the token itself is a store key")
	}
	entries := store.audit(t, "acme")
	if len(entries) != 1 {
		t.Fatalf("audit: %+v", entries)
	}
	a := entries[0]
	if a.Action != keyseal.ActionStepUp || a.Severity != keyseal.SeverityInfo || a.Actor != "admin:alice" || !a.TS.Equal(clk.Now().Truncate(time.Microsecond)) {
		t.Fatalf("audit entry %+v", a)
	}
	for k, v := range a.Details {
		if strings.Contains(v, tok) || strings.Contains(v, tok[4:]) || strings.Contains(k, tok[4:]) {
			t.Fatalf("audit details carry the token: %v", a.Details)
		}
	}

	second, _, err := s.Issue(ctx, alice)
	if err != nil || second == tok {
		t.Fatalf("second token %q (%v) must differ from the first", second, err)
	}
}

func TestStepUpIssueAccepts(t *testing.T) {
	s, _, clk := newStepUp()
	now := clk.Now()
	for name, a := range map[string]*auth.Admin{
		"acr mfa":                            {AuthTime: now, ACR: "mfa"},
		"acr other but amr mfa":              {AuthTime: now, ACR: "urn:idp:loa:2", AMR: []string{"pwd", "mfa"}},
		"no acr, amr mfa":                    {AuthTime: now, AMR: []string{"mfa"}},
		"auth_time exactly max_age":          {AuthTime: now.Add(-300 * time.Second), ACR: "mfa"},
		"auth_time a second in skew":         {AuthTime: now.Add(time.Second), ACR: "mfa"},
		"auth_time just inside the leeway":   {AuthTime: now.Add(60 * time.Second), ACR: "mfa"},
		"auth_time at iat":                   {AuthTime: now, IssuedAt: now, ACR: "mfa"},
		"auth_time within the leeway of iat": {AuthTime: now, IssuedAt: now.Add(-60 * time.Second), ACR: "mfa"},
	} {
		a.Subject, a.TenantID = "alice", "acme"
		if _, _, err := s.Issue(context.Background(), a); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestStepUpIssueInsufficient(t *testing.T) {
	// What the RFC 9470 challenge needs; shared/api renders the header.
	challenge := func(e *keyseal.Error) string {
		return fmt.Sprintf("acr_values=%v max_age=%v", e.Extra[auth.ExtraACRValues], e.Extra[auth.ExtraMaxAge])
	}
	const defaultChallenge = "acr_values=mfa max_age=300"
	s, store, clk := newStepUp()
	now := clk.Now()
	for name, a := range map[string]*auth.Admin{
		"stale auth_time": {AuthTime: now.Add(-301 * time.Second), ACR: "mfa", AMR: []string{"mfa"}},
		"no auth_time":    {ACR: "mfa", AMR: []string{"mfa"}},
		"password only":   {AuthTime: now, ACR: "pwd", AMR: []string{"pwd"}},
		"nothing at all":  {AuthTime: now},
		// An identity provider whose clock runs a day ahead must not make
		// one sign-in good for step-ups all day.
		"auth_time 24 h ahead":            {AuthTime: now.Add(24 * time.Hour), ACR: "mfa", AMR: []string{"mfa"}},
		"auth_time just past the leeway":  {AuthTime: now.Add(61 * time.Second), ACR: "mfa", AMR: []string{"mfa"}},
		"auth_time after the token's iat": {AuthTime: now, IssuedAt: now.Add(-time.Hour), ACR: "mfa", AMR: []string{"mfa"}},
	} {
		t.Run(name, func(t *testing.T) {
			a.Subject, a.TenantID = "alice", "acme"
			tok, _, err := s.Issue(context.Background(), a)
			var e *keyseal.Error
			if tok != "" || !errors.As(err, &e) || e.Code != keyseal.EINSUFFICIENT {
				t.Fatalf("got %q, %v; want %s", tok, err, keyseal.EINSUFFICIENT)
			}
			if got := challenge(e); got != defaultChallenge {
				t.Fatalf("challenge:\n got %s\nwant %s", got, defaultChallenge)
			}
			if !strings.Contains(e.Message, "MFA") {
				t.Fatalf("message %q should tell the admin what to do", e.Message)
			}
		})
	}
	if store.puts.Load() != 0 || len(store.audit(t, "acme")) != 0 {
		t.Fatal("a refused step-up stored a token or an audit record")
	}

	// Zero values take the documented defaults.
	zero := &auth.StepUp{Tokens: store, Audit: store, Now: clk.Now}
	_, _, err := zero.Issue(context.Background(), &auth.Admin{Subject: "alice", TenantID: "acme"})
	var e *keyseal.Error
	if !errors.As(err, &e) || challenge(e) != defaultChallenge {
		t.Fatalf("defaults: %v %v", err, e)
	}

	// The challenge reflects the configuration.
	custom := &auth.StepUp{Tokens: store, Audit: store, Now: clk.Now, MaxAge: 10 * time.Minute, ACRValues: []string{"mfa", "urn:idp:phr"}}
	_, _, err = custom.Issue(context.Background(), &auth.Admin{Subject: "alice", TenantID: "acme", AuthTime: now, ACR: "pwd"})
	want := "acr_values=mfa urn:idp:phr max_age=600"
	if !errors.As(err, &e) || challenge(e) != want {
		t.Fatalf("custom challenge: %v %v", err, e)
	}
	if _, _, err := custom.Issue(context.Background(), &auth.Admin{Subject: "alice", TenantID: "acme", AuthTime: now, ACR: "urn:idp:phr"}); err != nil {
		t.Fatalf("a configured acr value must be accepted: %v", err)
	}
}

func TestStepUpConsume(t *testing.T) {
	ctx := context.Background()
	s, store, clk := newStepUp()
	alice := &auth.Admin{Subject: "alice", TenantID: "acme", AuthTime: clk.Now(), ACR: "mfa"}
	issue := func() string {
		t.Helper()
		tok, _, err := s.Issue(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	messages := map[string]string{}
	refused := func(err error, kind, says string) {
		t.Helper()
		if keyseal.ErrorCode(err) != keyseal.ESTEPUP || !strings.Contains(keyseal.ErrorMessage(err), says) {
			t.Fatalf("%s: got %v, want %s saying %q", kind, err, keyseal.ESTEPUP, says)
		}
		messages[kind] = keyseal.ErrorMessage(err)
	}

	refused(s.Consume(ctx, alice, ""), "missing", "send it in X-Keyseal-StepUp; get one from POST /admin/auth/step-up")
	refused(s.Consume(ctx, alice, "  "), "missing", "X-Keyseal-StepUp")
	refused(s.Consume(ctx, alice, "kst_forged"), "unknown", "unknown")

	tok := issue()
	bob := &auth.Admin{Subject: "bob", TenantID: "acme"}
	refused(s.Consume(ctx, bob, tok), "foreign subject", "another admin or tenant")
	aliceElsewhere := &auth.Admin{Subject: "alice", TenantID: "globex"}
	refused(s.Consume(ctx, aliceElsewhere, tok), "foreign tenant", "another admin or tenant")
	if stored, _ := store.token(tok); stored.Used {
		t.Fatal("a foreign attempt marked the token used")
	}
	if err := s.Consume(ctx, alice, tok); err != nil {
		t.Fatalf("the owner's token was burnt by foreign attempts: %v", err)
	}
	refused(s.Consume(ctx, alice, tok), "reused", "already used")

	late := issue()
	clk.Advance(119 * time.Second)
	early := issue()
	clk.Advance(time.Second) // late's expiry, truncated to 12:02:00, has passed
	refused(s.Consume(ctx, alice, late), "expired", "expired")
	if stored, _ := store.token(late); stored.Used {
		t.Fatal("an expired attempt marked the token used")
	}
	if err := s.Consume(ctx, alice, early); err != nil {
		t.Fatalf("a token within its 120 s: %v", err)
	}

	seen := map[string]string{}
	for kind, msg := range messages {
		if kind == "foreign tenant" {
			continue // same case as a foreign subject
		}
		if other, dup := seen[msg]; dup {
			t.Fatalf("%s and %s share the message %q", kind, other, msg)
		}
		seen[msg] = kind
	}
	for kind, msg := range messages {
		if strings.Contains(msg, tok) || strings.Contains(msg, late) {
			t.Fatalf("%s message echoes the token: %q", kind, msg)
		}
	}
}

func TestStepUpConsumeStoreFault(t *testing.T) {
	s, store, clk := newStepUp()
	alice := &auth.Admin{Subject: "alice", TenantID: "acme", AuthTime: clk.Now(), ACR: "mfa"}
	tok, _, err := s.Issue(context.Background(), alice)
	if err != nil {
		t.Fatal(err)
	}
	fault := errors.New("dynamodb: throttled")
	store.getErr = fault
	err = s.Consume(context.Background(), alice, tok)
	if !errors.Is(err, fault) || keyseal.ErrorCode(err) != keyseal.EINTERNAL {
		t.Fatalf("store fault: %v, want it wrapped as an internal error", err)
	}
}

// TestStepUpConsumeRace: of concurrent uses of one token exactly one wins;
// the others learn it was already used.
func TestStepUpConsumeRace(t *testing.T) {
	ctx := context.Background()
	s, _, clk := newStepUp()
	alice := &auth.Admin{Subject: "alice", TenantID: "acme", AuthTime: clk.Now(), ACR: "mfa"}
	tok, _, err := s.Issue(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 10)
	var wg sync.WaitGroup
	for range 10 {
		wg.Go(func() { errs <- s.Consume(ctx, alice, tok) })
	}
	wg.Wait()
	close(errs)
	wins := 0
	for err := range errs {
		switch {
		case err == nil:
			wins++
		case !strings.Contains(keyseal.ErrorMessage(err), "already used"):
			t.Fatalf("loser got %v", err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d concurrent uses succeeded, want 1", wins)
	}
}

// TestStepUpFreshSignInAdvice: where the server knows how to get a fresh
// sign-in (dev mode's token route), the refusal says so.
func TestStepUpFreshSignInAdvice(t *testing.T) {
	s, _, clk := newStepUp()
	s.FreshSignIn = "get a fresh admin token with POST /dev/admin-token and retry"
	_, _, err := s.Issue(context.Background(), &auth.Admin{Subject: "alice", TenantID: "acme", AuthTime: clk.Now().Add(-time.Hour), ACR: "mfa"})
	if keyseal.ErrorCode(err) != keyseal.EINSUFFICIENT || !strings.Contains(keyseal.ErrorMessage(err), "POST /dev/admin-token") {
		t.Fatalf("stale sign-in with dev advice: %v", err)
	}
}
