package audit_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/memstore"
)

const benchEntries = 1_000_000

var (
	benchOnce  sync.Once
	benchChain []keyseal.AuditEntry
	benchHead  keyseal.AuditHead
)

// millionEntries is a chain of 1,000,000 entries shaped like keyseal's
// (an action, an actor, three details), built once per test binary.
func millionEntries() ([]keyseal.AuditEntry, keyseal.AuditHead) {
	benchOnce.Do(func() {
		ts := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
		benchChain = make([]keyseal.AuditEntry, 0, benchEntries)
		for i := range benchEntries {
			e := audit.Next("acme", benchHead, keyseal.AuditRecord{Action: keyseal.ActionSeal, Severity: keyseal.SeverityCritical,
				Actor: "system:poller", Details: map[string]string{"reason": "key_disabled", "key_id": "arn:aws:kms:eu-west-1:111122223333:key/1234abcd",
					"error": fmt.Sprintf("DisabledException request %d", i)}}, ts.Add(time.Duration(i)*time.Second))
			benchChain = append(benchChain, e)
			benchHead = keyseal.AuditHead{Seq: e.Seq, Hash: e.Hash}
		}
	})
	return benchChain, benchHead
}

// BenchmarkVerify1M replays 1,000,000 entries through the Verifier: what a
// verify costs beyond reading the entries (README, Benchmarks).
func BenchmarkVerify1M(b *testing.B) {
	entries, head := millionEntries()
	b.ResetTimer()
	for b.Loop() {
		var v audit.Verifier
		for _, e := range entries {
			v.Add(e)
		}
		if res := v.Finish(head); !res.Valid {
			b.Fatalf("chain invalid: %+v", res)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchEntries, "ns/entry")
}

// BenchmarkVerifyCheckpoint1MMemstore is POST /admin/audit/verify's work on
// a chain of 1,000,000 entries in the in-memory store: scan, replay, the
// saved checkpoint's and the head's signatures.
func BenchmarkVerifyCheckpoint1MMemstore(b *testing.B) {
	entries, head := millionEntries()
	anchor, err := audit.NewAnchor(benchKey{}, "bench", nil)
	if err != nil {
		b.Fatal(err)
	}
	s := memstore.New()
	for _, e := range entries {
		if _, err := s.AppendAudit(context.Background(), "acme", keyseal.AuditRecord{At: e.TS, Action: e.Action,
			Severity: e.Severity, Actor: e.Actor, Details: e.Details}); err != nil {
			b.Fatal(err)
		}
	}
	cp, err := anchor.Sign(context.Background(), audit.Checkpoint{Origin: anchor.Origin("acme"), Size: head.Seq, Root: head.Hash})
	if err != nil {
		b.Fatal(err)
	}
	s.SetAuditHead("acme", keyseal.AuditHead{Seq: head.Seq, Hash: head.Hash, Checkpoint: cp})
	svc := &audit.Service{Log: s, Anchor: anchor}
	b.ResetTimer()
	for b.Loop() {
		res, err := svc.VerifyCheckpoint(context.Background(), "acme", cp)
		if err != nil || !res.Valid || res.Entries != benchEntries {
			b.Fatalf("VerifyCheckpoint = %+v, %v", res, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/benchEntries, "ns/entry")
}
