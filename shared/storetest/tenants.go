package storetest

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
)

func tenantTests() []test {
	return []test{
		{"GetTenant/Unknown", testGetTenantUnknown},
		{"CreateTenant/RoundTrip", testCreateTenantRoundTrip},
		{"CreateTenant/Duplicate", testCreateTenantDuplicate},
		{"UpdateTenant/Success", testUpdateTenantSuccess},
		{"UpdateTenant/StaleRevision", testUpdateTenantStale},
		{"UpdateTenant/Unknown", testUpdateTenantUnknown},
		{"UpdateTenant/NoAudit", testUpdateTenantNoAudit},
		{"UpdateTenant/Concurrent", testUpdateTenantConcurrent},
		{"ListTenants/Shards", testListTenantsShards},
		{"Versions/OldestFirst", testVersionsOldestFirst},
	}
}

func testGetTenantUnknown(t *testing.T, s keyseal.Store) {
	_, err := s.GetTenant(t.Context(), "no-such-tenant")
	requireCode(t, err, keyseal.ENOTFOUND, "GetTenant(unknown)")
}

func testCreateTenantRoundTrip(t *testing.T, s keyseal.Store) {
	tn := newTenant("tenant-a")
	v1 := newVersion("tenant-a", 1)
	rec := newRecord(keyseal.ActionTenantProvision, "create")
	if err := s.CreateTenant(t.Context(), tn, v1, rec); err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	if tn.Revision != 1 {
		t.Fatalf("after CreateTenant t.Revision = %d, want 1", tn.Revision)
	}

	want := newTenant("tenant-a")
	want.Revision = 1
	requireEqual(t, "GetTenant", getTenant(t, s, "tenant-a"), want)
	requireEqual(t, "Versions", versions(t, s, "tenant-a"), []keyseal.TMKVersion{v1})

	entries := requireChainLen(t, s, "tenant-a", 1)
	requireEntry(t, entries[0], "tenant-a", 1, "", rec)
	requireValidChain(t, s, "tenant-a", 1)

	// A tenant with no seal state must come back with nil pointers, not
	// zero times.
	clean := newTenant("tenant-b")
	clean.Status, clean.SealedSince, clean.SealReason, clean.LastVerifyError = keyseal.StatusActive, nil, "", ""
	clean.LastVerifiedAt, clean.BYOK, clean.Key.RoleARN, clean.Key.ExternalID = nil, false, "", ""
	if err := s.CreateTenant(t.Context(), clean, newVersion("tenant-b", 1), rec); err != nil {
		t.Fatalf("CreateTenant(tenant-b): %v", err)
	}
	requireEqual(t, "GetTenant(tenant-b)", getTenant(t, s, "tenant-b"), clean)
}

func testCreateTenantDuplicate(t *testing.T, s keyseal.Store) {
	first := createTenant(t, s, "tenant-a")

	dup := newTenant("tenant-a")
	dup.Status = keyseal.StatusActive
	dup.Key.KeyID = "other-key"
	err := s.CreateTenant(t.Context(), dup, newVersion("tenant-a", 2), newRecord(keyseal.ActionTenantProvision, "dup"))
	requireCode(t, err, keyseal.ECONFLICT, "second CreateTenant")

	requireEqual(t, "GetTenant after duplicate", getTenant(t, s, "tenant-a"), first)
	requireEqual(t, "Versions after duplicate", versions(t, s, "tenant-a"), []keyseal.TMKVersion{newVersion("tenant-a", 1)})
	requireChainLen(t, s, "tenant-a", 1)
}

func testUpdateTenantSuccess(t *testing.T, s keyseal.Store) {
	created := createTenant(t, s, "tenant-a")
	created1 := requireChainLen(t, s, "tenant-a", 1)[0]

	// Rotate to version 2 and revoke version 1 in the same write.
	upd := created.Clone()
	upd.Status, upd.SealReason, upd.LastVerifyError = keyseal.StatusActive, "", ""
	upd.SealedSince = nil
	upd.LastVerifiedAt = timePtr(at(10 * time.Minute))
	upd.LastLatencyMS = 7
	upd.ActiveVersion = 2
	upd.Key.KeyID = "rotated-key"
	upd.UpdatedAt = at(10 * time.Minute)
	v1r := revoked(newVersion("tenant-a", 1), at(10*time.Minute))
	v2 := newVersion("tenant-a", 2)
	rec := newRecord(keyseal.ActionRevoke, "rotate")
	if err := s.UpdateTenant(t.Context(), upd, keyseal.Change{PutVersions: []keyseal.TMKVersion{v2, v1r}, Audit: &rec}); err != nil {
		t.Fatalf("UpdateTenant: %v", err)
	}
	if upd.Revision != 2 {
		t.Fatalf("after UpdateTenant t.Revision = %d, want 2", upd.Revision)
	}
	requireEqual(t, "GetTenant", getTenant(t, s, "tenant-a"), upd)
	requireEqual(t, "Versions", versions(t, s, "tenant-a"), []keyseal.TMKVersion{v1r, v2})
	entries := requireChainLen(t, s, "tenant-a", 2)
	requireEqual(t, "entry 1 after update", entries[0], created1)
	requireEntry(t, entries[1], "tenant-a", 2, created1.Hash, rec)

	// A second update from the new revision succeeds and restores seal
	// state, proving pointers go from nil back to set.
	upd2 := upd.Clone()
	upd2.Status, upd2.SealReason = keyseal.StatusSealed, keyseal.ReasonAccessDenied
	upd2.SealedSince = timePtr(at(20 * time.Minute))
	rec2 := newRecord(keyseal.ActionSeal, "seal")
	if err := s.UpdateTenant(t.Context(), upd2, keyseal.Change{Audit: &rec2}); err != nil {
		t.Fatalf("second UpdateTenant: %v", err)
	}
	if upd2.Revision != 3 {
		t.Fatalf("after second UpdateTenant t.Revision = %d, want 3", upd2.Revision)
	}
	requireEqual(t, "GetTenant after second update", getTenant(t, s, "tenant-a"), upd2)
	entries = requireChainLen(t, s, "tenant-a", 3)
	requireEntry(t, entries[2], "tenant-a", 3, entries[1].Hash, rec2)
	requireValidChain(t, s, "tenant-a", 3)
}

func testUpdateTenantStale(t *testing.T, s keyseal.Store) {
	created := createTenant(t, s, "tenant-a")
	stale := created.Clone() // Revision 1, kept for the stale write below.

	cur := created.Clone()
	cur.LastLatencyMS = 99
	if err := s.UpdateTenant(t.Context(), cur, keyseal.Change{}); err != nil {
		t.Fatalf("UpdateTenant: %v", err)
	}
	wantVersions := versions(t, s, "tenant-a")

	for _, rev := range []int64{1, 5} {
		w := stale.Clone()
		w.Revision = rev
		w.Status = keyseal.StatusRevoked
		w.ActiveVersion = 5
		rec := newRecord(keyseal.ActionRevoke, "stale")
		err := s.UpdateTenant(t.Context(), w, keyseal.Change{
			PutVersions: []keyseal.TMKVersion{newVersion("tenant-a", 5), revoked(newVersion("tenant-a", 1), at(time.Hour))},
			Audit:       &rec,
		})
		requireCode(t, err, keyseal.ECONFLICT, fmt.Sprintf("UpdateTenant with revision %d (stored 2)", rev))
		if w.Revision != rev {
			t.Errorf("failed UpdateTenant changed t.Revision from %d to %d", rev, w.Revision)
		}
		requireEqual(t, "GetTenant after conflict", getTenant(t, s, "tenant-a"), cur)
		requireEqual(t, "Versions after conflict", versions(t, s, "tenant-a"), wantVersions)
		requireChainLen(t, s, "tenant-a", 1)
	}
}

func testUpdateTenantUnknown(t *testing.T, s keyseal.Store) {
	ghost := newTenant("ghost")
	ghost.Revision = 1
	rec := newRecord(keyseal.ActionSeal, "ghost")
	err := s.UpdateTenant(t.Context(), ghost, keyseal.Change{PutVersions: []keyseal.TMKVersion{newVersion("ghost", 1)}, Audit: &rec})
	requireCode(t, err, keyseal.ENOTFOUND, "UpdateTenant(unknown)")

	_, err = s.GetTenant(t.Context(), "ghost")
	requireCode(t, err, keyseal.ENOTFOUND, "GetTenant after failed UpdateTenant")
	// An unknown tenant may answer Versions with ENOTFOUND or with nothing;
	// either way no version may have been written.
	if vs, err := s.Versions(t.Context(), "ghost"); err == nil && len(vs) != 0 {
		t.Fatalf("Versions after failed UpdateTenant = %d versions, want none", len(vs))
	} else if err != nil {
		requireCode(t, err, keyseal.ENOTFOUND, "Versions(unknown)")
	}
	requireChainLen(t, s, "ghost", 0)
}

func testUpdateTenantNoAudit(t *testing.T, s keyseal.Store) {
	tn := createTenant(t, s, "tenant-a")
	upd := tn.Clone()
	upd.LastVerifiedAt = timePtr(at(time.Hour))
	upd.LastLatencyMS = 31
	if err := s.UpdateTenant(t.Context(), upd, keyseal.Change{}); err != nil {
		t.Fatalf("UpdateTenant: %v", err)
	}
	requireEqual(t, "GetTenant", getTenant(t, s, "tenant-a"), upd)
	requireChainLen(t, s, "tenant-a", 1)
}

func testUpdateTenantConcurrent(t *testing.T, s keyseal.Store) {
	base := createTenant(t, s, "tenant-a")
	const workers = 10
	writes := make([]*keyseal.Tenant, workers)
	errs := make([]error, workers)
	var wg sync.WaitGroup
	for i := range workers {
		writes[i] = base.Clone()
		writes[i].LastLatencyMS = int64(100 + i)
		wg.Go(func() {
			rec := newRecord(keyseal.ActionSeal, fmt.Sprintf("worker-%d", i))
			errs[i] = s.UpdateTenant(t.Context(), writes[i], keyseal.Change{Audit: &rec})
		})
	}
	wg.Wait()

	winner := -1
	for i, err := range errs {
		switch keyseal.ErrorCode(err) {
		case "":
			if winner >= 0 {
				t.Fatalf("workers %d and %d both won an update from revision 1", winner, i)
			}
			winner = i
		case keyseal.ECONFLICT:
		default:
			t.Fatalf("worker %d: %v, want nil or %s", i, err, keyseal.ECONFLICT)
		}
	}
	if winner < 0 {
		t.Fatal("no concurrent UpdateTenant succeeded")
	}
	requireEqual(t, "GetTenant", getTenant(t, s, "tenant-a"), writes[winner])
	entries := requireChainLen(t, s, "tenant-a", 2)
	if got, want := entries[1].Details["marker"], fmt.Sprintf("worker-%d", winner); got != want {
		t.Fatalf("second audit entry is from %q, want the winner %q", got, want)
	}
	requireValidChain(t, s, "tenant-a", 2)
}

func testListTenantsShards(t *testing.T, s keyseal.Store) {
	const tenants, limit = 40, 3
	for i := range tenants {
		createTenant(t, s, fmt.Sprintf("tenant-%02d", i))
	}
	// Audit entries and agents must not show up as tenants.
	appendAudit(t, s, "tenant-00", keyseal.ActionSeal, 2)
	if err := s.CreateAgent(t.Context(), newAgent("tenant-00", "agent-1", at(0)), newRecord(keyseal.ActionAgentCreate, "agent")); err != nil {
		t.Fatalf("CreateAgent: %v", err)
	}

	seen := map[string]int{} // id -> shard it was listed in
	for shard := range keyseal.PollShards {
		cursor := ""
		for page := 0; ; page++ {
			if page > tenants {
				t.Fatalf("shard %d: still paging after %d pages", shard, page)
			}
			ids, next, err := s.ListTenants(t.Context(), shard, cursor, limit)
			if err != nil {
				t.Fatalf("ListTenants(shard %d, cursor %q): %v", shard, cursor, err)
			}
			if len(ids) > limit {
				t.Fatalf("ListTenants(shard %d) returned %d ids, limit %d", shard, len(ids), limit)
			}
			for _, id := range ids {
				if prev, dup := seen[id]; dup {
					t.Fatalf("tenant %q listed twice (shards %d and %d)", id, prev, shard)
				}
				seen[id] = shard
				if want := keyseal.ShardOf(id); want != shard {
					t.Fatalf("tenant %q listed in shard %d, belongs to %d", id, shard, want)
				}
			}
			if next == "" {
				break
			}
			cursor = next
		}
	}
	if len(seen) != tenants {
		t.Fatalf("listing all shards found %d tenants, want %d", len(seen), tenants)
	}
	for i := range tenants {
		if _, ok := seen[fmt.Sprintf("tenant-%02d", i)]; !ok {
			t.Fatalf("tenant-%02d never listed", i)
		}
	}
}

func testVersionsOldestFirst(t *testing.T, s keyseal.Store) {
	tn := createTenant(t, s, "tenant-a")
	// Twelve versions, written in shuffled order, so a store that returns
	// insertion order or sorts version numbers as text ("10" < "2") fails.
	const n = 12
	var puts []keyseal.TMKVersion
	for v := 2; v <= n; v++ {
		puts = append(puts, newVersion("tenant-a", v))
	}
	rand.Shuffle(len(puts), func(i, j int) { puts[i], puts[j] = puts[j], puts[i] })
	upd := tn.Clone()
	upd.ActiveVersion = n
	if err := s.UpdateTenant(t.Context(), upd, keyseal.Change{PutVersions: puts}); err != nil {
		t.Fatalf("UpdateTenant: %v", err)
	}
	want := make([]keyseal.TMKVersion, 0, n)
	for v := 1; v <= n; v++ {
		want = append(want, newVersion("tenant-a", v))
	}
	requireEqual(t, "Versions", versions(t, s, "tenant-a"), want)

	// Another tenant's versions stay apart.
	createTenant(t, s, "tenant-b")
	requireEqual(t, "Versions(tenant-b)", versions(t, s, "tenant-b"), []keyseal.TMKVersion{newVersion("tenant-b", 1)})
}
