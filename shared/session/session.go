// Package session mints agent session bundles (docs/contract.md §5): JWTs signed with an
// Ed25519 key derived from the tenant's unwrapped TMK, and the JWKS that
// verifies them.
package session

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// Issuer is the "iss" of every session token.
const Issuer = "keyseal"

// Audience is the "aud" of every session token.
const Audience = "keyseal-agent"

// hkdfSalt domain-separates the signing key from any other key derived from
// the TMK.
var hkdfSalt = []byte("keyseal.session-signing.v1")

// SigningKey derives the Ed25519 session-signing key of one tenant and TMK
// version: HKDF-SHA256(TMK, salt, info = tenant || version) -> seed.
func SigningKey(tmk []byte, tenantID string, version int) (ed25519.PrivateKey, error) {
	seed, err := hkdf.Key(sha256.New, tmk, hkdfSalt, tenantID+"\x00v"+strconv.Itoa(version), ed25519.SeedSize)
	if err != nil {
		return nil, fmt.Errorf("derive session key: %w", err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// PublicKey returns the public half of SigningKey, stored beside each TMK
// version so JWKS works without unwrapping anything.
func PublicKey(tmk []byte, tenantID string, version int) ([]byte, error) {
	k, err := SigningKey(tmk, tenantID, version)
	if err != nil {
		return nil, err
	}
	return k.Public().(ed25519.PublicKey), nil
}

// KeyID names the tenant and TMK version a token was signed under.
func KeyID(tenantID string, version int) string {
	return tenantID + ":v" + strconv.Itoa(version)
}

// ParseKeyID splits a kid made by KeyID.
func ParseKeyID(kid string) (tenantID string, version int, ok bool) {
	i := strings.LastIndex(kid, ":v")
	if i <= 0 {
		return "", 0, false
	}
	v, err := strconv.Atoi(kid[i+2:])
	if err != nil || v < 1 {
		return "", 0, false
	}
	return kid[:i], v, true
}

// Bundle is the body of a successful POST /agent/v1/session.
type Bundle struct {
	SessionID  string    `json:"session_id"`
	Token      string    `json:"token"`
	ExpiresAt  time.Time `json:"expires_at"`
	ExpiresIn  int64     `json:"expires_in"`
	TenantID   string    `json:"tenant_id"`
	TMKVersion int       `json:"tmk_version"`
}

// Claims are the private claims of a session token beside the registered
// ones.
type Claims struct {
	jwt.Claims
	TenantID   string `json:"tenant_id"`
	TMKVersion int    `json:"tmk_version"`
}

// Mint signs a session token for an agent, deriving the signing key from
// the TMK. The session path uses a cached Signer instead (Signer.Mint);
// Mint is the reference the Signer is tested byte-for-byte against.
func Mint(tmk []byte, tenantID string, version int, agentID string, now time.Time, ttl time.Duration) (Bundle, error) {
	key, err := SigningKey(tmk, tenantID, version)
	if err != nil {
		return Bundle{}, err
	}
	id, err := newSessionID()
	if err != nil {
		return Bundle{}, err
	}
	return mintJOSE(key, tenantID, version, agentID, id, now, ttl)
}

func newSessionID() (string, error) {
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("session id: %w", err)
	}
	var id [4 + 2*len(raw)]byte
	copy(id[:], "ses_")
	hex.Encode(id[4:], raw[:])
	return string(id[:]), nil
}

// mintJOSE signs the token with go-jose: claims struct -> JSON -> map ->
// JSON (keys sorted), header {"alg","kid","typ"} sorted the same way.
func mintJOSE(key ed25519.PrivateKey, tenantID string, version int, agentID, id string, now time.Time, ttl time.Duration) (Bundle, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", KeyID(tenantID, version)))
	if err != nil {
		return Bundle{}, fmt.Errorf("session signer: %w", err)
	}
	now = now.UTC().Truncate(time.Second)
	exp := now.Add(ttl)
	token, err := jwt.Signed(signer).Claims(Claims{
		Claims: jwt.Claims{
			Issuer: Issuer, Subject: agentID, Audience: jwt.Audience{Audience}, ID: id,
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(exp),
		},
		TenantID: tenantID, TMKVersion: version,
	}).Serialize()
	if err != nil {
		return Bundle{}, fmt.Errorf("sign session: %w", err)
	}
	return bundle(id, token, exp, ttl, tenantID, version), nil
}

func bundle(id, token string, exp time.Time, ttl time.Duration, tenantID string, version int) Bundle {
	return Bundle{SessionID: id, Token: token, ExpiresAt: exp, ExpiresIn: int64(ttl / time.Second), TenantID: tenantID, TMKVersion: version}
}

// Signer signs the session tokens of one tenant and TMK version. It holds
// the derived Ed25519 key and the encoded protected header, so a token
// costs one Ed25519 signature and one buffer: the TMK cache keeps a Signer
// beside each TMK (derivation is a quarter of an issue otherwise).
//
// It writes the compact JWS itself instead of going through go-jose's
// builder, whose claims round trip (struct -> JSON -> map -> JSON) and
// signer setup cost a tenth of an issue and most of its allocations. The
// output is byte-for-byte what go-jose writes for the same claims (keys in
// sorted order, "aud" as a string, numeric dates as integers; Ed25519 is
// deterministic), which TestSignerMatchesGoJOSE checks; verification stays
// with go-jose (Verify). A claim string outside the plain id alphabet
// falls back to the go-jose path, so escaping never differs.
type Signer struct {
	key      ed25519.PrivateKey
	tenantID string
	version  int
	// header is base64url({"alg":"EdDSA","kid":...,"typ":"JWT"}) + ".".
	header string
	// tenantOK: tenantID needs no JSON escaping.
	tenantOK bool
}

// NewSigner derives the signing key of a tenant's TMK version.
func NewSigner(tmk []byte, tenantID string, version int) (*Signer, error) {
	key, err := SigningKey(tmk, tenantID, version)
	if err != nil {
		return nil, err
	}
	kid := KeyID(tenantID, version)
	h := `{"alg":"EdDSA","kid":` + strconv.Quote(kid) + `,"typ":"JWT"}`
	return &Signer{key: key, tenantID: tenantID, version: version,
		header: base64.RawURLEncoding.EncodeToString([]byte(h)) + ".", tenantOK: plain(kid)}, nil
}

// Version is the TMK version the signer's key is derived from.
func (s *Signer) Version() int { return s.version }

// Mint signs a session token for an agent of the signer's tenant.
func (s *Signer) Mint(agentID string, now time.Time, ttl time.Duration) (Bundle, error) {
	id, err := newSessionID()
	if err != nil {
		return Bundle{}, err
	}
	if !s.tenantOK || !plain(agentID) {
		return mintJOSE(s.key, s.tenantID, s.version, agentID, id, now, ttl)
	}
	now = now.UTC().Truncate(time.Second)
	exp := now.Add(ttl)
	var claims [256]byte
	c := append(claims[:0], `{"aud":"`+Audience+`","exp":`...)
	c = strconv.AppendInt(c, exp.Unix(), 10)
	c = append(c, `,"iat":`...)
	c = strconv.AppendInt(c, now.Unix(), 10)
	c = append(c, `,"iss":"`+Issuer+`","jti":"`...)
	c = append(c, id...)
	c = append(c, `","nbf":`...)
	c = strconv.AppendInt(c, now.Unix(), 10)
	c = append(c, `,"sub":"`...)
	c = append(c, agentID...)
	c = append(c, `","tenant_id":"`...)
	c = append(c, s.tenantID...)
	c = append(c, `","tmk_version":`...)
	c = strconv.AppendInt(c, int64(s.version), 10)
	c = append(c, '}')

	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(s.header)+enc.EncodedLen(len(c))+1+enc.EncodedLen(ed25519.SignatureSize))
	buf = append(buf, s.header...)
	buf = enc.AppendEncode(buf, c)
	sig := ed25519.Sign(s.key, buf)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig)
	return bundle(id, string(buf), exp, ttl, s.tenantID, s.version), nil
}

// plain says whether s is written the same by every JSON encoder: no
// quote, backslash, control, HTML-escaped or non-ASCII character.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// JWKS returns the key set that verifies a tenant's session tokens: one key
// per TMK version that is not revoked.
func JWKS(tenantID string, versions []keyseal.TMKVersion) jose.JSONWebKeySet {
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{}}
	for _, v := range versions {
		if v.RevokedAt != nil || len(v.SigningPublicKey) != ed25519.PublicKeySize {
			continue
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{
			Key: ed25519.PublicKey(v.SigningPublicKey), KeyID: KeyID(tenantID, v.Version),
			Algorithm: string(jose.EdDSA), Use: "sig",
		})
	}
	return set
}

// Verify checks a session token against a tenant's JWKS; agents' relying
// parties do the same with any JOSE library.
func Verify(token string, set jose.JSONWebKeySet, now time.Time) (*Claims, error) {
	tok, err := jwt.ParseSigned(token, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		return nil, fmt.Errorf("parse session token: %w", err)
	}
	if len(tok.Headers) != 1 {
		return nil, fmt.Errorf("session token: want one signature")
	}
	keys := set.Key(tok.Headers[0].KeyID)
	if len(keys) == 0 {
		return nil, fmt.Errorf("session token: unknown or revoked key %q", tok.Headers[0].KeyID)
	}
	var c Claims
	if err := tok.Claims(keys[0].Key, &c); err != nil {
		return nil, fmt.Errorf("session token: %w", err)
	}
	if err := c.ValidateWithLeeway(jwt.Expected{Issuer: Issuer, AnyAudience: jwt.Audience{Audience}, Time: now}, 0); err != nil {
		return nil, fmt.Errorf("session token: %w", err)
	}
	return &c, nil
}
