package storetest

import (
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
