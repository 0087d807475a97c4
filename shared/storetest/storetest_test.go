package storetest_test

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/storetest"
)

// mutantEnv tells a re-executed test binary which broken store to test.
const mutantEnv = "STORETEST_MUTANT"

// TestMemStore shows a correct store passes the whole suite.
func TestMemStore(t *testing.T) {
	storetest.Run(t, harness(func(m *memStore) keyseal.Store { return m }))
}

// harness builds a Harness whose stores are wrap(new memStore); Tamper and
// DeleteAudit reach the memStore under any wrapper.
func harness(wrap func(*memStore) keyseal.Store) storetest.Harness {
	return storetest.Harness{
		New: func(t *testing.T) keyseal.Store { return wrap(newMemStore()) },
		Tamper: func(t *testing.T, s keyseal.Store, id string, seq int64, edit func(*keyseal.AuditEntry)) {
			t.Helper()
			if !s.(interface{ base() *memStore }).base().tamper(id, seq, edit) {
				t.Fatalf("no entry %s/%d to tamper with", id, seq)
			}
		},
		DeleteAudit: func(t *testing.T, s keyseal.Store, id string, seq int64) {
			t.Helper()
			if !s.(interface{ base() *memStore }).base().deleteAudit(id, seq) {
				t.Fatalf("no entry %s/%d to delete", id, seq)
			}
		},
	}
}

func (m *memStore) base() *memStore { return m }

// mutants are stores with one realistic bug each, and the subtest that
// must catch it. Each wraps a correct memStore and overrides one method.
var mutants = []struct {
	name  string
	fails string
	wrap  func(*memStore) keyseal.Store
}{
	{"limit-before-filter", "ListAudit/ActionFilter", func(m *memStore) keyseal.Store { return limitBeforeFilter{m} }},
	{"before-inclusive", "ListAudit/BeforeCursor", func(m *memStore) keyseal.Store { return beforeInclusive{m} }},
	{"versions-as-text", "Versions/OldestFirst", func(m *memStore) keyseal.Store { return versionsAsText{m} }},
	{"agents-by-id", "Agents/ListOldestFirst", func(m *memStore) keyseal.Store { return agentsByID{m} }},
	{"audit-on-conflict", "UpdateTenant/StaleRevision", func(m *memStore) keyseal.Store { return auditOnConflict{m} }},
	{"revision-on-failure", "UpdateTenant/StaleRevision", func(m *memStore) keyseal.Store { return revisionOnFailure{m} }},
	{"unknown-is-conflict", "UpdateTenant/Unknown", func(m *memStore) keyseal.Store { return unknownIsConflict{m} }},
	{"head-from-scan", "Tamper/DeletedLastEntry", func(m *memStore) keyseal.Store { return headFromScan{m} }},
	{"scan-ignores-error", "ScanAudit/StopsOnError", func(m *memStore) keyseal.Store { return scanIgnoresError{m} }},
	{"times-in-zone", "CreateTenant/RoundTrip", func(m *memStore) keyseal.Store { return timesInZone{m} }},
	{"second-precision", "CreateTenant/RoundTrip", func(m *memStore) keyseal.Store { return secondPrecision{m} }},
	{"nil-as-zero-time", "CreateTenant/RoundTrip", func(m *memStore) keyseal.Store { return nilAsZeroTime{m} }},
	{"wrong-shard", "ListTenants/Shards", func(m *memStore) keyseal.Store { return wrongShard{m} }},
	{"drop-key-hash", "Agents/CreateAndFind", func(m *memStore) keyseal.Store { return dropKeyHash{m} }},
	{"duplicate-agent-audited", "Agents/Duplicate", func(m *memStore) keyseal.Store { return duplicateAgentAudited{m} }},
	{"revoke-twice-ok", "Agents/Revoke", func(m *memStore) keyseal.Store { return revokeTwiceOK{m} }},
	{"revoke-any-tenant", "Agents/RevokeErrors", func(m *memStore) keyseal.Store { return revokeAnyTenant{m} }},
	{"step-up-reuse", "StepUp/Use", func(m *memStore) keyseal.Store { return stepUpReuse{m} }},
	{"ignores-canceled", "CanceledContext", func(m *memStore) keyseal.Store { return ignoresCanceled{m} }},
}

// TestMutantChild runs the suite against one mutant when the binary is
// re-executed by TestSuiteCatchesMutants; in a normal run it is skipped.
func TestMutantChild(t *testing.T) {
	name, ok := os.LookupEnv(mutantEnv)
	if !ok {
		t.Skip("only runs re-executed by TestSuiteCatchesMutants")
	}
	if name == "" {
		storetest.Run(t, harness(func(m *memStore) keyseal.Store { return m }))
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

type limitBeforeFilter struct{ *memStore }

func (s limitBeforeFilter) ListAudit(ctx context.Context, id string, q keyseal.AuditQuery) ([]keyseal.AuditEntry, error) {
	action := q.Action
	q.Action = ""
	all, err := s.memStore.ListAudit(ctx, id, q)
	return slices.DeleteFunc(all, func(e keyseal.AuditEntry) bool { return action != "" && e.Action != action }), err
}

type beforeInclusive struct{ *memStore }

func (s beforeInclusive) ListAudit(ctx context.Context, id string, q keyseal.AuditQuery) ([]keyseal.AuditEntry, error) {
	if q.Before > 0 {
		q.Before++
	}
	return s.memStore.ListAudit(ctx, id, q)
}

type versionsAsText struct{ *memStore }

func (s versionsAsText) Versions(ctx context.Context, id string) ([]keyseal.TMKVersion, error) {
	vs, err := s.memStore.Versions(ctx, id)
	slices.SortFunc(vs, func(a, b keyseal.TMKVersion) int {
		return strings.Compare(strconv.Itoa(a.Version), strconv.Itoa(b.Version))
	})
	return vs, err
}

type agentsByID struct{ *memStore }

func (s agentsByID) ListAgents(ctx context.Context, id string) ([]keyseal.Agent, error) {
	as, err := s.memStore.ListAgents(ctx, id)
	slices.SortFunc(as, func(a, b keyseal.Agent) int { return strings.Compare(a.ID, b.ID) })
	return as, err
}

// auditOnConflict appends the audit record outside the conditional write.
type auditOnConflict struct{ *memStore }

func (s auditOnConflict) UpdateTenant(ctx context.Context, t *keyseal.Tenant, c keyseal.Change) error {
	if c.Audit != nil {
		if _, err := s.memStore.AppendAudit(ctx, t.ID, *c.Audit); err != nil {
			return err
		}
		c.Audit = nil
	}
	return s.memStore.UpdateTenant(ctx, t, c)
}

type revisionOnFailure struct{ *memStore }

func (s revisionOnFailure) UpdateTenant(ctx context.Context, t *keyseal.Tenant, c keyseal.Change) error {
	err := s.memStore.UpdateTenant(ctx, t, c)
	if err != nil {
		t.Revision++
	}
	return err
}

type unknownIsConflict struct{ *memStore }

func (s unknownIsConflict) UpdateTenant(ctx context.Context, t *keyseal.Tenant, c keyseal.Change) error {
	err := s.memStore.UpdateTenant(ctx, t, c)
	if keyseal.ErrorCode(err) == keyseal.ENOTFOUND {
		return keyseal.Errorf(keyseal.ECONFLICT, "condition failed")
	}
	return err
}

// headFromScan derives the head from the entries instead of storing it, so
// a removed tail goes unnoticed.
type headFromScan struct{ *memStore }

func (s headFromScan) ScanAudit(ctx context.Context, id string, fn func(keyseal.AuditEntry) error) (keyseal.AuditHead, error) {
	var head keyseal.AuditHead
	_, err := s.memStore.ScanAudit(ctx, id, func(e keyseal.AuditEntry) error {
		head = keyseal.AuditHead{Seq: e.Seq, Hash: e.Hash}
		return fn(e)
	})
	return head, err
}

type scanIgnoresError struct{ *memStore }

func (s scanIgnoresError) ScanAudit(ctx context.Context, id string, fn func(keyseal.AuditEntry) error) (keyseal.AuditHead, error) {
	return s.memStore.ScanAudit(ctx, id, func(e keyseal.AuditEntry) error {
		_ = fn(e)
		return nil
	})
}

type timesInZone struct{ *memStore }

func (s timesInZone) GetTenant(ctx context.Context, id string) (*keyseal.Tenant, error) {
	t, err := s.memStore.GetTenant(ctx, id)
	if t != nil {
		t.CreatedAt = t.CreatedAt.In(time.FixedZone("CET", 3600))
	}
	return t, err
}

type secondPrecision struct{ *memStore }

func (s secondPrecision) GetTenant(ctx context.Context, id string) (*keyseal.Tenant, error) {
	t, err := s.memStore.GetTenant(ctx, id)
	if t != nil {
		t.UpdatedAt = t.UpdatedAt.Truncate(time.Second)
	}
	return t, err
}

type nilAsZeroTime struct{ *memStore }

func (s nilAsZeroTime) GetTenant(ctx context.Context, id string) (*keyseal.Tenant, error) {
	t, err := s.memStore.GetTenant(ctx, id)
	if t != nil && t.SealedSince == nil {
		t.SealedSince = &time.Time{}
	}
	return t, err
}

type wrongShard struct{ *memStore }

func (s wrongShard) ListTenants(ctx context.Context, shard int, cursor string, limit int) ([]string, string, error) {
	return s.memStore.ListTenants(ctx, (shard+1)%keyseal.PollShards, cursor, limit)
}

type dropKeyHash struct{ *memStore }

func (s dropKeyHash) AgentByKeyHash(ctx context.Context, hash string) (*keyseal.Agent, error) {
	a, err := s.memStore.AgentByKeyHash(ctx, hash)
	if a != nil {
		a.KeyHash = ""
	}
	return a, err
}

type duplicateAgentAudited struct{ *memStore }

func (s duplicateAgentAudited) CreateAgent(ctx context.Context, a *keyseal.Agent, rec keyseal.AuditRecord) error {
	if _, err := s.memStore.AppendAudit(ctx, a.TenantID, rec); err != nil {
		return err
	}
	return s.memStore.CreateAgent(ctx, a, keyseal.AuditRecord{Action: "ignored"})
}

type revokeTwiceOK struct{ *memStore }

func (s revokeTwiceOK) RevokeAgent(ctx context.Context, tenantID, agentID string, at time.Time, rec keyseal.AuditRecord) error {
	err := s.memStore.RevokeAgent(ctx, tenantID, agentID, at, rec)
	if keyseal.ErrorCode(err) == keyseal.ECONFLICT {
		return nil
	}
	return err
}

// revokeAnyTenant finds the agent by id alone, ignoring its tenant.
type revokeAnyTenant struct{ *memStore }

func (s revokeAnyTenant) RevokeAgent(ctx context.Context, tenantID, agentID string, at time.Time, rec keyseal.AuditRecord) error {
	s.mu.Lock()
	for owner, agents := range s.agents {
		if _, ok := agents[agentID]; ok {
			tenantID = owner
		}
	}
	s.mu.Unlock()
	return s.memStore.RevokeAgent(ctx, tenantID, agentID, at, rec)
}

type stepUpReuse struct{ *memStore }

func (s stepUpReuse) UseStepUp(ctx context.Context, hash string) error {
	err := s.memStore.UseStepUp(ctx, hash)
	if keyseal.ErrorCode(err) == keyseal.ECONFLICT {
		return nil
	}
	return err
}

type ignoresCanceled struct{ *memStore }

func (s ignoresCanceled) UpdateTenant(ctx context.Context, t *keyseal.Tenant, c keyseal.Change) error {
	return s.memStore.UpdateTenant(context.WithoutCancel(ctx), t, c)
}
