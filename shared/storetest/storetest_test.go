package storetest_test

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/memstore"
	"github.com/keyseal/keyseal/shared/storetest"
)

// mutantEnv tells a re-executed test binary which broken store to test.
const mutantEnv = "STORETEST_MUTANT"

// TestMemStore shows a correct store passes the whole suite.
func TestMemStore(t *testing.T) {
	storetest.Run(t, harness(func(m *memstore.Store) keyseal.Store { return m }))
}

// auditHooks are memstore's test hooks; every mutant embeds a
// *memstore.Store, so it has them too.
type auditHooks interface {
	TamperAudit(tenantID string, seq int64, edit func(*keyseal.AuditEntry)) error
	DeleteAudit(tenantID string, seq int64) error
}

// harness builds a Harness whose stores are wrap(memstore.New()); Tamper
// and DeleteAudit reach the memstore under any wrapper.
func harness(wrap func(*memstore.Store) keyseal.Store) storetest.Harness {
	return storetest.Harness{
		New: func(t *testing.T) keyseal.Store { return wrap(memstore.New()) },
		Tamper: func(t *testing.T, s keyseal.Store, id string, seq int64, edit func(*keyseal.AuditEntry)) {
			t.Helper()
			if err := s.(auditHooks).TamperAudit(id, seq, edit); err != nil {
				t.Fatalf("TamperAudit: %v", err)
			}
		},
		DeleteAudit: func(t *testing.T, s keyseal.Store, id string, seq int64) {
			t.Helper()
			if err := s.(auditHooks).DeleteAudit(id, seq); err != nil {
				t.Fatalf("DeleteAudit: %v", err)
			}
		},
	}
}

// mutants are stores with one realistic bug each, and the subtest that
// must catch it. Each wraps a correct memstore.Store and overrides one
// method (or two, where the Store API alone cannot express the bug).
var mutants = []struct {
	name  string
	fails string
	wrap  func(*memstore.Store) keyseal.Store
}{
	{"limit-before-filter", "ListAudit/ActionFilter", func(m *memstore.Store) keyseal.Store { return limitBeforeFilter{m} }},
	{"before-inclusive", "ListAudit/BeforeCursor", func(m *memstore.Store) keyseal.Store { return beforeInclusive{m} }},
	{"versions-as-text", "Versions/OldestFirst", func(m *memstore.Store) keyseal.Store { return versionsAsText{m} }},
	{"agents-by-id", "Agents/ListOldestFirst", func(m *memstore.Store) keyseal.Store { return agentsByID{m} }},
	{"events-dropped", "Outbox/WrittenWithChange", func(m *memstore.Store) keyseal.Store { return eventsDropped{m} }},
	{"events-on-failure", "Outbox/NothingOnFailedChange", func(m *memstore.Store) keyseal.Store { return eventsOnFailure{m} }},
	{"audit-on-conflict", "UpdateTenant/StaleRevision", func(m *memstore.Store) keyseal.Store { return auditOnConflict{m} }},
	{"revision-on-failure", "UpdateTenant/StaleRevision", func(m *memstore.Store) keyseal.Store { return revisionOnFailure{m} }},
	{"unknown-is-conflict", "UpdateTenant/Unknown", func(m *memstore.Store) keyseal.Store { return unknownIsConflict{m} }},
	{"head-from-scan", "Tamper/DeletedLastEntry", func(m *memstore.Store) keyseal.Store { return headFromScan{m} }},
	{"scan-ignores-error", "ScanAudit/StopsOnError", func(m *memstore.Store) keyseal.Store { return scanIgnoresError{m} }},
	{"times-in-zone", "CreateTenant/RoundTrip", func(m *memstore.Store) keyseal.Store { return timesInZone{m} }},
	{"second-precision", "CreateTenant/RoundTrip", func(m *memstore.Store) keyseal.Store { return secondPrecision{m} }},
	{"nil-as-zero-time", "CreateTenant/RoundTrip", func(m *memstore.Store) keyseal.Store { return nilAsZeroTime{m} }},
	{"wrong-shard", "ListTenants/Shards", func(m *memstore.Store) keyseal.Store { return wrongShard{m} }},
	{"drop-key-hash", "Agents/CreateAndFind", func(m *memstore.Store) keyseal.Store { return dropKeyHash{m} }},
	{"duplicate-agent-audited", "Agents/Duplicate", func(m *memstore.Store) keyseal.Store { return duplicateAgentAudited{m} }},
	{"revoke-twice-ok", "Agents/Revoke", func(m *memstore.Store) keyseal.Store { return revokeTwiceOK{m} }},
	{"revoke-any-tenant", "Agents/RevokeErrors", func(m *memstore.Store) keyseal.Store {
		return &revokeAnyTenant{Store: m, owners: map[string]string{}}
	}},
	{"step-up-reuse", "StepUp/Use", func(m *memstore.Store) keyseal.Store { return stepUpReuse{m} }},
	{"ignores-canceled", "CanceledContext", func(m *memstore.Store) keyseal.Store { return ignoresCanceled{m} }},
	{"new-version-overwrites", "UpdateTenant/NewVersionExists", func(m *memstore.Store) keyseal.Store { return newVersionOverwrites{m} }},
	{"replace-creates-missing", "UpdateTenant/ReplaceMissing", func(m *memstore.Store) keyseal.Store { return replaceCreatesMissing{m} }},
	{"replace-ignores-revoked", "UpdateTenant/RewrapAfterRevoke", func(m *memstore.Store) keyseal.Store {
		return &replaceIgnoresRevoked{Store: m, revived: map[string]map[int]keyseal.TMKVersion{}}
	}},
	{"ts-from-clock", "AppendAudit/Chain", func(m *memstore.Store) keyseal.Store { return tsFromClock{m} }},
	{"zero-time-is-now", "AuditRecord/ZeroTime", func(m *memstore.Store) keyseal.Store { return zeroTimeIsNow{m} }},
	{"copies-nothing", "CreateTenant/CopiesInput", func(m *memstore.Store) keyseal.Store {
		return &copiesNothing{Store: m, kept: map[string][]keyseal.TMKVersion{}}
	}},
	{"webhook-get-any-tenant", "Webhook/CreateGetList", func(m *memstore.Store) keyseal.Store {
		return &webhookAnyTenant{Store: m, owners: map[string]string{}}
	}},
	{"webhook-duplicate-audited", "Webhook/CreateGetList", func(m *memstore.Store) keyseal.Store { return webhookDuplicateAudited{m} }},
	{"webhook-update-ignores-revision", "Webhook/UpdateRevision", func(m *memstore.Store) keyseal.Store { return webhookBlindUpdate{m} }},
	{"webhook-delete-keeps-attempts", "Webhook/Delete", func(m *memstore.Store) keyseal.Store {
		return &webhookKeepsAttempts{Store: m, attempts: map[string][]keyseal.DeliveryAttempt{}}
	}},
	{"webhook-deliveries-oldest-first", "Webhook/DeliveriesKept", func(m *memstore.Store) keyseal.Store { return deliveriesOldestFirst{m} }},
	{"webhook-put-event-dropped", "Webhook/PutEvent", func(m *memstore.Store) keyseal.Store { return putEventDropped{m} }},
}

// TestMutantChild runs the suite against one mutant when the binary is
// re-executed by TestSuiteCatchesMutants; in a normal run it is skipped.
func TestMutantChild(t *testing.T) {
	name, ok := os.LookupEnv(mutantEnv)
	if !ok {
		t.Skip("only runs re-executed by TestSuiteCatchesMutants")
	}
	if name == "" {
		storetest.Run(t, harness(func(m *memstore.Store) keyseal.Store { return m }))
		return
	}
	for _, mu := range mutants {
		if mu.name == name {
			storetest.Run(t, harness(mu.wrap))
			return
		}
	}
	t.Fatalf("unknown mutant %q", name)
}

// TestSuiteCatchesMutants proves the suite fails stores with known bugs.
// A failing subtest fails its parent test, so each mutant runs in a child
// process (this test binary, re-executed), whose verdict is inspected.
func TestSuiteCatchesMutants(t *testing.T) {
	t.Run("control", func(t *testing.T) {
		t.Parallel()
		out, err := runChild(t, "", "^TestMutantChild$")
		if err != nil {
			t.Fatalf("the unmutated store fails the suite in a child process: %v\n%s", err, out)
		}
	})
	for _, mu := range mutants {
		t.Run(mu.name, func(t *testing.T) {
			t.Parallel()
			pattern := "^TestMutantChild$"
			for part := range strings.SplitSeq(mu.fails, "/") {
				pattern += "/^" + part + "$"
			}
			out, err := runChild(t, mu.name, pattern)
			if _, failed := err.(*exec.ExitError); !failed {
				t.Fatalf("suite did not fail mutant %s (err %v):\n%s", mu.name, err, out)
			}
			if !strings.Contains(out, "--- FAIL: TestMutantChild/"+mu.fails+" ") || strings.Contains(out, "panic:") {
				t.Fatalf("mutant %s: want a clean failure of %s, got:\n%s", mu.name, mu.fails, out)
			}
		})
	}
}

func runChild(t *testing.T, mutant, pattern string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run="+pattern, "-test.count=1")
	cmd.Env = append(os.Environ(), mutantEnv+"="+mutant)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

type limitBeforeFilter struct{ *memstore.Store }

func (s limitBeforeFilter) ListAudit(ctx context.Context, id string, q keyseal.AuditQuery) ([]keyseal.AuditEntry, error) {
	action := q.Action
	q.Action = ""
	all, err := s.Store.ListAudit(ctx, id, q)
	return slices.DeleteFunc(all, func(e keyseal.AuditEntry) bool { return action != "" && e.Action != action }), err
}

type beforeInclusive struct{ *memstore.Store }

func (s beforeInclusive) ListAudit(ctx context.Context, id string, q keyseal.AuditQuery) ([]keyseal.AuditEntry, error) {
	if q.Before > 0 {
		q.Before++
	}
	return s.Store.ListAudit(ctx, id, q)
}

type versionsAsText struct{ *memstore.Store }

func (s versionsAsText) Versions(ctx context.Context, id string) ([]keyseal.TMKVersion, error) {
	vs, err := s.Store.Versions(ctx, id)
	slices.SortFunc(vs, func(a, b keyseal.TMKVersion) int {
		return strings.Compare(strconv.Itoa(a.Version), strconv.Itoa(b.Version))
	})
	return vs, err
}

type agentsByID struct{ *memstore.Store }

func (s agentsByID) ListAgents(ctx context.Context, id string) ([]keyseal.Agent, error) {
	as, err := s.Store.ListAgents(ctx, id)
	slices.SortFunc(as, func(a, b keyseal.Agent) int { return strings.Compare(a.ID, b.ID) })
	return as, err
}

// eventsDropped commits the change without its events.
type eventsDropped struct{ *memstore.Store }

func (s eventsDropped) UpdateTenant(ctx context.Context, t *keyseal.Tenant, c keyseal.Change) error {
	c.Events = nil
	return s.Store.UpdateTenant(ctx, t, c)
}

// eventsOnFailure sends the events of a refused change anyway, the way a
// service publishing from the request (not from what committed) would.
type eventsOnFailure struct{ *memstore.Store }

func (s eventsOnFailure) UpdateTenant(ctx context.Context, t *keyseal.Tenant, c keyseal.Change) error {
	err := s.Store.UpdateTenant(ctx, t, c)
	if err != nil && len(c.Events) > 0 {
		if cur, gerr := s.Store.GetTenant(ctx, t.ID); gerr == nil {
			_ = s.Store.UpdateTenant(ctx, cur, keyseal.Change{Events: c.Events})
		}
	}
	return err
}

// auditOnConflict appends the audit record outside the conditional write.
type auditOnConflict struct{ *memstore.Store }

func (s auditOnConflict) UpdateTenant(ctx context.Context, t *keyseal.Tenant, c keyseal.Change) error {
	if c.Audit != nil {
		if _, err := s.Store.AppendAudit(ctx, t.ID, *c.Audit); err != nil {
			return err
		}
		c.Audit = nil
	}
	return s.Store.UpdateTenant(ctx, t, c)
}

type revisionOnFailure struct{ *memstore.Store }

func (s revisionOnFailure) UpdateTenant(ctx context.Context, t *keyseal.Tenant, c keyseal.Change) error {
	err := s.Store.UpdateTenant(ctx, t, c)
	if err != nil {
		t.Revision++
	}
	return err
}

type unknownIsConflict struct{ *memstore.Store }

func (s unknownIsConflict) UpdateTenant(ctx context.Context, t *keyseal.Tenant, c keyseal.Change) error {
	err := s.Store.UpdateTenant(ctx, t, c)
	if keyseal.ErrorCode(err) == keyseal.ENOTFOUND {
		return keyseal.Errorf(keyseal.ECONFLICT, "condition failed")
	}
	return err
}

// headFromScan derives the head from the entries instead of storing it, so
// a removed tail goes unnoticed.
type headFromScan struct{ *memstore.Store }

func (s headFromScan) ScanAudit(ctx context.Context, id string, fn func(keyseal.AuditEntry) error) (keyseal.AuditHead, error) {
	var head keyseal.AuditHead
	_, err := s.Store.ScanAudit(ctx, id, func(e keyseal.AuditEntry) error {
		head = keyseal.AuditHead{Seq: e.Seq, Hash: e.Hash}
		return fn(e)
	})
	return head, err
}

type scanIgnoresError struct{ *memstore.Store }

func (s scanIgnoresError) ScanAudit(ctx context.Context, id string, fn func(keyseal.AuditEntry) error) (keyseal.AuditHead, error) {
	return s.Store.ScanAudit(ctx, id, func(e keyseal.AuditEntry) error {
		_ = fn(e)
		return nil
	})
}

type timesInZone struct{ *memstore.Store }

func (s timesInZone) GetTenant(ctx context.Context, id string) (*keyseal.Tenant, error) {
	t, err := s.Store.GetTenant(ctx, id)
	if t != nil {
		t.CreatedAt = t.CreatedAt.In(time.FixedZone("CET", 3600))
	}
	return t, err
}

type secondPrecision struct{ *memstore.Store }

func (s secondPrecision) GetTenant(ctx context.Context, id string) (*keyseal.Tenant, error) {
	t, err := s.Store.GetTenant(ctx, id)
	if t != nil {
		t.UpdatedAt = t.UpdatedAt.Truncate(time.Second)
	}
	return t, err
}

type nilAsZeroTime struct{ *memstore.Store }

func (s nilAsZeroTime) GetTenant(ctx context.Context, id string) (*keyseal.Tenant, error) {
	t, err := s.Store.GetTenant(ctx, id)
	if t != nil && t.SealedSince == nil {
		t.SealedSince = &time.Time{}
	}
	return t, err
}

type wrongShard struct{ *memstore.Store }

func (s wrongShard) ListTenants(ctx context.Context, shard int, cursor string, limit int) ([]string, string, error) {
	return s.Store.ListTenants(ctx, (shard+1)%keyseal.PollShards, cursor, limit)
}

type dropKeyHash struct{ *memstore.Store }

func (s dropKeyHash) AgentByKeyHash(ctx context.Context, hash string) (*keyseal.Agent, error) {
	a, err := s.Store.AgentByKeyHash(ctx, hash)
	if a != nil {
		a.KeyHash = ""
	}
	return a, err
}

type duplicateAgentAudited struct{ *memstore.Store }

func (s duplicateAgentAudited) CreateAgent(ctx context.Context, a *keyseal.Agent, rec keyseal.AuditRecord) error {
	if _, err := s.Store.AppendAudit(ctx, a.TenantID, rec); err != nil {
		return err
	}
	return s.Store.CreateAgent(ctx, a, keyseal.AuditRecord{At: rec.At, Action: "ignored"})
}

type revokeTwiceOK struct{ *memstore.Store }

func (s revokeTwiceOK) RevokeAgent(ctx context.Context, tenantID, agentID string, at time.Time, rec keyseal.AuditRecord) error {
	err := s.Store.RevokeAgent(ctx, tenantID, agentID, at, rec)
	if keyseal.ErrorCode(err) == keyseal.ECONFLICT {
		return nil
	}
	return err
}

// revokeAnyTenant finds the agent by id alone, ignoring its tenant. The
// Store API cannot look an agent up by id, so the mutant remembers each
// agent's owner as it is created.
type revokeAnyTenant struct {
	*memstore.Store
	mu     sync.Mutex
	owners map[string]string // agent id -> tenant id
}

func (s *revokeAnyTenant) CreateAgent(ctx context.Context, a *keyseal.Agent, rec keyseal.AuditRecord) error {
	err := s.Store.CreateAgent(ctx, a, rec)
	if err == nil {
		s.mu.Lock()
		s.owners[a.ID] = a.TenantID
		s.mu.Unlock()
	}
	return err
}

func (s *revokeAnyTenant) RevokeAgent(ctx context.Context, tenantID, agentID string, at time.Time, rec keyseal.AuditRecord) error {
	s.mu.Lock()
	if owner, ok := s.owners[agentID]; ok {
		tenantID = owner
	}
	s.mu.Unlock()
	return s.Store.RevokeAgent(ctx, tenantID, agentID, at, rec)
}

type stepUpReuse struct{ *memstore.Store }

func (s stepUpReuse) UseStepUp(ctx context.Context, hash string) error {
	err := s.Store.UseStepUp(ctx, hash)
	if keyseal.ErrorCode(err) == keyseal.ECONFLICT {
		return nil
	}
	return err
}

type ignoresCanceled struct{ *memstore.Store }

func (s ignoresCanceled) UpdateTenant(ctx context.Context, t *keyseal.Tenant, c keyseal.Change) error {
	return s.Store.UpdateTenant(context.WithoutCancel(ctx), t, c)
}

// stored returns the versions m holds for a tenant, by number.
func stored(ctx context.Context, m *memstore.Store, tenantID string) (map[int]keyseal.TMKVersion, error) {
	vs, err := m.Versions(ctx, tenantID)
	byNumber := map[int]keyseal.TMKVersion{}
	for _, v := range vs {
		byNumber[v.Version] = v
	}
	return byNumber, err
}

// newVersionOverwrites writes a "new" version that exists over the stored
// one instead of refusing it.
type newVersionOverwrites struct{ *memstore.Store }

func (s newVersionOverwrites) UpdateTenant(ctx context.Context, t *keyseal.Tenant, c keyseal.Change) error {
	have, err := stored(ctx, s.Store, t.ID)
	if err != nil {
		return err
	}
	var fresh []keyseal.TMKVersion
	for _, v := range c.NewVersions {
		if old, ok := have[v.Version]; ok && old.RevokedAt == nil {
			c.Replace = append(c.Replace, v)
		} else {
			fresh = append(fresh, v)
		}
	}
	c.NewVersions = fresh
	return s.Store.UpdateTenant(ctx, t, c)
}

// replaceCreatesMissing creates a replaced version that does not exist
// instead of refusing it.
type replaceCreatesMissing struct{ *memstore.Store }

func (s replaceCreatesMissing) UpdateTenant(ctx context.Context, t *keyseal.Tenant, c keyseal.Change) error {
	have, err := stored(ctx, s.Store, t.ID)
	if err != nil {
		return err
	}
	var existing []keyseal.TMKVersion
	for _, v := range c.Replace {
		if _, ok := have[v.Version]; ok {
			existing = append(existing, v)
		} else {
			c.NewVersions = append(c.NewVersions, v)
		}
	}
	c.Replace = existing
	return s.Store.UpdateTenant(ctx, t, c)
}

// replaceIgnoresRevoked writes a replaced version whatever its state, as
// the old unconditional PutVersions did: a re-wrap that read a version
// before its revoke writes the erased blob back. memstore has no
// unconditional write, so the mutant keeps the versions it wrote over a
// revoke itself and lays them over what Versions returns.
type replaceIgnoresRevoked struct {
	*memstore.Store
	mu      sync.Mutex
	revived map[string]map[int]keyseal.TMKVersion // tenant -> version
}

func (s *replaceIgnoresRevoked) UpdateTenant(ctx context.Context, t *keyseal.Tenant, c keyseal.Change) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	have, err := stored(ctx, s.Store, t.ID)
	if err != nil {
		return err
	}
	var live, overRevoked []keyseal.TMKVersion
	for _, v := range c.Replace {
		if old, ok := have[v.Version]; ok && old.RevokedAt != nil {
			overRevoked = append(overRevoked, v)
		} else {
			live = append(live, v)
		}
	}
	c.Replace = live
	if err := s.Store.UpdateTenant(ctx, t, c); err != nil {
		return err
	}
	for _, v := range overRevoked {
		if s.revived[t.ID] == nil {
			s.revived[t.ID] = map[int]keyseal.TMKVersion{}
		}
		s.revived[t.ID][v.Version] = v
	}
	return nil
}

func (s *replaceIgnoresRevoked) Versions(ctx context.Context, tenantID string) ([]keyseal.TMKVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	vs, err := s.Store.Versions(ctx, tenantID)
	for i, v := range vs {
		if r, ok := s.revived[tenantID][v.Version]; ok {
			vs[i] = r
		}
	}
	return vs, err
}

// tsFromClock stamps entries with the store's clock, not the record's.
type tsFromClock struct{ *memstore.Store }

func (s tsFromClock) AppendAudit(ctx context.Context, id string, rec keyseal.AuditRecord) (keyseal.AuditEntry, error) {
	rec.At = time.Now()
	return s.Store.AppendAudit(ctx, id, rec)
}

// zeroTimeIsNow falls back to the store's clock for a record without a
// time instead of refusing it.
type zeroTimeIsNow struct{ *memstore.Store }

func (s zeroTimeIsNow) AppendAudit(ctx context.Context, id string, rec keyseal.AuditRecord) (keyseal.AuditEntry, error) {
	if rec.At.IsZero() {
		rec.At = time.Now()
	}
	return s.Store.AppendAudit(ctx, id, rec)
}

// copiesNothing hands out the versions it was given, as a store that
// keeps the caller's slices would: a caller wiping its copy of a blob
// wipes the stored one.
type copiesNothing struct {
	*memstore.Store
	mu   sync.Mutex
	kept map[string][]keyseal.TMKVersion // tenant -> the caller's versions
}

func (s *copiesNothing) CreateTenant(ctx context.Context, t *keyseal.Tenant, v keyseal.TMKVersion, rec keyseal.AuditRecord) error {
	err := s.Store.CreateTenant(ctx, t, v, rec)
	if err == nil {
		s.mu.Lock()
		s.kept[t.ID] = []keyseal.TMKVersion{v}
		s.mu.Unlock()
	}
	return err
}

func (s *copiesNothing) Versions(ctx context.Context, tenantID string) ([]keyseal.TMKVersion, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if vs, ok := s.kept[tenantID]; ok {
		return vs, nil
	}
	return s.Store.Versions(ctx, tenantID)
}

// webhookAnyTenant finds a subscription by id alone, whoever asks.
type webhookAnyTenant struct {
	*memstore.Store
	mu     sync.Mutex
	owners map[string]string
}

func (s *webhookAnyTenant) CreateWebhook(ctx context.Context, w *keyseal.Webhook, rec keyseal.AuditRecord) error {
	err := s.Store.CreateWebhook(ctx, w, rec)
	if err == nil {
		s.mu.Lock()
		s.owners[w.ID] = w.TenantID
		s.mu.Unlock()
	}
	return err
}

func (s *webhookAnyTenant) GetWebhook(ctx context.Context, _, id string) (*keyseal.Webhook, error) {
	s.mu.Lock()
	owner := s.owners[id]
	s.mu.Unlock()
	return s.Store.GetWebhook(ctx, owner, id)
}

// webhookDuplicateAudited audits a create refused as a duplicate.
type webhookDuplicateAudited struct{ *memstore.Store }

func (s webhookDuplicateAudited) CreateWebhook(ctx context.Context, w *keyseal.Webhook, rec keyseal.AuditRecord) error {
	err := s.Store.CreateWebhook(ctx, w, rec)
	if keyseal.ErrorCode(err) == keyseal.ECONFLICT {
		_, _ = s.AppendAudit(ctx, w.TenantID, rec)
	}
	return err
}

// webhookBlindUpdate overwrites whatever revision is stored.
type webhookBlindUpdate struct{ *memstore.Store }

func (s webhookBlindUpdate) UpdateWebhook(ctx context.Context, w *keyseal.Webhook, rec *keyseal.AuditRecord) error {
	if cur, err := s.GetWebhook(ctx, w.TenantID, w.ID); err == nil {
		w.Revision = cur.Revision
	}
	return s.Store.UpdateWebhook(ctx, w, rec)
}

// webhookKeepsAttempts keeps its own attempt log, which a delete forgets
// to clear.
type webhookKeepsAttempts struct {
	*memstore.Store
	mu       sync.Mutex
	attempts map[string][]keyseal.DeliveryAttempt
}

func (s *webhookKeepsAttempts) RecordDelivery(ctx context.Context, a keyseal.DeliveryAttempt) error {
	if err := s.Store.RecordDelivery(ctx, a); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.attempts[a.TenantID+"/"+a.WebhookID] = append(s.attempts[a.TenantID+"/"+a.WebhookID], a)
	return nil
}

func (s *webhookKeepsAttempts) ListDeliveries(ctx context.Context, tenantID, id string, limit int) ([]keyseal.DeliveryAttempt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.attempts[tenantID+"/"+id])
	slices.Reverse(out)
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// deliveriesOldestFirst lists attempts in the wrong order.
type deliveriesOldestFirst struct{ *memstore.Store }

func (s deliveriesOldestFirst) ListDeliveries(ctx context.Context, tenantID, id string, limit int) ([]keyseal.DeliveryAttempt, error) {
	all, err := s.Store.ListDeliveries(ctx, tenantID, id, 0)
	slices.Reverse(all)
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	return all, err
}

// putEventDropped accepts an event and writes nothing.
type putEventDropped struct{ *memstore.Store }

func (s putEventDropped) PutEvent(ctx context.Context, e keyseal.Event) error { return nil }
