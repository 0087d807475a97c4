// Package devissuer is the admin identity provider of the local server
// (dev and LocalStack modes). It lives apart from package auth so that no
// Lambda links it.
package devissuer

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/internal/privatefile"
)

// defaultDevTTL is the lifetime of a dev token minted with a zero TTL.
const defaultDevTTL = time.Hour

// Issuer is the admin identity provider of dev and LocalStack modes,
// where there is no real one. Its signing key is kept in a private JWK file
// so tokens, and the dev credentials file that holds one, survive restarts.
// It signs with ES256 (or EdDSA for an Ed25519 key file) so the tokens take
// exactly the path real ones take through AdminVerifier.
type Issuer struct {
	issuer, audience string
	key              jose.JSONWebKey
	alg              jose.SignatureAlgorithm
	jwks             []byte
}

// Claims describe a dev admin token. Zero fields are left out of the
// token, except TTL, which defaults to one hour; a negative TTL mints an
// already expired token (for tests).
type Claims struct {
	Subject  string
	TenantID string
	TTL      time.Duration
	AuthTime time.Time // zero omits auth_time
	ACR      string
	AMR      []string
	Roles    []string
	Scope    string
}

// New loads the signing key at path, creating it (and its
// directory) on first use. The file is written with mode 0600 and appears
// atomically: a crash never leaves half a key, and two processes starting
// together end up sharing one key.
func New(path, issuer, audience string) (*Issuer, error) {
	key, err := loadDevKey(path)
	if errors.Is(err, os.ErrNotExist) {
		key, err = createDevKey(path)
	}
	if err != nil {
		return nil, err
	}
	d := &Issuer{issuer: issuer, audience: audience, key: key}
	switch key.Key.(type) {
	case *ecdsa.PrivateKey:
		d.alg = jose.ES256
	default:
		d.alg = jose.EdDSA
	}
	d.jwks, err = json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{key.Public()}})
	if err != nil {
		return nil, fmt.Errorf("dev issuer JWKS: %w", err)
	}
	return d, nil
}

// loadDevKey reads a private P-256 or Ed25519 JWK. It returns an error
// wrapping os.ErrNotExist when there is no file yet.
func loadDevKey(path string) (jose.JSONWebKey, error) {
	var key jose.JSONWebKey
	b, err := os.ReadFile(path)
	if err != nil {
		return key, fmt.Errorf("dev issuer key: %w", err)
	}
	bad := fmt.Errorf("dev issuer key %s is not a private P-256 or Ed25519 JWK; delete it to make a new one", path)
	if err := key.UnmarshalJSON(b); err != nil || !key.Valid() || key.KeyID == "" {
		return key, bad
	}
	switch k := key.Key.(type) {
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return key, bad
		}
	case ed25519.PrivateKey:
	default:
		return key, bad
	}
	return key, nil
}

// createDevKey generates a P-256 key and publishes it at path unless
// another process got there first, in which case that key wins.
func createDevKey(path string) (jose.JSONWebKey, error) {
	pk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("dev issuer key: %w", err)
	}
	key := jose.JSONWebKey{Key: pk, Algorithm: string(jose.ES256), Use: "sig"}
	thumb, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("dev issuer key: %w", err)
	}
	key.KeyID = "dev-" + base64.RawURLEncoding.EncodeToString(thumb[:12])
	b, err := key.MarshalJSON()
	if err != nil {
		return jose.JSONWebKey{}, fmt.Errorf("dev issuer key: %w", err)
	}
	switch err := publishPrivate(path, b); {
	case errors.Is(err, os.ErrExist):
		return loadDevKey(path)
	case err != nil:
		return jose.JSONWebKey{}, fmt.Errorf("dev issuer key: %w", err)
	}
	return key, nil
}

// publishPrivate creates path's directory (0700) and publishes b there
// without replacing a key another process published meanwhile.
func publishPrivate(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return privatefile.WriteNew(path, b)
}

// JWKS returns the public key set, as JSON, that admin verifiers trust in
// dev mode.
func (d *Issuer) JWKS() []byte {
	return append([]byte(nil), d.jwks...)
}

// Mint signs a dev admin token for c.
func (d *Issuer) Mint(c Claims) (string, error) {
	ttl := c.TTL
	if ttl == 0 {
		ttl = defaultDevTTL
	}
	now := time.Now()
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("dev issuer: %w", err)
	}
	jti := base64.RawURLEncoding.EncodeToString(raw[:])
	claims := map[string]any{
		"iss": d.issuer, "aud": d.audience, "sub": c.Subject, auth.DefaultTenantClaim: c.TenantID,
		"iat": now.Unix(), "exp": now.Add(ttl).Unix(), "jti": jti,
	}
	if !c.AuthTime.IsZero() {
		claims["auth_time"] = c.AuthTime.Unix()
	}
	if c.ACR != "" {
		claims["acr"] = c.ACR
	}
	if len(c.AMR) > 0 {
		claims["amr"] = c.AMR
	}
	if len(c.Roles) > 0 {
		claims["roles"] = c.Roles
	}
	if c.Scope != "" {
		claims["scope"] = c.Scope
	}
	// Signing with the JWK (not its raw key) puts its kid in the header.
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: d.alg, Key: d.key}, (&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", fmt.Errorf("dev issuer: %w", err)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("dev issuer: %w", err)
	}
	return tok, nil
}
