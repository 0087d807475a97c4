package storetest

import (
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
)

func webhookTests() []test {
	return []test{
		{"Webhook/CreateGetList", testWebhookCreateGetList},
		{"Webhook/Invalid", testWebhookInvalid},
		{"Webhook/Limit", testWebhookLimit},
		{"Webhook/ConcurrentLimit", testWebhookConcurrentLimit},
		{"Webhook/UpdateRevision", testWebhookUpdate},
		{"Webhook/Delete", testWebhookDelete},
		{"Webhook/DeliveriesKept", testWebhookDeliveriesKept},
		{"Webhook/PutEvent", testWebhookPutEvent},
	}
}

// newWebhook returns a subscription with every field set (but Revision,
// which the store assigns): two secrets, the older one expiring.
func newWebhook(tenantID, id string, created time.Time) *keyseal.Webhook {
	return &keyseal.Webhook{
		ID: id, TenantID: tenantID, URL: "https://hooks.example.com/" + tenantID + "/" + id,
		Events:      []string{keyseal.EventSealed, keyseal.EventRotated},
		Description: "hook " + id, CreatedAt: created,
		Secrets: []keyseal.WebhookSecret{
			{Sealed: keyseal.Wrapped{Blob: []byte("sealed-new-" + id), KeyVersion: "kv2"}, CreatedAt: created.Add(time.Hour)},
			{Sealed: keyseal.Wrapped{Blob: []byte("sealed-old-" + id), KeyVersion: "kv1"}, CreatedAt: created, ExpiresAt: created.Add(25 * time.Hour)},
		},
		Disabled: true, DisabledAt: timePtr(created.Add(2 * time.Hour)), DisabledReason: "410 Gone",
	}
}

func getWebhook(t *testing.T, s keyseal.Store, tenantID, id string) *keyseal.Webhook {
	t.Helper()
	w, err := s.GetWebhook(t.Context(), tenantID, id)
	if err != nil {
		t.Fatalf("GetWebhook(%s, %s): %v", tenantID, id, err)
	}
	return w
}

func listWebhooks(t *testing.T, s keyseal.Store, tenantID string) []keyseal.Webhook {
	t.Helper()
	ws, err := s.ListWebhooks(t.Context(), tenantID)
	if err != nil {
		t.Fatalf("ListWebhooks(%s): %v", tenantID, err)
	}
	return ws
}

func createWebhook(t *testing.T, s keyseal.Store, w *keyseal.Webhook) {
	t.Helper()
	if err := s.CreateWebhook(t.Context(), w, newRecord(keyseal.ActionWebhookCreate, w.ID)); err != nil {
		t.Fatalf("CreateWebhook(%s): %v", w.ID, err)
	}
}

// A subscription reads back as written (revision 1) with its audit entry
// in the same chain; lists are oldest first; another tenant sees none of
// it, by list or by id; a duplicate id is ECONFLICT and audits nothing.
func testWebhookCreateGetList(t *testing.T, s keyseal.Store) {
	w2 := newWebhook("tenant-a", "wh-2", at(time.Minute))
	w1 := newWebhook("tenant-a", "wh-1", at(2*time.Minute))
	w2.Disabled, w2.DisabledAt, w2.DisabledReason, w2.Description = false, nil, "", ""
	rec := newRecord(keyseal.ActionWebhookCreate, "wh-2")
	if err := s.CreateWebhook(t.Context(), w2, rec); err != nil {
		t.Fatalf("CreateWebhook: %v", err)
	}
	if w2.Revision != 1 {
		t.Fatalf("CreateWebhook set revision %d, want 1", w2.Revision)
	}
	entries := requireChainLen(t, s, "tenant-a", 1)
	requireEntry(t, entries[0], "tenant-a", 1, "", rec)
	createWebhook(t, s, w1)
	requireEqual(t, "GetWebhook", getWebhook(t, s, "tenant-a", "wh-1"), w1)
	requireEqual(t, "GetWebhook", getWebhook(t, s, "tenant-a", "wh-2"), w2)
	requireEqual(t, "ListWebhooks (oldest first)", listWebhooks(t, s, "tenant-a"), []keyseal.Webhook{*w2, *w1})

	_, err := s.GetWebhook(t.Context(), "tenant-b", "wh-1")
	requireCode(t, err, keyseal.ENOTFOUND, "GetWebhook(other tenant's id)")
	_, err = s.GetWebhook(t.Context(), "tenant-a", "wh-none")
	requireCode(t, err, keyseal.ENOTFOUND, "GetWebhook(unknown id)")
	if got := listWebhooks(t, s, "tenant-b"); len(got) != 0 {
		t.Fatalf("ListWebhooks(other tenant) = %d subscriptions", len(got))
	}
	dup := newWebhook("tenant-a", "wh-1", at(time.Hour))
	requireCode(t, s.CreateWebhook(t.Context(), dup, newRecord(keyseal.ActionWebhookCreate, "dup")), keyseal.ECONFLICT, "CreateWebhook(duplicate id)")
	requireEqual(t, "GetWebhook after a duplicate", getWebhook(t, s, "tenant-a", "wh-1"), w1)
	requireValidChain(t, s, "tenant-a", 2)
}

// A subscription without tenant, id, url or secret, or an untimed record,
// is refused and writes nothing.
func testWebhookInvalid(t *testing.T, s keyseal.Store) {
	for name, edit := range map[string]func(*keyseal.Webhook){
		"no tenant": func(w *keyseal.Webhook) { w.TenantID = "" },
		"no id":     func(w *keyseal.Webhook) { w.ID = "" },
		"no url":    func(w *keyseal.Webhook) { w.URL = "" },
		"no secret": func(w *keyseal.Webhook) { w.Secrets = nil },
	} {
		w := newWebhook("tenant-a", "wh-1", at(0))
		edit(w)
		requireCode(t, s.CreateWebhook(t.Context(), w, newRecord(keyseal.ActionWebhookCreate, name)), keyseal.EINVALID, "CreateWebhook("+name+")")
	}
	rec := newRecord(keyseal.ActionWebhookCreate, "untimed")
	rec.At = time.Time{}
	requireCode(t, s.CreateWebhook(t.Context(), newWebhook("tenant-a", "wh-1", at(0)), rec), keyseal.EINVALID, "CreateWebhook(untimed record)")
	if got := listWebhooks(t, s, "tenant-a"); len(got) != 0 {
		t.Fatalf("refused creates left %d subscriptions", len(got))
	}
	requireChainLen(t, s, "tenant-a", 0)
	err := s.RecordDelivery(t.Context(), keyseal.DeliveryAttempt{TenantID: "tenant-a", WebhookID: "wh-1", EventID: "evt", At: at(0)})
	requireCode(t, err, keyseal.ENOTFOUND, "RecordDelivery(unknown subscription)")
}

// The 21st subscription of a tenant is EINVALID and audits nothing;
// another tenant has its own 20; a delete frees a place.
func testWebhookLimit(t *testing.T, s keyseal.Store) {
	for i := range keyseal.MaxWebhooksPerTenant {
		createWebhook(t, s, newWebhook("tenant-a", fmt.Sprintf("wh-%02d", i), at(time.Duration(i)*time.Second)))
	}
	extra := newWebhook("tenant-a", "wh-extra", at(time.Hour))
	requireCode(t, s.CreateWebhook(t.Context(), extra, newRecord(keyseal.ActionWebhookCreate, "extra")), keyseal.EINVALID, "CreateWebhook(21st)")
	if got := listWebhooks(t, s, "tenant-a"); len(got) != keyseal.MaxWebhooksPerTenant {
		t.Fatalf("ListWebhooks after the 21st = %d, want %d", len(got), keyseal.MaxWebhooksPerTenant)
	}
	requireChainLen(t, s, "tenant-a", keyseal.MaxWebhooksPerTenant)
	createWebhook(t, s, newWebhook("tenant-b", "wh-b", at(0)))
	if err := s.DeleteWebhook(t.Context(), "tenant-a", "wh-00", newRecord(keyseal.ActionWebhookDelete, "wh-00")); err != nil {
		t.Fatalf("DeleteWebhook: %v", err)
	}
	createWebhook(t, s, extra)
	requireCode(t, s.CreateWebhook(t.Context(), newWebhook("tenant-a", "wh-extra2", at(time.Hour)), newRecord(keyseal.ActionWebhookCreate, "extra2")),
		keyseal.EINVALID, "CreateWebhook(21st after a delete and a create)")
}

// Concurrent creates (8 writers) never pass the limit: exactly 20 succeed,
// every other is EINVALID, and the chain holds one entry per success.
func testWebhookConcurrentLimit(t *testing.T, s keyseal.Store) {
	const writers, each = 8, 4
	var mu sync.Mutex
	ok, refused := 0, 0
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range each {
				id := fmt.Sprintf("wh-%d-%d", g, i)
				err := s.CreateWebhook(t.Context(), newWebhook("tenant-a", id, at(time.Duration(g*each+i)*time.Second)), newRecord(keyseal.ActionWebhookCreate, id))
				mu.Lock()
				switch keyseal.ErrorCode(err) {
				case "":
					if err == nil {
						ok++
					} else {
						t.Errorf("CreateWebhook(%s): %v", id, err)
					}
				case keyseal.EINVALID:
					refused++
				default:
					t.Errorf("CreateWebhook(%s): %v", id, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ok != keyseal.MaxWebhooksPerTenant || refused != writers*each-keyseal.MaxWebhooksPerTenant {
		t.Fatalf("concurrent creates: %d succeeded, %d refused; want %d and %d", ok, refused, keyseal.MaxWebhooksPerTenant, writers*each-keyseal.MaxWebhooksPerTenant)
	}
	if got := listWebhooks(t, s, "tenant-a"); len(got) != keyseal.MaxWebhooksPerTenant {
		t.Fatalf("ListWebhooks = %d, want %d", len(got), keyseal.MaxWebhooksPerTenant)
	}
	requireValidChain(t, s, "tenant-a", keyseal.MaxWebhooksPerTenant)
}

// UpdateWebhook is compare-and-set on the revision: the current revision
// writes (and audits), a stale one is ECONFLICT and writes nothing, an
// unknown subscription ENOTFOUND.
func testWebhookUpdate(t *testing.T, s keyseal.Store) {
	w := newWebhook("tenant-a", "wh-1", at(0))
	createWebhook(t, s, w)
	stale := *w
	w.URL = "https://hooks.example.com/moved"
	w.Secrets = w.Secrets[:1]
	rec := newRecord(keyseal.ActionWebhookRotate, "rotate")
	if err := s.UpdateWebhook(t.Context(), w, &rec); err != nil {
		t.Fatalf("UpdateWebhook: %v", err)
	}
	if w.Revision != 2 {
		t.Fatalf("UpdateWebhook left revision %d, want 2", w.Revision)
	}
	requireEqual(t, "GetWebhook after update", getWebhook(t, s, "tenant-a", "wh-1"), w)
	entries := requireChainLen(t, s, "tenant-a", 2)
	requireEntry(t, entries[1], "tenant-a", 2, entries[0].Hash, rec)

	stale.Description = "stale"
	requireCode(t, s.UpdateWebhook(t.Context(), &stale, &rec), keyseal.ECONFLICT, "UpdateWebhook(stale revision)")
	if stale.Revision != 1 {
		t.Fatalf("a refused update moved the revision to %d", stale.Revision)
	}
	requireEqual(t, "GetWebhook after a stale update", getWebhook(t, s, "tenant-a", "wh-1"), w)
	requireChainLen(t, s, "tenant-a", 2)
	// Without a record: written, not audited.
	w.Disabled = false
	if err := s.UpdateWebhook(t.Context(), w, nil); err != nil {
		t.Fatalf("UpdateWebhook(no record): %v", err)
	}
	requireChainLen(t, s, "tenant-a", 2)
	unknown := newWebhook("tenant-a", "wh-none", at(0))
	unknown.Revision = 1
	requireCode(t, s.UpdateWebhook(t.Context(), unknown, nil), keyseal.ENOTFOUND, "UpdateWebhook(unknown)")
	other := *w
	other.TenantID = "tenant-b"
	requireCode(t, s.UpdateWebhook(t.Context(), &other, nil), keyseal.ENOTFOUND, "UpdateWebhook(other tenant's id)")
}

func newAttempt(tenantID, webhookID string, n int) keyseal.DeliveryAttempt {
	next := at(time.Duration(n)*time.Second + time.Minute)
	return keyseal.DeliveryAttempt{TenantID: tenantID, WebhookID: webhookID, EventID: fmt.Sprintf("evt-%03d", n),
		EventType: keyseal.EventSealed, Attempt: 1 + n%3, At: at(time.Duration(n) * time.Second), Outcome: keyseal.DeliveryRetrying,
		ResponseCode: 503, LatencyMS: int64(10 + n), Error: "503 Service Unavailable", NextRetryAt: &next}
}

func listDeliveries(t *testing.T, s keyseal.Store, tenantID, id string, limit int) []keyseal.DeliveryAttempt {
	t.Helper()
	ds, err := s.ListDeliveries(t.Context(), tenantID, id, limit)
	if err != nil {
		t.Fatalf("ListDeliveries(%s, %d): %v", id, limit, err)
	}
	return ds
}

// A delete removes the subscription and its attempts and audits it; the
// id is gone for every read and write after it.
func testWebhookDelete(t *testing.T, s keyseal.Store) {
	createWebhook(t, s, newWebhook("tenant-a", "wh-1", at(0)))
	keep := newWebhook("tenant-a", "wh-2", at(time.Second))
	createWebhook(t, s, keep)
	for n := range 3 {
		for _, id := range []string{"wh-1", "wh-2"} {
			if err := s.RecordDelivery(t.Context(), newAttempt("tenant-a", id, n)); err != nil {
				t.Fatalf("RecordDelivery: %v", err)
			}
		}
	}
	requireCode(t, s.DeleteWebhook(t.Context(), "tenant-b", "wh-1", newRecord(keyseal.ActionWebhookDelete, "other")), keyseal.ENOTFOUND, "DeleteWebhook(other tenant's id)")
	rec := newRecord(keyseal.ActionWebhookDelete, "wh-1")
	if err := s.DeleteWebhook(t.Context(), "tenant-a", "wh-1", rec); err != nil {
		t.Fatalf("DeleteWebhook: %v", err)
	}
	entries := requireChainLen(t, s, "tenant-a", 3)
	requireEntry(t, entries[2], "tenant-a", 3, entries[1].Hash, rec)
	_, err := s.GetWebhook(t.Context(), "tenant-a", "wh-1")
	requireCode(t, err, keyseal.ENOTFOUND, "GetWebhook after delete")
	requireEqual(t, "ListWebhooks after delete", listWebhooks(t, s, "tenant-a"), []keyseal.Webhook{*keep})
	if got := listDeliveries(t, s, "tenant-a", "wh-1", 0); len(got) != 0 {
		t.Fatalf("a deleted subscription still lists %d attempts", len(got))
	}
	if got := listDeliveries(t, s, "tenant-a", "wh-2", 0); len(got) != 3 {
		t.Fatalf("the other subscription lists %d attempts, want 3", len(got))
	}
	requireCode(t, s.DeleteWebhook(t.Context(), "tenant-a", "wh-1", rec), keyseal.ENOTFOUND, "DeleteWebhook(twice)")
	requireCode(t, s.RecordDelivery(t.Context(), newAttempt("tenant-a", "wh-1", 9)), keyseal.ENOTFOUND, "RecordDelivery after delete")
	gone := newWebhook("tenant-a", "wh-1", at(0))
	gone.Revision = 1
	requireCode(t, s.UpdateWebhook(t.Context(), gone, nil), keyseal.ENOTFOUND, "UpdateWebhook after delete")
	requireChainLen(t, s, "tenant-a", 3)
}

// Attempts list newest first, limited; only the newest MaxDeliveriesKept
// are kept, whatever order they were recorded in.
func testWebhookDeliveriesKept(t *testing.T, s keyseal.Store) {
	createWebhook(t, s, newWebhook("tenant-a", "wh-1", at(0)))
	total := keyseal.MaxDeliveriesKept + 5
	// The oldest attempt is recorded last: it must be the one dropped.
	order := append(make([]int, 0, total), total-1)
	for n := 1; n < total-1; n++ {
		order = append(order, n)
	}
	order = append(order, 0)
	for _, n := range order {
		if err := s.RecordDelivery(t.Context(), newAttempt("tenant-a", "wh-1", n)); err != nil {
			t.Fatalf("RecordDelivery(%d): %v", n, err)
		}
	}
	all := listDeliveries(t, s, "tenant-a", "wh-1", 0)
	if len(all) != keyseal.MaxDeliveriesKept {
		t.Fatalf("ListDeliveries(0) = %d attempts, want %d", len(all), keyseal.MaxDeliveriesKept)
	}
	for i, a := range all {
		if want := newAttempt("tenant-a", "wh-1", total-1-i); a.EventID != want.EventID {
			t.Fatalf("ListDeliveries[%d] = %s, want %s (newest first, the newest %d)", i, a.EventID, want.EventID, keyseal.MaxDeliveriesKept)
		}
	}
	want := []keyseal.DeliveryAttempt{newAttempt("tenant-a", "wh-1", total-1), newAttempt("tenant-a", "wh-1", total-2)}
	requireEqual(t, "ListDeliveries(2)", listDeliveries(t, s, "tenant-a", "wh-1", 2), want)
	if got := listDeliveries(t, s, "tenant-b", "wh-1", 0); len(got) != 0 {
		t.Fatalf("another tenant lists %d attempts", len(got))
	}
}

// PutEvent writes one event to the outbox on its own; a duplicate id is
// ECONFLICT, an invalid event EINVALID.
func testWebhookPutEvent(t *testing.T, s keyseal.Store) {
	e := newEvent("tenant-a", "evt-test", time.Second)
	e.Type, e.Data = keyseal.EventWebhookTest, json.RawMessage(`{"webhook_id":"wh-1"}`)
	if err := s.PutEvent(t.Context(), e); err != nil {
		t.Fatalf("PutEvent: %v", err)
	}
	requireEqual(t, "ListOutbox after PutEvent", listOutbox(t, s, 0), []keyseal.Event{e})
	requireCode(t, s.PutEvent(t.Context(), e), keyseal.ECONFLICT, "PutEvent(duplicate)")
	bad := e
	bad.ID, bad.Time = "evt-bad", "yesterday"
	requireCode(t, s.PutEvent(t.Context(), bad), keyseal.EINVALID, "PutEvent(no RFC 3339 time)")
	bad = e
	bad.ID, bad.TenantID = "evt-bad", ""
	requireCode(t, s.PutEvent(t.Context(), bad), keyseal.EINVALID, "PutEvent(no tenant)")
	requireChainLen(t, s, "tenant-a", 0)
	if got := listOutbox(t, s, 0); len(got) != 1 {
		t.Fatalf("ListOutbox after refused events = %s", eventIDs(got))
	}
}
