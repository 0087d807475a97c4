package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/keyseal"
)

const (
	issuer   = "https://idp.example.com/"
	audience = "keyseal-admin"
)

// idp is a test identity provider with one key per algorithm.
type idp struct {
	keys map[jose.SignatureAlgorithm]jose.JSONWebKey
}

func newIDP(t *testing.T) *idp {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &idp{keys: map[jose.SignatureAlgorithm]jose.JSONWebKey{
		jose.RS256: {Key: rsaKey, KeyID: "rsa-1", Algorithm: string(jose.RS256)},
		jose.ES256: {Key: ecKey, KeyID: "ec-1", Algorithm: string(jose.ES256)},
		jose.EdDSA: {Key: edKey, KeyID: "ed-1", Algorithm: string(jose.EdDSA)},
	}}
}

func (p *idp) jwks() []byte {
	var set jose.JSONWebKeySet
	for _, k := range p.keys {
		set.Keys = append(set.Keys, k.Public())
	}
	b, _ := json.Marshal(set)
	return b
}

func (p *idp) sign(t *testing.T, alg jose.SignatureAlgorithm, kid string, claims map[string]any) string {
	t.Helper()
	k := p.keys[alg]
	if kid == "" {
		kid = k.KeyID
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: k.Key}, (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func goodClaims() map[string]any {
	now := time.Now()
	return map[string]any{"iss": issuer, "aud": audience, "sub": "alice", "tenant_id": "acme",
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "roles": []string{"keyseal:admin"},
		"auth_time": now.Unix(), "acr": "mfa", "amr": []string{"pwd", "mfa"}}
}

func with(c map[string]any, kv ...any) map[string]any {
	out := map[string]any{}
	for k, v := range c {
		out[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(out, kv[i].(string))
		} else {
			out[kv[i].(string)] = kv[i+1]
		}
	}
	return out
}

func b64json(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

func verifier(t *testing.T, p *idp, tenantClaim string) *auth.AdminVerifier {
	t.Helper()
	v, err := auth.NewAdminVerifier(auth.AdminConfig{JWKS: p.jwks(), Issuer: issuer, Audience: audience, TenantClaim: tenantClaim})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestVerify(t *testing.T) {
	p := newIDP(t)
	other := newIDP(t)
	v := verifier(t, p, "")
	rsaKey := p.keys[jose.RS256]
	rsaPub, _ := json.Marshal(rsaKey.Public())
	hsInput := b64json(map[string]string{"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}) + "." + b64json(goodClaims())
	mac := hmac.New(sha256.New, rsaPub)
	mac.Write([]byte(hsInput))

	cases := []struct {
		name   string
		header string
		code   string
		says   string
	}{
		{"RS256", "Bearer " + p.sign(t, jose.RS256, "", goodClaims()), "", ""},
		{"ES256", "Bearer " + p.sign(t, jose.ES256, "", goodClaims()), "", ""},
		{"EdDSA", "Bearer " + p.sign(t, jose.EdDSA, "", goodClaims()), "", ""},
		{"scheme is case-insensitive", "bearer " + p.sign(t, jose.ES256, "", goodClaims()), "", ""},
		{"role in scope", "Bearer " + p.sign(t, jose.ES256, "", with(goodClaims(), "roles", nil, "scope", "openid keyseal:admin")), "", ""},
		{"no header", "", keyseal.EUNAUTHORIZED, "missing"},
		{"basic auth", "Basic YTpi", keyseal.EUNAUTHORIZED, "missing"},
		{"garbage", "Bearer not.a.jwt", keyseal.EUNAUTHORIZED, "malformed"},
		{"alg none", "Bearer " + b64json(map[string]string{"alg": "none", "typ": "JWT"}) + "." + b64json(goodClaims()) + ".", keyseal.EUNAUTHORIZED, "alg"},
		{"HS256 with the public key as secret", "Bearer " + hsInput + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil)), keyseal.EUNAUTHORIZED, "alg"},
		{"expired", "Bearer " + p.sign(t, jose.ES256, "", with(goodClaims(), "exp", time.Now().Add(-2*time.Minute).Unix())), keyseal.EUNAUTHORIZED, "expired"},
		{"no exp", "Bearer " + p.sign(t, jose.ES256, "", with(goodClaims(), "exp", nil)), keyseal.EUNAUTHORIZED, "exp"},
		{"not yet valid", "Bearer " + p.sign(t, jose.ES256, "", with(goodClaims(), "nbf", time.Now().Add(time.Hour).Unix())), keyseal.EUNAUTHORIZED, "not valid yet"},
		{"foreign issuer", "Bearer " + p.sign(t, jose.ES256, "", with(goodClaims(), "iss", "https://evil.example/")), keyseal.EUNAUTHORIZED, "issuer"},
		{"wrong audience", "Bearer " + p.sign(t, jose.ES256, "", with(goodClaims(), "aud", "another-app")), keyseal.EUNAUTHORIZED, "aud"},
		{"unknown kid", "Bearer " + p.sign(t, jose.ES256, "ec-9", goodClaims()), keyseal.EUNAUTHORIZED, "unknown key"},
		{"signed by another key with the same kid", "Bearer " + other.sign(t, jose.ES256, "ec-1", goodClaims()), keyseal.EUNAUTHORIZED, "signature"},
		{"no sub", "Bearer " + p.sign(t, jose.ES256, "", with(goodClaims(), "sub", nil)), keyseal.EUNAUTHORIZED, "sub"},
		{"no tenant", "Bearer " + p.sign(t, jose.ES256, "", with(goodClaims(), "tenant_id", nil)), keyseal.EUNAUTHORIZED, "tenant_id"},
		{"bad tenant", "Bearer " + p.sign(t, jose.ES256, "", with(goodClaims(), "tenant_id", "bad id!")), keyseal.EUNAUTHORIZED, "tenant_id"},
		{"tenant not a string", "Bearer " + p.sign(t, jose.ES256, "", with(goodClaims(), "tenant_id", 42)), keyseal.EUNAUTHORIZED, "tenant_id"},
		{"no role", "Bearer " + p.sign(t, jose.ES256, "", with(goodClaims(), "roles", []string{"viewer"})), keyseal.EFORBIDDEN, "keyseal:admin"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := v.Verify(context.Background(), c.header)
			if c.code == "" {
				if err != nil {
					t.Fatalf("valid token refused: %v", err)
				}
				if a.Subject != "alice" || a.TenantID != "acme" || a.ACR != "mfa" || a.AuthTime.IsZero() || len(a.AMR) != 2 {
					t.Fatalf("admin: %+v", a)
				}
				return
			}
			if keyseal.ErrorCode(err) != c.code {
				t.Fatalf("got %v, want %s", err, c.code)
			}
			if msg := keyseal.ErrorMessage(err); !strings.Contains(msg, c.says) || strings.Contains(msg, "eyJ") {
				t.Fatalf("message %q should say %q and never echo the token", msg, c.says)
			}
		})
	}
}

func TestVerifyCustomTenantClaim(t *testing.T) {
	p := newIDP(t)
	v := verifier(t, p, "https://keyseal.dev/tenant")
	a, err := v.Verify(context.Background(), "Bearer "+p.sign(t, jose.EdDSA, "", with(goodClaims(), "tenant_id", nil, "https://keyseal.dev/tenant", "globex")))
	if err != nil || a.TenantID != "globex" {
		t.Fatalf("custom tenant claim: %+v %v", a, err)
	}
	if _, err := v.Verify(context.Background(), "Bearer "+p.sign(t, jose.EdDSA, "", goodClaims())); keyseal.ErrorCode(err) != keyseal.EUNAUTHORIZED {
		t.Fatalf("the default claim must not count when another is configured: %v", err)
	}
}

func TestNewAdminVerifierRejectsBadConfig(t *testing.T) {
	jwks := newIDP(t).jwks()
	for name, cfg := range map[string]auth.AdminConfig{
		"no key source":   {Issuer: issuer, Audience: audience},
		"both sources":    {JWKS: jwks, JWKSURL: "https://idp/jwks", Issuer: issuer, Audience: audience},
		"no issuer":       {JWKS: jwks, Audience: audience},
		"no audience":     {JWKS: jwks, Issuer: issuer},
		"unparsable JWKS": {JWKS: []byte("{"), Issuer: issuer, Audience: audience},
		"empty JWKS":      {JWKS: []byte(`{"keys":[]}`), Issuer: issuer, Audience: audience},
	} {
		if _, err := auth.NewAdminVerifier(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestJWKSURL: keys are fetched lazily, cached, refetched for an unknown kid
// (rate-limited), and a rotation is picked up.
func TestJWKSURL(t *testing.T) {
	p := newIDP(t)
	var mu sync.Mutex
	served := p.jwks()
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		mu.Lock()
		defer mu.Unlock()
		w.Write(served)
	}))
	defer srv.Close()
	now := time.Now()
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	v, err := auth.NewAdminVerifier(auth.AdminConfig{JWKSURL: srv.URL, Issuer: issuer, Audience: audience,
		Now: func() time.Time { return time.Unix(0, clock.Load()) }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if fetches.Load() != 0 {
		t.Fatal("JWKS fetched before it was needed")
	}
	for range 3 {
		if _, err := v.Verify(ctx, "Bearer "+p.sign(t, jose.ES256, "", goodClaims())); err != nil {
			t.Fatal(err)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("%d fetches for three verifications, want 1", n)
	}

	// The IdP rotates to a new key; keyseal has not seen its kid yet.
	rotated := newIDP(t)
	for alg, k := range rotated.keys {
		k.KeyID += "-rotated"
		rotated.keys[alg] = k
	}
	mu.Lock()
	served = rotated.jwks()
	mu.Unlock()
	tok := rotated.sign(t, jose.ES256, "", goodClaims())
	if _, err := v.Verify(ctx, "Bearer "+tok); keyseal.ErrorCode(err) != keyseal.EUNAUTHORIZED {
		t.Fatalf("unknown kid inside the refetch interval: %v", err)
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("refetched %d times inside 30 s; an unknown kid must not hammer the IdP", n-1)
	}
	clock.Add(int64(31 * time.Second))
	if _, err := v.Verify(ctx, "Bearer "+tok); err != nil {
		t.Fatalf("rotated key not picked up: %v", err)
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2", n)
	}
}

func TestJWKSURLUnreachableIsInternal(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	srv.Close()
	v, err := auth.NewAdminVerifier(auth.AdminConfig{JWKSURL: srv.URL, Issuer: issuer, Audience: audience})
	if err != nil {
		t.Fatal(err)
	}
	_, err = v.Verify(context.Background(), "Bearer "+newIDP(t).sign(t, jose.ES256, "", goodClaims()))
	if err == nil || keyseal.ErrorCode(err) != keyseal.EINTERNAL {
		t.Fatalf("unreachable JWKS: %v, want an internal error", err)
	}
}
