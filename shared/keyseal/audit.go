package keyseal

import (
	"encoding/json"
	"time"
)

// Audit severities.
const (
	SeverityInfo     = "info"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// Audit actions.
const (
	ActionTenantProvision = "tenant.provision"
	ActionRegister        = "byok.kms.register"
	ActionDeregister      = "byok.kms.deregister"
	ActionMigrate         = "byok.kms.migrate"
	ActionWaiverAck       = "byok.waiver.acknowledge"
	ActionSeal            = "byok.kms.seal"
	ActionUnseal          = "byok.kms.unseal"
	ActionRevoke          = "byok.tmk.revoke"
	ActionRotate          = "byok.tmk.rotate"
	ActionRewrap          = "byok.tmk.rewrap"
	ActionAgentCreate     = "agent.create"
	ActionAgentRevoke     = "agent.revoke"
	ActionStepUp          = "auth.step_up"
	ActionWebhookCreate   = "webhook.create"
	ActionWebhookDelete   = "webhook.delete"
	ActionWebhookRotate   = "webhook.rotate_secret"
	ActionWebhookDisable  = "webhook.disable"
)

// EventCheckpoint is the event type that carries a tenant's signed audit
// checkpoint out of keyseal (docs/contract.md §7).
const EventCheckpoint = "audit.checkpoint"

// AuditRecord is what a caller asks to append; the chain adds seq and the
// hashes. At is the entry's time, from the service's clock (stores refuse
// a zero one), so tests and the entries agree on when things happened.
type AuditRecord struct {
	At       time.Time         `json:"-"`
	Action   string            `json:"action"`
	Severity string            `json:"severity"`
	Actor    string            `json:"actor"`
	Details  map[string]string `json:"details,omitempty"`
}

// AuditEntry is one link of a tenant's hash chain.
type AuditEntry struct {
	TenantID string            `json:"tenant_id"`
	Seq      int64             `json:"seq"`
	TS       time.Time         `json:"ts"`
	Action   string            `json:"action"`
	Severity string            `json:"severity"`
	Actor    string            `json:"actor"`
	Details  map[string]string `json:"details,omitempty"`
	PrevHash string            `json:"prev_hash"`
	Hash     string            `json:"hash"`
	// Corrupt marks a stored entry the store could not decode (not JSON, a
	// field of the wrong type): only Seq is known. Stores hand such an
	// entry to their callers instead of failing the whole read, so a
	// listing still shows the rest and verify names the bad seq.
	Corrupt bool `json:"-"`
}

// MarshalJSON renders a corrupt entry as {"seq": n, "corrupt": true} and
// every other entry with its fields.
func (e AuditEntry) MarshalJSON() ([]byte, error) {
	if e.Corrupt {
		return json.Marshal(struct {
			Seq     int64 `json:"seq"`
			Corrupt bool  `json:"corrupt"`
		}{e.Seq, true})
	}
	type plain AuditEntry
	return json.Marshal(plain(e))
}

// UnmarshalJSON is MarshalJSON's inverse, so a client reading a listing
// back (shared/client) keeps the corrupt mark.
func (e *AuditEntry) UnmarshalJSON(b []byte) error {
	type plain AuditEntry
	var v struct {
		plain
		Corrupt bool `json:"corrupt"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*e = AuditEntry(v.plain)
	e.Corrupt = v.Corrupt
	return nil
}

// AuditHead is the chain's head: the last seq and hash (zero for an empty
// chain), and, when the store signs checkpoints, the signed checkpoint of
// that seq and hash written in the same transaction.
type AuditHead struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
	// Checkpoint is the signed note (C2SP tlog-checkpoint) of Seq and Hash;
	// "" when the store has no signer or signing failed for this append.
	Checkpoint string `json:"checkpoint,omitempty"`
	// PublishedAt is when a checkpoint of this chain was last published as
	// an audit.checkpoint event (the entry time of that append).
	PublishedAt time.Time `json:"published_at,omitzero"`
}
