package keyseal

import (
	"context"
	"time"
)

// The persistence ports. Each service takes only the slice it uses; an
// adapter (DynamoDB, bbolt, the in-memory store of unit tests) implements
// Store, all of them at once. Every state change that has an audit record
// is written in one transaction with it.

// TenantStore holds tenant rows and their TMK versions.
type TenantStore interface {
	// GetTenant returns ENOTFOUND when the tenant has no KMS config.
	GetTenant(ctx context.Context, tenantID string) (*Tenant, error)
	// CreateTenant writes a new tenant row, its first TMK version and an
	// audit record atomically. ECONFLICT when the tenant exists.
	CreateTenant(ctx context.Context, t *Tenant, v TMKVersion, rec AuditRecord) error
	// UpdateTenant replaces the tenant row if the stored revision equals
	// t.Revision, and writes c in the same transaction. On success
	// t.Revision is incremented. ECONFLICT when the revision moved or a
	// version condition of c failed (a new version exists, a replaced one
	// is missing or revoked), ENOTFOUND when the tenant does not exist.
	UpdateTenant(ctx context.Context, t *Tenant, c Change) error
	// ListTenants lists tenant ids of one poll shard in pages. The cursor ""
	// starts; a returned cursor "" means the shard is done.
	ListTenants(ctx context.Context, shard int, cursor string, limit int) (ids []string, next string, err error)
	// Versions returns all TMK versions of a tenant, oldest first.
	Versions(ctx context.Context, tenantID string) ([]TMKVersion, error)
}

// KeyIndex finds the tenants that use a customer key: push sealing's way
// from a key named in a KMS event to the tenants to verify. Only BYOK
// tenants are indexed (a platform-key tenant is never named), and every
// write that sets a tenant's key (register, migrate, deregister) keeps the
// index in step. On DynamoDB the index is eventually consistent: a key
// registered a moment ago may be missed once, which the poll covers.
type KeyIndex interface {
	// TenantsByKey returns the ids of the BYOK tenants whose key is keyID
	// of provider, sorted; none is an empty result, not an error.
	TenantsByKey(ctx context.Context, provider, keyID string) ([]string, error)
	// KeysInUse returns the distinct key ids of provider that at least
	// one BYOK tenant uses, sorted; none is an empty result. The bus
	// policy reconcile derives the AWS accounts it admits from it
	// (shared/buspolicy).
	KeysInUse(ctx context.Context, provider string) ([]string, error)
}

// AuditLog is the per-tenant hash chain.
type AuditLog interface {
	// AppendAudit appends rec to the tenant's chain and returns the entry.
	AppendAudit(ctx context.Context, tenantID string, rec AuditRecord) (AuditEntry, error)
	// ListAudit returns entries newest first.
	ListAudit(ctx context.Context, tenantID string, q AuditQuery) ([]AuditEntry, error)
	// ScanAudit calls fn for every entry in ascending seq order, and returns
	// the head the store holds (seq and hash of the last entry).
	ScanAudit(ctx context.Context, tenantID string, fn func(AuditEntry) error) (AuditHead, error)
	// ReadAuditHead returns the stored head (the zero head for an empty
	// chain), with its signed checkpoint when it has one.
	ReadAuditHead(ctx context.Context, tenantID string) (AuditHead, error)
}

// AgentStore holds agent credentials.
type AgentStore interface {
	// CreateAgent stores an agent and audits it. ECONFLICT on a duplicate.
	CreateAgent(ctx context.Context, a *Agent, rec AuditRecord) error
	// AgentByKeyHash returns ENOTFOUND for an unknown key.
	AgentByKeyHash(ctx context.Context, keyHash string) (*Agent, error)
	// ListAgents lists a tenant's agents, oldest first.
	ListAgents(ctx context.Context, tenantID string) ([]Agent, error)
	// RevokeAgent marks an agent revoked and audits it. ENOTFOUND for an
	// unknown agent, ECONFLICT when already revoked.
	RevokeAgent(ctx context.Context, tenantID, agentID string, at time.Time, rec AuditRecord) error
}

// StepUpStore holds step-up tokens (as hashes).
type StepUpStore interface {
	// PutStepUp stores a new step-up token. ECONFLICT on a duplicate hash.
	PutStepUp(ctx context.Context, tok StepUpToken) error
	// GetStepUp returns ENOTFOUND for an unknown hash.
	GetStepUp(ctx context.Context, hash string) (*StepUpToken, error)
	// UseStepUp marks the token used. ECONFLICT when it already was used,
	// ENOTFOUND when unknown.
	UseStepUp(ctx context.Context, hash string) error
}

// OutboxStore holds the events that committed changes wrote (Change.Events)
// until a publisher has delivered them. On AWS the table's stream delivers
// them and they age out by TTL; the local server drains them with these
// two methods.
type OutboxStore interface {
	// ListOutbox returns up to limit undelivered events, oldest first (a
	// limit of zero or less: all of them).
	ListOutbox(ctx context.Context, limit int) ([]Event, error)
	// AckOutbox removes delivered events, as ListOutbox returned them.
	// Events no longer there are ignored: a drain that crashed between
	// publishing and acking publishes again and acks twice.
	AckOutbox(ctx context.Context, es []Event) error
}

// WaiverStore holds each tenant's acknowledgment of the legal waiver: the
// latest one only (the audit chain keeps every acknowledgment).
type WaiverStore interface {
	// PutWaiverAck replaces the tenant's acknowledgment with ack and
	// appends rec to its chain in the same transaction. EINVALID for an
	// ack without tenant, version, acknowledger or time.
	PutWaiverAck(ctx context.Context, ack WaiverAck, rec AuditRecord) error
	// GetWaiverAck returns the tenant's acknowledgment; ENOTFOUND when it
	// never acknowledged one.
	GetWaiverAck(ctx context.Context, tenantID string) (*WaiverAck, error)
}

// Pinger reports whether a dependency answers (the health check).
type Pinger interface {
	Ping(ctx context.Context) error
}

// Store is every port at once: what an adapter implements and what the
// wiring hands out in slices. Waivers and webhooks add their own ports here.
type Store interface {
	TenantStore
	KeyIndex
	AuditLog
	AgentStore
	StepUpStore
	OutboxStore
	WaiverStore
	WebhookStore
	Pinger
}

// PollStats keeps the poller's last measurement of each poll shard: what
// the scheduled poller invocation splits the shards into parallel groups
// by (shared/poller). It is not part of Store: only the poller and the
// DynamoDB and in-memory adapters have it.
type PollStats interface {
	// PutShardStats records stats, replacing the earlier measurement of
	// each shard it names and leaving every other shard's as it is
	// (parallel groups record their shards at once). EINVALID for a shard
	// outside 0..PollShards-1.
	PutShardStats(ctx context.Context, stats []ShardStats) error
	// ShardStats returns the last measurement of every shard that has
	// one, in shard order (none: empty, not an error).
	ShardStats(ctx context.Context) ([]ShardStats, error)
}

// ShardStats is one poll shard's measurement in a sweep.
type ShardStats struct {
	Shard   int `json:"shard"`
	Tenants int `json:"tenants"`
	// Work is the sum of the durations of the shard's checks: with c
	// checks in flight, the shard costs a sweep about Work / c.
	Work       time.Duration `json:"work_ns"`
	MeasuredAt time.Time     `json:"measured_at"`
}
