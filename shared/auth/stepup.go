package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// Step-up defaults (docs/contract.md §3).
const (
	defaultStepUpMaxAge = 300 * time.Second
	defaultStepUpTTL    = 120 * time.Second
)

// defaultACRValues are the acr values that count as strong authentication
// unless StepUp.ACRValues says otherwise.
var defaultACRValues = []string{"mfa"}

// StepUpHeader is the request header privileged calls carry the step-up
// token in.
const StepUpHeader = "X-Keyseal-StepUp"

// StepUp issues and consumes step-up tokens: short-lived, single-use proof
// that an admin authenticated strongly and recently, bound to the admin's
// subject and tenant. Tokens are stored only as hashes, so a leak of the
// store does not yield usable tokens.
type StepUp struct {
	Tokens keyseal.StepUpStore
	// Audit records each issue in the admin's tenant chain.
	Audit keyseal.AuditLog
	// MaxAge is how recent auth_time must be (default 300 s).
	MaxAge time.Duration
	// ACRValues are the acr values accepted as strong authentication
	// (default ["mfa"]); an amr containing "mfa" is accepted too, because
	// many identity providers report MFA only there.
	ACRValues []string
	// TTL is the token lifetime (default 120 s).
	TTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// FreshSignIn, when set, replaces the advice "sign in again with MFA"
	// in the EINSUFFICIENT message: dev mode names the route that mints a
	// fresh admin token.
	FreshSignIn string
}

func (s *StepUp) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *StepUp) maxAge() time.Duration {
	if s.MaxAge > 0 {
		return s.MaxAge
	}
	return defaultStepUpMaxAge
}

func (s *StepUp) acrValues() []string {
	if len(s.ACRValues) > 0 {
		return s.ACRValues
	}
	return defaultACRValues
}

func (s *StepUp) ttl() time.Duration {
	if s.TTL > 0 {
		return s.TTL
	}
	return defaultStepUpTTL
}

// Lifetime is how long a token lives from the whole second it was issued
// in: Issue's expiry minus Lifetime is that second, so a response's
// expires_in (Lifetime) and expires_at always agree.
func (s *StepUp) Lifetime() time.Duration { return s.ttl() }

// Issue returns a new step-up token for a and its expiry (UTC, whole
// seconds), and audits the issue in a's tenant chain. It returns
// EINSUFFICIENT, carrying an RFC 9470 WWW-Authenticate challenge that tells
// the client how to re-authenticate, when a's authentication is not recent
// or not strong enough.
func (s *StepUp) Issue(ctx context.Context, a *Admin) (token string, expiresAt time.Time, err error) {
	now := s.now()
	if problem := s.weakness(a, now); problem != "" {
		return "", time.Time{}, s.challenge(problem)
	}
	token, err = randomToken("kst_")
	if err != nil {
		return "", time.Time{}, err
	}
	expiresAt = now.Add(s.ttl()).Truncate(time.Second)
	rec := keyseal.StepUpToken{Hash: hashSecret(token), Subject: a.Subject, TenantID: a.TenantID, ExpiresAt: expiresAt}
	if err := s.Tokens.PutStepUp(ctx, rec); err != nil {
		return "", time.Time{}, fmt.Errorf("step-up: store token: %w", err)
	}
	// The token is useless to anyone who does not hold it, so an audit
	// failure after the put leaves nothing to undo; the caller just gets no
	// token.
	_, err = s.Audit.AppendAudit(ctx, a.TenantID, keyseal.AuditRecord{
		At:       now,
		Action:   keyseal.ActionStepUp,
		Severity: keyseal.SeverityInfo,
		Actor:    a.Actor(),
		Details:  map[string]string{"expires_at": expiresAt.Format(time.RFC3339)},
	})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("step-up: audit: %w", err)
	}
	return token, expiresAt, nil
}

// weakness says why a's authentication does not allow a step-up, or "" when
// it does.
func (s *StepUp) weakness(a *Admin, now time.Time) string {
	switch {
	case a.AuthTime.IsZero():
		return "the admin token has no auth_time"
	// A sign-in in the future would pass the freshness check below for as
	// long as the identity provider's clock runs ahead; only the clock
	// leeway the JWT checks allow (nbf, iat, exp) is tolerated. iat itself
	// is checked where every admin JWT is verified (AdminVerifier), because
	// a token issued in the future is wrong for any call, not just step-up.
	case a.AuthTime.After(now.Add(leeway)):
		return fmt.Sprintf("auth_time is more than %d s in the future (is the identity provider's clock ahead?)", int64(leeway/time.Second))
	case !a.IssuedAt.IsZero() && a.AuthTime.After(a.IssuedAt.Add(leeway)):
		return "auth_time is later than the token's iat: a token cannot record a sign-in made after it was issued"
	case now.Sub(a.AuthTime) > s.maxAge():
		return fmt.Sprintf("the last sign-in is older than %d s", int64(s.maxAge()/time.Second))
	case (a.ACR == "" || !slices.Contains(s.acrValues(), a.ACR)) && !slices.Contains(a.AMR, "mfa"):
		return "the last sign-in was not multi-factor"
	}
	return ""
}

// Extra fields of an EINSUFFICIENT error: what a fresh sign-in must show.
// The HTTP layer turns them into the RFC 9470 WWW-Authenticate challenge.
const (
	ExtraACRValues = "acr_values"
	ExtraMaxAge    = "max_age"
)

// challenge builds the EINSUFFICIENT error with what the RFC 9470
// challenge needs.
func (s *StepUp) challenge(problem string) error {
	advice := "sign in again with MFA and retry"
	if s.FreshSignIn != "" {
		advice = s.FreshSignIn
	}
	return keyseal.Errorf(keyseal.EINSUFFICIENT, "step-up needs a fresh multi-factor sign-in: %s; %s", problem, advice).
		With(ExtraACRValues, strings.Join(s.acrValues(), " ")).
		With(ExtraMaxAge, int64(s.maxAge()/time.Second))
}

func stepUpRequired(format string, args ...any) error {
	return keyseal.Errorf(keyseal.ESTEPUP, format, args...)
}

// Consume spends a step-up token for a privileged call by a. Every refusal
// is ESTEPUP, with a message saying whether the token is missing, unknown,
// expired, issued to another admin or tenant, or already used; store
// faults are returned wrapped. Ownership and expiry are checked before the
// token is marked used, so a foreign or late attempt does not burn a token
// its owner may still use.
func (s *StepUp) Consume(ctx context.Context, a *Admin, token string) error {
	token = strings.TrimSpace(token)
	if token == "" {
		return stepUpRequired("this call needs a step-up token: send it in %s; get one from POST /admin/auth/step-up", StepUpHeader)
	}
	h := hashSecret(token)
	tok, err := s.Tokens.GetStepUp(ctx, h)
	switch {
	case keyseal.ErrorCode(err) == keyseal.ENOTFOUND:
		return stepUpRequired("unknown step-up token; get one from POST /admin/auth/step-up")
	case err != nil:
		return fmt.Errorf("step-up: read token: %w", err)
	case tok.Subject != a.Subject || tok.TenantID != a.TenantID:
		return stepUpRequired("the step-up token was issued to another admin or tenant; get your own from POST /admin/auth/step-up")
	case !s.now().Before(tok.ExpiresAt):
		return stepUpRequired("the step-up token expired; get a new one from POST /admin/auth/step-up")
	case tok.Used:
		return stepUpRequired("the step-up token was already used; each one is good for one call")
	}
	err = s.Tokens.UseStepUp(ctx, h)
	switch keyseal.ErrorCode(err) {
	case "":
		return nil
	case keyseal.ECONFLICT:
		// A concurrent call with the same token won the race.
		return stepUpRequired("the step-up token was already used; each one is good for one call")
	case keyseal.ENOTFOUND:
		return stepUpRequired("unknown step-up token; get one from POST /admin/auth/step-up")
	}
	return fmt.Errorf("step-up: mark token used: %w", err)
}

// randomToken returns prefix followed by 256 random bits, base64url
// without padding.
func randomToken(prefix string) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("random token: %w", err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(raw[:]), nil
}

// hashSecret is the stored form of a random bearer secret: hex SHA-256. The
// secrets carry 256 random bits, so a fast unsalted hash is enough; there
// is nothing to brute-force.
func hashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}
