package storetest

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// baseTime is the fixtures' clock. It is UTC and already truncated to the
// microsecond, the precision every store must round-trip exactly.
var baseTime = time.Date(2025, time.March, 4, 5, 6, 7, 123456000, time.UTC)

// at returns baseTime plus d; d is kept to whole microseconds by callers.
func at(d time.Duration) time.Time { return baseTime.Add(d) }

// timePtr returns a pointer to a copy of v.
func timePtr(v time.Time) *time.Time { return &v }

// newTenant returns a tenant with every field set to a distinct non-zero
// value (except Revision, which the store assigns), so a round trip that
// drops or mixes up any field fails.
func newTenant(id string) *keyseal.Tenant {
	return &keyseal.Tenant{
		ID: id,
		Key: keyseal.KeyRef{
			Provider: keyseal.ProviderAWS,
			KeyID:    "arn:aws:kms:eu-west-1:111122223333:key/" + id,
			Access: map[string]string{
				"role_arn":    "arn:aws:iam::111122223333:role/keyseal-" + id,
				"external_id": "ext-" + id,
			},
		},
		BYOK:            true,
		Status:          keyseal.StatusSealed,
		SealedSince:     timePtr(at(2 * time.Minute)),
		SealReason:      keyseal.ReasonKeyDisabled,
		LastVerifyError: "DisabledException",
		LastVerifiedAt:  timePtr(at(3 * time.Minute)),
		LastLatencyMS:   42,
		LatencyClass:    "elevated",
		ActiveVersion:   1,
		CreatedAt:       at(0),
		UpdatedAt:       at(time.Minute),

		DegradedSince:       timePtr(at(4 * time.Minute)),
		DegradedNotified:    true,
		RotationDueNotified: 1,
	}
}

// newVersion returns TMK version n of a tenant with distinct wrapped and
// public-key bytes, provider key version and access fields per tenant and
// version.
func newVersion(tenantID string, n int) keyseal.TMKVersion {
	wrapped := sha256.Sum256([]byte(fmt.Sprintf("wrapped/%s/%d", tenantID, n)))
	pub := sha256.Sum256([]byte(fmt.Sprintf("public/%s/%d", tenantID, n)))
	return keyseal.TMKVersion{
		TenantID:   tenantID,
		Version:    n,
		Wrapped:    wrapped[:],
		KeyVersion: fmt.Sprintf("%d", 100+n),
		Key: keyseal.KeyRef{
			Provider: keyseal.ProviderGCP,
			KeyID:    fmt.Sprintf("projects/p/locations/global/keyRings/keyseal/cryptoKeys/%s-%d", tenantID, n),
			Access:   map[string]string{"service_account": "keyseal-" + tenantID + "@p.iam.gserviceaccount.com"},
		},
		SigningPublicKey: pub[:],
		CreatedAt:        at(time.Duration(n) * time.Hour),
	}
}

// rewrapped returns v wrapped anew (another blob, another key version),
// the way a re-wrap after a key change writes it.
func rewrapped(v keyseal.TMKVersion, marker string) keyseal.TMKVersion {
	wrapped := sha256.Sum256([]byte(fmt.Sprintf("rewrapped/%s/%d/%s", v.TenantID, v.Version, marker)))
	v.Wrapped = wrapped[:]
	v.KeyVersion = "rewrap-" + marker
	return v
}

// revoked returns v crypto-erased the way the revoke flow writes it.
func revoked(v keyseal.TMKVersion, when time.Time) keyseal.TMKVersion {
	v.Wrapped = nil
	v.RevokedAt = timePtr(when)
	return v
}

// recordTime is the fixtures' audit record time: baseTime's clock, but
// off the microsecond and outside UTC, so a store must stamp the entry
// with rec.At truncated to the microsecond in UTC (what audit.Next does),
// not with its own clock.
var recordTime = at(30 * time.Minute).Add(789 * time.Nanosecond).In(time.FixedZone("UTC+2", 2*60*60))

// newRecord returns an audit record whose details identify it.
func newRecord(action, marker string) keyseal.AuditRecord {
	return keyseal.AuditRecord{
		At:       recordTime,
		Action:   action,
		Severity: keyseal.SeverityWarning,
		Actor:    "admin:alice@example.com",
		Details:  map[string]string{"marker": marker, "reason": "storetest"},
	}
}

// newAgent returns an agent of a tenant whose key hash is derived from the
// tenant and agent ids, so hashes never collide across fixtures.
func newAgent(tenantID, agentID string, created time.Time) *keyseal.Agent {
	return &keyseal.Agent{
		ID:        agentID,
		TenantID:  tenantID,
		Name:      "agent " + agentID,
		KeyHash:   keyHash(tenantID + "/" + agentID),
		CreatedAt: created,
		CreatedBy: "admin:alice@example.com",
	}
}

// keyHash returns the hex SHA-256 of s, the form stores index keys by.
func keyHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// newStepUp returns an unused step-up token stored under hash. It expires
// far in the future, so a store that hides expired tokens (a DynamoDB TTL
// filter, say) still returns it; expiry is the service's check, not the
// store's.
func newStepUp(hash string) keyseal.StepUpToken {
	return keyseal.StepUpToken{
		Hash:      hash,
		Subject:   "admin:alice@example.com",
		TenantID:  "tenant-stepup",
		ExpiresAt: time.Date(2099, time.January, 2, 3, 4, 5, 678901000, time.UTC),
	}
}

// createTenant creates id with version 1 and a provisioning record, failing
// the test on any error, and returns what was written (Revision 1).
func createTenant(t *testing.T, s keyseal.Store, id string) *keyseal.Tenant {
	t.Helper()
	tn := newTenant(id)
	if err := s.CreateTenant(t.Context(), tn, newVersion(id, 1), newRecord(keyseal.ActionTenantProvision, "create")); err != nil {
		t.Fatalf("CreateTenant(%q): %v", id, err)
	}
	return tn
}

// getTenant fetches a tenant that must exist.
func getTenant(t *testing.T, s keyseal.Store, id string) *keyseal.Tenant {
	t.Helper()
	got, err := s.GetTenant(t.Context(), id)
	if err != nil {
		t.Fatalf("GetTenant(%q): %v", id, err)
	}
	if got == nil {
		t.Fatalf("GetTenant(%q) returned nil and no error", id)
	}
	return got
}

// versions fetches a tenant's TMK versions.
func versions(t *testing.T, s keyseal.Store, id string) []keyseal.TMKVersion {
	t.Helper()
	vs, err := s.Versions(t.Context(), id)
	if err != nil {
		t.Fatalf("Versions(%q): %v", id, err)
	}
	return vs
}

// appendAudit appends n records with the given action and returns the
// entries the store reported.
func appendAudit(t *testing.T, s keyseal.Store, tenantID, action string, n int) []keyseal.AuditEntry {
	t.Helper()
	out := make([]keyseal.AuditEntry, 0, n)
	for i := range n {
		rec := newRecord(action, fmt.Sprintf("%s#%d", action, i))
		rec.At = rec.At.Add(time.Duration(i) * time.Second)
		e, err := s.AppendAudit(t.Context(), tenantID, rec)
		if err != nil {
			t.Fatalf("AppendAudit(%q) #%d: %v", tenantID, i, err)
		}
		out = append(out, e)
	}
	return out
}

// scanAudit returns a tenant's whole chain in store order and the head the
// store reports.
func scanAudit(t *testing.T, s keyseal.Store, tenantID string) ([]keyseal.AuditEntry, keyseal.AuditHead) {
	t.Helper()
	var entries []keyseal.AuditEntry
	head, err := s.ScanAudit(t.Context(), tenantID, func(e keyseal.AuditEntry) error {
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		t.Fatalf("ScanAudit(%q): %v", tenantID, err)
	}
	return entries, head
}

// listAudit runs one ListAudit query that must succeed.
func listAudit(t *testing.T, s keyseal.Store, tenantID string, q keyseal.AuditQuery) []keyseal.AuditEntry {
	t.Helper()
	entries, err := s.ListAudit(t.Context(), tenantID, q)
	if err != nil {
		t.Fatalf("ListAudit(%q, %+v): %v", tenantID, q, err)
	}
	return entries
}

// requireChainLen fails unless the tenant's chain holds exactly n entries
// and the store's head agrees.
func requireChainLen(t *testing.T, s keyseal.Store, tenantID string, n int) []keyseal.AuditEntry {
	t.Helper()
	entries, head := scanAudit(t, s, tenantID)
	if len(entries) != n {
		t.Fatalf("audit chain of %q has %d entries, want %d: %s", tenantID, len(entries), n, seqsOf(entries))
	}
	if head.Seq != int64(n) {
		t.Fatalf("audit head of %q is seq %d, want %d", tenantID, head.Seq, n)
	}
	return entries
}

// requireValidChain fails unless audit.VerifyChain accepts the tenant's
// chain with n entries.
func requireValidChain(t *testing.T, s keyseal.Store, tenantID string, n int64) {
	t.Helper()
	res, err := audit.VerifyChain(t.Context(), s, tenantID)
	if err != nil {
		t.Fatalf("VerifyChain(%q): %v", tenantID, err)
	}
	if !res.Valid || res.Entries != n || res.FirstBadSeq != nil {
		t.Fatalf("VerifyChain(%q) = %s, want valid with %d entries", tenantID, describeResult(res), n)
	}
}

// requireEntry checks that e is entry seq of tenantID, links to prevHash,
// carries rec's fields and hashes correctly.
func requireEntry(t *testing.T, e keyseal.AuditEntry, tenantID string, seq int64, prevHash string, rec keyseal.AuditRecord) {
	t.Helper()
	if e.TenantID != tenantID || e.Seq != seq || e.PrevHash != prevHash {
		t.Errorf("entry = {tenant %q seq %d prev %q}, want {tenant %q seq %d prev %q}",
			e.TenantID, e.Seq, e.PrevHash, tenantID, seq, prevHash)
	}
	if e.Action != rec.Action || e.Severity != rec.Severity || e.Actor != rec.Actor {
		t.Errorf("entry %d = {action %q severity %q actor %q}, want {%q %q %q}",
			e.Seq, e.Action, e.Severity, e.Actor, rec.Action, rec.Severity, rec.Actor)
	}
	requireEqual(t, fmt.Sprintf("entry %d details", e.Seq), e.Details, rec.Details)
	if want := rec.At.UTC().Truncate(time.Microsecond); !e.TS.Equal(want) || e.TS.Location() != time.UTC {
		t.Errorf("entry %d ts = %s, want the record's At truncated to the microsecond, in UTC: %s",
			e.Seq, e.TS.Format(time.RFC3339Nano), want.Format(time.RFC3339Nano))
	}
	if e.Hash == "" || e.Hash != audit.Hash(e) {
		t.Errorf("entry %d hash = %q, want audit.Hash(entry) = %q", e.Seq, e.Hash, audit.Hash(e))
	}
}

// requireCode fails unless err carries the keyseal error code want.
func requireCode(t *testing.T, err error, want, op string) {
	t.Helper()
	if got := keyseal.ErrorCode(err); got != want {
		t.Fatalf("%s: error %v (code %q), want code %q", op, err, got, want)
	}
}

// seqsOf renders entry seqs for failure messages.
func seqsOf(entries []keyseal.AuditEntry) string {
	seqs := make([]int64, len(entries))
	for i, e := range entries {
		seqs[i] = e.Seq
	}
	return fmt.Sprint(seqs)
}

// describeResult renders an audit.Result for failure messages.
func describeResult(r audit.Result) string {
	bad := "nil"
	if r.FirstBadSeq != nil {
		bad = fmt.Sprint(*r.FirstBadSeq)
	}
	return fmt.Sprintf("{Valid:%t Entries:%d FirstBadSeq:%s Reason:%q CheckpointSize:%d}", r.Valid, r.Entries, bad, r.Reason, r.CheckpointSize)
}
