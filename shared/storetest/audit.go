package storetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/keyseal"
)

func auditTests(h Harness) []test {
	return []test{
		{"AppendAudit/Chain", testAppendAuditChain},
		{"AppendAudit/Concurrent", testAppendAuditConcurrent},
		{"AppendAudit/IndependentTenants", testAppendAuditIndependent},
		{"ListAudit/NewestFirst", testListAuditNewestFirst},
		{"ListAudit/ActionFilter", testListAuditActionFilter},
		{"ListAudit/BeforeCursor", testListAuditBefore},
		{"ScanAudit/Empty", testScanAuditEmpty},
		{"ScanAudit/StopsOnError", testScanAuditStops},
		{"AuditRecord/ZeroTime", testRecordZeroTime},
		{"Tamper/EditedEntry", func(t *testing.T, s keyseal.Store) {
			if h.Tamper == nil {
				t.Skip("Harness.Tamper is nil")
			}
			testTamperEdit(t, s, h.Tamper)
		}},
		{"Tamper/DeletedMiddleEntry", func(t *testing.T, s keyseal.Store) {
			if h.DeleteAudit == nil {
				t.Skip("Harness.DeleteAudit is nil")
			}
			testTamperDelete(t, s, h.DeleteAudit, 3, 4)
		}},
		{"Tamper/CorruptEntry", func(t *testing.T, s keyseal.Store) {
			if h.Corrupt == nil {
				t.Skip("Harness.Corrupt is nil")
			}
			testCorruptEntry(t, s, h.Corrupt)
		}},
		{"Tamper/DeletedLastEntry", func(t *testing.T, s keyseal.Store) {
			if h.DeleteAudit == nil {
				t.Skip("Harness.DeleteAudit is nil")
			}
			testTamperDelete(t, s, h.DeleteAudit, 5, 4)
		}},
	}
}

func testAppendAuditChain(t *testing.T, s keyseal.Store) {
	var got []keyseal.AuditEntry
	prev := ""
	for i := range 3 {
		rec := newRecord(keyseal.ActionStepUp, fmt.Sprintf("r%d", i))
		if i == 1 {
			rec.Details = nil // an entry without details must hash and round-trip too
		}
		e, err := s.AppendAudit(t.Context(), "tenant-a", rec)
		if err != nil {
			t.Fatalf("AppendAudit #%d: %v", i, err)
		}
		requireEntry(t, e, "tenant-a", int64(i+1), prev, rec)
		prev = e.Hash
		got = append(got, e)
	}

	entries, head := scanAudit(t, s, "tenant-a")
	requireEqual(t, "ScanAudit entries", entries, got)
	requireEqual(t, "ScanAudit head", head, keyseal.AuditHead{Seq: 3, Hash: got[2].Hash})
	requireValidChain(t, s, "tenant-a", 3)
}

func testAppendAuditConcurrent(t *testing.T, s keyseal.Store) {
	const n = 20
	seqs := make([]int64, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			e, err := s.AppendAudit(t.Context(), "tenant-a", newRecord(keyseal.ActionStepUp, fmt.Sprintf("w%d", i)))
			seqs[i], errs[i] = e.Seq, err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent AppendAudit: %v", err)
	}
	slices.Sort(seqs)
	for i, seq := range seqs {
		if seq != int64(i+1) {
			t.Fatalf("concurrent appends got seqs %v, want 1..%d each once", seqs, n)
		}
	}
	entries := requireChainLen(t, s, "tenant-a", n)
	for i, e := range entries {
		if e.Seq != int64(i+1) {
			t.Fatalf("ScanAudit order %s, want ascending 1..%d", seqsOf(entries), n)
		}
	}
	requireValidChain(t, s, "tenant-a", n)
}

func testAppendAuditIndependent(t *testing.T, s keyseal.Store) {
	a := appendAudit(t, s, "tenant-a", keyseal.ActionSeal, 2)
	b := appendAudit(t, s, "tenant-b", keyseal.ActionUnseal, 1)
	requireEntry(t, b[0], "tenant-b", 1, "", newRecord(keyseal.ActionUnseal, keyseal.ActionUnseal+"#0"))
	a3 := appendAudit(t, s, "tenant-a", keyseal.ActionRevoke, 1)
	requireEntry(t, a3[0], "tenant-a", 3, a[1].Hash, newRecord(keyseal.ActionRevoke, keyseal.ActionRevoke+"#0"))

	requireChainLen(t, s, "tenant-a", 3)
	requireChainLen(t, s, "tenant-b", 1)
	requireValidChain(t, s, "tenant-a", 3)
	requireValidChain(t, s, "tenant-b", 1)
	requireEqual(t, "ListAudit(tenant-b)", listAudit(t, s, "tenant-b", keyseal.AuditQuery{Limit: 10}), b)
}

func testListAuditNewestFirst(t *testing.T, s keyseal.Store) {
	all := appendAudit(t, s, "tenant-a", keyseal.ActionSeal, 5)
	appendAudit(t, s, "tenant-b", keyseal.ActionSeal, 2) // must not leak into tenant-a
	newest := slices.Clone(all)
	slices.Reverse(newest)

	requireEqual(t, "ListAudit(limit 100)", listAudit(t, s, "tenant-a", keyseal.AuditQuery{Limit: 100}), newest)
	requireEqual(t, "ListAudit(limit 2)", listAudit(t, s, "tenant-a", keyseal.AuditQuery{Limit: 2}), newest[:2])
	requireEqual(t, "ListAudit(limit 5)", listAudit(t, s, "tenant-a", keyseal.AuditQuery{Limit: 5}), newest)
	if got := listAudit(t, s, "no-such-tenant", keyseal.AuditQuery{Limit: 10}); len(got) != 0 {
		t.Fatalf("ListAudit(unknown tenant) = %s, want none", seqsOf(got))
	}
}

func testListAuditActionFilter(t *testing.T, s keyseal.Store) {
	// Matches at seq 1, 5 and 9, each followed by three others, so a limit
	// of 2 covers fewer entries than sit between two matches: a store that
	// limits before it filters returns too few.
	var matches []keyseal.AuditEntry
	for i := range 9 {
		action := keyseal.ActionUnseal
		if i%4 == 0 {
			action = keyseal.ActionSeal
		}
		e := appendAudit(t, s, "tenant-a", action, 1)[0]
		if action == keyseal.ActionSeal {
			matches = append(matches, e)
		}
	}
	slices.Reverse(matches) // newest first: 9, 5, 1

	requireEqual(t, "ListAudit(seal, limit 2)",
		listAudit(t, s, "tenant-a", keyseal.AuditQuery{Limit: 2, Action: keyseal.ActionSeal}), matches[:2])
	requireEqual(t, "ListAudit(seal, limit 10)",
		listAudit(t, s, "tenant-a", keyseal.AuditQuery{Limit: 10, Action: keyseal.ActionSeal}), matches)
	requireEqual(t, "ListAudit(seal, before 5)",
		listAudit(t, s, "tenant-a", keyseal.AuditQuery{Limit: 2, Action: keyseal.ActionSeal, Before: 5}), matches[2:])
	if got := listAudit(t, s, "tenant-a", keyseal.AuditQuery{Limit: 10, Action: keyseal.ActionRevoke}); len(got) != 0 {
		t.Fatalf("ListAudit(action without entries) = %s, want none", seqsOf(got))
	}
}

func testListAuditBefore(t *testing.T, s keyseal.Store) {
	all := appendAudit(t, s, "tenant-a", keyseal.ActionSeal, 7)

	requireEqual(t, "ListAudit(before 4, limit 2)",
		listAudit(t, s, "tenant-a", keyseal.AuditQuery{Limit: 2, Before: 4}), []keyseal.AuditEntry{all[2], all[1]})
	if got := listAudit(t, s, "tenant-a", keyseal.AuditQuery{Limit: 10, Before: 1}); len(got) != 0 {
		t.Fatalf("ListAudit(before 1) = %s, want none", seqsOf(got))
	}
	requireEqual(t, "ListAudit(before past the head)",
		listAudit(t, s, "tenant-a", keyseal.AuditQuery{Limit: 1, Before: 100}), []keyseal.AuditEntry{all[6]})

	// Page through with the seq of the last entry of each page as cursor.
	var paged []keyseal.AuditEntry
	before := int64(0)
	for page := 0; ; page++ {
		if page > len(all) {
			t.Fatalf("still paging after %d pages", page)
		}
		got := listAudit(t, s, "tenant-a", keyseal.AuditQuery{Limit: 3, Before: before})
		if len(got) > 3 {
			t.Fatalf("page %d has %d entries, limit 3", page, len(got))
		}
		if len(got) == 0 {
			break
		}
		for _, e := range got {
			if before > 0 && e.Seq >= before {
				t.Fatalf("page %d with Before %d returned seq %d", page, before, e.Seq)
			}
		}
		paged = append(paged, got...)
		before = got[len(got)-1].Seq
	}
	want := slices.Clone(all)
	slices.Reverse(want)
	requireEqual(t, "paged ListAudit", paged, want)
}

func testScanAuditEmpty(t *testing.T, s keyseal.Store) {
	appendAudit(t, s, "tenant-b", keyseal.ActionSeal, 1) // another tenant's chain
	calls := 0
	head, err := s.ScanAudit(t.Context(), "tenant-a", func(keyseal.AuditEntry) error {
		calls++
		return nil
	})
	if err != nil {
		t.Fatalf("ScanAudit(empty chain): %v", err)
	}
	if calls != 0 || head != (keyseal.AuditHead{}) {
		t.Fatalf("ScanAudit(empty chain) called fn %d times and returned head %+v, want 0 calls and a zero head", calls, head)
	}
	requireValidChain(t, s, "tenant-a", 0)
}

func testScanAuditStops(t *testing.T, s keyseal.Store) {
	appendAudit(t, s, "tenant-a", keyseal.ActionSeal, 4)
	stop := errors.New("stop here")
	var seen []int64
	_, err := s.ScanAudit(t.Context(), "tenant-a", func(e keyseal.AuditEntry) error {
		seen = append(seen, e.Seq)
		if e.Seq == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) {
		t.Fatalf("ScanAudit with failing fn: error %v, want fn's error", err)
	}
	if !slices.Equal(seen, []int64{1, 2}) {
		t.Fatalf("ScanAudit called fn for seqs %v after fn failed at 2, want [1 2]", seen)
	}
}

// testRecordZeroTime checks every write that takes an audit record
// refuses one without a time, and writes nothing: an entry's ts is the
// service's clock, and a store has no business making one up.
func testRecordZeroTime(t *testing.T, s keyseal.Store) {
	ctx := t.Context()
	existing := createTenant(t, s, "tenant-b")
	agent := newAgent("tenant-b", "agent-1", at(0))
	createAgent(t, s, agent)
	noTime := func(action string) keyseal.AuditRecord {
		rec := newRecord(action, "no time")
		rec.At = time.Time{}
		return rec
	}

	err := s.CreateTenant(ctx, newTenant("tenant-a"), newVersion("tenant-a", 1), noTime(keyseal.ActionTenantProvision))
	requireCode(t, err, keyseal.EINVALID, "CreateTenant(record without a time)")
	_, err = s.GetTenant(ctx, "tenant-a")
	requireCode(t, err, keyseal.ENOTFOUND, "GetTenant after the refused CreateTenant")
	requireChainLen(t, s, "tenant-a", 0)

	_, err = s.AppendAudit(ctx, "tenant-b", noTime(keyseal.ActionSeal))
	requireCode(t, err, keyseal.EINVALID, "AppendAudit(record without a time)")

	rec := noTime(keyseal.ActionSeal)
	refusedUpdate(t, s, existing, keyseal.Change{NewVersions: []keyseal.TMKVersion{newVersion("tenant-b", 2)}, Audit: &rec},
		keyseal.EINVALID, "UpdateTenant(record without a time)")

	err = s.CreateAgent(ctx, newAgent("tenant-b", "agent-2", at(time.Minute)), noTime(keyseal.ActionAgentCreate))
	requireCode(t, err, keyseal.EINVALID, "CreateAgent(record without a time)")
	err = s.RevokeAgent(ctx, "tenant-b", "agent-1", at(time.Hour), noTime(keyseal.ActionAgentRevoke))
	requireCode(t, err, keyseal.EINVALID, "RevokeAgent(record without a time)")
	requireEqual(t, "ListAgents after the refused writes", listAgents(t, s, "tenant-b"), []keyseal.Agent{*agent})

	requireUnchanged(t, s, "tenant-b", existing, []keyseal.TMKVersion{newVersion("tenant-b", 1)}, 2)
}

func testTamperEdit(t *testing.T, s keyseal.Store, tamper func(*testing.T, keyseal.Store, string, int64, func(*keyseal.AuditEntry))) {
	appendAudit(t, s, "tenant-a", keyseal.ActionSeal, 5)
	requireValidChain(t, s, "tenant-a", 5)

	tamper(t, s, "tenant-a", 3, func(e *keyseal.AuditEntry) {
		e.Details = map[string]string{"marker": "forged"}
	})
	entries, _ := scanAudit(t, s, "tenant-a")
	if len(entries) != 5 || entries[2].Details["marker"] != "forged" {
		t.Fatalf("Harness.Tamper did not rewrite entry 3 in place (chain %s)", seqsOf(entries))
	}
	requireInvalid(t, s, "tenant-a", 3, 5)
}

func testTamperDelete(t *testing.T, s keyseal.Store, del func(*testing.T, keyseal.Store, string, int64), seq, remaining int64) {
	appendAudit(t, s, "tenant-a", keyseal.ActionSeal, 5)
	requireValidChain(t, s, "tenant-a", 5)

	del(t, s, "tenant-a", seq)
	entries, _ := scanAudit(t, s, "tenant-a")
	if int64(len(entries)) != remaining {
		t.Fatalf("after Harness.DeleteAudit the chain is %s, want %d entries", seqsOf(entries), remaining)
	}
	requireInvalid(t, s, "tenant-a", seq, remaining)
}

// testCorruptEntry: an entry the store cannot decode fails neither a
// scan nor a listing; verify names it, and the listing shows the rest.
func testCorruptEntry(t *testing.T, s keyseal.Store, corrupt func(*testing.T, keyseal.Store, string, int64)) {
	all := appendAudit(t, s, "tenant-a", keyseal.ActionSeal, 5)
	corrupt(t, s, "tenant-a", 3)

	res, err := audit.VerifyChain(t.Context(), s, "tenant-a")
	if err != nil {
		t.Fatalf("VerifyChain with a corrupt entry: %v", err)
	}
	if res.Valid || res.FirstBadSeq == nil || *res.FirstBadSeq != 3 || res.Reason != audit.ReasonCorrupt || res.Entries != 5 {
		t.Fatalf("VerifyChain = %s, want invalid at 3, reason corrupt, 5 entries", describeResult(res))
	}
	got := listAudit(t, s, "tenant-a", keyseal.AuditQuery{Limit: 10})
	want := []keyseal.AuditEntry{all[4], all[3], {Seq: 3, Corrupt: true}, all[1], all[0]}
	requireEqual(t, "ListAudit with a corrupt entry", got, want)
}

// requireInvalid fails unless audit.VerifyChain rejects the chain at
// badSeq after reading entries entries.
func requireInvalid(t *testing.T, s keyseal.Store, tenantID string, badSeq, entries int64) {
	t.Helper()
	res, err := audit.VerifyChain(t.Context(), s, tenantID)
	if err != nil {
		t.Fatalf("VerifyChain: %v", err)
	}
	if res.Valid || res.FirstBadSeq == nil || *res.FirstBadSeq != badSeq || res.Entries != entries {
		t.Fatalf("VerifyChain = %s, want {Valid:false Entries:%d FirstBadSeq:%d}", describeResult(res), entries, badSeq)
	}
}
