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

// Why a verify answers valid: false.
const (
	// ReasonBroken: an entry does not recompute or link (edited, removed,
	// reordered), or the head does not match the last entry.
	ReasonBroken = "broken"
	// ReasonCorrupt: a stored entry cannot be decoded at all.
	ReasonCorrupt = "corrupt"
	// ReasonUnsigned: the stored head carries no signed checkpoint.
	ReasonUnsigned = "unsigned"
	// ReasonBadSignature: a checkpoint (the caller's, or the stored
	// head's) is not signed by keyseal's audit key, or the head's
	// checkpoint does not match the head.
	ReasonBadSignature = "bad_signature"
	// ReasonUnknownOrigin: the checkpoint is keyseal's but names another
	// chain (another tenant).
	ReasonUnknownOrigin = "unknown_origin"
	// ReasonTruncated: the chain is shorter than the saved checkpoint.
	ReasonTruncated = "truncated"
	// ReasonRewritten: the chain differs from the saved checkpoint at or
	// before its size.
	ReasonRewritten = "rewritten"
)

// Result is the outcome of a verify.
type Result struct {
	Valid       bool   `json:"valid"`
	Entries     int64  `json:"entries"`
	FirstBadSeq *int64 `json:"first_bad_seq"`
	// Reason says why Valid is false ("" when valid).
	Reason string `json:"reason,omitempty"`
	// CheckpointSize is the size of the checkpoint verified against (POST
	// /admin/audit/verify only).
	CheckpointSize int64 `json:"checkpoint_size,omitempty"`
}

// Verifier recomputes a chain fed in ascending order.
type Verifier struct {
	prev    keyseal.AuditHead
	entries int64
	bad     *int64
	reason  string
	// watch is a seq whose stored hash Watched reports.
	watch   int64
	watched string
}

// Watch asks the verifier to remember the hash of entry seq.
func (v *Verifier) Watch(seq int64) { v.watch = seq }

// Watched returns the stored hash of the watched entry ("" if not seen).
func (v *Verifier) Watched() string { return v.watched }

// Add checks one entry: it decoded, its seq follows the previous, its
// prev_hash is the previous hash and its own hash recomputes.
func (v *Verifier) Add(e keyseal.AuditEntry) {
	v.entries++
	if e.Seq == v.watch && !e.Corrupt {
		v.watched = e.Hash
	}
	if v.bad != nil {
		return
	}
	seq := v.prev.Seq + 1
	switch {
	case e.Corrupt:
		v.bad, v.reason = &seq, ReasonCorrupt
	case e.Seq != seq || e.PrevHash != v.prev.Hash || Hash(e) != e.Hash:
		v.bad, v.reason = &seq, ReasonBroken
	}
	v.prev = keyseal.AuditHead{Seq: e.Seq, Hash: e.Hash}
}

// Finish compares the end of the chain with the head the store holds, which
// catches entries removed from the tail.
func (v *Verifier) Finish(head keyseal.AuditHead) Result {
	if v.bad == nil && (head.Seq != v.prev.Seq || head.Hash != v.prev.Hash) {
		seq := v.prev.Seq + 1
		v.bad, v.reason = &seq, ReasonBroken
	}
	return Result{Valid: v.bad == nil, Entries: v.entries, FirstBadSeq: v.bad, Reason: v.reason}
}

// VerifyChain recomputes a tenant's whole chain from the store.
func VerifyChain(ctx context.Context, store keyseal.AuditLog, tenantID string) (Result, error) {
	res, _, err := verifyChain(ctx, store, tenantID, &Verifier{})
	return res, err
}

// verifyChain runs v over the tenant's chain and returns its result and
// the head the store holds.
func verifyChain(ctx context.Context, store keyseal.AuditLog, tenantID string, v *Verifier) (Result, keyseal.AuditHead, error) {
	head, err := store.ScanAudit(ctx, tenantID, func(e keyseal.AuditEntry) error {
		v.Add(e)
		return nil
	})
	if err != nil {
		return Result{}, keyseal.AuditHead{}, err
	}
	return v.Finish(head), head, nil
}
