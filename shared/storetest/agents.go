package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
)

func agentTests() []test {
	return []test{
		{"Agents/CreateAndFind", testAgentCreate},
		{"Agents/Duplicate", testAgentDuplicate},
		{"Agents/ListOldestFirst", testAgentList},
		{"Agents/Revoke", testAgentRevoke},
		{"Agents/RevokeErrors", testAgentRevokeErrors},
	}
}

func stepUpTests() []test {
	return []test{
		{"StepUp/RoundTrip", testStepUpRoundTrip},
		{"StepUp/Use", testStepUpUse},
		{"StepUp/ConcurrentUse", testStepUpConcurrentUse},
	}
}

// createAgent stores a and fails the test on any error.
func createAgent(t *testing.T, s keyseal.Store, a *keyseal.Agent) {
	t.Helper()
	if err := s.CreateAgent(t.Context(), a, newRecord(keyseal.ActionAgentCreate, a.ID)); err != nil {
		t.Fatalf("CreateAgent(%q): %v", a.ID, err)
	}
}

// agentByKeyHash looks up an agent that must exist.
func agentByKeyHash(t *testing.T, s keyseal.Store, hash string) *keyseal.Agent {
	t.Helper()
	a, err := s.AgentByKeyHash(t.Context(), hash)
	if err != nil {
		t.Fatalf("AgentByKeyHash: %v", err)
	}
	if a == nil {
		t.Fatal("AgentByKeyHash returned nil and no error")
	}
	return a
}

// listAgents lists a tenant's agents and fails the test on error.
func listAgents(t *testing.T, s keyseal.Store, tenantID string) []keyseal.Agent {
	t.Helper()
	as, err := s.ListAgents(t.Context(), tenantID)
	if err != nil {
		t.Fatalf("ListAgents(%q): %v", tenantID, err)
	}
	return as
}

func testAgentCreate(t *testing.T, s keyseal.Store) {
	a := newAgent("tenant-a", "agent-1", at(time.Minute))
	rec := newRecord(keyseal.ActionAgentCreate, "agent-1")
	if err := s.CreateAgent(t.Context(), a, rec); err != nil {
		t.Fatalf("CreateAgent: %v", err)
	}
	want := newAgent("tenant-a", "agent-1", at(time.Minute))
	requireEqual(t, "AgentByKeyHash", agentByKeyHash(t, s, want.KeyHash), want)
	entries := requireChainLen(t, s, "tenant-a", 1)
	requireEntry(t, entries[0], "tenant-a", 1, "", rec)

	_, err := s.AgentByKeyHash(t.Context(), keyHash("unknown key"))
	requireCode(t, err, keyseal.ENOTFOUND, "AgentByKeyHash(unknown)")
}

func testAgentDuplicate(t *testing.T, s keyseal.Store) {
	first := newAgent("tenant-a", "agent-1", at(0))
	createAgent(t, s, first)

	dup := newAgent("tenant-a", "agent-1", at(time.Hour))
	dup.KeyHash = keyHash("a different key")
	dup.Name = "impostor"
	err := s.CreateAgent(t.Context(), dup, newRecord(keyseal.ActionAgentCreate, "dup"))
	requireCode(t, err, keyseal.ECONFLICT, "CreateAgent(duplicate id)")

	_, err = s.AgentByKeyHash(t.Context(), dup.KeyHash)
	requireCode(t, err, keyseal.ENOTFOUND, "AgentByKeyHash(rejected duplicate's key)")
	requireEqual(t, "ListAgents after duplicate", listAgents(t, s, "tenant-a"), []keyseal.Agent{*first})
	requireChainLen(t, s, "tenant-a", 1)
}

func testAgentList(t *testing.T, s keyseal.Store) {
	// Created out of CreatedAt order with ids in a third order, so only a
	// store that sorts by CreatedAt passes.
	b := newAgent("tenant-a", "agent-b", at(3*time.Minute))
	c := newAgent("tenant-a", "agent-c", at(1*time.Minute))
	a := newAgent("tenant-a", "agent-a", at(2*time.Minute))
	for _, ag := range []*keyseal.Agent{b, c, a} {
		createAgent(t, s, ag)
	}
	other := newAgent("tenant-b", "agent-z", at(0))
	createAgent(t, s, other)

	requireEqual(t, "ListAgents(tenant-a)", listAgents(t, s, "tenant-a"), []keyseal.Agent{*c, *a, *b})
	requireEqual(t, "ListAgents(tenant-b)", listAgents(t, s, "tenant-b"), []keyseal.Agent{*other})
	if got := listAgents(t, s, "tenant-none"); len(got) != 0 {
		t.Fatalf("ListAgents(tenant without agents) = %d agents, want none", len(got))
	}
}

func testAgentRevoke(t *testing.T, s keyseal.Store) {
	a := newAgent("tenant-a", "agent-1", at(0))
	keep := newAgent("tenant-a", "agent-2", at(time.Minute))
	createAgent(t, s, a)
	createAgent(t, s, keep)

	when := at(time.Hour)
	rec := newRecord(keyseal.ActionAgentRevoke, "agent-1")
	if err := s.RevokeAgent(t.Context(), "tenant-a", "agent-1", when, rec); err != nil {
		t.Fatalf("RevokeAgent: %v", err)
	}
	want := newAgent("tenant-a", "agent-1", at(0))
	want.RevokedAt = timePtr(when)
	requireEqual(t, "AgentByKeyHash after revoke", agentByKeyHash(t, s, a.KeyHash), want)
	requireEqual(t, "ListAgents after revoke", listAgents(t, s, "tenant-a"), []keyseal.Agent{*want, *keep})
	entries := requireChainLen(t, s, "tenant-a", 3)
	requireEntry(t, entries[2], "tenant-a", 3, entries[1].Hash, rec)

	err := s.RevokeAgent(t.Context(), "tenant-a", "agent-1", at(2*time.Hour), newRecord(keyseal.ActionAgentRevoke, "again"))
	requireCode(t, err, keyseal.ECONFLICT, "RevokeAgent(already revoked)")
	requireEqual(t, "AgentByKeyHash after second revoke", agentByKeyHash(t, s, a.KeyHash), want)
	requireChainLen(t, s, "tenant-a", 3)
	requireValidChain(t, s, "tenant-a", 3)
}

func testAgentRevokeErrors(t *testing.T, s keyseal.Store) {
	a := newAgent("tenant-a", "agent-1", at(0))
	createAgent(t, s, a)

	err := s.RevokeAgent(t.Context(), "tenant-a", "agent-404", at(time.Hour), newRecord(keyseal.ActionAgentRevoke, "unknown"))
	requireCode(t, err, keyseal.ENOTFOUND, "RevokeAgent(unknown agent)")

	// Another tenant's admin must not reach tenant-a's agent.
	err = s.RevokeAgent(t.Context(), "tenant-b", "agent-1", at(time.Hour), newRecord(keyseal.ActionAgentRevoke, "cross"))
	requireCode(t, err, keyseal.ENOTFOUND, "RevokeAgent(agent of another tenant)")

	requireEqual(t, "agent after failed revokes", agentByKeyHash(t, s, a.KeyHash), newAgent("tenant-a", "agent-1", at(0)))
	requireChainLen(t, s, "tenant-a", 1)
	requireChainLen(t, s, "tenant-b", 0)
}

func testStepUpRoundTrip(t *testing.T, s keyseal.Store) {
	tok := newStepUp(keyHash("step-up-1"))
	if err := s.PutStepUp(t.Context(), tok); err != nil {
		t.Fatalf("PutStepUp: %v", err)
	}
	got, err := s.GetStepUp(t.Context(), tok.Hash)
	if err != nil {
		t.Fatalf("GetStepUp: %v", err)
	}
	requireEqual(t, "GetStepUp", got, &tok)

	dup := newStepUp(tok.Hash)
	dup.Subject = "admin:mallory@example.com"
	dup.Used = true
	requireCode(t, s.PutStepUp(t.Context(), dup), keyseal.ECONFLICT, "PutStepUp(duplicate hash)")
	got, err = s.GetStepUp(t.Context(), tok.Hash)
	if err != nil {
		t.Fatalf("GetStepUp after duplicate: %v", err)
	}
	requireEqual(t, "GetStepUp after duplicate", got, &tok)

	_, err = s.GetStepUp(t.Context(), keyHash("unknown token"))
	requireCode(t, err, keyseal.ENOTFOUND, "GetStepUp(unknown)")
}

func testStepUpUse(t *testing.T, s keyseal.Store) {
	tok := newStepUp(keyHash("step-up-1"))
	other := newStepUp(keyHash("step-up-2"))
	for _, tk := range []keyseal.StepUpToken{tok, other} {
		if err := s.PutStepUp(t.Context(), tk); err != nil {
			t.Fatalf("PutStepUp: %v", err)
		}
	}
	if err := s.UseStepUp(t.Context(), tok.Hash); err != nil {
		t.Fatalf("UseStepUp: %v", err)
	}
	used := tok
	used.Used = true
	requireStepUp(t, s, used)
	requireStepUp(t, s, other) // using one token leaves others alone

	requireCode(t, s.UseStepUp(t.Context(), tok.Hash), keyseal.ECONFLICT, "UseStepUp(second use)")
	requireStepUp(t, s, used)
	requireCode(t, s.UseStepUp(t.Context(), keyHash("unknown token")), keyseal.ENOTFOUND, "UseStepUp(unknown)")
}

func testStepUpConcurrentUse(t *testing.T, s keyseal.Store) {
	tok := newStepUp(keyHash("step-up-1"))
	if err := s.PutStepUp(t.Context(), tok); err != nil {
		t.Fatalf("PutStepUp: %v", err)
	}
	const workers = 10
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		wg.Go(func() { errs[i] = s.UseStepUp(t.Context(), tok.Hash) })
	}
	wg.Wait()
	wins := 0
	for i, err := range errs {
		switch keyseal.ErrorCode(err) {
		case "":
			wins++
		case keyseal.ECONFLICT:
		default:
			t.Fatalf("worker %d: %v, want nil or %s", i, err, keyseal.ECONFLICT)
		}
	}
	if wins != 1 {
		t.Fatalf("%d concurrent UseStepUp calls succeeded, want exactly 1", wins)
	}
	tok.Used = true
	requireStepUp(t, s, tok)
}

// requireStepUp fails unless the stored token equals want.
func requireStepUp(t *testing.T, s keyseal.Store, want keyseal.StepUpToken) {
	t.Helper()
	got, err := s.GetStepUp(t.Context(), want.Hash)
	if err != nil {
		t.Fatalf("GetStepUp: %v", err)
	}
	requireEqual(t, "GetStepUp", got, &want)
}

func testPing(t *testing.T, s keyseal.Store) {
	if err := s.Ping(t.Context()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
}

// testCanceledContext checks that calls made with a canceled context fail
// and leave nothing behind.
func testCanceledContext(t *testing.T, s keyseal.Store) {
	existing := createTenant(t, s, "tenant-b")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	if err := s.CreateTenant(ctx, newTenant("tenant-a"), newVersion("tenant-a", 1), newRecord(keyseal.ActionTenantProvision, "canceled")); err == nil {
		t.Fatal("CreateTenant with a canceled context succeeded")
	}
	if _, err := s.AppendAudit(ctx, "tenant-a", newRecord(keyseal.ActionSeal, "canceled")); err == nil {
		t.Fatal("AppendAudit with a canceled context succeeded")
	}
	upd := existing.Clone()
	upd.LastLatencyMS = 1234
	rec := newRecord(keyseal.ActionSeal, "canceled")
	if err := s.UpdateTenant(ctx, upd, keyseal.Change{Audit: &rec}); err == nil {
		t.Fatal("UpdateTenant with a canceled context succeeded")
	}
	if _, err := s.GetTenant(ctx, "tenant-b"); err == nil {
		t.Fatal("GetTenant with a canceled context succeeded")
	}

	_, err := s.GetTenant(t.Context(), "tenant-a")
	requireCode(t, err, keyseal.ENOTFOUND, "GetTenant after canceled CreateTenant")
	requireChainLen(t, s, "tenant-a", 0)
	requireEqual(t, "tenant after canceled UpdateTenant", getTenant(t, s, "tenant-b"), existing)
	requireChainLen(t, s, "tenant-b", 1)
}
