package storetest

import (
	"context"
	"testing"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// miscTests are the checks of no one entity: the health check and
// cancellation.
func miscTests() []test {
	return []test{
		{"Ping", testPing},
		{"CanceledContext", testCanceledContext},
	}
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
