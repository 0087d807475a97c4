package keyseal

import (
	"context"
	"hash/fnv"
	"regexp"
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

var tenantIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$`)

// ValidTenantID reports whether id is a well-formed tenant id: 1-64
// characters of letters, digits, '-' and '_', not starting with a symbol.
func ValidTenantID(id string) bool { return tenantIDPattern.MatchString(id) }

// ShardOf returns the poll shard of a tenant.
func ShardOf(tenantID string) int {
	h := fnv.New32a()
	h.Write([]byte(tenantID))
	return int(h.Sum32() % PollShards)
}

// KeyRef names the key that wraps a tenant's TMK and how to reach it.
type KeyRef struct {
	Provider   string `json:"provider"`
	KeyID      string `json:"key_id"`
	RoleARN    string `json:"role_arn,omitempty"`
	ExternalID string `json:"external_id,omitempty"`
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
	ActiveVersion   int        `json:"active_version"`
	CreatedAt       time.Time  `json:"created_at"`
	UpdatedAt       time.Time  `json:"updated_at"`
	// Revision is the optimistic-lock counter: every write is conditional on
	// it and increments it.
	Revision int64 `json:"revision"`
}

// Clone returns a deep copy, so a service can mutate a copy and still hold
// the original for the conditional write.
func (t *Tenant) Clone() *Tenant {
	c := *t
	if t.SealedSince != nil {
		v := *t.SealedSince
		c.SealedSince = &v
	}
	if t.LastVerifiedAt != nil {
		v := *t.LastVerifiedAt
		c.LastVerifiedAt = &v
	}
	return &c
}

// TMKVersion is one version of a tenant master key, stored only wrapped.
type TMKVersion struct {
	TenantID string `json:"tenant_id"`
	Version  int    `json:"version"`
	// Wrapped is the TMK encrypted under Key; nil once revoked (crypto-erased).
	Wrapped []byte `json:"wrapped,omitempty"`
	Key     KeyRef `json:"key"`
	// SigningPublicKey is the Ed25519 public key derived from this TMK for
	// session tokens; kept in clear so JWKS works while the tenant is sealed.
	SigningPublicKey []byte     `json:"signing_public_key"`
	CreatedAt        time.Time  `json:"created_at"`
	RevokedAt        *time.Time `json:"revoked_at,omitempty"`
}

// Change is what UpdateTenant writes beside the tenant row, in the same
// transaction.
type Change struct {
	// PutVersions are written (created or replaced) as given.
	PutVersions []TMKVersion
	// Audit, when set, is appended to the tenant's audit chain.
	Audit *AuditRecord
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

// AuditQuery selects audit entries, newest first.
type AuditQuery struct {
	Limit  int
	Action string
	// Before, when > 0, returns entries with seq < Before (the cursor).
	Before int64
}

// Store is the persistence port. Every state change that has an audit
// record is written in one transaction with it.
type Store interface {
	// GetTenant returns ENOTFOUND when the tenant has no KMS config.
	GetTenant(ctx context.Context, tenantID string) (*Tenant, error)
	// CreateTenant writes a new tenant row, its first TMK version and an
	// audit record atomically. ECONFLICT when the tenant exists.
	CreateTenant(ctx context.Context, t *Tenant, v TMKVersion, rec AuditRecord) error
	// UpdateTenant replaces the tenant row if the stored revision equals
	// t.Revision, and writes c in the same transaction. On success
	// t.Revision is incremented. ECONFLICT when the revision moved, ENOTFOUND
	// when the tenant does not exist.
	UpdateTenant(ctx context.Context, t *Tenant, c Change) error
	// ListTenants lists tenant ids of one poll shard in pages. The cursor ""
	// starts; a returned cursor "" means the shard is done.
	ListTenants(ctx context.Context, shard int, cursor string, limit int) (ids []string, next string, err error)
	// Versions returns all TMK versions of a tenant, oldest first.
	Versions(ctx context.Context, tenantID string) ([]TMKVersion, error)

	// AppendAudit appends rec to the tenant's chain and returns the entry.
	AppendAudit(ctx context.Context, tenantID string, rec AuditRecord) (AuditEntry, error)
	// ListAudit returns entries newest first.
	ListAudit(ctx context.Context, tenantID string, q AuditQuery) ([]AuditEntry, error)
	// ScanAudit calls fn for every entry in ascending seq order, and returns
	// the head the store holds (seq and hash of the last entry).
	ScanAudit(ctx context.Context, tenantID string, fn func(AuditEntry) error) (AuditHead, error)

	// CreateAgent stores an agent and audits it. ECONFLICT on a duplicate.
	CreateAgent(ctx context.Context, a *Agent, rec AuditRecord) error
	// AgentByKeyHash returns ENOTFOUND for an unknown key.
	AgentByKeyHash(ctx context.Context, keyHash string) (*Agent, error)
	// ListAgents lists a tenant's agents, oldest first.
	ListAgents(ctx context.Context, tenantID string) ([]Agent, error)
	// RevokeAgent marks an agent revoked and audits it. ENOTFOUND for an
	// unknown agent, ECONFLICT when already revoked.
	RevokeAgent(ctx context.Context, tenantID, agentID string, at time.Time, rec AuditRecord) error

	// PutStepUp stores a new step-up token. ECONFLICT on a duplicate hash.
	PutStepUp(ctx context.Context, tok StepUpToken) error
	// GetStepUp returns ENOTFOUND for an unknown hash.
	GetStepUp(ctx context.Context, hash string) (*StepUpToken, error)
	// UseStepUp marks the token used. ECONFLICT when it already was used,
	// ENOTFOUND when unknown.
	UseStepUp(ctx context.Context, hash string) error

	// Ping checks the store is reachable (health).
	Ping(ctx context.Context) error
}
