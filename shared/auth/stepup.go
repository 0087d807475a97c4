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

// StepUp issues and consumes step-up tokens: short-lived, single-use proof
// that an admin authenticated strongly and recently, bound to the admin's
// subject and tenant.
type StepUp struct {
	Store     keyseal.Store
	MaxAge    time.Duration // how recent auth_time must be (default 300 s)
	ACRValues []string      // accepted acr values (default ["mfa"]); amr "mfa" also counts
	TTL       time.Duration // token lifetime (default 120 s)
	Now       func() time.Time
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
	return 300 * time.Second
}

func (s *StepUp) acrValues() []string {
	if len(s.ACRValues) > 0 {
		return s.ACRValues
	}
	return []string{"mfa"}
}

// Issue returns a new step-up token for a, or EINSUFFICIENT with an RFC 9470
// WWW-Authenticate challenge when a's authentication is not recent and
// strong enough.
func (s *StepUp) Issue(ctx context.Context, a *Admin) (string, time.Time, error) {
	now := s.now()
	var problem string
	switch {
	case a.AuthTime.IsZero():
		problem = "the admin token has no auth_time"
	case now.Sub(a.AuthTime) > s.maxAge():
		problem = fmt.Sprintf("authentication is older than %d s", int(s.maxAge()/time.Second))
	case !slices.Contains(s.acrValues(), a.ACR) && !slices.Contains(a.AMR, "mfa"):
		problem = "authentication was not multi-factor"
	}
	if problem != "" {
		e := keyseal.Errorf(keyseal.EINSUFFICIENT, "step-up needs fresh multi-factor authentication: %s; sign in again with MFA and retry", problem)
		e.Header = map[string]string{"WWW-Authenticate": fmt.Sprintf(
			`Bearer error="insufficient_user_authentication", error_description=%q, acr_values=%q, max_age=%d`,
			"A fresh multi-factor authentication is required", strings.Join(s.acrValues(), " "), int(s.maxAge()/time.Second))}
		return "", time.Time{}, e
	}
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", time.Time{}, err
	}
	token := "kst_" + base64.RawURLEncoding.EncodeToString(raw[:])
	ttl := s.TTL
	if ttl <= 0 {
		ttl = 120 * time.Second
	}
	exp := now.Add(ttl).Truncate(time.Second)
	if err := s.Store.PutStepUp(ctx, keyseal.StepUpToken{Hash: hashToken(token), Subject: a.Subject, TenantID: a.TenantID, ExpiresAt: exp}); err != nil {
		return "", time.Time{}, err
	}
	if _, err := s.Store.AppendAudit(ctx, a.TenantID, keyseal.AuditRecord{Action: keyseal.ActionStepUp, Severity: keyseal.SeverityInfo,
		Actor: "admin:" + a.Subject, Details: map[string]string{"expires_at": exp.Format(time.RFC3339)}}); err != nil {
		return "", time.Time{}, err
	}
	return token, exp, nil
}

func stepUpRequired(format string, args ...any) error {
	return keyseal.Errorf(keyseal.ESTEPUP, format, args...)
}

// Consume spends a step-up token for a privileged call by a. Every failure is
// ESTEPUP, with a message saying whether the token is missing, unknown,
// expired, foreign or already used. A foreign or expired attempt does not
// burn the token.
func (s *StepUp) Consume(ctx context.Context, a *Admin, token string) error {
	token = strings.TrimSpace(token)
	if token == "" {
		return stepUpRequired("this call needs a step-up token: send it in X-Keyseal-StepUp; get one from POST /admin/auth/step-up")
	}
	h := hashToken(token)
	tok, err := s.Store.GetStepUp(ctx, h)
	switch {
	case keyseal.ErrorCode(err) == keyseal.ENOTFOUND:
		return stepUpRequired("unknown step-up token; get one from POST /admin/auth/step-up")
	case err != nil:
		return err
	case tok.Subject != a.Subject || tok.TenantID != a.TenantID:
		return stepUpRequired("the step-up token was issued to another admin or tenant")
	case !s.now().Before(tok.ExpiresAt):
		return stepUpRequired("the step-up token expired; get a new one from POST /admin/auth/step-up")
	case tok.Used:
		return stepUpRequired("the step-up token was already used; each one is good for one call")
	}
	err = s.Store.UseStepUp(ctx, h)
	switch keyseal.ErrorCode(err) {
	case "":
		return nil
	case keyseal.ECONFLICT:
		return stepUpRequired("the step-up token was already used; each one is good for one call")
	case keyseal.ENOTFOUND:
		return stepUpRequired("unknown step-up token; get one from POST /admin/auth/step-up")
	}
	return err
}

func hashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// NewAgentKey returns a new agent key and the hash to store. The key is
// shown to the admin once and never stored.
func NewAgentKey() (key, hash string, err error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", "", err
	}
	key = "ksa_" + base64.RawURLEncoding.EncodeToString(raw[:])
	return key, HashAgentKey(key), nil
}

// HashAgentKey is the stored form of an agent key: hex SHA-256. Keys carry
// 256 random bits, so a fast hash is enough (no password stretching).
func HashAgentKey(key string) string { return hashToken(key) }

// BearerToken extracts the token of an "Authorization: Bearer <token>"
// header (scheme case-insensitive).
func BearerToken(authorization string) (string, bool) {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(authorization), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}
