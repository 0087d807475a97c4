package tenantkms_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// snapshot is what a failed operation (rotate, revoke, migrate) must leave
// exactly as it was: the row, every version, the chain, the outbox.
type snapshot struct {
	tenant   *keyseal.Tenant
	versions []keyseal.TMKVersion
	entries  int
	events   int
}

func (e *env) snapshot(t *testing.T, id string) snapshot {
	t.Helper()
	entries, err := e.store.ListAudit(context.Background(), id, keyseal.AuditQuery{Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return snapshot{tenant: e.tenant(t, id), versions: e.versions(t, id), entries: len(entries),
		events: e.events.count(keyseal.EventSealed) + e.events.count(keyseal.EventUnsealed)}
}

// requireUnchanged fails unless id's state is what before recorded; what
// names the operation that failed.
func (e *env) requireUnchanged(t *testing.T, id string, before snapshot, what string) {
	t.Helper()
	after := e.snapshot(t, id)
	if after.tenant.Revision != before.tenant.Revision || !after.tenant.Key.Equal(before.tenant.Key) ||
		after.entries != before.entries || after.events != before.events || len(after.versions) != len(before.versions) {
		t.Fatalf("%s wrote something: before %+v, after %+v", what, before, after)
	}
	for i := range after.versions {
		if !bytes.Equal(after.versions[i].Wrapped, before.versions[i].Wrapped) || !after.versions[i].Key.Equal(before.versions[i].Key) {
			t.Fatalf("%s changed version %d", what, after.versions[i].Version)
		}
	}
}
