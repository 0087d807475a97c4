package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// DevIssuer is the admin identity provider of dev and LocalStack modes,
// where there is no real one. Its ES256 key is kept in a private JWK file
// so tokens survive restarts.
type DevIssuer struct {
	issuer, audience string
	key              jose.JSONWebKey
}

// DevClaims describe a dev admin token.
type DevClaims struct {
	Subject  string
	TenantID string
	TTL      time.Duration
	AuthTime time.Time // zero omits auth_time
	ACR      string
	AMR      []string
	Roles    []string
	Scope    string
}

// NewDevIssuer loads the signing key at path, creating it (mode 0600) on
// first use.
func NewDevIssuer(path, issuer, audience string) (*DevIssuer, error) {
	var key jose.JSONWebKey
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		pk, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			return nil, err
		}
		key = jose.JSONWebKey{Key: pk, Algorithm: string(jose.ES256), Use: "sig"}
		thumb, err := key.Thumbprint(crypto.SHA256)
		if err != nil {
			return nil, err
		}
		key.KeyID = hex.EncodeToString(thumb[:8])
		b, err := key.MarshalJSON()
		if err != nil {
			return nil, err
		}
		if err := writePrivate(path, b); err != nil {
			return nil, fmt.Errorf("dev issuer key: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("dev issuer key: %w", err)
	default:
		if err := key.UnmarshalJSON(b); err != nil || key.IsPublic() {
			return nil, fmt.Errorf("dev issuer key %s is not a private JWK; delete it to make a new one", path)
		}
	}
	return &DevIssuer{issuer: issuer, audience: audience, key: key}, nil
}

func writePrivate(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".dev-issuer-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// JWKS returns the public key set admin verifiers trust.
func (d *DevIssuer) JWKS() []byte {
	b, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{d.key.Public()}})
	return b
}

// Mint signs an admin token.
func (d *DevIssuer) Mint(c DevClaims) (string, error) {
	now := time.Now()
	var id [8]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", err
	}
	claims := map[string]any{
		"iss": d.issuer, "aud": d.audience, "sub": c.Subject, "tenant_id": c.TenantID,
		"iat": now.Unix(), "exp": now.Add(c.TTL).Unix(), "jti": hex.EncodeToString(id[:]),
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
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: d.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", d.key.KeyID))
	if err != nil {
		return "", err
	}
	return jwt.Signed(signer).Claims(claims).Serialize()
}
