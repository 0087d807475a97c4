package dynamostore

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// Attribute and index names shared with the CDK stack (see the package
// documentation).
const (
	attrPK        = "pk"
	attrSK        = "sk"
	attrPollShard = "poll_shard"
	attrTenantID  = "tenant_id"
	attrTTL       = "ttl"

	// pollShardIndex is the sparse GSI over tenant rows.
	pollShardIndex = "poll-shard"
	// attrKeyRef is "provider#key id" on the rows of BYOK tenants only,
	// so keyRefIndex, the GSI over it, holds exactly the customer keys
	// (push sealing: shared/keyevents).
	attrKeyRef  = "key_ref"
	keyRefIndex = "key-ref"
)

// Sort keys and key prefixes.
const (
	tenantPrefix   = "tenant#"
	skConfig       = "config"
	skVersionPre   = "tmk#"
	skAuditHead    = "audit#head"
	skAuditPre     = "audit#"
	skAgentPre     = "agent#"
	agentKeyPrefix = "agentkey#"
	skAgentKey     = "agentkey"
	stepUpPrefix   = "stepup#"
	skStepUp       = "stepup"
	skWaiver       = "waiver"
)

// stepUpTTLMargin is how long after expiry a step-up token item stays before
// DynamoDB may reap it. TTL deletion runs late anyway; the margin only makes
// sure a token is never reaped while the service could still be asked about
// it, so "expired" is answered by the service, not by a missing item.
const stepUpTTLMargin = time.Hour

func tenantPK(tenantID string) string { return tenantPrefix + tenantID }
func versionSK(v int) string          { return fmt.Sprintf("%s%08d", skVersionPre, v) }
func auditSK(seq int64) string        { return fmt.Sprintf("%s%020d", skAuditPre, seq) }
func agentSK(agentID string) string   { return skAgentPre + agentID }
func agentKeyPK(hash string) string   { return agentKeyPrefix + hash }
func stepUpPK(hash string) string     { return stepUpPrefix + hash }
func shardKey(shard int) string       { return fmt.Sprintf("%02d", shard) }

// key builds a primary key.
func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		attrPK: &types.AttributeValueMemberS{Value: pk},
		attrSK: &types.AttributeValueMemberS{Value: sk},
	}
}

// formatTime renders t as stored: UTC RFC 3339 with nanoseconds, which
// round-trips every time keyseal stores exactly. The zero time is stored
// too, so a required field never goes missing.
func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// formatTimePtr renders an optional time; "" (an absent attribute) for nil.
func formatTimePtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return formatTime(*t)
}

func parseTime(field, s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("decode %s: %w", field, err)
	}
	return t.UTC(), nil
}

func parseTimePtr(field, s string) (*time.Time, error) {
	if s == "" {
		return nil, nil
	}
	t, err := parseTime(field, s)
	if err != nil {
		return nil, err
	}
	return &t, nil
}

// accessAttr returns a KeyRef's access fields as stored: nil when there
// are none, so the attribute is absent rather than an empty map.
func accessAttr(access map[string]string) map[string]string {
	if len(access) == 0 {
		return nil
	}
	return access
}

// tenantItem is the stored tenant row.
type tenantItem struct {
	PK          string `dynamodbav:"pk"`
	SK          string `dynamodbav:"sk"`
	PollShard   string `dynamodbav:"poll_shard"`
	TenantID    string `dynamodbav:"tenant_id"`
	KeyProvider string `dynamodbav:"key_provider"`
	KeyID       string `dynamodbav:"key_id"`
	// KeyAccess is KeyRef.Access as one map, so a provider's access fields
	// need no column of their own.
	KeyAccess map[string]string `dynamodbav:"key_access,omitempty"`
	BYOK      bool              `dynamodbav:"byok"`
	// KeyRef is set only when BYOK: the sparse key-ref index.
	KeyRef          string `dynamodbav:"key_ref,omitempty"`
	Status          string `dynamodbav:"status"`
	SealedSince     string `dynamodbav:"sealed_since,omitempty"`
	SealReason      string `dynamodbav:"seal_reason,omitempty"`
	LastVerifyError string `dynamodbav:"last_verify_error,omitempty"`
	LastVerifiedAt  string `dynamodbav:"last_verified_at,omitempty"`
	LastLatencyMS   int64  `dynamodbav:"last_latency_ms"`
	LatencyClass    string `dynamodbav:"latency_class,omitempty"`
	ActiveVersion   int    `dynamodbav:"active_version"`
	CreatedAt       string `dynamodbav:"created_at"`
	UpdatedAt       string `dynamodbav:"updated_at"`
	Revision        int64  `dynamodbav:"revision"`

	// The poller's announcements (keyseal.Tenant).
	DegradedSince       string `dynamodbav:"degraded_since,omitempty"`
	DegradedNotified    bool   `dynamodbav:"degraded_notified,omitempty"`
	RotationDueNotified int    `dynamodbav:"rotation_due_notified_version,omitempty"`
}

// keyRefOf is the key_ref attribute of a tenant row: "" (absent) unless
// the tenant uses a customer key.
func keyRefOf(t *keyseal.Tenant) string {
	if !t.BYOK {
		return ""
	}
	return keyRef(t.Key.Provider, t.Key.KeyID)
}

func keyRef(provider, keyID string) string { return provider + "#" + keyID }

func encodeTenant(t *keyseal.Tenant, revision int64) (map[string]types.AttributeValue, error) {
	return attributevalue.MarshalMap(tenantItem{
		PK:              tenantPK(t.ID),
		SK:              skConfig,
		PollShard:       shardKey(keyseal.ShardOf(t.ID)),
		TenantID:        t.ID,
		KeyProvider:     t.Key.Provider,
		KeyID:           t.Key.KeyID,
		KeyAccess:       accessAttr(t.Key.Access),
		BYOK:            t.BYOK,
		KeyRef:          keyRefOf(t),
		Status:          t.Status,
		SealedSince:     formatTimePtr(t.SealedSince),
		SealReason:      t.SealReason,
		LastVerifyError: t.LastVerifyError,
		LastVerifiedAt:  formatTimePtr(t.LastVerifiedAt),
		LastLatencyMS:   t.LastLatencyMS,
		LatencyClass:    t.LatencyClass,
		ActiveVersion:   t.ActiveVersion,
		CreatedAt:       formatTime(t.CreatedAt),
		UpdatedAt:       formatTime(t.UpdatedAt),
		Revision:        revision,

		DegradedSince:       formatTimePtr(t.DegradedSince),
		DegradedNotified:    t.DegradedNotified,
		RotationDueNotified: t.RotationDueNotified,
	})
}

func decodeTenant(av map[string]types.AttributeValue) (*keyseal.Tenant, error) {
	var it tenantItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return nil, fmt.Errorf("decode tenant: %w", err)
	}
	t := &keyseal.Tenant{
		ID:              it.TenantID,
		Key:             keyseal.KeyRef{Provider: it.KeyProvider, KeyID: it.KeyID, Access: it.KeyAccess},
		BYOK:            it.BYOK,
		Status:          it.Status,
		SealReason:      it.SealReason,
		LastVerifyError: it.LastVerifyError,
		LastLatencyMS:   it.LastLatencyMS,
		LatencyClass:    it.LatencyClass,
		ActiveVersion:   it.ActiveVersion,
		Revision:        it.Revision,

		DegradedNotified:    it.DegradedNotified,
		RotationDueNotified: it.RotationDueNotified,
	}
	var err error
	if t.DegradedSince, err = parseTimePtr("degraded_since", it.DegradedSince); err != nil {
		return nil, err
	}
	if t.SealedSince, err = parseTimePtr("sealed_since", it.SealedSince); err != nil {
		return nil, err
	}
	if t.LastVerifiedAt, err = parseTimePtr("last_verified_at", it.LastVerifiedAt); err != nil {
		return nil, err
	}
	if t.CreatedAt, err = parseTime("created_at", it.CreatedAt); err != nil {
		return nil, err
	}
	if t.UpdatedAt, err = parseTime("updated_at", it.UpdatedAt); err != nil {
		return nil, err
	}
	return t, nil
}

// versionItem is a stored TMK version.
type versionItem struct {
	PK               string            `dynamodbav:"pk"`
	SK               string            `dynamodbav:"sk"`
	TenantID         string            `dynamodbav:"tenant_id"`
	Version          int               `dynamodbav:"version"`
	Wrapped          []byte            `dynamodbav:"wrapped,omitempty"`
	KeyVersion       string            `dynamodbav:"key_version,omitempty"`
	KeyProvider      string            `dynamodbav:"key_provider"`
	KeyID            string            `dynamodbav:"key_id"`
	KeyAccess        map[string]string `dynamodbav:"key_access,omitempty"`
	SigningPublicKey []byte            `dynamodbav:"signing_public_key,omitempty"`
	CreatedAt        string            `dynamodbav:"created_at"`
	RevokedAt        string            `dynamodbav:"revoked_at,omitempty"`
}

func encodeVersion(v keyseal.TMKVersion) (map[string]types.AttributeValue, error) {
	return attributevalue.MarshalMap(versionItem{
		PK:               tenantPK(v.TenantID),
		SK:               versionSK(v.Version),
		TenantID:         v.TenantID,
		Version:          v.Version,
		Wrapped:          v.Wrapped,
		KeyVersion:       v.KeyVersion,
		KeyProvider:      v.Key.Provider,
		KeyID:            v.Key.KeyID,
		KeyAccess:        accessAttr(v.Key.Access),
		SigningPublicKey: v.SigningPublicKey,
		CreatedAt:        formatTime(v.CreatedAt),
		RevokedAt:        formatTimePtr(v.RevokedAt),
	})
}

func decodeVersion(av map[string]types.AttributeValue) (keyseal.TMKVersion, error) {
	var it versionItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return keyseal.TMKVersion{}, fmt.Errorf("decode TMK version: %w", err)
	}
	v := keyseal.TMKVersion{
		TenantID:         it.TenantID,
		Version:          it.Version,
		Wrapped:          it.Wrapped,
		KeyVersion:       it.KeyVersion,
		Key:              keyseal.KeyRef{Provider: it.KeyProvider, KeyID: it.KeyID, Access: it.KeyAccess},
		SigningPublicKey: it.SigningPublicKey,
	}
	var err error
	if v.CreatedAt, err = parseTime("created_at", it.CreatedAt); err != nil {
		return keyseal.TMKVersion{}, err
	}
	if v.RevokedAt, err = parseTimePtr("revoked_at", it.RevokedAt); err != nil {
		return keyseal.TMKVersion{}, err
	}
	return v, nil
}

// headItem is the stored head of a tenant's audit chain, with the signed
// checkpoint of that head and when a checkpoint was last published.
type headItem struct {
	PK          string `dynamodbav:"pk"`
	SK          string `dynamodbav:"sk"`
	Seq         int64  `dynamodbav:"seq"`
	Hash        string `dynamodbav:"hash"`
	Checkpoint  string `dynamodbav:"checkpoint,omitempty"`
	PublishedAt string `dynamodbav:"checkpoint_published_at,omitempty"`
}

func encodeHead(tenantID string, h keyseal.AuditHead) (map[string]types.AttributeValue, error) {
	it := headItem{PK: tenantPK(tenantID), SK: skAuditHead, Seq: h.Seq, Hash: h.Hash, Checkpoint: h.Checkpoint}
	if !h.PublishedAt.IsZero() {
		it.PublishedAt = formatTime(h.PublishedAt)
	}
	return attributevalue.MarshalMap(it)
}

func decodeHead(av map[string]types.AttributeValue) (keyseal.AuditHead, error) {
	var it headItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return keyseal.AuditHead{}, fmt.Errorf("decode audit head: %w", err)
	}
	h := keyseal.AuditHead{Seq: it.Seq, Hash: it.Hash, Checkpoint: it.Checkpoint}
	if it.PublishedAt != "" {
		t, err := parseTime("checkpoint_published_at", it.PublishedAt)
		if err != nil {
			return keyseal.AuditHead{}, err
		}
		h.PublishedAt = t
	}
	return h, nil
}

// entryItem is one stored audit entry.
type entryItem struct {
	PK       string            `dynamodbav:"pk"`
	SK       string            `dynamodbav:"sk"`
	TenantID string            `dynamodbav:"tenant_id"`
	Seq      int64             `dynamodbav:"seq"`
	TS       string            `dynamodbav:"ts"`
	Action   string            `dynamodbav:"action"`
	Severity string            `dynamodbav:"severity"`
	Actor    string            `dynamodbav:"actor"`
	Details  map[string]string `dynamodbav:"details,omitempty"`
	PrevHash string            `dynamodbav:"prev_hash"`
	Hash     string            `dynamodbav:"hash"`
}

func encodeEntry(e keyseal.AuditEntry) (map[string]types.AttributeValue, error) {
	return attributevalue.MarshalMap(entryItem{
		PK:       tenantPK(e.TenantID),
		SK:       auditSK(e.Seq),
		TenantID: e.TenantID,
		Seq:      e.Seq,
		TS:       formatTime(e.TS),
		Action:   e.Action,
		Severity: e.Severity,
		Actor:    e.Actor,
		Details:  e.Details,
		PrevHash: e.PrevHash,
		Hash:     e.Hash,
	})
}

// decodeStoredEntry decodes an entry item; one that does not decode (a
// field of the wrong type, a bad time) comes back marked corrupt with the
// seq of its sort key, so a listing or a verify reports it instead of
// failing (docs/contract.md §7).
func decodeStoredEntry(av map[string]types.AttributeValue) keyseal.AuditEntry {
	e, err := decodeEntry(av)
	if err != nil {
		var seq int64
		if sk, ok := av[attrSK].(*types.AttributeValueMemberS); ok {
			seq, _ = strconv.ParseInt(strings.TrimPrefix(sk.Value, skAuditPre), 10, 64)
		}
		return keyseal.AuditEntry{Seq: seq, Corrupt: true}
	}
	return e
}

func decodeEntry(av map[string]types.AttributeValue) (keyseal.AuditEntry, error) {
	var it entryItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return keyseal.AuditEntry{}, fmt.Errorf("decode audit entry: %w", err)
	}
	ts, err := parseTime("ts", it.TS)
	if err != nil {
		return keyseal.AuditEntry{}, err
	}
	return keyseal.AuditEntry{
		TenantID: it.TenantID,
		Seq:      it.Seq,
		TS:       ts,
		Action:   it.Action,
		Severity: it.Severity,
		Actor:    it.Actor,
		Details:  it.Details,
		PrevHash: it.PrevHash,
		Hash:     it.Hash,
	}, nil
}

// agentItem is a stored agent. Unlike keyseal.Agent's JSON form it keeps
// the key hash, which the key index and revocation need.
type agentItem struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	AgentID   string `dynamodbav:"agent_id"`
	TenantID  string `dynamodbav:"tenant_id"`
	Name      string `dynamodbav:"name"`
	KeyHash   string `dynamodbav:"key_hash"`
	CreatedAt string `dynamodbav:"created_at"`
	CreatedBy string `dynamodbav:"created_by"`
	RevokedAt string `dynamodbav:"revoked_at,omitempty"`
}

func encodeAgent(a *keyseal.Agent) (map[string]types.AttributeValue, error) {
	return attributevalue.MarshalMap(agentItem{
		PK:        tenantPK(a.TenantID),
		SK:        agentSK(a.ID),
		AgentID:   a.ID,
		TenantID:  a.TenantID,
		Name:      a.Name,
		KeyHash:   a.KeyHash,
		CreatedAt: formatTime(a.CreatedAt),
		CreatedBy: a.CreatedBy,
		RevokedAt: formatTimePtr(a.RevokedAt),
	})
}

func decodeAgent(av map[string]types.AttributeValue) (*keyseal.Agent, error) {
	var it agentItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return nil, fmt.Errorf("decode agent: %w", err)
	}
	a := &keyseal.Agent{
		ID:        it.AgentID,
		TenantID:  it.TenantID,
		Name:      it.Name,
		KeyHash:   it.KeyHash,
		CreatedBy: it.CreatedBy,
	}
	var err error
	if a.CreatedAt, err = parseTime("created_at", it.CreatedAt); err != nil {
		return nil, err
	}
	if a.RevokedAt, err = parseTimePtr("revoked_at", it.RevokedAt); err != nil {
		return nil, err
	}
	return a, nil
}

// agentKeyItem maps an agent key hash to its agent.
type agentKeyItem struct {
	PK       string `dynamodbav:"pk"`
	SK       string `dynamodbav:"sk"`
	TenantID string `dynamodbav:"tenant_id"`
	AgentID  string `dynamodbav:"agent_id"`
}

// stepUpItem is a stored step-up token.
type stepUpItem struct {
	PK        string `dynamodbav:"pk"`
	SK        string `dynamodbav:"sk"`
	Hash      string `dynamodbav:"hash"`
	Subject   string `dynamodbav:"subject"`
	TenantID  string `dynamodbav:"tenant_id"`
	ExpiresAt string `dynamodbav:"expires_at"`
	Used      bool   `dynamodbav:"used"`
	// UseID is the random id of the UseStepUp call that spent the token,
	// so that call's own retry can recognise its win.
	UseID string `dynamodbav:"use_id,omitempty"`
	TTL   int64  `dynamodbav:"ttl"`
}

func encodeStepUp(tok keyseal.StepUpToken) (map[string]types.AttributeValue, error) {
	return attributevalue.MarshalMap(stepUpItem{
		PK:        stepUpPK(tok.Hash),
		SK:        skStepUp,
		Hash:      tok.Hash,
		Subject:   tok.Subject,
		TenantID:  tok.TenantID,
		ExpiresAt: formatTime(tok.ExpiresAt),
		Used:      tok.Used,
		TTL:       tok.ExpiresAt.Add(stepUpTTLMargin).Unix(),
	})
}

func decodeStepUp(av map[string]types.AttributeValue) (*keyseal.StepUpToken, error) {
	var it stepUpItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return nil, fmt.Errorf("decode step-up token: %w", err)
	}
	exp, err := parseTime("expires_at", it.ExpiresAt)
	if err != nil {
		return nil, err
	}
	return &keyseal.StepUpToken{
		Hash:      it.Hash,
		Subject:   it.Subject,
		TenantID:  it.TenantID,
		ExpiresAt: exp,
		Used:      it.Used,
	}, nil
}
