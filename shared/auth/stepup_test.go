package auth_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// memStore keeps step-up tokens and audit records in memory; the rest of
// keyseal.Store is not used by StepUp.
type memStore struct {
	keyseal.Store
	mu     sync.Mutex
	tokens map[string]keyseal.StepUpToken
	audit  []keyseal.AuditRecord
}

func newMemStore() *memStore { return &memStore{tokens: map[string]keyseal.StepUpToken{}} }

func (m *memStore) PutStepUp(_ context.Context, tok keyseal.StepUpToken) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.tokens[tok.Hash]; ok {
		return keyseal.Errorf(keyseal.ECONFLICT, "duplicate")
	}
	m.tokens[tok.Hash] = tok
	return nil
}

func (m *memStore) GetStepUp(_ context.Context, hash string) (*keyseal.StepUpToken, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	tok, ok := m.tokens[hash]
	if !ok {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "unknown")
	}
	return &tok, nil
}

func (m *memStore) UseStepUp(_ context.Context, hash string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	tok, ok := m.tokens[hash]
	switch {
	case !ok:
		return keyseal.Errorf(keyseal.ENOTFOUND, "unknown")
	case tok.Used:
		return keyseal.Errorf(keyseal.ECONFLICT, "used")
	}
	tok.Used = true
	m.tokens[hash] = tok
	return nil
}

func (m *memStore) AppendAudit(_ context.Context, tenantID string, rec keyseal.AuditRecord) (keyseal.AuditEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.audit = append(m.audit, rec)
	return keyseal.AuditEntry{TenantID: tenantID, Seq: int64(len(m.audit)), Action: rec.Action}, nil
}

type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newStepUp() (*auth.StepUp, *memStore, *testClock) {
	store := newMemStore()
	clock := &testClock{t: time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)}
	return &auth.StepUp{Store: store, MaxAge: 300 * time.Second, ACRValues: []string{"mfa"}, TTL: 120 * time.Second, Now: clock.Now}, store, clock
}

func TestStepUpIssue(t *testing.T) {
	s, store, clock := newStepUp()
	fresh := &auth.Admin{Subject: "alice", TenantID: "acme", AuthTime: clock.Now().Add(-time.Minute), ACR: "mfa"}
	tok, exp, err := s.Issue(context.Background(), fresh)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "kst_") || len(tok) < 40 || !exp.Equal(clock.Now().Add(120*time.Second)) {
		t.Fatalf("token %q expiring %v", tok, exp)
	}
	sum := sha256.Sum256([]byte(tok))
	stored, ok := store.tokens[hex.EncodeToString(sum[:])]
	if !ok || stored.Subject != "alice" || stored.TenantID != "acme" || stored.Used {
		t.Fatalf("stored token: %+v (must be kept only as its hash)", stored)
	}
	if len(store.audit) != 1 || store.audit[0].Action != keyseal.ActionStepUp || strings.Contains(store.audit[0].Details["expires_at"], tok) {
		t.Fatalf("audit: %+v", store.audit)
	}

	amrOnly := &auth.Admin{Subject: "alice", TenantID: "acme", AuthTime: clock.Now(), ACR: "urn:idp:loa:2", AMR: []string{"pwd", "mfa"}}
	if _, _, err := s.Issue(context.Background(), amrOnly); err != nil {
		t.Fatalf("amr with mfa must be enough: %v", err)
	}
}

func TestStepUpIssueInsufficient(t *testing.T) {
	s, store, clock := newStepUp()
	now := clock.Now()
	for name, a := range map[string]*auth.Admin{
		"stale auth_time": {Subject: "alice", TenantID: "acme", AuthTime: now.Add(-301 * time.Second), ACR: "mfa"},
		"no auth_time":    {Subject: "alice", TenantID: "acme", ACR: "mfa", AMR: []string{"mfa"}},
		"password only":   {Subject: "alice", TenantID: "acme", AuthTime: now, ACR: "pwd", AMR: []string{"pwd"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, _, err := s.Issue(context.Background(), a)
			var e *keyseal.Error
			if keyseal.ErrorCode(err) != keyseal.EINSUFFICIENT || !asError(err, &e) {
				t.Fatalf("got %v, want %s", err, keyseal.EINSUFFICIENT)
			}
			want := `Bearer error="insufficient_user_authentication", error_description="A fresh multi-factor authentication is required", acr_values="mfa", max_age=300`
			if got := e.Header["WWW-Authenticate"]; got != want {
				t.Fatalf("WWW-Authenticate:\n got %s\nwant %s", got, want)
			}
		})
	}
	if len(store.tokens) != 0 {
		t.Fatal("a refused step-up stored a token")
	}
}

func asError(err error, target **keyseal.Error) bool {
	e, ok := err.(*keyseal.Error)
	*target = e
	return ok
}

func TestStepUpConsume(t *testing.T) {
	ctx := context.Background()
	s, _, clock := newStepUp()
	alice := &auth.Admin{Subject: "alice", TenantID: "acme", AuthTime: clock.Now(), ACR: "mfa"}
	issue := func() string {
		tok, _, err := s.Issue(ctx, alice)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	wantStepUp := func(err error, says string) {
		t.Helper()
		if keyseal.ErrorCode(err) != keyseal.ESTEPUP || !strings.Contains(keyseal.ErrorMessage(err), says) {
			t.Fatalf("got %v, want %s saying %q", err, keyseal.ESTEPUP, says)
		}
	}

	wantStepUp(s.Consume(ctx, alice, ""), "X-Keyseal-StepUp")
	wantStepUp(s.Consume(ctx, alice, "kst_forged"), "unknown")

	tok := issue()
	bob := &auth.Admin{Subject: "bob", TenantID: "acme"}
	wantStepUp(s.Consume(ctx, bob, tok), "another admin")
	aliceElsewhere := &auth.Admin{Subject: "alice", TenantID: "globex"}
	wantStepUp(s.Consume(ctx, aliceElsewhere, tok), "another admin or tenant")
	if err := s.Consume(ctx, alice, tok); err != nil {
		t.Fatalf("the owner's token was burnt by foreign attempts: %v", err)
	}
	wantStepUp(s.Consume(ctx, alice, tok), "already used")

	late := issue()
	clock.Advance(120 * time.Second)
	wantStepUp(s.Consume(ctx, alice, late), "expired")
}

func TestStepUpConsumeRace(t *testing.T) {
	ctx := context.Background()
	s, _, clock := newStepUp()
	alice := &auth.Admin{Subject: "alice", TenantID: "acme", AuthTime: clock.Now(), ACR: "mfa"}
	tok, _, err := s.Issue(ctx, alice)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	for range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if s.Consume(ctx, alice, tok) == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if ok != 1 {
		t.Fatalf("%d concurrent uses succeeded, want 1", ok)
	}
}

func TestAgentKeys(t *testing.T) {
	key, hash, err := auth.NewAgentKey()
	if err != nil {
		t.Fatal(err)
	}
	other, _, _ := auth.NewAgentKey()
	sum := sha256.Sum256([]byte(key))
	if !strings.HasPrefix(key, "ksa_") || len(key) != 4+43 || key == other || hash != hex.EncodeToString(sum[:]) || auth.HashAgentKey(key) != hash {
		t.Fatalf("key %q hash %q", key, hash)
	}
	for header, want := range map[string]string{"Bearer abc": "abc", "bearer  abc ": "abc", "BEARER abc": "abc", "Bearer ": "", "Basic abc": "", "abc": "", "": ""} {
		got, ok := auth.BearerToken(header)
		if got != want || ok != (want != "") {
			t.Errorf("BearerToken(%q) = %q, %v; want %q", header, got, ok, want)
		}
	}
}

func TestDevIssuer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dev-admin-issuer.json")
	d, err := auth.NewDevIssuer(path, "keyseal-dev", "keyseal-admin")
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	tok, err := d.Mint(auth.DevClaims{Subject: "dev", TenantID: "demo", TTL: time.Hour, AuthTime: time.Now(), ACR: "mfa",
		AMR: []string{"mfa"}, Roles: []string{auth.AdminRole}})
	if err != nil {
		t.Fatal(err)
	}
	// A restart reloads the same key: old tokens keep verifying.
	again, err := auth.NewDevIssuer(path, "keyseal-dev", "keyseal-admin")
	if err != nil {
		t.Fatal(err)
	}
	if string(again.JWKS()) != string(d.JWKS()) || strings.Contains(string(d.JWKS()), `"d"`) {
		t.Fatalf("JWKS changed across restarts or leaks the private key: %s", d.JWKS())
	}
	v, err := auth.NewAdminVerifier(auth.AdminConfig{JWKS: again.JWKS(), Issuer: "keyseal-dev", Audience: "keyseal-admin"})
	if err != nil {
		t.Fatal(err)
	}
	a, err := v.Verify(context.Background(), "Bearer "+tok)
	if err != nil || a.Subject != "dev" || a.TenantID != "demo" || a.ACR != "mfa" {
		t.Fatalf("dev token: %+v %v", a, err)
	}
	if err := os.WriteFile(path, []byte(`{"kty":"EC"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := auth.NewDevIssuer(path, "keyseal-dev", "keyseal-admin"); err == nil {
		t.Fatal("a broken key file was accepted")
	}
}
