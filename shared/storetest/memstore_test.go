package storetest_test

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// memStore is a minimal, obviously correct keyseal.Store: one mutex around
// plain maps. It exists to check the suite itself (a correct store must
// pass it; the mutants in storetest_test.go must not), independently of
// any real adapter.
type memStore struct {
	mu       sync.Mutex
	tenants  map[string]*keyseal.Tenant
	versions map[string]map[int]keyseal.TMKVersion
	chains   map[string][]keyseal.AuditEntry // ascending seq
	heads    map[string]keyseal.AuditHead
	agents   map[string]map[string]keyseal.Agent // tenant -> agent id
	keys     map[string][2]string                // key hash -> tenant, agent id
	stepUps  map[string]keyseal.StepUpToken
}

var _ keyseal.Store = (*memStore)(nil)

func newMemStore() *memStore {
	return &memStore{
		tenants:  map[string]*keyseal.Tenant{},
		versions: map[string]map[int]keyseal.TMKVersion{},
		chains:   map[string][]keyseal.AuditEntry{},
		heads:    map[string]keyseal.AuditHead{},
		agents:   map[string]map[string]keyseal.Agent{},
		keys:     map[string][2]string{},
		stepUps:  map[string]keyseal.StepUpToken{},
	}
}

func (m *memStore) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	return nil
}

func (m *memStore) GetTenant(ctx context.Context, id string) (*keyseal.Tenant, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	t, ok := m.tenants[id]
	if !ok {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "no tenant")
	}
	return t.Clone(), nil
}

func (m *memStore) CreateTenant(ctx context.Context, t *keyseal.Tenant, v keyseal.TMKVersion, rec keyseal.AuditRecord) error {
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if _, ok := m.tenants[t.ID]; ok {
		return keyseal.Errorf(keyseal.ECONFLICT, "exists")
	}
	t.Revision = 1
	m.tenants[t.ID] = t.Clone()
	m.putVersions(t.ID, []keyseal.TMKVersion{v})
	m.appendLocked(t.ID, rec)
	return nil
}

func (m *memStore) UpdateTenant(ctx context.Context, t *keyseal.Tenant, c keyseal.Change) error {
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	cur, ok := m.tenants[t.ID]
	if !ok {
		return keyseal.Errorf(keyseal.ENOTFOUND, "no tenant")
	}
	if cur.Revision != t.Revision {
		return keyseal.Errorf(keyseal.ECONFLICT, "revision moved")
	}
	t.Revision++
	m.tenants[t.ID] = t.Clone()
	m.putVersions(t.ID, c.PutVersions)
	if c.Audit != nil {
		m.appendLocked(t.ID, *c.Audit)
	}
	return nil
}

func (m *memStore) putVersions(id string, vs []keyseal.TMKVersion) {
	if m.versions[id] == nil {
		m.versions[id] = map[int]keyseal.TMKVersion{}
	}
	for _, v := range vs {
		m.versions[id][v.Version] = v
	}
}

func (m *memStore) ListTenants(ctx context.Context, shard int, cursor string, limit int) ([]string, string, error) {
	if err := m.lock(ctx); err != nil {
		return nil, "", err
	}
	defer m.mu.Unlock()
	var ids []string
	for _, id := range slices.Sorted(maps.Keys(m.tenants)) {
		if keyseal.ShardOf(id) == shard && id > cursor {
			ids = append(ids, id)
		}
	}
	if limit > 0 && len(ids) > limit {
		return ids[:limit], ids[limit-1], nil
	}
	return ids, "", nil
}

func (m *memStore) Versions(ctx context.Context, id string) ([]keyseal.TMKVersion, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	return slices.SortedFunc(maps.Values(m.versions[id]), func(a, b keyseal.TMKVersion) int {
		return cmp.Compare(a.Version, b.Version)
	}), nil
}

func (m *memStore) AppendAudit(ctx context.Context, id string, rec keyseal.AuditRecord) (keyseal.AuditEntry, error) {
	if err := m.lock(ctx); err != nil {
		return keyseal.AuditEntry{}, err
	}
	defer m.mu.Unlock()
	return m.appendLocked(id, rec), nil
}

func (m *memStore) appendLocked(id string, rec keyseal.AuditRecord) keyseal.AuditEntry {
	e := audit.Next(id, m.heads[id], rec, time.Now())
	m.chains[id] = append(m.chains[id], e)
	m.heads[id] = keyseal.AuditHead{Seq: e.Seq, Hash: e.Hash}
	return e
}

func (m *memStore) ListAudit(ctx context.Context, id string, q keyseal.AuditQuery) ([]keyseal.AuditEntry, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	var out []keyseal.AuditEntry
	chain := m.chains[id]
	for i := len(chain) - 1; i >= 0 && (q.Limit <= 0 || len(out) < q.Limit); i-- {
		e := chain[i]
		if (q.Before > 0 && e.Seq >= q.Before) || (q.Action != "" && e.Action != q.Action) {
			continue
		}
		out = append(out, e)
	}
	return out, nil
}

func (m *memStore) ScanAudit(ctx context.Context, id string, fn func(keyseal.AuditEntry) error) (keyseal.AuditHead, error) {
	if err := m.lock(ctx); err != nil {
		return keyseal.AuditHead{}, err
	}
	chain, head := slices.Clone(m.chains[id]), m.heads[id]
	m.mu.Unlock()
	for _, e := range chain {
		if err := fn(e); err != nil {
			return keyseal.AuditHead{}, err
		}
	}
	return head, nil
}

func (m *memStore) CreateAgent(ctx context.Context, a *keyseal.Agent, rec keyseal.AuditRecord) error {
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if _, ok := m.agents[a.TenantID][a.ID]; ok {
		return keyseal.Errorf(keyseal.ECONFLICT, "agent exists")
	}
	if _, ok := m.keys[a.KeyHash]; ok {
		return keyseal.Errorf(keyseal.ECONFLICT, "key exists")
	}
	if m.agents[a.TenantID] == nil {
		m.agents[a.TenantID] = map[string]keyseal.Agent{}
	}
	m.agents[a.TenantID][a.ID] = *a
	m.keys[a.KeyHash] = [2]string{a.TenantID, a.ID}
	m.appendLocked(a.TenantID, rec)
	return nil
}

func (m *memStore) AgentByKeyHash(ctx context.Context, hash string) (*keyseal.Agent, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	ref, ok := m.keys[hash]
	if !ok {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "unknown key")
	}
	a := m.agents[ref[0]][ref[1]]
	return &a, nil
}

func (m *memStore) ListAgents(ctx context.Context, id string) ([]keyseal.Agent, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	return slices.SortedFunc(maps.Values(m.agents[id]), func(a, b keyseal.Agent) int {
		return a.CreatedAt.Compare(b.CreatedAt)
	}), nil
}

func (m *memStore) RevokeAgent(ctx context.Context, tenantID, agentID string, at time.Time, rec keyseal.AuditRecord) error {
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	a, ok := m.agents[tenantID][agentID]
	if !ok {
		return keyseal.Errorf(keyseal.ENOTFOUND, "no agent")
	}
	if a.RevokedAt != nil {
		return keyseal.Errorf(keyseal.ECONFLICT, "revoked")
	}
	a.RevokedAt = &at
	m.agents[tenantID][agentID] = a
	m.appendLocked(tenantID, rec)
	return nil
}

func (m *memStore) PutStepUp(ctx context.Context, tok keyseal.StepUpToken) error {
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	if _, ok := m.stepUps[tok.Hash]; ok {
		return keyseal.Errorf(keyseal.ECONFLICT, "exists")
	}
	m.stepUps[tok.Hash] = tok
	return nil
}

func (m *memStore) GetStepUp(ctx context.Context, hash string) (*keyseal.StepUpToken, error) {
	if err := m.lock(ctx); err != nil {
		return nil, err
	}
	defer m.mu.Unlock()
	tok, ok := m.stepUps[hash]
	if !ok {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "unknown")
	}
	return &tok, nil
}

func (m *memStore) UseStepUp(ctx context.Context, hash string) error {
	if err := m.lock(ctx); err != nil {
		return err
	}
	defer m.mu.Unlock()
	tok, ok := m.stepUps[hash]
	switch {
	case !ok:
		return keyseal.Errorf(keyseal.ENOTFOUND, "unknown")
	case tok.Used:
		return keyseal.Errorf(keyseal.ECONFLICT, "used")
	}
	tok.Used = true
	m.stepUps[hash] = tok
	return nil
}

func (m *memStore) Ping(ctx context.Context) error { return ctx.Err() }

// tamper edits one stored entry in place, leaving the head alone.
func (m *memStore) tamper(id string, seq int64, edit func(*keyseal.AuditEntry)) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.chains[id] {
		if m.chains[id][i].Seq == seq {
			edit(&m.chains[id][i])
			return true
		}
	}
	return false
}

// deleteAudit removes one stored entry, leaving the head alone.
func (m *memStore) deleteAudit(id string, seq int64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := len(m.chains[id])
	m.chains[id] = slices.DeleteFunc(m.chains[id], func(e keyseal.AuditEntry) bool { return e.Seq == seq })
	return len(m.chains[id]) < n
}
