package storetest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
)

func tenantTests() []test {
	return []test{
		{"GetTenant/Unknown", testGetTenantUnknown},
		{"CreateTenant/RoundTrip", testCreateTenantRoundTrip},
		{"CreateTenant/CopiesInput", testCreateTenantCopiesInput},
		{"CreateTenant/Duplicate", testCreateTenantDuplicate},
		{"UpdateTenant/Success", testUpdateTenantSuccess},
		{"UpdateTenant/StaleRevision", testUpdateTenantStale},
		{"UpdateTenant/Unknown", testUpdateTenantUnknown},
		{"UpdateTenant/NoAudit", testUpdateTenantNoAudit},
		{"UpdateTenant/Concurrent", testUpdateTenantConcurrent},
		{"UpdateTenant/NewVersionExists", testUpdateTenantNewVersionExists},
		{"UpdateTenant/ReplaceMissing", testUpdateTenantReplaceMissing},
		{"UpdateTenant/DuplicateVersion", testUpdateTenantDuplicateVersion},
		{"UpdateTenant/RewrapAfterRevoke", testRewrapAfterRevoke},
		{"UpdateTenant/RewrapRacesRevoke", testRewrapRacesRevoke},
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
	clean.LastVerifiedAt, clean.BYOK, clean.Key.Access = nil, false, nil
	// Nor must a version without a provider key version or access fields
	// come back with them.
	cleanV := newVersion("tenant-b", 1)
	cleanV.KeyVersion, cleanV.Key.Access = "", nil
	if err := s.CreateTenant(t.Context(), clean, cleanV, rec); err != nil {
		t.Fatalf("CreateTenant(tenant-b): %v", err)
	}
	requireEqual(t, "GetTenant(tenant-b)", getTenant(t, s, "tenant-b"), clean)
	requireEqual(t, "Versions(tenant-b)", versions(t, s, "tenant-b"), []keyseal.TMKVersion{cleanV})
}

// testCreateTenantCopiesInput checks the store keeps what was written, not
// the caller's maps and slices: a caller that reuses or wipes them later
// (zeroing a wrapped blob, say) must not change the stored row.
func testCreateTenantCopiesInput(t *testing.T, s keyseal.Store) {
	tn := newTenant("tenant-a")
	v1 := newVersion("tenant-a", 1)
	rec := newRecord(keyseal.ActionTenantProvision, "create")
	if err := s.CreateTenant(t.Context(), tn, v1, rec); err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	tn.Key.Access["role_arn"] = "changed"
	v1.Wrapped[0] ^= 0xff
	v1.Key.Access["service_account"] = "changed"
	rec.Details["marker"] = "changed"

	want := newTenant("tenant-a")
	want.Revision = 1
	requireEqual(t, "GetTenant after the caller changed its copy", getTenant(t, s, "tenant-a"), want)
	requireEqual(t, "Versions after the caller changed its copy", versions(t, s, "tenant-a"), []keyseal.TMKVersion{newVersion("tenant-a", 1)})
	entries := requireChainLen(t, s, "tenant-a", 1)
	requireEntry(t, entries[0], "tenant-a", 1, "", newRecord(keyseal.ActionTenantProvision, "create"))

	// What a read returns is the caller's to change too.
	got := versions(t, s, "tenant-a")
	got[0].Wrapped[0] ^= 0xff
	requireEqual(t, "Versions after the caller changed a read", versions(t, s, "tenant-a"), []keyseal.TMKVersion{newVersion("tenant-a", 1)})
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
	if err := s.UpdateTenant(t.Context(), upd, keyseal.Change{NewVersions: []keyseal.TMKVersion{v2}, Replace: []keyseal.TMKVersion{v1r}, Audit: &rec}); err != nil {
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
			NewVersions: []keyseal.TMKVersion{newVersion("tenant-a", 5)},
			Replace:     []keyseal.TMKVersion{revoked(newVersion("tenant-a", 1), at(time.Hour))},
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
	err := s.UpdateTenant(t.Context(), ghost, keyseal.Change{NewVersions: []keyseal.TMKVersion{newVersion("ghost", 1)}, Audit: &rec})
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
	if err := s.UpdateTenant(t.Context(), upd, keyseal.Change{NewVersions: puts}); err != nil {
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

// requireUnchanged fails unless a tenant's row, versions and audit chain
// are still what they were: the check after every refused write, which
// must have written nothing at all.
func requireUnchanged(t *testing.T, s keyseal.Store, id string, row *keyseal.Tenant, vs []keyseal.TMKVersion, chain int) {
	t.Helper()
	requireEqual(t, "GetTenant after the refused write", getTenant(t, s, id), row)
	requireEqual(t, "Versions after the refused write", versions(t, s, id), vs)
	requireChainLen(t, s, id, chain)
}

// refusedUpdate runs an UpdateTenant of a changed copy of row that must
// fail with code, leave the caller's revision alone and write nothing.
func refusedUpdate(t *testing.T, s keyseal.Store, row *keyseal.Tenant, c keyseal.Change, code, what string) {
	t.Helper()
	before := versions(t, s, row.ID)
	chain, _ := scanAudit(t, s, row.ID)
	w := row.Clone()
	w.LastLatencyMS, w.ActiveVersion = 4321, 9
	requireCode(t, s.UpdateTenant(t.Context(), w, c), code, what)
	if w.Revision != row.Revision {
		t.Errorf("%s: the refused UpdateTenant moved t.Revision from %d to %d", what, row.Revision, w.Revision)
	}
	requireUnchanged(t, s, row.ID, row, before, len(chain))
}

func testUpdateTenantNewVersionExists(t *testing.T, s keyseal.Store) {
	tn := createTenant(t, s, "tenant-a")
	rec := newRecord(keyseal.ActionRegister, "new version")
	refusedUpdate(t, s, tn, keyseal.Change{
		NewVersions: []keyseal.TMKVersion{rewrapped(newVersion("tenant-a", 1), "again")},
		Audit:       &rec,
	}, keyseal.ECONFLICT, "UpdateTenant(NewVersions: an existing version)")
	// All or nothing: the version that is new is not written either.
	refusedUpdate(t, s, tn, keyseal.Change{
		NewVersions: []keyseal.TMKVersion{newVersion("tenant-a", 2), rewrapped(newVersion("tenant-a", 1), "again")},
		Audit:       &rec,
	}, keyseal.ECONFLICT, "UpdateTenant(NewVersions: a new and an existing version)")
	// A revoked version is not free either: it cannot be created anew.
	upd := tn.Clone()
	if err := s.UpdateTenant(t.Context(), upd, keyseal.Change{Replace: []keyseal.TMKVersion{revoked(newVersion("tenant-a", 1), at(time.Hour))}}); err != nil {
		t.Fatalf("UpdateTenant(revoke version 1): %v", err)
	}
	refusedUpdate(t, s, upd, keyseal.Change{
		NewVersions: []keyseal.TMKVersion{newVersion("tenant-a", 1)},
		Audit:       &rec,
	}, keyseal.ECONFLICT, "UpdateTenant(NewVersions: a revoked version)")
}

func testUpdateTenantReplaceMissing(t *testing.T, s keyseal.Store) {
	tn := createTenant(t, s, "tenant-a")
	rec := newRecord(keyseal.ActionRegister, "replace")
	refusedUpdate(t, s, tn, keyseal.Change{
		Replace: []keyseal.TMKVersion{newVersion("tenant-a", 2)},
		Audit:   &rec,
	}, keyseal.ECONFLICT, "UpdateTenant(Replace: a missing version)")
	// All or nothing: neither the live version's re-wrap nor the new
	// version beside it is written.
	refusedUpdate(t, s, tn, keyseal.Change{
		NewVersions: []keyseal.TMKVersion{newVersion("tenant-a", 3)},
		Replace:     []keyseal.TMKVersion{rewrapped(newVersion("tenant-a", 1), "x"), newVersion("tenant-a", 2)},
		Audit:       &rec,
	}, keyseal.ECONFLICT, "UpdateTenant(Replace: a live and a missing version)")

	// Replacing a live version is what Replace is for.
	upd := tn.Clone()
	v1 := rewrapped(newVersion("tenant-a", 1), "live")
	if err := s.UpdateTenant(t.Context(), upd, keyseal.Change{Replace: []keyseal.TMKVersion{v1}, Audit: &rec}); err != nil {
		t.Fatalf("UpdateTenant(Replace: a live version): %v", err)
	}
	requireEqual(t, "Versions after a re-wrap", versions(t, s, "tenant-a"), []keyseal.TMKVersion{v1})
	requireChainLen(t, s, "tenant-a", 2)

	// An unknown tenant is ENOTFOUND, whatever its versions' state.
	ghost := newTenant("ghost")
	ghost.Revision = 1
	err := s.UpdateTenant(t.Context(), ghost, keyseal.Change{Replace: []keyseal.TMKVersion{newVersion("ghost", 1)}, Audit: &rec})
	requireCode(t, err, keyseal.ENOTFOUND, "UpdateTenant(unknown tenant, Replace)")
	requireChainLen(t, s, "ghost", 0)
}

func testUpdateTenantDuplicateVersion(t *testing.T, s keyseal.Store) {
	tn := createTenant(t, s, "tenant-a")
	v2 := newVersion("tenant-a", 2)
	refusedUpdate(t, s, tn, keyseal.Change{NewVersions: []keyseal.TMKVersion{v2, rewrapped(v2, "twice")}},
		keyseal.EINVALID, "UpdateTenant(NewVersions: one version twice)")
	refusedUpdate(t, s, tn, keyseal.Change{NewVersions: []keyseal.TMKVersion{v2}, Replace: []keyseal.TMKVersion{revoked(v2, at(time.Hour))}},
		keyseal.EINVALID, "UpdateTenant(one version both new and replaced)")
}

// testRewrapAfterRevoke is the race a re-wrap loses to a revoke, played in
// order: the re-wrap read the versions before the revoke committed, and
// the tenant row after it. Its write must be refused, because it would
// bring the crypto-erased blob back.
func testRewrapAfterRevoke(t *testing.T, s keyseal.Store) {
	tn := createTenant(t, s, "tenant-a")
	v1, v2 := newVersion("tenant-a", 1), newVersion("tenant-a", 2)
	rotate := newRecord(keyseal.ActionRegister, "rotate")
	upd := tn.Clone()
	upd.ActiveVersion = 2
	if err := s.UpdateTenant(t.Context(), upd, keyseal.Change{NewVersions: []keyseal.TMKVersion{v2}, Audit: &rotate}); err != nil {
		t.Fatalf("UpdateTenant(add version 2): %v", err)
	}
	stale := versions(t, s, "tenant-a") // the re-wrap's read
	requireEqual(t, "Versions before the revoke", stale, []keyseal.TMKVersion{v1, v2})

	// The revoke commits first.
	cur := getTenant(t, s, "tenant-a")
	v2r := revoked(stale[1], at(2*time.Hour))
	revoke := newRecord(keyseal.ActionRevoke, "revoke v2")
	if err := s.UpdateTenant(t.Context(), cur, keyseal.Change{Replace: []keyseal.TMKVersion{v2r}, Audit: &revoke}); err != nil {
		t.Fatalf("UpdateTenant(revoke version 2): %v", err)
	}
	requireEqual(t, "Versions after the revoke", versions(t, s, "tenant-a"), []keyseal.TMKVersion{v1, v2r})

	// The re-wrap has a fresh revision, so only the version's own
	// condition can stop it.
	row := getTenant(t, s, "tenant-a")
	rewrap := newRecord(keyseal.ActionRegister, "rewrap")
	refusedUpdate(t, s, row, keyseal.Change{Replace: []keyseal.TMKVersion{rewrapped(stale[1], "stale")}, Audit: &rewrap},
		keyseal.ECONFLICT, "UpdateTenant(re-wrap of a version revoked since it was read)")
	if got := versions(t, s, "tenant-a")[1]; got.Wrapped != nil || got.RevokedAt == nil {
		t.Fatalf("after the refused re-wrap version 2 has wrapped %x and revoked_at %v: the crypto-erased blob came back", got.Wrapped, got.RevokedAt)
	}
	// Nor can the revoke be written twice.
	again := newRecord(keyseal.ActionRevoke, "revoke v2 again")
	refusedUpdate(t, s, row, keyseal.Change{Replace: []keyseal.TMKVersion{revoked(stale[1], at(3*time.Hour))}, Audit: &again},
		keyseal.ECONFLICT, "UpdateTenant(revoke of a revoked version)")

	// The same stale read of the live version 1 still re-wraps it.
	v1w := rewrapped(stale[0], "stale")
	if err := s.UpdateTenant(t.Context(), row.Clone(), keyseal.Change{Replace: []keyseal.TMKVersion{v1w}, Audit: &rewrap}); err != nil {
		t.Fatalf("UpdateTenant(re-wrap of live version 1): %v", err)
	}
	requireEqual(t, "Versions after re-wrapping version 1", versions(t, s, "tenant-a"), []keyseal.TMKVersion{v1w, v2r})
	requireValidChain(t, s, "tenant-a", 4)
}

// testRewrapRacesRevoke races re-wraps that all read the versions before
// a revoke against that revoke. Each re-wrapper re-reads the row and
// retries on ECONFLICT until it wins or the revoke had committed before
// its attempt; the revoke retries until it lands. However they
// interleave, version 2 ends revoked with no blob, and no re-wrap is
// audited after the revoke. A loser (its stale version no longer the
// stored one) conflicts until the revoke lands, however many attempts
// that takes on a loaded machine: the bound is time, not a count of
// attempts, and each conflict yields so the revoke gets to run.
func testRewrapRacesRevoke(t *testing.T, s keyseal.Store) {
	const rewrappers, patience = 8, 30 * time.Second
	ctx := t.Context()
	deadline := time.Now().Add(patience)
	tn := createTenant(t, s, "tenant-a")
	upd := tn.Clone()
	upd.ActiveVersion = 2
	if err := s.UpdateTenant(ctx, upd, keyseal.Change{NewVersions: []keyseal.TMKVersion{newVersion("tenant-a", 2)}}); err != nil {
		t.Fatalf("UpdateTenant(add version 2): %v", err)
	}
	stale := versions(t, s, "tenant-a") // every re-wrapper's read
	requireEqual(t, "Versions before the race", stale, []keyseal.TMKVersion{newVersion("tenant-a", 1), newVersion("tenant-a", 2)})

	var (
		revokeDone atomic.Bool
		wins       atomic.Int64
		start      = make(chan struct{})
		errs       = make([]error, rewrappers+1)
		wg         sync.WaitGroup
	)
	for i := range rewrappers {
		wg.Go(func() {
			<-start
			for time.Now().Before(deadline) {
				afterRevoke := revokeDone.Load()
				cur, err := s.GetTenant(ctx, "tenant-a")
				if err != nil {
					errs[i] = err
					return
				}
				rec := newRecord(keyseal.ActionRegister, fmt.Sprintf("rewrap-%d", i))
				err = s.UpdateTenant(ctx, cur, keyseal.Change{Replace: []keyseal.TMKVersion{rewrapped(stale[1], fmt.Sprint(i))}, Audit: &rec})
				switch keyseal.ErrorCode(err) {
				case "":
					wins.Add(1)
					return
				case keyseal.ECONFLICT:
					if afterRevoke {
						return // refused for good: the version is revoked
					}
					runtime.Gosched()
				default:
					errs[i] = fmt.Errorf("re-wrapper %d: %w", i, err)
					return
				}
			}
			errs[i] = fmt.Errorf("re-wrapper %d still conflicting after %v", i, patience)
		})
	}
	wg.Go(func() {
		<-start
		defer revokeDone.Store(true)
		for time.Now().Before(deadline) {
			cur, err := s.GetTenant(ctx, "tenant-a")
			if err != nil {
				errs[rewrappers] = err
				return
			}
			vs, err := s.Versions(ctx, "tenant-a")
			if err == nil && len(vs) != 2 {
				err = fmt.Errorf("revoke: the store listed %d versions, want 2", len(vs))
			}
			if err != nil {
				errs[rewrappers] = err
				return
			}
			rec := newRecord(keyseal.ActionRevoke, "revoke")
			err = s.UpdateTenant(ctx, cur, keyseal.Change{Replace: []keyseal.TMKVersion{revoked(vs[1], at(2*time.Hour))}, Audit: &rec})
			switch keyseal.ErrorCode(err) {
			case "":
				return
			case keyseal.ECONFLICT:
				runtime.Gosched()
			default:
				errs[rewrappers] = fmt.Errorf("revoke: %w", err)
				return
			}
		}
		errs[rewrappers] = fmt.Errorf("revoke still conflicting after %v", patience)
	})
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	vs := versions(t, s, "tenant-a")
	if len(vs) != 2 {
		t.Fatalf("after the race the tenant has %d versions, want 2", len(vs))
	}
	requireEqual(t, "version 1 after the race", vs[0], newVersion("tenant-a", 1))
	if v2 := vs[1]; v2.Wrapped != nil || v2.RevokedAt == nil || !v2.RevokedAt.Equal(at(2*time.Hour)) {
		t.Fatalf("after the race version 2 has wrapped %x and revoked_at %v, want no blob and revoked at %s: a re-wrap won over the revoke",
			v2.Wrapped, v2.RevokedAt, at(2*time.Hour).Format(time.RFC3339Nano))
	}
	entries := requireChainLen(t, s, "tenant-a", 2+int(wins.Load()))
	revokedAt := -1
	for i, e := range entries {
		switch {
		case e.Action == keyseal.ActionRevoke:
			revokedAt = i
		case revokedAt >= 0 && strings.HasPrefix(e.Details["marker"], "rewrap-"):
			t.Fatalf("audit entry %d (%s) is a re-wrap after the revoke at entry %d", e.Seq, e.Details["marker"], entries[revokedAt].Seq)
		}
	}
	if revokedAt < 0 {
		t.Fatal("no revoke in the audit chain")
	}
	requireValidChain(t, s, "tenant-a", int64(len(entries)))
}
