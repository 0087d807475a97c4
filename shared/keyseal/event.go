package keyseal

import (
	"encoding/json"
	"fmt"
	"time"
)

// Event is one event of the catalogue (README, "Events"). It is never
// published by the request that caused it: the service puts it in the
// Change of the state transition, the store writes it to the outbox in the
// same transaction, and a publisher delivers what was committed
// (shared/outbox). Delivery is at least once, so ID, unique per event and
// kept across redeliveries, is what consumers deduplicate on.
//
// Every event has one JSON shape, the EventBridge detail and the webhook
// body alike:
//
//	{"type": "tenant.kms.sealed", "id": "…", "tenant_id": "acme",
//	 "time": "2026-11-23T12:00:00.123456789Z", "data": {…}}
//
// Data is the type's own object (SealedData, UnsealedData, …), kept as
// the JSON it was encoded to, so an event reads back byte for byte from
// every store's outbox and from the DynamoDB stream.
type Event struct {
	Type     string `json:"type"`
	ID       string `json:"id"`
	TenantID string `json:"tenant_id"`
	// Time is when the transition was decided, RFC 3339 with nanoseconds.
	Time string          `json:"time"`
	Data json.RawMessage `json:"data"`
}

// NewEvent returns an event of type typ with a fresh id, stamped at, its
// data the JSON of data (an object; nil is {}).
func NewEvent(typ, tenantID string, at time.Time, data any) (Event, error) {
	id, err := NewEventID()
	if err != nil {
		return Event{}, fmt.Errorf("event id: %w", err)
	}
	raw := json.RawMessage(`{}`)
	if data != nil {
		if raw, err = json.Marshal(data); err != nil {
			return Event{}, fmt.Errorf("encode %s data: %w", typ, err)
		}
	}
	return Event{Type: typ, ID: id, TenantID: tenantID, Time: at.UTC().Format(time.RFC3339Nano), Data: raw}, nil
}

// MarshalJSON implements json.Marshaler: an event without data still
// carries "data": {}.
func (e Event) MarshalJSON() ([]byte, error) {
	type plain Event
	if len(e.Data) == 0 {
		e.Data = json.RawMessage(`{}`)
	}
	return json.Marshal(plain(e))
}

// DecodeData decodes the event's data into v (a *SealedData, …).
func (e Event) DecodeData(v any) error {
	data := e.Data
	if len(data) == 0 {
		data = json.RawMessage(`{}`)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("decode %s %s data: %w", e.Type, e.ID, err)
	}
	return nil
}

// Unsealed triggers: what lifted the seal.
const (
	TriggerPoller = "poller" // the verify poller saw the key usable again
	TriggerAdmin  = "admin"  // an admin's unseal or restore
)

// SealedData is tenant.kms.sealed's data.
type SealedData struct {
	Reason string `json:"reason"`
	// SealedSince is when the tenant was sealed: this event's transition.
	SealedSince time.Time `json:"sealed_since"`
	// LastError is the provider's error code that sealed it.
	LastError string `json:"last_error,omitempty"`
}

// UnsealedData is tenant.kms.unsealed's data.
type UnsealedData struct {
	Trigger string `json:"trigger"` // TriggerPoller or TriggerAdmin
}

// RevokedData is tenant.kms.revoked's data.
type RevokedData struct {
	Version int `json:"version"`
	// WasActive says the revoked version was the active one (the tenant
	// is sealed by it, and a tenant.kms.sealed follows in the same
	// transaction).
	WasActive bool `json:"was_active"`
}

// RotatedData is tenant.kms.rotated's data.
type RotatedData struct {
	RotationType string `json:"rotation_type"` // "tmk" or "cmk"
	Version      int    `json:"version"`       // the new active TMK version
	Reason       string `json:"reason,omitempty"`
}

// RegisteredData is tenant.kms.registered's data.
type RegisteredData struct {
	Provider string `json:"provider"`
	KeyID    string `json:"key_id"`
}

// MigratedData is tenant.kms.migrated's data.
type MigratedData struct {
	OldProvider string `json:"old_provider"`
	OldKeyID    string `json:"old_key_id"`
	NewProvider string `json:"new_provider"`
	NewKeyID    string `json:"new_key_id"`
}

// DeregisteredData is tenant.kms.deregistered's data.
type DeregisteredData struct {
	Provider string `json:"provider"`
	KeyID    string `json:"key_id"`
}

// HealthDegradedData is tenant.kms.health_degraded's data.
type HealthDegradedData struct {
	LatencyClass string `json:"latency_class"` // "high" or "critical"
	LatencyMS    int64  `json:"latency_ms"`    // the verify that completed the episode
	// Since is the first verify of the episode's unbroken run above normal.
	Since time.Time `json:"since"`
}

// RotationDueData is tenant.kms.rotation_due's data.
type RotationDueData struct {
	Version   int       `json:"version"` // the active TMK version
	CreatedAt time.Time `json:"created_at"`
	AgeDays   int       `json:"age_days"`
}

// WebhookTestData is webhook.test's data: the one subscription it is for.
type WebhookTestData struct {
	WebhookID string `json:"webhook_id"`
}

// CheckpointData is audit.checkpoint's data: a signed checkpoint of the
// tenant's audit chain.
type CheckpointData struct {
	Checkpoint string `json:"checkpoint"`
	Size       int64  `json:"size"`
	RootHash   string `json:"root_hash"`
}
