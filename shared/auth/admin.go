// Package auth authenticates keyseal's callers: admins by JWTs from the
// operator's identity provider (verified against its JWKS), privileged admin
// calls by single-use step-up tokens (RFC 9470 style), and agents by hashed
// agent keys. DevIssuer stands in for the identity provider locally.
package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// AdminRole is the role an admin JWT must carry, in "roles" or "scope".
const AdminRole = "keyseal:admin"

// allowedAlgs are the only signature algorithms accepted: asymmetric ones,
// so a public key can never double as an HMAC secret, and never "none".
var allowedAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// leeway tolerates clock skew between keyseal and the identity provider.
const leeway = 60 * time.Second

// Admin is a verified admin caller.
type Admin struct {
	Subject  string
	TenantID string
	// AuthTime is when the admin authenticated; zero when the token has no
	// auth_time.
	AuthTime time.Time
	ACR      string
	AMR      []string
}

// AdminConfig configures an AdminVerifier: exactly one of JWKSURL and JWKS.
type AdminConfig struct {
	JWKSURL     string
	JWKS        []byte
	Issuer      string
	Audience    string
	TenantClaim string // default "tenant_id"
	HTTPClient  *http.Client
	Now         func() time.Time
}

// AdminVerifier verifies admin JWTs. It is safe for concurrent use.
type AdminVerifier struct {
	cfg  AdminConfig
	keys *keySource
}

// NewAdminVerifier checks cfg and returns a verifier.
func NewAdminVerifier(cfg AdminConfig) (*AdminVerifier, error) {
	switch {
	case cfg.Issuer == "" || cfg.Audience == "":
		return nil, errors.New("admin issuer and audience are required")
	case cfg.JWKSURL != "" && len(cfg.JWKS) > 0:
		return nil, errors.New("set only one of the JWKS URL and the inline JWKS")
	case cfg.JWKSURL == "" && len(cfg.JWKS) == 0:
		return nil, errors.New("a JWKS URL or an inline JWKS is required")
	}
	if cfg.TenantClaim == "" {
		cfg.TenantClaim = "tenant_id"
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 5 * time.Second}
	}
	ks := &keySource{url: cfg.JWKSURL, client: cfg.HTTPClient, now: cfg.Now}
	if len(cfg.JWKS) > 0 {
		var set jose.JSONWebKeySet
		if err := json.Unmarshal(cfg.JWKS, &set); err != nil {
			return nil, fmt.Errorf("inline JWKS: %w", err)
		}
		if len(set.Keys) == 0 {
			return nil, errors.New("inline JWKS has no keys")
		}
		ks.set = &set
	}
	return &AdminVerifier{cfg: cfg, keys: ks}, nil
}

func unauthorized(format string, args ...any) error {
	return keyseal.Errorf(keyseal.EUNAUTHORIZED, format, args...)
}

// adminClaims are the claims keyseal reads beside the registered ones.
type adminClaims struct {
	jwt.Claims
	AuthTime *jwt.NumericDate `json:"auth_time"`
	ACR      string           `json:"acr"`
	AMR      []string         `json:"amr"`
	Roles    []string         `json:"roles"`
	Scope    string           `json:"scope"`
}

// Verify checks an Authorization header and returns the admin. It returns
// EUNAUTHORIZED for a missing, malformed, unsigned, expired or foreign token
// and EFORBIDDEN when the token lacks the keyseal:admin role.
func (v *AdminVerifier) Verify(ctx context.Context, authorization string) (*Admin, error) {
	raw, ok := BearerToken(authorization)
	if !ok {
		return nil, unauthorized("missing admin token: send Authorization: Bearer <JWT>")
	}
	tok, err := jwt.ParseSigned(raw, allowedAlgs)
	if err != nil {
		if strings.Contains(err.Error(), "unexpected signature algorithm") {
			return nil, unauthorized("unsupported alg: admin tokens must be signed with RS256, ES256 or EdDSA")
		}
		return nil, unauthorized("malformed admin token")
	}
	if len(tok.Headers) != 1 {
		return nil, unauthorized("malformed admin token: want exactly one signature")
	}
	keys, err := v.keys.lookup(ctx, tok.Headers[0].KeyID)
	if err != nil {
		return nil, err
	}
	var c adminClaims
	var extra map[string]any
	verified := false
	for _, k := range keys {
		if err := tok.Claims(k.Key, &c, &extra); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, unauthorized("admin token signature does not verify against the identity provider's keys")
	}
	if c.Expiry == nil {
		return nil, unauthorized("admin token has no exp")
	}
	err = c.ValidateWithLeeway(jwt.Expected{Issuer: v.cfg.Issuer, AnyAudience: jwt.Audience{v.cfg.Audience}, Time: v.cfg.Now()}, leeway)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return nil, unauthorized("admin token expired")
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return nil, unauthorized("admin token is from an issuer keyseal does not trust")
	case errors.Is(err, jwt.ErrInvalidAudience):
		return nil, unauthorized("admin token is not meant for keyseal (aud)")
	case errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, jwt.ErrIssuedInTheFuture):
		return nil, unauthorized("admin token is not valid yet")
	case err != nil:
		return nil, unauthorized("admin token claims are invalid")
	}
	if c.Subject == "" {
		return nil, unauthorized("admin token has no sub")
	}
	tenant, _ := extra[v.cfg.TenantClaim].(string)
	if !keyseal.ValidTenantID(tenant) {
		return nil, unauthorized("admin token has no valid %s claim", v.cfg.TenantClaim)
	}
	if !hasRole(c.Roles, c.Scope) {
		return nil, keyseal.Errorf(keyseal.EFORBIDDEN, "admin token lacks the %s role (in roles or scope)", AdminRole)
	}
	a := &Admin{Subject: c.Subject, TenantID: tenant, ACR: c.ACR, AMR: c.AMR}
	if c.AuthTime != nil {
		a.AuthTime = c.AuthTime.Time()
	}
	return a, nil
}

func hasRole(roles []string, scope string) bool {
	for _, r := range append(roles, strings.Fields(scope)...) {
		if r == AdminRole {
			return true
		}
	}
	return false
}

// keySource serves the identity provider's keys: inline, or fetched from a
// URL, cached, refetched when an unknown kid shows up (at most every 30 s)
// and at least every 10 minutes.
type keySource struct {
	url    string
	client *http.Client
	now    func() time.Time

	mu      sync.Mutex
	set     *jose.JSONWebKeySet
	fetched time.Time
}

const (
	jwksMaxAge       = 10 * time.Minute
	jwksMinRefetchIn = 30 * time.Second
)

func (s *keySource) lookup(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.url != "" {
		age := s.now().Sub(s.fetched)
		stale := s.set == nil || age >= jwksMaxAge
		unknown := s.set != nil && kid != "" && len(s.set.Key(kid)) == 0 && age >= jwksMinRefetchIn
		if stale || unknown {
			set, err := s.fetch(ctx)
			switch {
			case err == nil:
				s.set, s.fetched = set, s.now()
			case s.set == nil:
				return nil, err // nothing cached: cannot verify anyone
			}
			// A failed refresh keeps serving the cached keys.
		}
	}
	if kid != "" {
		keys := s.set.Key(kid)
		if len(keys) == 0 {
			return nil, unauthorized("admin token is signed with an unknown key (kid)")
		}
		return keys, nil
	}
	return s.set.Keys, nil
}

func (s *keySource) fetch(ctx context.Context) (*jose.JSONWebKeySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("admin JWKS: %w", err)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("admin JWKS: %s answered %d", s.url, resp.StatusCode)
	}
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("admin JWKS: %w", err)
	}
	return &set, nil
}
