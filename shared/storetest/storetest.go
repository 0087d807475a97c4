// Package storetest is the conformance suite for keyseal.Store adapters.
// Every adapter (the embedded bbolt store, the DynamoDB store, the
// in-memory memstore) runs Run from its own tests, so they all honour
// exactly the contract written in shared/keyseal/store.go: the same error
// codes, orderings, optimistic locking, conditional version writes and
// all-or-nothing writes.
package storetest

import (
	"testing"

	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// Harness tells the suite how to make and, for the tamper tests, how to
// corrupt stores. Corruption is adapter-specific because it must bypass the
// Store interface, which never updates or deletes audit entries.
type Harness struct {
	// New returns an empty, ready store; the suite calls it once per
	// subtest, so subtests never see each other's data. Cleanup belongs in
	// t.Cleanup.
	New func(t *testing.T) keyseal.Store
	// Tamper rewrites one stored audit entry in place (bypassing the chain),
	// so the suite can prove audit.VerifyChain catches it. Nil skips that
	// subtest.
	Tamper func(t *testing.T, s keyseal.Store, tenantID string, seq int64, edit func(*keyseal.AuditEntry))
	// DeleteAudit removes one stored audit entry, leaving the chain head as
	// it is. Nil skips those subtests.
	DeleteAudit func(t *testing.T, s keyseal.Store, tenantID string, seq int64)
	// Corrupt replaces one stored audit entry with an item the store
	// cannot decode (not JSON, a field of the wrong type). Nil skips
	// those subtests.
	Corrupt func(t *testing.T, s keyseal.Store, tenantID string, seq int64)
	// Anchored returns an empty store that signs checkpoints with a (like
	// New, once per subtest). Nil skips the anchored-chain subtests.
	Anchored func(t *testing.T, a *audit.Anchor) keyseal.Store
	// SetHead overwrites a tenant's stored chain head, checkpoint included,
	// bypassing the chain; the zero head deletes it. Nil skips the
	// anchored-chain subtests that need it.
	SetHead func(t *testing.T, s keyseal.Store, tenantID string, head keyseal.AuditHead)
}

// test is one conformance check, run against a fresh store.
type test struct {
	name string
	fn   func(t *testing.T, s keyseal.Store)
}

// Run runs the whole conformance suite against stores made by h.New. Each
// check is a subtest with its own store, so a failure names the broken
// part of the contract and `go test -run 'Store/UpdateTenant'` can focus it.
func Run(t *testing.T, h Harness) {
	t.Helper()
	if h.New == nil {
		t.Fatal("storetest: Harness.New is nil")
	}
	var tests []test
	tests = append(tests, tenantTests()...)
	tests = append(tests, keyIndexTests()...)
	tests = append(tests, auditTests(h)...)
	tests = append(tests, agentTests()...)
	tests = append(tests, stepUpTests()...)
	tests = append(tests, outboxTests()...)
	tests = append(tests, waiverTests()...)
	tests = append(tests, webhookTests()...)
	tests = append(tests, miscTests()...)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := h.New(t)
			if s == nil {
				t.Fatal("Harness.New returned a nil store")
			}
			tc.fn(t, s)
		})
	}
	runAnchored(t, h)
}
