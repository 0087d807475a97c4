package keyseal

import (
	"context"
	"time"
)

// Webhook subscriptions (docs/contract.md §3): a tenant's endpoints that
// receive tenant.kms.* events, signed per Standard Webhooks v1.

// The event catalogue (README, "Events and webhooks"): every type a
// subscription may name. Each state change's event is written to the
// outbox in the change's own transaction.
const (
	EventSealed         = "tenant.kms.sealed"
	EventUnsealed       = "tenant.kms.unsealed"
	EventRevoked        = "tenant.kms.revoked"
	EventRotated        = "tenant.kms.rotated"
	EventRegistered     = "tenant.kms.registered"
	EventMigrated       = "tenant.kms.migrated"
	EventDeregistered   = "tenant.kms.deregistered"
	EventHealthDegraded = "tenant.kms.health_degraded"
	EventRotationDue    = "tenant.kms.rotation_due"
	// EventWebhookTest is sent to one subscription by POST
	// /admin/webhooks/{id}/test; it cannot be subscribed to.
	EventWebhookTest = "webhook.test"
)

// EventTypes are the types a subscription may name.
var EventTypes = []string{EventSealed, EventUnsealed, EventRevoked, EventRotated, EventRegistered,
	EventMigrated, EventDeregistered, EventHealthDegraded, EventRotationDue}

// MaxWebhooksPerTenant bounds a tenant's subscriptions; one more is 400.
const MaxWebhooksPerTenant = 20

// WebhookLimitError is what a create past MaxWebhooksPerTenant answers,
// from the service's check or from the store's (which holds under
// concurrent creates).
func WebhookLimitError() error {
	return Errorf(EINVALID, "a tenant may have at most %d webhooks: delete one first", MaxWebhooksPerTenant)
}

// MaxWebhookURL is the longest subscription URL accepted, in bytes.
const MaxWebhookURL = 2048

// SecretOverlap is how long a rotated-out signing secret keeps signing
// beside the new one.
const SecretOverlap = 24 * time.Hour

// Webhook is one subscription.
type Webhook struct {
	ID          string    `json:"id"`
	TenantID    string    `json:"tenant_id"`
	URL         string    `json:"url"`
	Events      []string  `json:"events"`
	Description string    `json:"description,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	// Secrets sign deliveries, newest first: [0] is current, an older
	// one signs too until its ExpiresAt (SecretOverlap after a rotation).
	// Never serialized to a client.
	Secrets []WebhookSecret `json:"-"`
	// Disabled stops deliveries (a 410 Gone from the receiver); the
	// subscription stays listed with DisabledReason.
	Disabled       bool       `json:"disabled"`
	DisabledAt     *time.Time `json:"disabled_at,omitempty"`
	DisabledReason string     `json:"disabled_reason,omitempty"`
	// Revision guards UpdateWebhook (compare and set), as Tenant.Revision.
	Revision int64 `json:"-"`
}

// WebhookSecret is a signing secret sealed under the platform key (never
// the tenant's TMK: a sealed tenant must still get its tenant.kms.sealed
// webhook).
type WebhookSecret struct {
	Sealed    Wrapped   `json:"-"`
	CreatedAt time.Time `json:"created_at"`
	// ExpiresAt is zero for the current secret.
	ExpiresAt time.Time `json:"expires_at,omitzero"`
}

// Delivery outcomes of one attempt.
const (
	DeliveryDelivered = "delivered" // 2xx
	DeliveryRetrying  = "retrying"  // failed, another attempt at NextRetryAt
	DeliveryFailed    = "failed"    // failed, no attempt left (dead-lettered)
	DeliveryGone      = "gone"      // 410: the subscription was disabled
)

// DeliveryAttempt is one try to deliver one event to one subscription.
type DeliveryAttempt struct {
	TenantID  string `json:"tenant_id"`
	WebhookID string `json:"webhook_id"`
	EventID   string `json:"event_id"` // the webhook-id header, the same on every retry
	EventType string `json:"event_type"`
	// Attempt counts from 1.
	Attempt int       `json:"attempt"`
	At      time.Time `json:"at"`
	Outcome string    `json:"outcome"`
	// ResponseCode is the receiver's HTTP status, 0 when none came.
	ResponseCode int   `json:"response_code,omitempty"`
	LatencyMS    int64 `json:"latency_ms"`
	// Error says why a failed attempt failed (never a secret).
	Error       string     `json:"error,omitempty"`
	NextRetryAt *time.Time `json:"next_retry_at,omitempty"`
}

// MaxDeliveriesKept is how many recent attempts a subscription keeps for
// GET /admin/webhooks/{id}/deliveries.
const MaxDeliveriesKept = 100

// WebhookStore holds subscriptions and their recent delivery attempts.
type WebhookStore interface {
	// CreateWebhook stores w and audits it in one transaction. EINVALID
	// when the tenant already has MaxWebhooksPerTenant, ECONFLICT on a
	// duplicate id.
	CreateWebhook(ctx context.Context, w *Webhook, rec AuditRecord) error
	// GetWebhook returns ENOTFOUND for an unknown id (or another tenant's).
	GetWebhook(ctx context.Context, tenantID, id string) (*Webhook, error)
	// ListWebhooks lists a tenant's subscriptions, oldest first.
	ListWebhooks(ctx context.Context, tenantID string) ([]Webhook, error)
	// UpdateWebhook replaces w if the stored revision equals w.Revision
	// (then increments it), with rec audited in the same transaction when
	// not nil. ECONFLICT when the revision moved, ENOTFOUND when gone.
	UpdateWebhook(ctx context.Context, w *Webhook, rec *AuditRecord) error
	// DeleteWebhook removes a subscription and its attempts, audited.
	// ENOTFOUND for an unknown id.
	DeleteWebhook(ctx context.Context, tenantID, id string, rec AuditRecord) error
	// RecordDelivery appends an attempt, keeping the newest
	// MaxDeliveriesKept per subscription.
	RecordDelivery(ctx context.Context, a DeliveryAttempt) error
	// ListDeliveries returns a subscription's attempts, newest first.
	ListDeliveries(ctx context.Context, tenantID, webhookID string, limit int) ([]DeliveryAttempt, error)
	// PutEvent writes e to the outbox on its own (a webhook.test event,
	// which changes no state).
	PutEvent(ctx context.Context, e Event) error
}
