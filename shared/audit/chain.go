// Package audit computes and verifies the per-tenant audit hash chain
// (docs/contract.md §7). Stores call Next to link an entry; Verify recomputes a chain.
package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// domainTag separates keyseal audit hashes from any other SHA-256 use of the
// same bytes.
const domainTag = "keyseal.audit.v1\x00"

// canonical is the hashed form of an entry: fixed field order, UTC
// nanosecond timestamps, details as a JSON object (encoding/json sorts map
// keys), so the same entry always hashes the same.
type canonical struct {
	TenantID string            `json:"tenant_id"`
	Seq      int64             `json:"seq"`
	TS       string            `json:"ts"`
	Action   string            `json:"action"`
	Severity string            `json:"severity"`
	Actor    string            `json:"actor"`
	Details  map[string]string `json:"details"`
}

// Hash returns the hex hash of e given its PrevHash.
func Hash(e keyseal.AuditEntry) string {
	details := e.Details
	if details == nil {
		details = map[string]string{}
	}
	b, err := json.Marshal(canonical{e.TenantID, e.Seq, e.TS.UTC().Format(time.RFC3339Nano), e.Action, e.Severity, e.Actor, details})
	if err != nil { // unreachable: only strings and ints
		panic(err)
	}
	prev, _ := hex.DecodeString(e.PrevHash)
	h := sha256.New()
	h.Write([]byte(domainTag))
	h.Write(prev)
	h.Write(b)
	return hex.EncodeToString(h.Sum(nil))
}

// Next builds the entry that follows head. ts is truncated to microseconds
// so every store round-trips it exactly.
func Next(tenantID string, head keyseal.AuditHead, rec keyseal.AuditRecord, ts time.Time) keyseal.AuditEntry {
	e := keyseal.AuditEntry{
		TenantID: tenantID,
		Seq:      head.Seq + 1,
		TS:       ts.UTC().Truncate(time.Microsecond),
		Action:   rec.Action,
		Severity: rec.Severity,
		Actor:    rec.Actor,
		Details:  rec.Details,
		PrevHash: head.Hash,
	}
	e.Hash = Hash(e)
	return e
}

// Result is the outcome of Verify.
type Result struct {
	Valid       bool   `json:"valid"`
	Entries     int64  `json:"entries"`
	FirstBadSeq *int64 `json:"first_bad_seq"`
}

// Verifier recomputes a chain fed in ascending order.
type Verifier struct {
	prev    keyseal.AuditHead
	entries int64
	bad     *int64
}

// Add checks one entry: its seq follows the previous, its prev_hash is the
// previous hash and its own hash recomputes.
func (v *Verifier) Add(e keyseal.AuditEntry) {
	v.entries++
	if v.bad != nil {
		return
	}
	if e.Seq != v.prev.Seq+1 || e.PrevHash != v.prev.Hash || Hash(e) != e.Hash {
		seq := v.prev.Seq + 1
		v.bad = &seq
	}
	v.prev = keyseal.AuditHead{Seq: e.Seq, Hash: e.Hash}
}

// Finish compares the end of the chain with the head the store holds, which
// catches entries removed from the tail.
func (v *Verifier) Finish(head keyseal.AuditHead) Result {
	if v.bad == nil && (head.Seq != v.prev.Seq || head.Hash != v.prev.Hash) {
		seq := v.prev.Seq + 1
		v.bad = &seq
	}
	return Result{Valid: v.bad == nil, Entries: v.entries, FirstBadSeq: v.bad}
}

// VerifyChain recomputes a tenant's whole chain from the store.
func VerifyChain(ctx context.Context, store keyseal.AuditLog, tenantID string) (Result, error) {
	var v Verifier
	head, err := store.ScanAudit(ctx, tenantID, func(e keyseal.AuditEntry) error {
		v.Add(e)
		return nil
	})
	if err != nil {
		return Result{}, err
	}
	return v.Finish(head), nil
}
