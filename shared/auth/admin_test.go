package auth_test

import (
	"context"
	"crypto/hmac"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/keyseal"
)

func inlineVerifier(t *testing.T, jwks []byte, tenantClaim string) *auth.AdminVerifier {
	t.Helper()
	v, err := auth.NewAdminVerifier(auth.AdminConfig{JWKS: jwks, Issuer: issuer, Audience: audience,
		TenantClaim: tenantClaim, Now: fixedClock})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// hs256 forges an HS256 token keyed with secret: the classic attack that
// feeds the verifier's RSA public key to it as an HMAC secret.
func hs256(t *testing.T, kid string, secret []byte, claims map[string]any) string {
	t.Helper()
	input := b64json(t, map[string]string{"alg": "HS256", "typ": "JWT", "kid": kid}) + "." + b64json(t, claims)
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

func TestVerify(t *testing.T) {
	p := newIDP(t, "-1")
	other := newIDP(t, "-1") // same kids, different keys
	v := inlineVerifier(t, p.jwks(t), "")

	rsaPub := p.keys[jose.RS256].Key.(*rsa.PrivateKey).Public()
	der, err := x509.MarshalPKIXPublicKey(rsaPub)
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	rs384, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS384, Key: p.keys[jose.RS256].Key},
		(&jose.SignerOptions{}).WithHeader("kid", "rsa-1"))
	if err != nil {
		t.Fatal(err)
	}
	rs384Token, err := jwt.Signed(rs384).Claims(goodClaims()).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	es := func(claims map[string]any) string { return "Bearer " + p.sign(t, jose.ES256, "", claims) }

	cases := []struct {
		name   string
		header string
		code   string // "" for a valid token
		says   string
	}{
		{"RS256", "Bearer " + p.sign(t, jose.RS256, "", goodClaims()), "", ""},
		{"ES256", es(goodClaims()), "", ""},
		{"EdDSA", "Bearer " + p.sign(t, jose.EdDSA, "", goodClaims()), "", ""},
		{"no kid: any key may verify", "Bearer " + p.sign(t, jose.EdDSA, "-", goodClaims()), "", ""},
		{"scheme is case-insensitive", "bearer " + p.sign(t, jose.ES256, "", goodClaims()), "", ""},
		{"aud array containing keyseal", es(with(goodClaims(), "aud", []string{"other", audience})), "", ""},
		{"expired within the leeway", es(with(goodClaims(), "exp", t0.Add(-30*time.Second).Unix())), "", ""},
		{"role in scope", es(with(goodClaims(), "roles", nil, "scope", "openid keyseal:admin profile")), "", ""},

		{"no header", "", keyseal.EUNAUTHORIZED, "missing admin token"},
		{"blank header", "   ", keyseal.EUNAUTHORIZED, "missing admin token"},
		{"basic auth", "Basic YTpi", keyseal.EUNAUTHORIZED, "Bearer"},
		{"bearer without token", "Bearer ", keyseal.EUNAUTHORIZED, "Bearer"},
		{"garbled token", "Bearer not.a.jwt", keyseal.EUNAUTHORIZED, "malformed"},
		{"not a JWS at all", "Bearer abc", keyseal.EUNAUTHORIZED, "malformed"},
		{"alg none", "Bearer " + b64json(t, map[string]string{"alg": "none", "typ": "JWT"}) + "." + b64json(t, goodClaims()) + ".",
			keyseal.EUNAUTHORIZED, "unsupported alg"},
		{"HS256 keyed with the RSA public key PEM", "Bearer " + hs256(t, "rsa-1", rsaPEM, goodClaims()), keyseal.EUNAUTHORIZED, "unsupported alg"},
		{"HS256 keyed with the RSA public JWK", "Bearer " + hs256(t, "rsa-1", p.jwks(t), goodClaims()), keyseal.EUNAUTHORIZED, "unsupported alg"},
		{"RS384", "Bearer " + rs384Token, keyseal.EUNAUTHORIZED, "unsupported alg"},
		{"expired", es(with(goodClaims(), "exp", t0.Add(-2*time.Minute).Unix())), keyseal.EUNAUTHORIZED, "expired"},
		{"no exp", es(with(goodClaims(), "exp", nil)), keyseal.EUNAUTHORIZED, "no exp"},
		{"nbf in the future", es(with(goodClaims(), "nbf", t0.Add(2*time.Minute).Unix())), keyseal.EUNAUTHORIZED, "nbf"},
		{"iat in the future", es(with(goodClaims(), "iat", t0.Add(2*time.Minute).Unix())), keyseal.EUNAUTHORIZED, "iat"},
		{"iat 24 h in the future", es(with(goodClaims(), "iat", t0.Add(24*time.Hour).Unix())), keyseal.EUNAUTHORIZED, "iat"},
		{"iat just past the leeway", es(with(goodClaims(), "iat", t0.Add(61*time.Second).Unix())), keyseal.EUNAUTHORIZED, "iat"},
		{"iat just inside the leeway", es(with(goodClaims(), "iat", t0.Add(60*time.Second).Unix())), "", ""},
		{"foreign issuer", es(with(goodClaims(), "iss", "https://evil.example/")), keyseal.EUNAUTHORIZED, "iss"},
		{"wrong audience", es(with(goodClaims(), "aud", "another-app")), keyseal.EUNAUTHORIZED, "aud"},
		{"no audience", es(with(goodClaims(), "aud", nil)), keyseal.EUNAUTHORIZED, "aud"},
		{"unknown kid", "Bearer " + p.sign(t, jose.ES256, "ec-9", goodClaims()), keyseal.EUNAUTHORIZED, "unknown key"},
		{"signed by another key with the same kid", "Bearer " + other.sign(t, jose.ES256, "", goodClaims()), keyseal.EUNAUTHORIZED, "signature"},
		{"no kid, signed by a stranger", "Bearer " + other.sign(t, jose.EdDSA, "-", goodClaims()), keyseal.EUNAUTHORIZED, "signature"},
		{"kid of a key of another type", "Bearer " + p.sign(t, jose.ES256, "rsa-1", goodClaims()), keyseal.EUNAUTHORIZED, "signature"},
		{"tampered payload", "Bearer " + tamper(t, p.sign(t, jose.ES256, "", goodClaims())), keyseal.EUNAUTHORIZED, "signature"},
		{"no sub", es(with(goodClaims(), "sub", nil)), keyseal.EUNAUTHORIZED, "no sub"},
		{"empty sub", es(with(goodClaims(), "sub", "")), keyseal.EUNAUTHORIZED, "no sub"},
		{"sub not a string", es(with(goodClaims(), "sub", 7)), keyseal.EUNAUTHORIZED, "sub must be a string"},
		{"auth_time not a number", es(with(goodClaims(), "auth_time", "yesterday")), keyseal.EUNAUTHORIZED, "auth_time must be a number"},
		{"amr not an array", es(with(goodClaims(), "amr", "mfa")), keyseal.EUNAUTHORIZED, "amr must be an array"},
		{"no tenant", es(with(goodClaims(), "tenant_id", nil)), keyseal.EUNAUTHORIZED, "tenant_id"},
		{"invalid tenant", es(with(goodClaims(), "tenant_id", "bad id!")), keyseal.EUNAUTHORIZED, "tenant_id"},
		{"tenant not a string", es(with(goodClaims(), "tenant_id", 42)), keyseal.EUNAUTHORIZED, "tenant_id"},
		{"no role", es(with(goodClaims(), "roles", []string{"viewer"})), keyseal.EFORBIDDEN, "keyseal:admin"},
		{"role only as a prefix in scope", es(with(goodClaims(), "roles", nil, "scope", "keyseal:administrator")), keyseal.EFORBIDDEN, "keyseal:admin"},
		{"role as a scope string inside roles", es(with(goodClaims(), "roles", []string{"openid keyseal:admin"})), keyseal.EFORBIDDEN, "keyseal:admin"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := v.Verify(context.Background(), c.header)
			if c.code == "" {
				if err != nil {
					t.Fatalf("valid token refused: %v", err)
				}
				want := auth.Admin{Subject: "alice", TenantID: "acme", AuthTime: time.Unix(t0.Add(-time.Minute).Unix(), 0), ACR: "mfa"}
				if a.Subject != want.Subject || a.TenantID != want.TenantID || !a.AuthTime.Equal(want.AuthTime) ||
					a.ACR != want.ACR || !slices.Equal(a.AMR, []string{"pwd", "mfa"}) {
					t.Fatalf("admin %+v, want %+v with amr [pwd mfa]", a, want)
				}
				return
			}
			if a != nil || keyseal.ErrorCode(err) != c.code {
				t.Fatalf("got %+v, %v; want %s", a, err, c.code)
			}
			msg := keyseal.ErrorMessage(err)
			if !strings.Contains(msg, c.says) {
				t.Fatalf("message %q should say %q", msg, c.says)
			}
			if tok, _ := auth.BearerToken(c.header); strings.Contains(msg, "eyJ") || (len(tok) > 8 && strings.Contains(msg, tok)) {
				t.Fatalf("message %q echoes the token", msg)
			}
		})
	}
}

// tamper changes the subject in a signed token's payload, keeping the
// signature.
func tamper(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	parts[1] = b64json(t, with(goodClaims(), "sub", "mallory"))
	return strings.Join(parts, ".")
}

func TestVerifyWithoutAuthContext(t *testing.T) {
	p := newIDP(t, "-1")
	v := inlineVerifier(t, p.jwks(t), "")
	a, err := v.Verify(context.Background(), "Bearer "+p.sign(t, jose.ES256, "", with(goodClaims(), "auth_time", nil, "acr", nil, "amr", nil)))
	if err != nil {
		t.Fatal(err)
	}
	if !a.AuthTime.IsZero() || a.ACR != "" || a.AMR != nil {
		t.Fatalf("absent auth_time/acr/amr should stay zero: %+v", a)
	}
}

func TestVerifyCustomTenantClaim(t *testing.T) {
	const claim = "https://keyseal.example/tenant"
	p := newIDP(t, "-1")
	v := inlineVerifier(t, p.jwks(t), claim)
	a, err := v.Verify(context.Background(), "Bearer "+p.sign(t, jose.EdDSA, "", with(goodClaims(), "tenant_id", nil, claim, "globex")))
	if err != nil || a.TenantID != "globex" {
		t.Fatalf("custom tenant claim: %+v %v", a, err)
	}
	_, err = v.Verify(context.Background(), "Bearer "+p.sign(t, jose.EdDSA, "", goodClaims()))
	if keyseal.ErrorCode(err) != keyseal.EUNAUTHORIZED || !strings.Contains(keyseal.ErrorMessage(err), claim) {
		t.Fatalf("tenant_id must not count when another claim is configured: %v", err)
	}
}

// TestVerifySkipsUnusableKeys: odd keys in a JWKS (symmetric, encryption,
// unknown type, private material) neither break the set nor verify tokens
// on their own.
func TestVerifySkipsUnusableKeys(t *testing.T) {
	p := newIDP(t, "-1")
	private, err := p.keys[jose.ES256].MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	jwks := []byte(`{"keys":[` +
		`{"kty":"oct","kid":"hmac","k":"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0"},` +
		`{"kty":"XYZ","kid":"future"},` +
		string(private) + `]}`)
	v := inlineVerifier(t, jwks, "")
	if _, err := v.Verify(context.Background(), "Bearer "+p.sign(t, jose.ES256, "", goodClaims())); err != nil {
		t.Fatalf("the usable key was lost: %v", err)
	}
	forged := hs256(t, "hmac", []byte("secret-secret-secret-secret"), goodClaims())
	if _, err := v.Verify(context.Background(), "Bearer "+forged); keyseal.ErrorCode(err) != keyseal.EUNAUTHORIZED {
		t.Fatalf("a symmetric JWKS key verified a token: %v", err)
	}
}

func TestNewAdminVerifierRejectsBadConfig(t *testing.T) {
	jwks := newIDP(t, "-1").jwks(t)
	for name, cfg := range map[string]auth.AdminConfig{
		"no key source":       {Issuer: issuer, Audience: audience},
		"both key sources":    {JWKS: jwks, JWKSURL: "https://idp.example.com/jwks", Issuer: issuer, Audience: audience},
		"no issuer":           {JWKS: jwks, Audience: audience},
		"no audience":         {JWKS: jwks, Issuer: issuer},
		"unparsable JWKS":     {JWKS: []byte("{"), Issuer: issuer, Audience: audience},
		"empty JWKS":          {JWKS: []byte(`{"keys":[]}`), Issuer: issuer, Audience: audience},
		"only an HMAC key":    {JWKS: []byte(`{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`), Issuer: issuer, Audience: audience},
		"not a JWKS at all":   {JWKS: []byte(`[1,2,3]`), Issuer: issuer, Audience: audience},
		"URL mode, no issuer": {JWKSURL: "https://idp.example.com/jwks", Audience: audience},
	} {
		if v, err := auth.NewAdminVerifier(cfg); err == nil || v != nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := auth.NewAdminVerifier(auth.AdminConfig{JWKSURL: "https://idp.example.com/jwks", Issuer: issuer, Audience: audience}); err != nil {
		t.Errorf("URL mode must not fetch at construction: %v", err)
	}
}
