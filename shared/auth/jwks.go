package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

const (
	// jwksMaxAge is how long fetched keys are used before they are fetched
	// again, so a key the identity provider withdrew stops working.
	jwksMaxAge = 10 * time.Minute
	// jwksMinInterval spaces fetch attempts, so tokens with made-up kids or
	// an identity provider that is down cannot turn every request into a
	// fetch.
	jwksMinInterval = 30 * time.Second
	// jwksMaxBytes caps the JWKS document; real ones are a few KiB.
	jwksMaxBytes = 1 << 20
	// minRSABits refuses RSA keys too short to trust.
	minRSABits = 2048
)

// keySource serves the identity provider's verification keys: a fixed set,
// or a set fetched lazily from a URL and cached.
type keySource struct {
	url    string
	client *http.Client
	now    func() time.Time

	// fetchMu serializes fetches, so callers that find the cache wanting at
	// the same time share one fetch instead of each making their own.
	fetchMu sync.Mutex

	mu        sync.Mutex
	keys      []jose.JSONWebKey
	fetchedAt time.Time // last successful fetch
	triedAt   time.Time // last fetch attempt, successful or not
	attempts  uint64
	lastErr   error
}

// lookup returns the keys that may have signed a token with this kid: the
// keys named kid, or every key when the token names none. It returns
// EUNAUTHORIZED for an unknown kid, and a plain error when the keys cannot
// be fetched and none are cached.
func (s *keySource) lookup(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	keys, err := s.current(ctx, kid)
	if err != nil {
		return nil, err
	}
	if kid == "" {
		return keys, nil
	}
	var named []jose.JSONWebKey
	for _, k := range keys {
		if k.KeyID == kid {
			named = append(named, k)
		}
	}
	if len(named) == 0 {
		return nil, unauthorized("admin token is signed with an unknown key (kid)")
	}
	return named, nil
}

// current returns the key set, fetching it first when nothing is cached,
// when the cache is older than jwksMaxAge, or when kid is unknown (a key
// rotation), but never sooner than jwksMinInterval after the last attempt
// once something is cached. A failed refresh keeps serving cached keys.
func (s *keySource) current(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	if s.url == "" {
		return s.keys, nil
	}
	s.mu.Lock()
	keys, attempts, stale := s.keys, s.attempts, s.wantsFetch(kid)
	s.mu.Unlock()
	if !stale {
		return keys, nil
	}

	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	s.mu.Lock()
	if s.attempts != attempts {
		// Another caller fetched while this one waited: take its outcome.
		keys, err := s.keys, s.lastErr
		s.mu.Unlock()
		if keys == nil {
			return nil, err
		}
		return keys, nil
	}
	s.mu.Unlock()

	fetched, err := s.fetch(ctx)

	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts++
	s.triedAt = s.now()
	s.lastErr = err
	if err == nil {
		s.keys, s.fetchedAt = fetched, s.triedAt
	}
	if s.keys == nil {
		return nil, err // nothing cached: no admin can be verified
	}
	return s.keys, nil
}

// wantsFetch reports whether the cache should be refreshed for kid. The
// caller holds s.mu.
func (s *keySource) wantsFetch(kid string) bool {
	now := s.now()
	switch {
	case s.keys == nil:
		return true
	case now.Sub(s.triedAt) < jwksMinInterval:
		return false
	case now.Sub(s.fetchedAt) >= jwksMaxAge:
		return true
	case kid == "":
		return false
	}
	for _, k := range s.keys {
		if k.KeyID == kid {
			return false
		}
	}
	return true
}

// fetch downloads and parses the JWKS. Its errors are infrastructure
// errors: the API logs them and answers 500 without their text.
func (s *keySource) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("admin JWKS: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("admin JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("admin JWKS: %s answered %s", s.url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, jwksMaxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("admin JWKS: %w", err)
	}
	if len(b) > jwksMaxBytes {
		return nil, fmt.Errorf("admin JWKS: %s sent more than %d bytes", s.url, jwksMaxBytes)
	}
	keys, err := parseJWKS(b)
	if err != nil {
		return nil, fmt.Errorf("%w (from %s)", err, s.url)
	}
	return keys, nil
}

// parseJWKS returns the public signature keys of a JWKS document. Keys are
// parsed one by one and unusable ones skipped (encryption keys, symmetric
// keys, key types go-jose does not know, short RSA keys), so one odd key
// published by the identity provider does not lock every admin out. A
// document with no usable key is an error.
func parseJWKS(b []byte) ([]jose.JSONWebKey, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("admin JWKS is not valid JSON: %w", err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			continue
		}
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		// Public drops private material an operator may have pasted by
		// mistake; it yields an invalid key for symmetric ones.
		pub := k.Public()
		if !pub.Valid() || !verificationKey(pub.Key) {
			continue
		}
		keys = append(keys, pub)
	}
	if len(keys) == 0 {
		return nil, errors.New("admin JWKS has no usable signature key (RSA >= 2048 bits, EC P-256 or Ed25519)")
	}
	return keys, nil
}

// verificationKey reports whether key is of a type one of allowedAlgs uses.
func verificationKey(key any) bool {
	switch key := key.(type) {
	case *rsa.PublicKey:
		return key.N.BitLen() >= minRSABits
	case *ecdsa.PublicKey:
		return key.Curve == elliptic.P256()
	case ed25519.PublicKey:
		return true
	}
	return false
}

// keyFits reports whether k may verify a signature made with alg: its type
// must match the algorithm, and so must its "alg" member when it has one.
func keyFits(k jose.JSONWebKey, alg jose.SignatureAlgorithm) bool {
	if k.Algorithm != "" && k.Algorithm != string(alg) {
		return false
	}
	switch k.Key.(type) {
	case *rsa.PublicKey:
		return alg == jose.RS256
	case *ecdsa.PublicKey:
		return alg == jose.ES256
	case ed25519.PublicKey:
		return alg == jose.EdDSA
	}
	return false
}
