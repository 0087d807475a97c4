// Package memstore is an in-memory keyseal.Store: plain maps behind one
// mutex, nothing kept beyond the process. It is the store of unit tests
// (services, handlers, the storetest suite's own checks) and passes
// storetest.Run like the real adapters, so a test written against it sees
// the same contract: conditional version writes, all-or-nothing changes,
// entries stamped with the record's time. It copies what it is given and
// what it returns, so neither side can change the other's data through a
// shared map or slice.
package memstore

import (
	"bytes"
	"cmp"
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/internal/storecheck"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// Store is an in-memory keyseal.Store, safe for concurrent use. The zero
// value is not ready; use New.
type Store struct {
	mu         sync.Mutex
	tenants    map[string]*keyseal.Tenant
	versions   map[string]map[int]keyseal.TMKVersion // tenant -> version number
	chains     map[string][]keyseal.AuditEntry       // ascending seq
	heads      map[string]keyseal.AuditHead
	agents     map[string]map[string]keyseal.Agent // tenant -> agent id
	keys       map[string]keyseal.Agent            // key hash -> a copy of the agent
	stepUps    map[string]keyseal.StepUpToken
	outbox     map[string]outboxItem // event id -> event
	outSeq     int64
	waivers    map[string]keyseal.WaiverAck // tenant -> latest acknowledgment
	webhooks   map[webhookKey]keyseal.Webhook
	deliveries map[webhookKey][]keyseal.DeliveryAttempt // oldest first
	shardStats map[int]keyseal.ShardStats               // poll shard -> last measurement
	// anchor signs each new head (nil: unsigned heads).
	anchor *audit.Anchor
}

var _ keyseal.Store = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithAnchor makes the store sign a checkpoint with every append and
// publish it as the anchor decides.
func WithAnchor(a *audit.Anchor) Option { return func(s *Store) { s.anchor = a } }

// New returns an empty store.
func New(opts ...Option) *Store {
	s := &Store{
		tenants:    map[string]*keyseal.Tenant{},
		versions:   map[string]map[int]keyseal.TMKVersion{},
		chains:     map[string][]keyseal.AuditEntry{},
		heads:      map[string]keyseal.AuditHead{},
		agents:     map[string]map[string]keyseal.Agent{},
		keys:       map[string]keyseal.Agent{},
		stepUps:    map[string]keyseal.StepUpToken{},
		outbox:     map[string]outboxItem{},
		waivers:    map[string]keyseal.WaiverAck{},
		webhooks:   map[webhookKey]keyseal.Webhook{},
		deliveries: map[webhookKey][]keyseal.DeliveryAttempt{},
	}
	for _, o := range opts {
		o(s)
	}
	return s
}

// lock takes the store's mutex unless ctx is already done, so a canceled
// call fails and writes nothing, as it would against a real store.
func (s *Store) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	return nil
}

// Ping implements keyseal.Store; it fails only for a done context.
func (s *Store) Ping(ctx context.Context) error { return ctx.Err() }

// GetTenant implements keyseal.Store.
func (s *Store) GetTenant(ctx context.Context, tenantID string) (*keyseal.Tenant, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	t, ok := s.tenants[tenantID]
	if !ok {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "tenant %s has no KMS configuration", tenantID)
	}
	return cloneTenant(t), nil
}

// CreateTenant implements keyseal.Store.
func (s *Store) CreateTenant(ctx context.Context, t *keyseal.Tenant, v keyseal.TMKVersion, rec keyseal.AuditRecord) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := storecheck.NewTenant(t, v, rec); err != nil {
		return err
	}
	if _, ok := s.tenants[t.ID]; ok {
		return keyseal.Errorf(keyseal.ECONFLICT, "tenant %s already exists", t.ID)
	}
	if err := s.checkNew(t.ID, []keyseal.TMKVersion{v}); err != nil {
		return err
	}
	row := cloneTenant(t)
	row.Revision = 1
	s.tenants[t.ID] = row
	s.putVersions(t.ID, []keyseal.TMKVersion{v})
	s.appendLocked(ctx, t.ID, rec)
	t.Revision = 1
	return nil
}

// UpdateTenant implements keyseal.Store. Every condition (the revision,
// each version's state) is checked before anything is written, so a
// refused change leaves no trace.
func (s *Store) UpdateTenant(ctx context.Context, t *keyseal.Tenant, c keyseal.Change) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := storecheck.TenantID(t.ID); err != nil {
		return err
	}
	if err := storecheck.Change(t.ID, c); err != nil {
		return err
	}
	cur, ok := s.tenants[t.ID]
	if !ok {
		return keyseal.Errorf(keyseal.ENOTFOUND, "tenant %s has no KMS configuration", t.ID)
	}
	if cur.Revision != t.Revision {
		return keyseal.Errorf(keyseal.ECONFLICT, "tenant %s changed concurrently (revision %d, expected %d)", t.ID, cur.Revision, t.Revision)
	}
	if err := s.checkNew(t.ID, c.NewVersions); err != nil {
		return err
	}
	if err := s.checkOutbox(c.Events); err != nil {
		return err
	}
	// A replaced version must still be live: a re-wrap that read it
	// before a concurrent revoke must not write the erased blob back.
	for _, v := range c.Replace {
		if stored, ok := s.versions[t.ID][v.Version]; !ok || stored.RevokedAt != nil {
			return keyseal.Errorf(keyseal.ECONFLICT, "TMK version %d is missing or revoked", v.Version)
		}
	}
	row := cloneTenant(t)
	row.Revision = t.Revision + 1
	s.tenants[t.ID] = row
	s.putVersions(t.ID, c.NewVersions)
	s.putVersions(t.ID, c.Replace)
	if c.Audit != nil {
		s.appendLocked(ctx, t.ID, *c.Audit)
	}
	s.putOutbox(c.Events)
	t.Revision = row.Revision
	return nil
}

// checkNew returns ECONFLICT if one of vs exists already.
func (s *Store) checkNew(tenantID string, vs []keyseal.TMKVersion) error {
	for _, v := range vs {
		if _, ok := s.versions[tenantID][v.Version]; ok {
			return keyseal.Errorf(keyseal.ECONFLICT, "TMK version %d already exists", v.Version)
		}
	}
	return nil
}

func (s *Store) putVersions(tenantID string, vs []keyseal.TMKVersion) {
	if len(vs) == 0 {
		return
	}
	if s.versions[tenantID] == nil {
		s.versions[tenantID] = map[int]keyseal.TMKVersion{}
	}
	for _, v := range vs {
		s.versions[tenantID][v.Version] = cloneVersion(v)
	}
}

// ListTenants implements keyseal.Store. The cursor is the last id of the
// previous page; a limit of zero or less lists the whole shard.
func (s *Store) ListTenants(ctx context.Context, shard int, cursor string, limit int) ([]string, string, error) {
	if err := s.lock(ctx); err != nil {
		return nil, "", err
	}
	defer s.mu.Unlock()
	if shard < 0 || shard >= keyseal.PollShards {
		return nil, "", keyseal.Errorf(keyseal.EINVALID, "shard %d out of range 0..%d", shard, keyseal.PollShards-1)
	}
	var ids []string
	for _, id := range slices.Sorted(maps.Keys(s.tenants)) {
		if keyseal.ShardOf(id) == shard && id > cursor {
			ids = append(ids, id)
		}
	}
	if limit > 0 && len(ids) > limit {
		return ids[:limit], ids[limit-1], nil
	}
	return ids, "", nil
}

// TenantsByKey implements keyseal.KeyIndex with a scan of the tenant rows:
// the in-memory store of tests holds few, and a scan cannot drift from
// them.
func (s *Store) TenantsByKey(ctx context.Context, provider, keyID string) ([]string, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	ids := []string{}
	for _, id := range slices.Sorted(maps.Keys(s.tenants)) {
		if t := s.tenants[id]; t.BYOK && t.Key.Provider == provider && t.Key.KeyID == keyID {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

// KeysInUse implements keyseal.KeyIndex with a scan of the tenant rows.
func (s *Store) KeysInUse(ctx context.Context, provider string) ([]string, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	seen := map[string]bool{}
	for _, t := range s.tenants {
		if t.BYOK && t.Key.Provider == provider {
			seen[t.Key.KeyID] = true
		}
	}
	return append([]string{}, slices.Sorted(maps.Keys(seen))...), nil
}

// Versions implements keyseal.Store. An unknown tenant has no versions.
func (s *Store) Versions(ctx context.Context, tenantID string) ([]keyseal.TMKVersion, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []keyseal.TMKVersion
	for _, n := range slices.Sorted(maps.Keys(s.versions[tenantID])) {
		out = append(out, cloneVersion(s.versions[tenantID][n]))
	}
	return out, nil
}

// AppendAudit implements keyseal.Store.
func (s *Store) AppendAudit(ctx context.Context, tenantID string, rec keyseal.AuditRecord) (keyseal.AuditEntry, error) {
	if err := s.lock(ctx); err != nil {
		return keyseal.AuditEntry{}, err
	}
	defer s.mu.Unlock()
	if err := storecheck.TenantID(tenantID); err != nil {
		return keyseal.AuditEntry{}, err
	}
	if err := storecheck.Record(rec); err != nil {
		return keyseal.AuditEntry{}, err
	}
	return s.appendLocked(ctx, tenantID, rec), nil
}

// appendLocked links rec to the tenant's chain, stamped with rec.At, with
// the head the anchor signs, and the checkpoint's event to the outbox when
// the anchor says this append publishes it. The caller holds the lock.
func (s *Store) appendLocked(ctx context.Context, tenantID string, rec keyseal.AuditRecord) keyseal.AuditEntry {
	e := audit.Next(tenantID, s.heads[tenantID], rec, rec.At)
	e.Details = maps.Clone(e.Details)
	head, checkpoint := s.anchor.NextHead(ctx, s.heads[tenantID], e)
	s.chains[tenantID] = append(s.chains[tenantID], e)
	s.heads[tenantID] = head
	if checkpoint != nil {
		s.putOutbox([]keyseal.Event{*checkpoint})
	}
	return cloneEntry(e)
}

// ReadAuditHead implements keyseal.Store.
func (s *Store) ReadAuditHead(ctx context.Context, tenantID string) (keyseal.AuditHead, error) {
	if err := s.lock(ctx); err != nil {
		return keyseal.AuditHead{}, err
	}
	defer s.mu.Unlock()
	return s.heads[tenantID], nil
}

// ListAudit implements keyseal.Store: newest first, the action filter
// applied before Limit counts. A limit of zero or less returns every match.
func (s *Store) ListAudit(ctx context.Context, tenantID string, q keyseal.AuditQuery) ([]keyseal.AuditEntry, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []keyseal.AuditEntry
	chain := s.chains[tenantID]
	for i := len(chain) - 1; i >= 0 && (q.Limit <= 0 || len(out) < q.Limit); i-- {
		e := chain[i]
		if (q.Before > 0 && e.Seq >= q.Before) || (q.Action != "" && e.Action != q.Action && !e.Corrupt) {
			continue
		}
		out = append(out, cloneEntry(e))
	}
	return out, nil
}

// ScanAudit implements keyseal.Store. The entries and the head are copied
// under the lock and fn runs after it is released, so fn may write to the
// store.
func (s *Store) ScanAudit(ctx context.Context, tenantID string, fn func(keyseal.AuditEntry) error) (keyseal.AuditHead, error) {
	if err := s.lock(ctx); err != nil {
		return keyseal.AuditHead{}, err
	}
	chain := make([]keyseal.AuditEntry, len(s.chains[tenantID]))
	for i, e := range s.chains[tenantID] {
		chain[i] = cloneEntry(e)
	}
	head := s.heads[tenantID]
	s.mu.Unlock()
	for _, e := range chain {
		if err := fn(e); err != nil {
			return keyseal.AuditHead{}, err
		}
	}
	return head, nil
}

// CreateAgent implements keyseal.Store. A key hash already indexed is a
// conflict too: two agents must never share a key.
func (s *Store) CreateAgent(ctx context.Context, a *keyseal.Agent, rec keyseal.AuditRecord) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := storecheck.TenantID(a.TenantID); err != nil {
		return err
	}
	if a.ID == "" || a.KeyHash == "" {
		return keyseal.Errorf(keyseal.EINVALID, "agent id and key hash are required")
	}
	if err := storecheck.Record(rec); err != nil {
		return err
	}
	if _, ok := s.agents[a.TenantID][a.ID]; ok {
		return keyseal.Errorf(keyseal.ECONFLICT, "agent %s already exists", a.ID)
	}
	if _, ok := s.keys[a.KeyHash]; ok {
		return keyseal.Errorf(keyseal.ECONFLICT, "agent key already registered")
	}
	if s.agents[a.TenantID] == nil {
		s.agents[a.TenantID] = map[string]keyseal.Agent{}
	}
	s.agents[a.TenantID][a.ID] = cloneAgent(*a)
	s.keys[a.KeyHash] = cloneAgent(*a)
	s.appendLocked(ctx, a.TenantID, rec)
	return nil
}

// AgentByKeyHash implements keyseal.Store. Like the other stores it reads
// the key index only, which holds a copy of the agent (RevokeAgent updates
// both).
func (s *Store) AgentByKeyHash(ctx context.Context, keyHash string) (*keyseal.Agent, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	idx, ok := s.keys[keyHash]
	if !ok {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "unknown agent key")
	}
	a := cloneAgent(idx)
	return &a, nil
}

// ListAgents implements keyseal.Store: oldest first, ties by id.
func (s *Store) ListAgents(ctx context.Context, tenantID string) ([]keyseal.Agent, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []keyseal.Agent
	for _, a := range s.agents[tenantID] {
		out = append(out, cloneAgent(a))
	}
	slices.SortFunc(out, func(x, y keyseal.Agent) int {
		return cmp.Or(x.CreatedAt.Compare(y.CreatedAt), strings.Compare(x.ID, y.ID))
	})
	return out, nil
}

// RevokeAgent implements keyseal.Store. The agent is looked up under
// tenantID only, so one tenant can never revoke another's agent.
func (s *Store) RevokeAgent(ctx context.Context, tenantID, agentID string, at time.Time, rec keyseal.AuditRecord) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := storecheck.TenantID(tenantID); err != nil {
		return err
	}
	if err := storecheck.Record(rec); err != nil {
		return err
	}
	a, ok := s.agents[tenantID][agentID]
	if !ok {
		return keyseal.Errorf(keyseal.ENOTFOUND, "agent %s not found", agentID)
	}
	if a.RevokedAt != nil {
		return keyseal.Errorf(keyseal.ECONFLICT, "agent %s is already revoked", agentID)
	}
	when := at.UTC()
	a.RevokedAt = &when
	s.agents[tenantID][agentID] = a
	s.keys[a.KeyHash] = cloneAgent(a)
	s.appendLocked(ctx, tenantID, rec)
	return nil
}

// PutStepUp implements keyseal.Store.
func (s *Store) PutStepUp(ctx context.Context, tok keyseal.StepUpToken) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if tok.Hash == "" {
		return keyseal.Errorf(keyseal.EINVALID, "step-up token hash is required")
	}
	if _, ok := s.stepUps[tok.Hash]; ok {
		return keyseal.Errorf(keyseal.ECONFLICT, "step-up token already exists")
	}
	tok.ExpiresAt = tok.ExpiresAt.UTC()
	s.stepUps[tok.Hash] = tok
	return nil
}

// GetStepUp implements keyseal.Store. An expired token is still returned;
// expiry is the caller's check.
func (s *Store) GetStepUp(ctx context.Context, hash string) (*keyseal.StepUpToken, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	tok, ok := s.stepUps[hash]
	if !ok {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "step-up token not found")
	}
	return &tok, nil
}

// UseStepUp implements keyseal.Store; of many concurrent uses exactly one
// succeeds.
func (s *Store) UseStepUp(ctx context.Context, hash string) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	tok, ok := s.stepUps[hash]
	switch {
	case !ok:
		return keyseal.Errorf(keyseal.ENOTFOUND, "step-up token not found")
	case tok.Used:
		return keyseal.Errorf(keyseal.ECONFLICT, "step-up token already used")
	}
	tok.Used = true
	s.stepUps[hash] = tok
	return nil
}

// TamperAudit rewrites one stored audit entry in place with edit,
// bypassing the chain and leaving the head as it is: what an attacker with
// write access to the table could do. It is a test hook, for tests that
// prove audit.VerifyChain catches a forged entry (storetest's Harness);
// keyseal itself never calls it. ENOTFOUND when there is no such entry.
func (s *Store) TamperAudit(tenantID string, seq int64, edit func(*keyseal.AuditEntry)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range s.chains[tenantID] {
		if e := &s.chains[tenantID][i]; e.Seq == seq {
			*e = cloneEntry(*e)
			edit(e)
			return nil
		}
	}
	return keyseal.Errorf(keyseal.ENOTFOUND, "no audit entry %d of tenant %s", seq, tenantID)
}

// CorruptAudit replaces one stored audit entry with one that cannot be
// decoded (only its seq is left), as a garbled item in a real store reads.
// A test hook like TamperAudit. ENOTFOUND when there is no such entry.
func (s *Store) CorruptAudit(tenantID string, seq int64) error {
	return s.TamperAudit(tenantID, seq, func(e *keyseal.AuditEntry) {
		*e = keyseal.AuditEntry{Seq: seq, Corrupt: true}
	})
}

// SetAuditHead overwrites a tenant's chain head (the zero head removes
// it), bypassing the chain: a rewound or forged head row. A test hook.
func (s *Store) SetAuditHead(tenantID string, head keyseal.AuditHead) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if head == (keyseal.AuditHead{}) {
		delete(s.heads, tenantID)
		return
	}
	s.heads[tenantID] = head
}

// DeleteAudit removes one stored audit entry and leaves the head as it
// is. Like TamperAudit it is a test hook, never called by keyseal.
// ENOTFOUND when there is no such entry.
func (s *Store) DeleteAudit(tenantID string, seq int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.chains[tenantID])
	s.chains[tenantID] = slices.DeleteFunc(s.chains[tenantID], func(e keyseal.AuditEntry) bool { return e.Seq == seq })
	if len(s.chains[tenantID]) == n {
		return keyseal.Errorf(keyseal.ENOTFOUND, "no audit entry %d of tenant %s", seq, tenantID)
	}
	return nil
}

// The clone helpers copy every map, slice and pointer of a value and put
// its times in UTC, as the real stores return them.

func cloneTenant(t *keyseal.Tenant) *keyseal.Tenant {
	c := t.Clone()
	c.Key = cloneKey(t.Key)
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	c.SealedSince = utcPtr(c.SealedSince)
	c.LastVerifiedAt = utcPtr(c.LastVerifiedAt)
	return c
}

func cloneVersion(v keyseal.TMKVersion) keyseal.TMKVersion {
	v.Wrapped = bytes.Clone(v.Wrapped)
	v.SigningPublicKey = bytes.Clone(v.SigningPublicKey)
	v.Key = cloneKey(v.Key)
	v.CreatedAt = v.CreatedAt.UTC()
	v.RevokedAt = utcPtr(v.RevokedAt)
	return v
}

func cloneKey(k keyseal.KeyRef) keyseal.KeyRef {
	k.Access = maps.Clone(k.Access)
	return k
}

func cloneEntry(e keyseal.AuditEntry) keyseal.AuditEntry {
	e.Details = maps.Clone(e.Details)
	return e
}

func cloneAgent(a keyseal.Agent) keyseal.Agent {
	a.CreatedAt = a.CreatedAt.UTC()
	a.RevokedAt = utcPtr(a.RevokedAt)
	return a
}

// utcPtr returns a fresh copy of *t in UTC; nil for nil.
func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}
