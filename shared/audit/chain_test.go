package audit_test

import (
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/keyseal"
)

func chain(n int) []keyseal.AuditEntry {
	var head keyseal.AuditHead
	var out []keyseal.AuditEntry
	ts := time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC)
	for i := range n {
		e := audit.Next("acme", head, keyseal.AuditRecord{Action: keyseal.ActionUnseal, Severity: keyseal.SeverityCritical,
			Actor: "system:poller", Details: map[string]string{"i": string(rune('a' + i))}}, ts.Add(time.Duration(i)*time.Second))
		out = append(out, e)
		head = keyseal.AuditHead{Seq: e.Seq, Hash: e.Hash}
	}
	return out
}

func verify(entries []keyseal.AuditEntry, head keyseal.AuditHead) audit.Result {
	var v audit.Verifier
	for _, e := range entries {
		v.Add(e)
	}
	return v.Finish(head)
}

func headOf(entries []keyseal.AuditEntry) keyseal.AuditHead {
	last := entries[len(entries)-1]
	return keyseal.AuditHead{Seq: last.Seq, Hash: last.Hash}
}

func TestNextLinksAndTruncates(t *testing.T) {
	c := chain(3)
	if c[0].Seq != 1 || c[0].PrevHash != "" || c[1].PrevHash != c[0].Hash || c[2].Seq != 3 {
		t.Fatalf("chain not linked: %+v", c)
	}
	if c[0].TS.Nanosecond()%1000 != 0 || c[0].TS.Location() != time.UTC {
		t.Fatalf("ts %v must be UTC microseconds", c[0].TS)
	}
	if audit.Hash(c[1]) != c[1].Hash || len(c[1].Hash) != 64 {
		t.Fatal("hash does not recompute")
	}
	// Nil and empty details hash alike (stores may drop an empty map).
	e := c[0]
	e.Details = nil
	f := e
	f.Details = map[string]string{}
	if audit.Hash(e) != audit.Hash(f) {
		t.Fatal("nil and empty details hash differently")
	}
}

func TestVerifierCatchesTampering(t *testing.T) {
	seq := func(r audit.Result) int64 {
		if r.FirstBadSeq == nil {
			return 0
		}
		return *r.FirstBadSeq
	}
	good := chain(5)
	if r := verify(good, headOf(good)); !r.Valid || r.Entries != 5 || r.FirstBadSeq != nil {
		t.Fatalf("untouched chain: %+v", r)
	}
	if r := verify(nil, keyseal.AuditHead{}); !r.Valid || r.Entries != 0 {
		t.Fatalf("empty chain: %+v", r)
	}

	cases := map[string]struct {
		mutate func([]keyseal.AuditEntry) ([]keyseal.AuditEntry, keyseal.AuditHead)
		bad    int64
	}{
		"edited details": {func(c []keyseal.AuditEntry) ([]keyseal.AuditEntry, keyseal.AuditHead) {
			c[2].Details = map[string]string{"i": "x"}
			return c, headOf(c)
		}, 3},
		"edited actor": {func(c []keyseal.AuditEntry) ([]keyseal.AuditEntry, keyseal.AuditHead) {
			c[1].Actor = "admin:mallory"
			return c, headOf(c)
		}, 2},
		"edited and rehashed": {func(c []keyseal.AuditEntry) ([]keyseal.AuditEntry, keyseal.AuditHead) {
			c[1].Severity = keyseal.SeverityInfo
			c[1].Hash = audit.Hash(c[1]) // the next entry's prev_hash no longer matches
			return c, headOf(c)
		}, 3},
		"removed from the middle": {func(c []keyseal.AuditEntry) ([]keyseal.AuditEntry, keyseal.AuditHead) {
			return append(c[:2:2], c[3:]...), headOf(c)
		}, 3},
		"removed from the tail": {func(c []keyseal.AuditEntry) ([]keyseal.AuditEntry, keyseal.AuditHead) {
			return c[:4], headOf(c)
		}, 5},
		"reordered": {func(c []keyseal.AuditEntry) ([]keyseal.AuditEntry, keyseal.AuditHead) {
			c[1], c[2] = c[2], c[1]
			return c, headOf(c)
		}, 2},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			entries, head := tc.mutate(chain(5))
			r := verify(entries, head)
			if r.Valid || seq(r) != tc.bad {
				t.Fatalf("got valid=%v first_bad_seq=%d, want invalid at %d", r.Valid, seq(r), tc.bad)
			}
		})
	}
}
