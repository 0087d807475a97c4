package storetest

import (
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
)

func outboxTests() []test {
	return []test{
		{"Outbox/WrittenWithChange", testOutboxWrittenWithChange},
		{"Outbox/NothingOnFailedChange", testOutboxNothingOnFailedChange},
		{"Outbox/InvalidEvent", testOutboxInvalidEvent},
		{"Outbox/Duplicate", testOutboxDuplicate},
		{"Outbox/ListAndAck", testOutboxListAndAck},
	}
}

// newEvent returns an event of a tenant at baseTime plus d, with details
// that identify it.
func newEvent(tenantID, id string, d time.Duration) keyseal.Event {
	return keyseal.Event{ID: id, Type: keyseal.EventSealed, TenantID: tenantID, Time: at(d).Format(time.RFC3339Nano),
		Data: json.RawMessage(`{"reason":"key_disabled","marker":"` + id + `"}`)}
}

func listOutbox(t *testing.T, s keyseal.Store, limit int) []keyseal.Event {
	t.Helper()
	es, err := s.ListOutbox(t.Context(), limit)
	if err != nil {
		t.Fatalf("ListOutbox(%d): %v", limit, err)
	}
	return es
}

func eventIDs(es []keyseal.Event) string {
	ids := make([]string, len(es))
	for i, e := range es {
		ids[i] = e.ID
	}
	return fmt.Sprint(ids)
}

// testOutboxWrittenWithChange: the events of a change are in the outbox
// once it commits, exactly as given, beside its audit entry.
func testOutboxWrittenWithChange(t *testing.T, s keyseal.Store) {
	if got := listOutbox(t, s, 0); len(got) != 0 {
		t.Fatalf("a new store's outbox holds %s", eventIDs(got))
	}
	tn := createTenant(t, s, "tenant-a")
	e1, e2 := newEvent("tenant-a", "evt-1", time.Second), newEvent("tenant-a", "evt-2", 2*time.Second)
	e2.Type, e2.Data = keyseal.EventUnsealed, json.RawMessage(`{"trigger":"poller","n":[1,2.5,{"x":null}]}`)
	rec := newRecord(keyseal.ActionSeal, "seal")
	if err := s.UpdateTenant(t.Context(), tn, keyseal.Change{Audit: &rec, Events: []keyseal.Event{e2, e1}}); err != nil {
		t.Fatalf("UpdateTenant: %v", err)
	}
	requireEqual(t, "ListOutbox", listOutbox(t, s, 0), []keyseal.Event{e1, e2})
	requireChainLen(t, s, "tenant-a", 2)

	// A change without events adds none.
	if err := s.UpdateTenant(t.Context(), tn, keyseal.Change{}); err != nil {
		t.Fatalf("UpdateTenant(no events): %v", err)
	}
	if got := listOutbox(t, s, 0); len(got) != 2 {
		t.Fatalf("outbox after a change without events: %s", eventIDs(got))
	}
}

// testOutboxNothingOnFailedChange: a change refused for any reason leaves
// no event behind, so no event is ever sent for a transition that did not
// happen.
func testOutboxNothingOnFailedChange(t *testing.T, s keyseal.Store) {
	tn := createTenant(t, s, "tenant-a")
	stale := tn.Clone()
	if err := s.UpdateTenant(t.Context(), tn, keyseal.Change{}); err != nil {
		t.Fatalf("UpdateTenant: %v", err)
	}
	rec := newRecord(keyseal.ActionSeal, "stale")
	requireCode(t, s.UpdateTenant(t.Context(), stale, keyseal.Change{Audit: &rec,
		Events: []keyseal.Event{newEvent("tenant-a", "evt-stale", time.Second)}}), keyseal.ECONFLICT, "UpdateTenant(stale revision)")

	requireCode(t, s.UpdateTenant(t.Context(), tn, keyseal.Change{NewVersions: []keyseal.TMKVersion{newVersion("tenant-a", 1)},
		Events: []keyseal.Event{newEvent("tenant-a", "evt-version", time.Second)}}), keyseal.ECONFLICT, "UpdateTenant(version exists)")

	ghost := newTenant("no-such-tenant")
	requireCode(t, s.UpdateTenant(t.Context(), ghost, keyseal.Change{
		Events: []keyseal.Event{newEvent("no-such-tenant", "evt-ghost", time.Second)}}), keyseal.ENOTFOUND, "UpdateTenant(unknown tenant)")

	if got := listOutbox(t, s, 0); len(got) != 0 {
		t.Fatalf("failed changes left events in the outbox: %s", eventIDs(got))
	}
	requireChainLen(t, s, "tenant-a", 1)
}

// testOutboxInvalidEvent: an event without an id, type or time, or of
// another tenant, or twice in one change, is refused with EINVALID and
// nothing of the change is written.
func testOutboxInvalidEvent(t *testing.T, s keyseal.Store) {
	tn := createTenant(t, s, "tenant-a")
	good := newEvent("tenant-a", "evt-good", time.Second)
	for name, bad := range map[string][]keyseal.Event{
		"no id":        {good, func() keyseal.Event { e := good; e.ID = ""; return e }()},
		"no type":      {func() keyseal.Event { e := good; e.Type = ""; return e }()},
		"bad time":     {func() keyseal.Event { e := good; e.Time = "yesterday"; return e }()},
		"other tenant": {newEvent("tenant-b", "evt-b", time.Second)},
		"twice":        {good, good},
		"no data":      {func() keyseal.Event { e := good; e.Data = nil; return e }()},
		"data array":   {func() keyseal.Event { e := good; e.Data = json.RawMessage(`[1]`); return e }()},
		"data spaced":  {func() keyseal.Event { e := good; e.Data = json.RawMessage(`{ "a": 1 }`); return e }()},
	} {
		rec := newRecord(keyseal.ActionSeal, name)
		next := tn.Clone()
		next.Status = keyseal.StatusActive
		requireCode(t, s.UpdateTenant(t.Context(), next, keyseal.Change{Audit: &rec, Events: bad}), keyseal.EINVALID, "UpdateTenant("+name+")")
	}
	if got := listOutbox(t, s, 0); len(got) != 0 {
		t.Fatalf("refused changes left events in the outbox: %s", eventIDs(got))
	}
	if got := getTenant(t, s, "tenant-a"); got.Revision != 1 || got.Status != keyseal.StatusSealed {
		t.Fatalf("a refused change moved the row: revision %d status %s", got.Revision, got.Status)
	}
	requireChainLen(t, s, "tenant-a", 1)
}

// testOutboxDuplicate: an event already in the outbox is never overwritten;
// the change carrying it again is refused whole.
func testOutboxDuplicate(t *testing.T, s keyseal.Store) {
	tn := createTenant(t, s, "tenant-a")
	e := newEvent("tenant-a", "evt-1", time.Second)
	if err := s.UpdateTenant(t.Context(), tn, keyseal.Change{Events: []keyseal.Event{e}}); err != nil {
		t.Fatalf("UpdateTenant: %v", err)
	}
	again := e
	again.Data = json.RawMessage(`{"reason":"access_denied"}`)
	requireCode(t, s.UpdateTenant(t.Context(), tn, keyseal.Change{Events: []keyseal.Event{again}}), keyseal.ECONFLICT, "UpdateTenant(event again)")
	requireEqual(t, "ListOutbox", listOutbox(t, s, 0), []keyseal.Event{e})
	if got := getTenant(t, s, "tenant-a"); got.Revision != 2 {
		t.Fatalf("the refused change moved the row to revision %d, want 2", got.Revision)
	}
}

// testOutboxListAndAck: the outbox lists oldest first across tenants (and
// so across partitions), honours a limit, and forgets acked events; acking
// twice, or an event that is gone, is no error.
func testOutboxListAndAck(t *testing.T, s keyseal.Store) {
	var want []keyseal.Event
	tenants := []string{"tenant-a", "tenant-b", "tenant-c", "tenant-d"}
	for i, id := range tenants {
		tn := createTenant(t, s, id)
		// Interleaved in time: tenant i's events at i, i+4, i+8 seconds.
		var es []keyseal.Event
		for j := range 3 {
			es = append(es, newEvent(id, fmt.Sprintf("evt-%02d", i+4*j), time.Duration(i+4*j)*time.Second))
		}
		if err := s.UpdateTenant(t.Context(), tn, keyseal.Change{Events: es}); err != nil {
			t.Fatalf("UpdateTenant(%s): %v", id, err)
		}
	}
	for k := range 12 {
		want = append(want, newEvent(tenants[k%4], fmt.Sprintf("evt-%02d", k), time.Duration(k)*time.Second))
	}
	requireEqual(t, "ListOutbox(all)", listOutbox(t, s, 0), want)
	requireEqual(t, "ListOutbox(5)", listOutbox(t, s, 5), want[:5])

	if err := s.AckOutbox(t.Context(), want[:5]); err != nil {
		t.Fatalf("AckOutbox: %v", err)
	}
	requireEqual(t, "ListOutbox after ack", listOutbox(t, s, 0), want[5:])
	if err := s.AckOutbox(t.Context(), want[:6]); err != nil {
		t.Fatalf("AckOutbox(again, and one more): %v", err)
	}
	requireEqual(t, "ListOutbox after second ack", listOutbox(t, s, 0), want[6:])
	if err := s.AckOutbox(t.Context(), want); err != nil {
		t.Fatalf("AckOutbox(all): %v", err)
	}
	if got := listOutbox(t, s, 0); len(got) != 0 {
		t.Fatalf("outbox after acking everything: %s", eventIDs(got))
	}
}
