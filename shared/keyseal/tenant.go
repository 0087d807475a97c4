package keyseal

import (
	"hash/fnv"
	"maps"
	"strings"
	"time"
)

// Tenant status values. Sealed is reversible (restore KMS access); revoked is
// permanent for the revoked TMK version.
const (
	StatusActive  = "active"
	StatusSealed  = "sealed"
	StatusRevoked = "revoked"
)

// Provider names.
const (
	ProviderAWS   = "aws-kms"
	ProviderGCP   = "gcp-kms"
	ProviderAzure = "azure-kv"
	ProviderLocal = "local"
)

// Seal reasons recorded on the tenant row.
const (
	ReasonAccessDenied    = "access_denied"
	ReasonKeyDisabled     = "key_disabled"
	ReasonPendingDeletion = "key_pending_deletion"
	ReasonKeyNotFound     = "key_not_found"
	ReasonInvalidBlob     = "invalid_ciphertext"
	ReasonUnreachable     = "unreachable"
	ReasonRevoked         = "revoked"
)

// PollShards is how many shards the poller's tenant index is split into. A
// sweep lists shard by shard, so many invocations can split the work.
const PollShards = 16

// ValidTenantID reports whether id is a well-formed tenant id: 1-64
// characters of ASCII letters, digits, '-' and '_', not starting with a
// symbol. (A loop, not a regexp: compiling `[A-Za-z0-9_-]{0,63}` costs
// 0.25 ms and 60 KB, at init or on a Lambda's first request.)
func ValidTenantID(id string) bool { return ValidName(id, 64, "_-") }

// ValidName reports whether s has 1 to maxLen bytes, each an ASCII letter,
// digit or one of symbols, the first a letter or digit.
func ValidName(s string, maxLen int, symbols string) bool {
	if len(s) == 0 || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !alnum && (i == 0 || strings.IndexByte(symbols, c) < 0) {
			return false
		}
	}
	return true
}

// ShardOf returns the poll shard of a tenant.
func ShardOf(tenantID string) int {
	h := fnv.New32a()
	h.Write([]byte(tenantID))
	return int(h.Sum32() % PollShards)
}

// KeyRef names the key that wraps a tenant's TMK and how to reach it, in
// terms every provider shares: the provider, its key id (an AWS key ARN, a
// GCP CryptoKey name, an Azure key URL, a local key id), and the provider's
// own access fields (aws-kms: role_arn and external_id; gcp-kms:
// service_account; azure-kv: the Azure tenant). Stores keep Access as one
// nested attribute; only the provider reads it.
type KeyRef struct {
	Provider string            `json:"provider"`
	KeyID    string            `json:"key_id"`
	Access   map[string]string `json:"access,omitempty"`
}

// Equal reports whether k and o name the same key reached the same way.
func (k KeyRef) Equal(o KeyRef) bool {
	if k.Provider != o.Provider || k.KeyID != o.KeyID || len(k.Access) != len(o.Access) {
		return false
	}
	for name, v := range k.Access {
		if w, ok := o.Access[name]; !ok || w != v {
			return false
		}
	}
	return true
}

// Tenant is a tenant's KMS configuration and seal state: one row per tenant.
type Tenant struct {
	ID  string `json:"tenant_id"`
	Key KeyRef `json:"key"`
	// BYOK is true when Key is the customer's CMK, false for the platform key.
	BYOK            bool       `json:"byok"`
	Status          string     `json:"status"`
	SealedSince     *time.Time `json:"sealed_since"`
	SealReason      string     `json:"seal_reason,omitempty"`
	LastVerifyError string     `json:"last_verify_error,omitempty"`
	LastVerifiedAt  *time.Time `json:"last_verified_at"`
	LastLatencyMS   int64      `json:"last_latency_ms"`
	// LatencyClass is the latency class the poller recorded with
	// hysteresis (tenantkms.PolledLatencyClass): it moves up when a verify
	// crosses a class's threshold and down only well below it, so a steady
	// latency at a boundary does not rewrite the row every poll. "" on a
	// row no verify has recorded one on (the class of LastLatencyMS then).
	LatencyClass  string    `json:"latency_class,omitempty"`
	ActiveVersion int       `json:"active_version"`
	CreatedAt     time.Time `json:"created_at"`
	UpdatedAt     time.Time `json:"updated_at"`
	// Revision is the optimistic-lock counter: every write is conditional on
	// it and increments it.
	Revision int64 `json:"revision"`

	// What the poller announced, so neither a restart nor a second poller
	// announces it again (README, "Events"). DegradedSince is the first
	// verify of the current unbroken run of high or critical latency;
	// DegradedNotified says its tenant.kms.health_degraded was written.
	DegradedSince    *time.Time `json:"degraded_since,omitempty"`
	DegradedNotified bool       `json:"degraded_notified,omitempty"`
	// RotationDueNotified is the TMK version whose tenant.kms.rotation_due
	// was written (0: none).
	RotationDueNotified int `json:"rotation_due_notified_version,omitempty"`
}

// Clone returns a deep copy, so a service can mutate a copy and still hold
// the original for the conditional write.
func (t *Tenant) Clone() *Tenant {
	c := *t
	c.Key.Access = maps.Clone(t.Key.Access)
	if t.SealedSince != nil {
		v := *t.SealedSince
		c.SealedSince = &v
	}
	if t.LastVerifiedAt != nil {
		v := *t.LastVerifiedAt
		c.LastVerifiedAt = &v
	}
	if t.DegradedSince != nil {
		v := *t.DegradedSince
		c.DegradedSince = &v
	}
	return &c
}

// TMKVersion is one version of a tenant master key, stored only wrapped.
type TMKVersion struct {
	TenantID string `json:"tenant_id"`
	Version  int    `json:"version"`
	// Wrapped is the TMK encrypted under Key; nil once revoked (crypto-erased).
	Wrapped []byte `json:"wrapped,omitempty"`
	// KeyVersion is the provider's key version that made Wrapped, when the
	// provider names one (Wrapped.KeyVersion).
	KeyVersion string `json:"key_version,omitempty"`
	Key        KeyRef `json:"key"`
	// SigningPublicKey is the Ed25519 public key derived from this TMK for
	// session tokens; kept in clear so JWKS works while the tenant is sealed.
	SigningPublicKey []byte     `json:"signing_public_key"`
	CreatedAt        time.Time  `json:"created_at"`
	RevokedAt        *time.Time `json:"revoked_at,omitempty"`
}

// Blob returns what the provider needs to unwrap the version.
func (v TMKVersion) Blob() Wrapped { return Wrapped{Blob: v.Wrapped, KeyVersion: v.KeyVersion} }

// Change is what UpdateTenant writes beside the tenant row, in the same
// transaction. Every version write is conditional, so no write can bring
// back a version that was crypto-erased in between.
type Change struct {
	// NewVersions are created; the write fails if one exists.
	NewVersions []TMKVersion
	// Replace overwrite existing versions (a re-wrap, a revoke); the write
	// fails if one is missing or already revoked.
	Replace []TMKVersion
	// Audit, when set, is appended to the tenant's audit chain.
	Audit *AuditRecord
	// Events are written to the outbox (OutboxStore): committed with the
	// change or not at all, so a transition's event is never lost when
	// the answer to a committed write is, and never sent for a write that
	// failed.
	Events []Event
}

// Agent is an agent credential. The key itself is shown once and stored
// only as a SHA-256 hash.
type Agent struct {
	ID        string     `json:"agent_id"`
	TenantID  string     `json:"tenant_id"`
	Name      string     `json:"name"`
	KeyHash   string     `json:"-"`
	CreatedAt time.Time  `json:"created_at"`
	CreatedBy string     `json:"created_by"`
	RevokedAt *time.Time `json:"revoked_at"`
}

// StepUpToken is the stored form of a step-up token (the token is stored
// only as a hash).
type StepUpToken struct {
	Hash      string    `json:"-"`
	Subject   string    `json:"subject"`
	TenantID  string    `json:"tenant_id"`
	ExpiresAt time.Time `json:"expires_at"`
	Used      bool      `json:"used"`
}

// WaiverAck is a tenant's acknowledgment of one legal waiver version: who
// (an email the admin gives, and the admin's subject) and when.
type WaiverAck struct {
	TenantID       string    `json:"tenant_id"`
	Version        string    `json:"version"`
	SHA256         string    `json:"sha256"`
	AcknowledgedBy string    `json:"acknowledged_by"`
	Actor          string    `json:"actor"`
	AcknowledgedAt time.Time `json:"acknowledged_at"`
}

// AuditQuery selects audit entries, newest first.
type AuditQuery struct {
	Limit  int
	Action string
	// Before, when > 0, returns entries with seq < Before (the cursor).
	Before int64
}
