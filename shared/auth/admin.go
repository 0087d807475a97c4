// Package auth authenticates keyseal's callers: admins by JWTs from the
// operator's identity provider (verified against its JWKS), privileged admin
// calls by single-use step-up tokens (RFC 9470 style), and agents by hashed
// agent keys. Package devissuer stands in for the identity provider locally.
package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// AdminRole is the role an admin JWT must carry, in "roles" or "scope".
const AdminRole = "keyseal:admin"

// DefaultTenantClaim is the claim that names the admin's tenant unless
// AdminConfig.TenantClaim says otherwise.
const DefaultTenantClaim = "tenant_id"

// allowedAlgs are the only signature algorithms accepted. All are
// asymmetric, so a public key from the JWKS can never double as an HMAC
// secret, and "none" is not among them.
var allowedAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// leeway tolerates clock skew between keyseal and the identity provider.
const leeway = 60 * time.Second

// Admin is a verified admin caller.
type Admin struct {
	Subject  string
	TenantID string
	// AuthTime is when the admin last authenticated at the identity
	// provider; zero when the token has no auth_time. Step-up reads it.
	AuthTime time.Time
	// IssuedAt is the token's iat; zero when it has none.
	IssuedAt time.Time
	ACR      string
	AMR      []string
}

// Actor is how audit entries name the admin.
func (a *Admin) Actor() string { return "admin:" + a.Subject }

// AdminConfig configures an AdminVerifier. Exactly one of JWKSURL and JWKS
// must be set: a URL for a real identity provider whose keys rotate, inline
// JSON for a fixed key set (dev mode, air-gapped deployments).
type AdminConfig struct {
	JWKSURL  string
	JWKS     []byte
	Issuer   string
	Audience string
	// TenantClaim names the claim holding the tenant id; default
	// "tenant_id". Identity providers that reserve short names use a
	// namespaced one (for example "https://keyseal.example/tenant").
	TenantClaim string
	// HTTPClient fetches JWKSURL; default a client with a 5 s timeout, so a
	// slow identity provider cannot hold requests for long.
	HTTPClient *http.Client
	// Now is the clock; default time.Now. Tests move it.
	Now func() time.Time
}

// AdminVerifier verifies admin JWTs. It is safe for concurrent use.
type AdminVerifier struct {
	issuer, audience, tenantClaim string
	now                           func() time.Time
	keys                          *keySource
}

// NewAdminVerifier checks cfg and returns a verifier. With a JWKS URL
// nothing is fetched until the first verification, so a process can start
// while the identity provider is briefly unreachable.
func NewAdminVerifier(cfg AdminConfig) (*AdminVerifier, error) {
	switch {
	case cfg.Issuer == "":
		return nil, errors.New("admin JWT issuer is required")
	case cfg.Audience == "":
		return nil, errors.New("admin JWT audience is required")
	case cfg.JWKSURL != "" && len(cfg.JWKS) > 0:
		return nil, errors.New("set only one of the admin JWKS URL and the inline admin JWKS")
	case cfg.JWKSURL == "" && len(cfg.JWKS) == 0:
		return nil, errors.New("an admin JWKS URL or an inline admin JWKS is required")
	}
	v := &AdminVerifier{issuer: cfg.Issuer, audience: cfg.Audience, tenantClaim: cfg.TenantClaim, now: cfg.Now}
	if v.tenantClaim == "" {
		v.tenantClaim = DefaultTenantClaim
	}
	if v.now == nil {
		v.now = time.Now
	}
	if cfg.JWKSURL != "" {
		client := cfg.HTTPClient
		if client == nil {
			client = &http.Client{Timeout: 5 * time.Second}
		}
		v.keys = &keySource{url: cfg.JWKSURL, client: client, now: v.now}
		return v, nil
	}
	keys, err := parseJWKS(cfg.JWKS)
	if err != nil {
		return nil, err
	}
	v.keys = &keySource{keys: keys}
	return v, nil
}

func unauthorized(format string, args ...any) error {
	return keyseal.Errorf(keyseal.EUNAUTHORIZED, format, args...)
}

// Verify checks an Authorization header and returns the admin. It returns
// EUNAUTHORIZED for a missing, malformed, unsigned, expired or foreign token,
// EFORBIDDEN when the token lacks the keyseal:admin role, and a plain error
// when the identity provider's keys cannot be fetched and none are cached.
// Messages say what is wrong but never repeat the token.
func (v *AdminVerifier) Verify(ctx context.Context, authorization string) (*Admin, error) {
	if strings.TrimSpace(authorization) == "" {
		return nil, unauthorized("missing admin token: send Authorization: Bearer <JWT>")
	}
	raw, ok := BearerToken(authorization)
	if !ok {
		return nil, unauthorized("the Authorization header must be \"Bearer <JWT>\"")
	}
	jws, err := jose.ParseSignedCompact(raw, allowedAlgs)
	if err != nil {
		if _, ok := errors.AsType[*jose.ErrUnexpectedSignatureAlgorithm](err); ok {
			return nil, unauthorized("unsupported alg: admin tokens must be signed with RS256, ES256 or EdDSA")
		}
		return nil, unauthorized("malformed admin token: want a compact JWS (header.payload.signature)")
	}
	if len(jws.Signatures) != 1 {
		return nil, unauthorized("malformed admin token: want exactly one signature")
	}
	header := jws.Signatures[0].Header
	keys, err := v.keys.lookup(ctx, header.KeyID)
	if err != nil {
		return nil, err
	}
	payload, verified := verifyWithAny(jws, jose.SignatureAlgorithm(header.Algorithm), keys)
	if !verified {
		return nil, unauthorized("admin token signature does not verify against the identity provider's keys")
	}
	c, err := decodeClaims(payload, v.tenantClaim)
	if err != nil {
		return nil, err
	}
	if err := v.validate(c); err != nil {
		return nil, err
	}
	if !hasRole(c.roles, c.scope) {
		return nil, keyseal.Errorf(keyseal.EFORBIDDEN, "admin token lacks the %s role (in roles or scope)", AdminRole)
	}
	a := &Admin{Subject: c.Subject, TenantID: c.tenant, ACR: c.acr, AMR: c.amr}
	if c.authTime != nil {
		a.AuthTime = c.authTime.Time()
	}
	if c.IssuedAt != nil {
		a.IssuedAt = c.IssuedAt.Time()
	}
	return a, nil
}

// verifyWithAny returns the payload of jws if one of keys verifies its
// signature. Keys whose type or declared alg does not fit the token's alg
// are skipped rather than tried.
func verifyWithAny(jws *jose.JSONWebSignature, alg jose.SignatureAlgorithm, keys []jose.JSONWebKey) ([]byte, bool) {
	for _, k := range keys {
		if !keyFits(k, alg) {
			continue
		}
		if payload, err := jws.Verify(k.Key); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// validate applies the registered-claim rules: trusted issuer, keyseal in
// the audience, a mandatory unexpired exp, nbf and iat within the leeway, a
// subject and a well-formed tenant.
func (v *AdminVerifier) validate(c *adminClaims) error {
	if c.Expiry == nil {
		return unauthorized("admin token has no exp")
	}
	err := c.ValidateWithLeeway(jwt.Expected{Issuer: v.issuer, AnyAudience: jwt.Audience{v.audience}, Time: v.now()}, leeway)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return unauthorized("admin token expired")
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return unauthorized("admin token is from an issuer keyseal does not trust (iss)")
	case errors.Is(err, jwt.ErrInvalidAudience):
		return unauthorized("admin token is not meant for keyseal (aud)")
	case errors.Is(err, jwt.ErrNotValidYet):
		return unauthorized("admin token is not valid yet (nbf)")
	case errors.Is(err, jwt.ErrIssuedInTheFuture):
		return unauthorized("admin token is not valid yet: issued in the future (iat)")
	case err != nil:
		return unauthorized("admin token claims are invalid")
	}
	if c.Subject == "" {
		return unauthorized("admin token has no sub")
	}
	if !keyseal.ValidTenantID(c.tenant) {
		return unauthorized("admin token has no valid %s claim (a tenant id of letters, digits, '-' and '_')", v.tenantClaim)
	}
	return nil
}

// adminClaims are the claims keyseal reads from a verified payload.
type adminClaims struct {
	jwt.Claims
	tenant   string
	authTime *jwt.NumericDate
	acr      string
	amr      []string
	roles    []string
	scope    string
}

// decodeClaims reads the claims one by one, so a token with an ill-typed
// claim gets a message naming it. Claim names come from keyseal, never from
// the token, so they are safe to echo.
func decodeClaims(payload []byte, tenantClaim string) (*adminClaims, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(payload, &m); err != nil {
		return nil, unauthorized("malformed admin token: the payload is not a JSON object")
	}
	c := &adminClaims{}
	for _, f := range []struct {
		name, want string
		dst        any
	}{
		{"iss", "a string", &c.Issuer},
		{"sub", "a string", &c.Subject},
		{"aud", "a string or an array of strings", &c.Audience},
		{"exp", "a number", &c.Expiry},
		{"nbf", "a number", &c.NotBefore},
		{"iat", "a number", &c.IssuedAt},
		{"auth_time", "a number", &c.authTime},
		{"acr", "a string", &c.acr},
		{"amr", "an array of strings", &c.amr},
		{"roles", "an array of strings", &c.roles},
		{"scope", "a space-separated string", &c.scope},
	} {
		if err := decodeClaim(m, f.name, f.dst); err != nil {
			return nil, unauthorized("admin token claim %s must be %s", f.name, f.want)
		}
	}
	// The tenant claim must be a string: a number or object is refused by
	// validate as an invalid tenant, not reported as a type error here.
	_ = decodeClaim(m, tenantClaim, &c.tenant)
	return c, nil
}

// decodeClaim decodes m[name] into dst; an absent or null claim leaves dst
// at its zero value.
func decodeClaim(m map[string]json.RawMessage, name string, dst any) error {
	raw, ok := m[name]
	if !ok || string(raw) == "null" {
		return nil
	}
	return json.Unmarshal(raw, dst)
}

func hasRole(roles []string, scope string) bool {
	return slices.Contains(roles, AdminRole) || slices.Contains(strings.Fields(scope), AdminRole)
}
