package keyseal

import "time"

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
	ActionSeal            = "byok.kms.seal"
	ActionUnseal          = "byok.kms.unseal"
	ActionRevoke          = "byok.tmk.revoke"
	ActionAgentCreate     = "agent.create"
	ActionAgentRevoke     = "agent.revoke"
	ActionStepUp          = "auth.step_up"
)

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
}

// AuditHead is the chain's head: the last seq and hash (zero for an empty
// chain).
type AuditHead struct {
	Seq  int64  `json:"seq"`
	Hash string `json:"hash"`
}
