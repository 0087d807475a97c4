package storetest

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// The anchored-chain checks (docs/contract.md §7): an attacker who can
// write the store, but has no signing key, rolls the chain back, rewrites
// and re-hashes it, or wipes it; a checkpoint saved earlier catches each.
// They run when the harness can make anchored stores and edit stored
// items underneath the Store API.

// edKey is an audit.Key from a fixed seed, so tests sign without files.
type edKey struct{ priv ed25519.PrivateKey }

func newEdKey(seed string) edKey {
	s := sha256.Sum256([]byte(seed))
	return edKey{ed25519.NewKeyFromSeed(s[:])}
}

func (k edKey) PublicKey(context.Context) (ed25519.PublicKey, error) {
	return k.priv.Public().(ed25519.PublicKey), nil
}

func (k edKey) Sign(_ context.Context, msg []byte) ([]byte, error) {
	return ed25519.Sign(k.priv, msg), nil
}

func newAnchor(t *testing.T, seed string) *audit.Anchor {
	t.Helper()
	a, err := audit.NewAnchor(newEdKey(seed), "test", nil)
	if err != nil {
		t.Fatalf("NewAnchor: %v", err)
	}
	return a
}

// anchoredTest is one check on an anchored store.
type anchoredTest struct {
	name string
	fn   func(t *testing.T, h Harness, s keyseal.Store, svc *audit.Service)
}

func anchoredTests() []anchoredTest {
	return []anchoredTest{
		{"SignedHead", testSignedHead},
		{"RolledBack", testRolledBack},
		{"Recomputed", testRecomputed},
		{"Wiped", testWiped},
		{"ForeignCheckpoints", testForeignCheckpoints},
		{"Corrupt", testAnchoredCorrupt},
	}
}

// runAnchored runs the anchored checks, each on a fresh anchored store.
func runAnchored(t *testing.T, h Harness) {
	t.Run("Anchor/Publish", func(t *testing.T) {
		if h.Anchored == nil {
			t.Skip("Harness.Anchored is nil")
		}
		testPublish(t, h)
	})
	for _, tc := range anchoredTests() {
		t.Run("Anchor/"+tc.name, func(t *testing.T) {
			if h.Anchored == nil || h.SetHead == nil || h.Tamper == nil || h.DeleteAudit == nil || h.Corrupt == nil {
				t.Skip("Harness lacks Anchored, SetHead, Tamper, DeleteAudit or Corrupt")
			}
			a := newAnchor(t, "keyseal-storetest")
			s := h.Anchored(t, a)
			tc.fn(t, h, s, &audit.Service{Log: s, Anchor: a})
		})
	}
}

// saveCheckpoint is what an auditor does: GET the latest checkpoint.
func saveCheckpoint(t *testing.T, svc *audit.Service, tenantID string) audit.Signed {
	t.Helper()
	cp, err := svc.Checkpoint(t.Context(), tenantID)
	if err != nil {
		t.Fatalf("Checkpoint(%s): %v", tenantID, err)
	}
	return cp
}

func verifyGET(t *testing.T, svc *audit.Service, tenantID string) audit.Result {
	t.Helper()
	res, err := svc.Verify(t.Context(), tenantID)
	if err != nil {
		t.Fatalf("Verify(%s): %v", tenantID, err)
	}
	return res
}

func verifyPOST(t *testing.T, svc *audit.Service, tenantID, checkpoint string) audit.Result {
	t.Helper()
	res, err := svc.VerifyCheckpoint(t.Context(), tenantID, checkpoint)
	if err != nil {
		t.Fatalf("VerifyCheckpoint(%s): %v", tenantID, err)
	}
	return res
}

func requireResult(t *testing.T, what string, got audit.Result, valid bool, reason string) {
	t.Helper()
	if got.Valid != valid || got.Reason != reason {
		t.Fatalf("%s = %s, want valid %v reason %q", what, describeResult(got), valid, reason)
	}
}

func readHead(t *testing.T, s keyseal.Store, tenantID string) keyseal.AuditHead {
	t.Helper()
	head, err := s.ReadAuditHead(t.Context(), tenantID)
	if err != nil {
		t.Fatalf("ReadAuditHead(%s): %v", tenantID, err)
	}
	return head
}

func testSignedHead(t *testing.T, _ Harness, s keyseal.Store, svc *audit.Service) {
	appendAudit(t, s, "tenant-a", keyseal.ActionSeal, 3)
	head := readHead(t, s, "tenant-a")
	if head.Seq != 3 || !strings.HasPrefix(head.Checkpoint, "keyseal/test/tenant-a\n3\n") {
		t.Fatalf("head after 3 appends = %+v, want seq 3 with a checkpoint of origin keyseal/test/tenant-a, size 3", head)
	}
	_, scanned := scanAudit(t, s, "tenant-a")
	requireEqual(t, "ScanAudit head", scanned, head)
	requireResult(t, "GET verify", verifyGET(t, svc, "tenant-a"), true, "")
	cp := saveCheckpoint(t, svc, "tenant-a")
	if cp.Size != 3 || cp.RootHash != head.Hash || cp.Checkpoint != head.Checkpoint || cp.Origin != "keyseal/test/tenant-a" {
		t.Fatalf("Checkpoint = %+v, want the head's (seq 3, hash %s)", cp, head.Hash)
	}
	requireResult(t, "POST verify (same size)", verifyPOST(t, svc, "tenant-a", cp.Checkpoint), true, "")
	appendAudit(t, s, "tenant-a", keyseal.ActionUnseal, 2)
	res := verifyPOST(t, svc, "tenant-a", cp.Checkpoint)
	requireResult(t, "POST verify (chain grew)", res, true, "")
	if res.Entries != 5 || res.CheckpointSize != 3 {
		t.Fatalf("POST verify = %s, want 5 entries against a checkpoint of size 3", describeResult(res))
	}
}

// testRolledBack is a restored backup: the chain and its genuinely
// signed head as they were at seq 3, after an auditor saved seq 5.
func testRolledBack(t *testing.T, h Harness, s keyseal.Store, svc *audit.Service) {
	appendAudit(t, s, "tenant-a", keyseal.ActionSeal, 3)
	old := readHead(t, s, "tenant-a")
	appendAudit(t, s, "tenant-a", keyseal.ActionUnseal, 2)
	saved := saveCheckpoint(t, svc, "tenant-a")

	h.DeleteAudit(t, s, "tenant-a", 5)
	h.DeleteAudit(t, s, "tenant-a", 4)
	h.SetHead(t, s, "tenant-a", old)

	// Alone, the chain cannot tell: it is a genuine chain of 3 with a
	// genuine signed head. That is what a saved checkpoint is for.
	requireResult(t, "GET verify of the rolled-back chain", verifyGET(t, svc, "tenant-a"), true, "")
	res := verifyPOST(t, svc, "tenant-a", saved.Checkpoint)
	requireResult(t, "POST verify of the rolled-back chain", res, false, audit.ReasonTruncated)
	if res.FirstBadSeq == nil || *res.FirstBadSeq != 4 || res.CheckpointSize != 5 {
		t.Fatalf("POST verify = %s, want first bad seq 4 against size 5", describeResult(res))
	}

	// Tail entries deleted and the head left alone is truncation too.
	appendAudit(t, s, "tenant-b", keyseal.ActionSeal, 4)
	savedB := saveCheckpoint(t, svc, "tenant-b")
	h.DeleteAudit(t, s, "tenant-b", 4)
	requireResult(t, "POST verify with the tail deleted", verifyPOST(t, svc, "tenant-b", savedB.Checkpoint), false, audit.ReasonTruncated)
}

// testRecomputed is an attacker without the key who edits entry 3,
// re-hashes everything after it and rewrites the head.
func testRecomputed(t *testing.T, h Harness, s keyseal.Store, svc *audit.Service) {
	appendAudit(t, s, "tenant-a", keyseal.ActionSeal, 5)
	saved := saveCheckpoint(t, svc, "tenant-a")
	entries, head := scanAudit(t, s, "tenant-a")

	prev := entries[1].Hash
	for _, e := range entries[2:] {
		e.PrevHash = prev
		if e.Seq == 3 {
			e.Details = map[string]string{"marker": "forged"}
		}
		e.Hash = audit.Hash(e)
		prev = e.Hash
		h.Tamper(t, s, "tenant-a", e.Seq, func(stored *keyseal.AuditEntry) { *stored = e })
	}

	// The head keeps its old, genuine checkpoint: it no longer matches.
	h.SetHead(t, s, "tenant-a", keyseal.AuditHead{Seq: 5, Hash: prev, Checkpoint: head.Checkpoint})
	requireValidChain(t, s, "tenant-a", 5) // the hashes alone recompute
	requireResult(t, "GET verify, head with the old checkpoint", verifyGET(t, svc, "tenant-a"), false, audit.ReasonBadSignature)
	requireResult(t, "POST verify, head with the old checkpoint", verifyPOST(t, svc, "tenant-a", saved.Checkpoint), false, audit.ReasonRewritten)

	// The head's checkpoint dropped: unsigned alone, rewritten against the
	// saved one.
	h.SetHead(t, s, "tenant-a", keyseal.AuditHead{Seq: 5, Hash: prev})
	requireResult(t, "GET verify, unsigned head", verifyGET(t, svc, "tenant-a"), false, audit.ReasonUnsigned)
	requireResult(t, "POST verify, unsigned head", verifyPOST(t, svc, "tenant-a", saved.Checkpoint), false, audit.ReasonRewritten)

	// A checkpoint the attacker edited to the new root fails its signature.
	forged := strings.Replace(head.Checkpoint, rootLine(t, head.Hash), rootLine(t, prev), 1)
	if forged == head.Checkpoint {
		t.Fatal("could not forge the root line")
	}
	h.SetHead(t, s, "tenant-a", keyseal.AuditHead{Seq: 5, Hash: prev, Checkpoint: forged})
	requireResult(t, "GET verify, head with an edited checkpoint", verifyGET(t, svc, "tenant-a"), false, audit.ReasonBadSignature)
	requireResult(t, "POST verify of the edited checkpoint", verifyPOST(t, svc, "tenant-a", forged), false, audit.ReasonBadSignature)
}

// rootLine is a checkpoint's root hash line for a hex hash.
func rootLine(t *testing.T, hexHash string) string {
	t.Helper()
	body, err := audit.Checkpoint{Origin: "x", Size: 1, Root: hexHash}.Body()
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(body, "\n")[2]
}

func testWiped(t *testing.T, h Harness, s keyseal.Store, svc *audit.Service) {
	appendAudit(t, s, "tenant-a", keyseal.ActionSeal, 4)
	saved := saveCheckpoint(t, svc, "tenant-a")
	for seq := int64(1); seq <= 4; seq++ {
		h.DeleteAudit(t, s, "tenant-a", seq)
	}
	h.SetHead(t, s, "tenant-a", keyseal.AuditHead{})

	requireResult(t, "GET verify of a wiped chain", verifyGET(t, svc, "tenant-a"), true, "") // an empty chain is consistent
	res := verifyPOST(t, svc, "tenant-a", saved.Checkpoint)
	requireResult(t, "POST verify of a wiped chain", res, false, audit.ReasonTruncated)
	if res.Entries != 0 || res.FirstBadSeq == nil || *res.FirstBadSeq != 1 {
		t.Fatalf("POST verify = %s, want 0 entries, first bad seq 1", describeResult(res))
	}
	if _, err := svc.Checkpoint(t.Context(), "tenant-a"); keyseal.ErrorCode(err) != keyseal.ENOTFOUND {
		t.Fatalf("Checkpoint of a wiped chain: %v, want %s", err, keyseal.ENOTFOUND)
	}
}

func testForeignCheckpoints(t *testing.T, _ Harness, s keyseal.Store, svc *audit.Service) {
	appendAudit(t, s, "tenant-a", keyseal.ActionSeal, 2)
	appendAudit(t, s, "tenant-b", keyseal.ActionSeal, 2)
	b := saveCheckpoint(t, svc, "tenant-b")
	requireResult(t, "tenant-b's checkpoint against tenant-a", verifyPOST(t, svc, "tenant-a", b.Checkpoint), false, audit.ReasonUnknownOrigin)

	other := newAnchor(t, "another key")
	text, err := other.Sign(t.Context(), audit.Checkpoint{Origin: "keyseal/test/tenant-a", Size: 2, Root: b.RootHash})
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	requireResult(t, "a checkpoint of another key", verifyPOST(t, svc, "tenant-a", text), false, audit.ReasonBadSignature)

	a := saveCheckpoint(t, svc, "tenant-a")
	bigger := strings.Replace(a.Checkpoint, "\n2\n", "\n3\n", 1)
	requireResult(t, "a checkpoint with an edited size", verifyPOST(t, svc, "tenant-a", bigger), false, audit.ReasonBadSignature)

	for _, junk := range []string{"", "not a note", a.Checkpoint[:len(a.Checkpoint)-1], "\x00" + a.Checkpoint} {
		if _, err := svc.VerifyCheckpoint(t.Context(), "tenant-a", junk); keyseal.ErrorCode(err) != keyseal.EINVALID {
			t.Errorf("VerifyCheckpoint(%q): %v, want %s", junk, err, keyseal.EINVALID)
		}
	}
}

// testAnchoredCorrupt: an undecodable entry is reported, never an error.
func testAnchoredCorrupt(t *testing.T, h Harness, s keyseal.Store, svc *audit.Service) {
	appendAudit(t, s, "tenant-a", keyseal.ActionSeal, 5)
	saved := saveCheckpoint(t, svc, "tenant-a")
	h.Corrupt(t, s, "tenant-a", 3)
	res := verifyGET(t, svc, "tenant-a")
	requireResult(t, "GET verify with a corrupt entry", res, false, audit.ReasonCorrupt)
	if res.FirstBadSeq == nil || *res.FirstBadSeq != 3 {
		t.Fatalf("GET verify = %s, want first bad seq 3", describeResult(res))
	}
	requireResult(t, "POST verify with a corrupt entry", verifyPOST(t, svc, "tenant-a", saved.Checkpoint), false, audit.ReasonCorrupt)
}

// testPublish checks checkpoints leave with appends at least every
// audit.PublishInterval of activity, and no more often: each publishing
// append writes its audit.checkpoint event to the outbox in its own
// transaction.
func testPublish(t *testing.T, h Harness) {
	s := h.Anchored(t, newAnchor(t, "keyseal-storetest"))
	start := at(time.Hour)
	for i, d := range []time.Duration{0, time.Minute, 4 * time.Minute, 5 * time.Minute, 6 * time.Minute, 11 * time.Minute} {
		rec := newRecord(keyseal.ActionSeal, fmt.Sprint(i))
		rec.At = start.Add(d)
		if _, err := s.AppendAudit(t.Context(), "tenant-a", rec); err != nil {
			t.Fatalf("AppendAudit #%d: %v", i, err)
		}
	}
	// Published: seq 1 (the first), seq 4 (5 min after), seq 6 (11 min,
	// 6 after seq 4).
	out, err := s.ListOutbox(t.Context(), 0)
	if err != nil {
		t.Fatal(err)
	}
	var sizes []string
	for _, e := range out {
		var d keyseal.CheckpointData
		if err := e.DecodeData(&d); err != nil {
			t.Fatal(err)
		}
		size := strconv.FormatInt(d.Size, 10)
		if e.Type != keyseal.EventCheckpoint || e.TenantID != "tenant-a" || !strings.HasPrefix(d.Checkpoint, "keyseal/test/tenant-a\n"+size+"\n") {
			t.Fatalf("event %+v, want an audit.checkpoint of tenant-a carrying its checkpoint", e)
		}
		sizes = append(sizes, size)
	}
	if strings.Join(sizes, ",") != "1,4,6" {
		t.Fatalf("published checkpoints of sizes %v, want 1,4,6", sizes)
	}
}
