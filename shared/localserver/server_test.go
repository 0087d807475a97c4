package localserver_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/client"
	"github.com/keyseal/keyseal/shared/devissuer"
	"github.com/keyseal/keyseal/shared/localserver"
	"github.com/keyseal/keyseal/shared/session"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// startServer starts dev mode in dir, as `make run` does, with env over
// the test defaults and opt (Addr defaults to 127.0.0.1:0, DataDir is dir).
// stop ends it; cleanup calls it too.
func startServer(t testing.TB, dir string, env map[string]string, opt localserver.Options) (*localserver.Server, func()) {
	t.Helper()
	// Push off unless a test turns it on (push_test.go): the other tests
	// drive seals with sweeps and must not race a pushed verify.
	vars := map[string]string{"KEYSEAL_LOG_LEVEL": "error", "KEYSEAL_POLL_INTERVAL": "1h", "KEYSEAL_DEV_PUSH": "0"}
	for k, v := range env {
		vars[k] = v
	}
	ctx, cancel := context.WithCancel(context.Background())
	a, l, err := localserver.Wire(ctx, func(k string) string { return vars[k] }, localserver.ModeDev, dir)
	if err != nil {
		t.Fatal(err)
	}
	opt.DataDir = dir
	if opt.Addr == "" {
		opt.Addr = "127.0.0.1:0"
	}
	s, err := localserver.Start(ctx, a, l, opt)
	if err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			s.Close()
			a.Close()
		})
	}
	t.Cleanup(stop)
	return s, stop
}

// devServer starts dev mode in dir with env.
func devServer(t testing.TB, dir string, env map[string]string) *localserver.Server {
	t.Helper()
	s, _ := startServer(t, dir, env, localserver.Options{})
	return s
}

type result struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

func do(t testing.TB, s *localserver.Server, method, path string, headers map[string]string, body string) result {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := result{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if resp.StatusCode == http.StatusNoContent && len(raw) == 0 {
		return r
	}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("%s %s: answer is not a JSON object: %q", method, path, raw)
	}
	return r
}

func bearer(tok string) map[string]string { return map[string]string{"Authorization": "Bearer " + tok} }

func (r result) code() string {
	switch e := r.body["error"].(type) {
	case string:
		return e
	case map[string]any:
		s, _ := e["type"].(string)
		return s
	}
	return ""
}

func stepUp(t *testing.T, s *localserver.Server) string {
	t.Helper()
	su, err := client.MustNew(s.URL, s.Credentials.AdminToken).StepUp(context.Background())
	if err != nil {
		t.Fatalf("step-up: %v", err)
	}
	return su.StepUpToken
}

// stepUpHeaders are the demo admin's headers with a fresh step-up token.
func stepUpHeaders(t *testing.T, s *localserver.Server) map[string]string {
	t.Helper()
	h := bearer(s.Credentials.AdminToken)
	h[auth.StepUpHeader] = stepUp(t, s)
	return h
}

// TestDevModeWalkthrough is the README's dev-mode tour: credentials file,
// session, JWKS, and every local key state driven through /dev.
func TestDevModeWalkthrough(t *testing.T) {
	dir := t.TempDir()
	s := devServer(t, dir, map[string]string{"KEYSEAL_TMK_CACHE_TTL": "1s"})

	b, err := os.ReadFile(filepath.Join(dir, "dev-credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	var creds map[string]string
	if err := json.Unmarshal(b, &creds); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"tenant_id", "agent_key", "admin_token", "kms_key_id"} {
		if creds[k] == "" {
			t.Fatalf("dev-credentials.json lacks %s: %s", k, b)
		}
	}
	if fi, _ := os.Stat(filepath.Join(dir, "dev-credentials.json")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("dev-credentials.json mode %v, want 0600", fi.Mode().Perm())
	}

	agent := bearer(creds["agent_key"])
	r := do(t, s, http.MethodPost, "/agent/v1/session", agent, "")
	if r.status != http.StatusCreated || r.body["tenant_id"] != "demo" || r.body["tmk_version"] != float64(1) {
		t.Fatalf("session: %d %s", r.status, r.raw)
	}
	jr := do(t, s, http.MethodGet, "/agent/v1/jwks/demo", nil, "")
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(jr.raw), &set); err != nil {
		t.Fatal(err)
	}
	if _, err := session.Verify(r.body["token"].(string), set, time.Now()); err != nil {
		t.Fatalf("session token does not verify with the JWKS: %v", err)
	}

	sweep := func() {
		if _, err := s.App.Tenants.Sweep(context.Background(), tenantkms.AllShards()); err != nil {
			t.Fatal(err)
		}
	}
	setState := func(state string) {
		r := do(t, s, http.MethodPost, "/dev/kms/keys/"+creds["kms_key_id"]+"/state", nil, `{"state":"`+state+`"}`)
		if r.status != http.StatusOK {
			t.Fatalf("set state %s: %d %s", state, r.status, r.raw)
		}
	}
	for _, c := range []struct{ state, reason string }{
		{"disabled", "key_disabled"}, {"pending_deletion", "key_pending_deletion"},
		{"access_denied", "access_denied"}, {"unreachable", "unreachable"},
	} {
		t.Run(c.state, func(t *testing.T) {
			setState(c.state)
			sweep()
			if c.state == "unreachable" { // transient: seals once the cache TTL has run out
				time.Sleep(time.Second)
				sweep()
			}
			v := do(t, s, http.MethodGet, "/admin/tenant-kms", bearer(s.Credentials.AdminToken), "")
			if v.body["status"] != "sealed" || v.body["seal_reason"] != c.reason {
				t.Fatalf("after %s: %s", c.state, v.raw)
			}
			if r := do(t, s, http.MethodPost, "/agent/v1/session", agent, ""); r.status != http.StatusServiceUnavailable || r.code() != "tenant_sealed" {
				t.Fatalf("session while sealed: %d %s", r.status, r.raw)
			}
			setState("enabled")
			sweep()
			if r := do(t, s, http.MethodPost, "/agent/v1/session", agent, ""); r.status != http.StatusCreated {
				t.Fatalf("session after re-enabling: %d %s", r.status, r.raw)
			}
		})
	}
	if r := do(t, s, http.MethodPost, "/dev/kms/keys/"+creds["kms_key_id"]+"/state", nil, `{"state":"melted"}`); r.status != http.StatusBadRequest {
		t.Fatalf("unknown state: %d %s", r.status, r.raw)
	}
	if r := do(t, s, http.MethodPost, "/dev/kms/keys/no-such-key/state", nil, `{"state":"disabled"}`); r.status != http.StatusNotFound {
		t.Fatalf("unknown key: %d %s", r.status, r.raw)
	}
}

// TestDevModeShowsDegradedKMS: during a transient outage the config row
// says the KMS is unreachable and until when the tenant serves from its
// cached TMK, and the session path keeps working meanwhile.
func TestDevModeShowsDegradedKMS(t *testing.T) {
	s := devServer(t, t.TempDir(), nil)
	admin := bearer(s.Credentials.AdminToken)
	sweep := func() {
		if _, err := s.App.Tenants.Sweep(context.Background(), tenantkms.AllShards()); err != nil {
			t.Fatal(err)
		}
	}
	sweep()
	v := do(t, s, http.MethodGet, "/admin/tenant-kms", admin, "")
	if v.body["kms_reachable"] != true || v.body["serving_from_cache_until"] != nil {
		t.Fatalf("healthy: %s", v.raw)
	}
	if r := do(t, s, http.MethodPost, "/dev/kms/keys/"+s.Credentials.KMSKeyID+"/state", nil, `{"state":"unreachable"}`); r.status != http.StatusOK {
		t.Fatalf("set state: %d %s", r.status, r.raw)
	}
	sweep()
	v = do(t, s, http.MethodGet, "/admin/tenant-kms", admin, "")
	verified, err := time.Parse(time.RFC3339Nano, v.body["last_verified_at"].(string))
	if err != nil {
		t.Fatal(err)
	}
	until, _ := v.body["serving_from_cache_until"].(string)
	if v.body["status"] != "active" || v.body["kms_reachable"] != false || v.body["last_verify_error"] == nil ||
		until != verified.Add(5*time.Minute).Format(time.RFC3339Nano) {
		t.Fatalf("degraded: %s; want active, kms_reachable false, serving_from_cache_until = last_verified_at + 5m", v.raw)
	}
	if r := do(t, s, http.MethodPost, "/agent/v1/session", bearer(s.Credentials.AgentKey), ""); r.status != http.StatusCreated {
		t.Fatalf("session while degraded: %d %s", r.status, r.raw)
	}
}

// TestDevModeSurvivesRestart checks the embedded store is durable: a second
// start on the same data dir keeps the tenant and the agent key.
func TestDevModeSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	a, l, err := localserver.Wire(ctx, func(k string) string { return map[string]string{"KEYSEAL_LOG_LEVEL": "error"}[k] }, localserver.ModeDev, dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := localserver.Start(ctx, a, l, localserver.Options{Addr: "127.0.0.1:0", DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	first := s.Credentials
	cancel()
	s.Close()
	a.Close()

	s2 := devServer(t, dir, nil)
	if s2.Credentials.AgentKey != first.AgentKey || s2.Credentials.KMSKeyID != first.KMSKeyID {
		t.Fatalf("restart changed the demo credentials: %+v -> %+v", first, s2.Credentials)
	}
	if r := do(t, s2, http.MethodPost, "/agent/v1/session", bearer(first.AgentKey), ""); r.status != http.StatusCreated {
		t.Fatalf("session after restart: %d %s", r.status, r.raw)
	}
}

// TestBadInput sends every kind of bad input the issue lists to every route
// that takes it; each must be a clear 4xx JSON error, never a 5xx.
func TestBadInput(t *testing.T) {
	s := devServer(t, t.TempDir(), nil)
	admin := bearer(s.Credentials.AdminToken)
	agent := bearer(s.Credentials.AgentKey)
	big := `{"name":"` + strings.Repeat("x", api.MaxBody) + `"}`
	withStepUp := func() map[string]string { return stepUpHeaders(t, s) }

	bodyRoutes := []struct {
		method, path string
		headers      func() map[string]string
	}{
		{http.MethodPost, "/agent/v1/session", func() map[string]string { return agent }},
		{http.MethodPut, "/admin/tenant-kms", withStepUp},
		{http.MethodPost, "/admin/tenant-kms/unseal", withStepUp},
		{http.MethodPost, "/admin/tenant-kms/migrate", withStepUp},
		{http.MethodPost, "/admin/tenant-kms/legal-waiver", func() map[string]string { return admin }},
		{http.MethodPost, "/api/v1/byok/legal-waiver", func() map[string]string { return admin }},
		{http.MethodPost, "/dev/legal-waiver", func() map[string]string { return nil }},
		{http.MethodPost, "/admin/auth/step-up", func() map[string]string { return admin }},
		{http.MethodPost, "/admin/agents", func() map[string]string { return admin }},
		{http.MethodPost, "/dev/admin-token", func() map[string]string { return nil }},
		{http.MethodPost, "/dev/kms/keys/" + s.Credentials.KMSKeyID + "/state", func() map[string]string { return nil }},
	}
	bodies := map[string]string{
		"malformed JSON": `{"name": `,
		"unknown field":  `{"nonsense": true}`,
		"trailing data":  `{} {}`,
		"not an object":  `[1,2]`,
		"over 64 KiB":    big,
	}
	for _, rt := range bodyRoutes {
		for name, body := range bodies {
			t.Run(rt.method+" "+rt.path+" "+name, func(t *testing.T) {
				r := do(t, s, rt.method, rt.path, rt.headers(), body)
				if r.status != http.StatusBadRequest || r.code() != "invalid_request" {
					t.Fatalf("%d %s", r.status, r.raw)
				}
			})
		}
	}

	t.Run("agent names", func(t *testing.T) {
		for _, body := range []string{`{"name":"bot\u0000admin"}`, `{"name":"a\nb"}`, `{"name":"\u202eexe"}`, "{\"name\":\"bad \xff\"}"} {
			if r := do(t, s, http.MethodPost, "/admin/agents", admin, body); r.status != http.StatusBadRequest || r.code() != "invalid_request" {
				t.Fatalf("%q: %d %s", body, r.status, r.raw)
			}
		}
	})

	t.Run("bad tenant ids", func(t *testing.T) {
		for _, id := range []string{"-leading-dash", strings.Repeat("a", 65), "semi;colon", "%00"} {
			r := do(t, s, http.MethodGet, "/agent/v1/jwks/"+id, nil, "")
			if r.status != http.StatusBadRequest || r.code() != "invalid_request" {
				t.Fatalf("jwks %q: %d %s", id, r.status, r.raw)
			}
		}
		r := do(t, s, http.MethodPost, "/dev/admin-token", nil, `{"tenant_id":"bad id!"}`)
		if r.status != http.StatusBadRequest {
			t.Fatalf("dev admin token for a bad tenant id: %d %s", r.status, r.raw)
		}
		// An admin JWT whose tenant claim is not a valid id is refused.
		tok, err := s.Local.Issuer.Mint(devissuer.Claims{Subject: "a", TenantID: "bad id!", TTL: time.Hour, Roles: []string{"keyseal:admin"}})
		if err != nil {
			t.Fatal(err)
		}
		if r := do(t, s, http.MethodGet, "/admin/tenant-kms", bearer(tok), ""); r.status != http.StatusUnauthorized {
			t.Fatalf("bad tenant claim: %d %s", r.status, r.raw)
		}
	})

	// Dev mode serves the local provider only; a body for another says so
	// plainly (the AWS key ARN checks run in the LocalStack suite).
	t.Run("registration fields", func(t *testing.T) {
		for _, tc := range []struct {
			body   string
			status int
			code   string
			says   string
		}{
			{`{"provider":"aws-kms","key_arn":"arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"}`, 422, "provider_not_configured", "supports: local"},
			{`{"provider":"gcp-kms","key_name":"projects/p/locations/l/keyRings/r/cryptoKeys/k"}`, 422, "provider_not_configured", "supports: local"},
			{`{"provider":"vault","key_id":"x"}`, 400, "invalid_request", "supports: local"},
			{`{"key_id":"x"}`, 400, "invalid_request", "provider is required"},
			{`{"provider":"local","key_arn":"arn:aws:kms:us-east-1:123456789012:key/x"}`, 400, "invalid_request", "key_id, not key_arn"},
			{`{"provider":"local","key_id":"k","role_arn":"arn:aws:iam::123456789012:role/r"}`, 400, "invalid_request", "only key_id"},
			{`{"provider":"local","key_id":7}`, 400, "invalid_request", "must be a string"},
			{`{"provider":"local","key_id":null}`, 400, "invalid_request", "must be a string"},
			{`{"provider":"local","key_id":"k","key_id":"other"}`, 400, "invalid_request", `duplicate member \"key_id\"`},
			{`{"provider":"local","Key_ID":"k"}`, 400, "invalid_request", "only key_id"},
			{"{\"provider\":\"local\",\"key_id\":\"k\xff\"}", 400, "invalid_request", "not valid UTF-8"},
		} {
			r := do(t, s, http.MethodPut, "/admin/tenant-kms", admin, tc.body)
			if r.status != tc.status || r.code() != tc.code || !strings.Contains(r.raw, tc.says) {
				t.Fatalf("%s: %d %s; want %d %s saying %q", tc.body, r.status, r.raw, tc.status, tc.code, tc.says)
			}
		}
	})

	t.Run("hostile admin JWTs", func(t *testing.T) {
		claims := map[string]any{"iss": localserver.DevIssuer, "aud": localserver.DevAudience, "sub": "mallory", "tenant_id": "demo",
			"roles": []string{"keyseal:admin"}, "exp": time.Now().Add(time.Hour).Unix(), "auth_time": time.Now().Unix(), "acr": "mfa"}
		expired, err := s.Local.Issuer.Mint(devissuer.Claims{Subject: "a", TenantID: "demo", TTL: -time.Minute, Roles: []string{"keyseal:admin"}})
		if err != nil {
			t.Fatal(err)
		}
		tokens := map[string]string{
			"alg none":       unsigned(claims),
			"HS256":          hs256(claims, s.Local.Issuer.JWKS()),
			"expired":        expired,
			"foreign issuer": foreignIssuer(t, claims),
			"garbage":        "not.a.jwt",
		}
		for name, tok := range tokens {
			for _, path := range []string{"/admin/tenant-kms", "/admin/audit", "/admin/agents"} {
				r := do(t, s, http.MethodGet, path, bearer(tok), "")
				if r.status != http.StatusUnauthorized || r.code() != "unauthorized" {
					t.Fatalf("%s on %s: %d %s", name, path, r.status, r.raw)
				}
			}
		}
		if r := do(t, s, http.MethodGet, "/admin/tenant-kms", nil, ""); r.status != http.StatusUnauthorized {
			t.Fatalf("no token: %d %s", r.status, r.raw)
		}
		noRole, err := s.Local.Issuer.Mint(devissuer.Claims{Subject: "a", TenantID: "demo", TTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if r := do(t, s, http.MethodGet, "/admin/tenant-kms", bearer(noRole), ""); r.status != http.StatusForbidden || r.code() != "forbidden" {
			t.Fatalf("no admin role: %d %s", r.status, r.raw)
		}
	})

	t.Run("bad agent keys", func(t *testing.T) {
		for _, h := range []map[string]string{nil, bearer("ksa_unknown"), {"Authorization": "Basic Zm9vOmJhcg=="}} {
			r := do(t, s, http.MethodPost, "/agent/v1/session", h, "")
			if r.status != http.StatusUnauthorized || r.code() != "unauthorized" {
				t.Fatalf("%v: %d %s", h, r.status, r.raw)
			}
		}
	})

	t.Run("routing", func(t *testing.T) {
		if r := do(t, s, http.MethodGet, "/nope", nil, ""); r.status != http.StatusNotFound {
			t.Fatalf("unknown route: %d %s", r.status, r.raw)
		}
		r := do(t, s, http.MethodDelete, "/agent/v1/session", nil, "")
		if r.status != http.StatusMethodNotAllowed || r.header.Get("Allow") != "POST" {
			t.Fatalf("wrong method: %d %s allow=%q", r.status, r.raw, r.header.Get("Allow"))
		}
		// Exact paths only: a proxy's path-prefix rule must see the path
		// keyseal serves.
		for _, p := range []struct{ method, path string }{
			{http.MethodGet, "//admin/audit"}, {http.MethodGet, "/admin/audit/"}, {http.MethodGet, "/admin//audit"},
			{http.MethodPost, "//dev/admin-token"}, {http.MethodPost, "/dev/admin-token/"}, {http.MethodPost, "/%64ev/admin-token"},
			{http.MethodGet, "/admin%2Faudit"}, {http.MethodGet, "//agent/v1/jwks/demo"},
		} {
			if r := do(t, s, p.method, p.path, admin, ""); r.status != http.StatusNotFound || r.code() != "not_found" {
				t.Fatalf("%s %s: %d %s; want keyseal's 404", p.method, p.path, r.status, r.raw)
			}
		}
		// Invalid UTF-8 in a query parameter or a path parameter: 400.
		for _, p := range []struct{ method, path string }{
			{http.MethodGet, "/admin/audit?action=byok.%ff"}, {http.MethodGet, "/admin/audit?%c0=1"},
			{http.MethodDelete, "/admin/agents/agt_%ff"}, {http.MethodGet, "/agent/v1/jwks/%ff"},
		} {
			if r := do(t, s, p.method, p.path, admin, ""); r.status != http.StatusBadRequest || r.code() != "invalid_request" {
				t.Fatalf("%s %s: %d %s; want 400 invalid_request", p.method, p.path, r.status, r.raw)
			}
		}
	})
}

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// unsigned is an alg=none token.
func unsigned(claims map[string]any) string {
	return b64(map[string]string{"alg": "none", "typ": "JWT"}) + "." + b64(claims) + "."
}

// hs256 signs with the issuer's public JWKS bytes as an HMAC secret: the
// classic algorithm-confusion attack.
func hs256(claims map[string]any, secret []byte) string {
	in := b64(map[string]string{"alg": "HS256", "typ": "JWT"}) + "." + b64(claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// foreignIssuer is a well-formed ES256 token from an issuer keyseal does not
// trust.
func foreignIssuer(t *testing.T, claims map[string]any) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	c := map[string]any{}
	for k, v := range claims {
		c[k] = v
	}
	c["iss"] = "https://evil.example"
	tok, err := jwt.Signed(sig).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// TestStepUpRefusesFutureAuthTime: an admin token whose auth_time is a
// day ahead (an identity provider with a fast clock) gets the RFC 9470
// 401 with its challenge, not a step-up token; one just inside the clock
// leeway is accepted.
func TestStepUpRefusesFutureAuthTime(t *testing.T) {
	s := devServer(t, t.TempDir(), nil)
	mint := func(authTime time.Time) string {
		tok, err := s.Local.Issuer.Mint(devissuer.Claims{Subject: "dev-admin", TenantID: "demo", TTL: time.Hour, AuthTime: authTime,
			ACR: "mfa", AMR: []string{"mfa"}, Roles: []string{"keyseal:admin"}})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	r := do(t, s, http.MethodPost, "/admin/auth/step-up", bearer(mint(time.Now().Add(24*time.Hour))), "")
	challenge := r.header.Get("WWW-Authenticate")
	if r.status != http.StatusUnauthorized || r.code() != "insufficient_user_authentication" ||
		!strings.Contains(r.raw, "in the future") || !strings.Contains(challenge, `error="insufficient_user_authentication"`) ||
		!strings.Contains(challenge, `acr_values="mfa"`) || !strings.Contains(challenge, "max_age=300") {
		t.Fatalf("auth_time 24 h ahead: %d %s, WWW-Authenticate %q", r.status, r.raw, challenge)
	}
	// 50 s ahead: inside the 60 s leeway (the test's own run time stays
	// well below the remaining 10 s).
	if r := do(t, s, http.MethodPost, "/admin/auth/step-up", bearer(mint(time.Now().Add(50*time.Second))), ""); r.status != http.StatusOK || r.body["expires_in"] != float64(120) {
		t.Fatalf("auth_time inside the leeway: %d %s; want 200 with expires_in 120", r.status, r.raw)
	}
}
