package auth_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	issuer   = "https://idp.example.com/"
	audience = "keyseal-admin"
)

// t0 is the verifiers' fixed clock in tests; token times are relative to it.
var t0 = time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)

func fixedClock() time.Time { return t0 }

// idp is a test identity provider with one signing key per algorithm.
type idp struct {
	keys map[jose.SignatureAlgorithm]jose.JSONWebKey
}

// newIDP makes an identity provider whose key ids end in suffix.
func newIDP(t *testing.T, suffix string) *idp {
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
		jose.RS256: {Key: rsaKey, KeyID: "rsa" + suffix, Algorithm: string(jose.RS256), Use: "sig"},
		jose.ES256: {Key: ecKey, KeyID: "ec" + suffix, Algorithm: string(jose.ES256), Use: "sig"},
		jose.EdDSA: {Key: edKey, KeyID: "ed" + suffix, Algorithm: string(jose.EdDSA), Use: "sig"},
	}}
}

// jwks is the public key set the identity provider publishes.
func (p *idp) jwks(t *testing.T) []byte {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA} {
		k := p.keys[alg]
		set.Keys = append(set.Keys, k.Public())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// signer returns a go-jose signer for the key of alg, putting kid in the
// header ("-" for no kid at all).
func (p *idp) signer(t *testing.T, alg jose.SignatureAlgorithm, kid string) jose.Signer {
	t.Helper()
	k := p.keys[alg]
	if kid == "" {
		kid = k.KeyID
	}
	opts := (&jose.SignerOptions{}).WithType("JWT")
	if kid != "-" {
		opts = opts.WithHeader("kid", kid)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: k.Key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sign mints a JWT with claims, signed by the key of alg.
func (p *idp) sign(t *testing.T, alg jose.SignatureAlgorithm, kid string, claims map[string]any) string {
	t.Helper()
	tok, err := jwt.Signed(p.signer(t, alg, kid)).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// goodClaims are the claims of a valid admin token at t0, with a fresh MFA
// sign-in.
func goodClaims() map[string]any {
	return map[string]any{
		"iss": issuer, "aud": audience, "sub": "alice", "tenant_id": "acme",
		"iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix(), "roles": []string{"reader", "keyseal:admin"},
		"auth_time": t0.Add(-time.Minute).Unix(), "acr": "mfa", "amr": []string{"pwd", "mfa"},
	}
}

// with returns a copy of c with the given claims set, or removed when the
// value is nil.
func with(c map[string]any, kv ...any) map[string]any {
	out := make(map[string]any, len(c))
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

func b64json(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
