package outbox_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/memstore"
	"github.com/keyseal/keyseal/shared/outbox"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// sink records what was published; events whose id is in fail are refused
// while failing holds.
type sink struct {
	mu        sync.Mutex
	published []keyseal.Event
	fail      map[string]bool
}

func (s *sink) Publish(_ context.Context, es []keyseal.Event) []error {
	s.mu.Lock()
	defer s.mu.Unlock()
	errs := make([]error, len(es))
	for i, e := range es {
		if s.fail[e.ID] {
			errs[i] = errors.New("EventBridge: InternalFailure (injected)")
			continue
		}
		s.published = append(s.published, e)
	}
	return errs
}

func (s *sink) ids() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, e := range s.published {
		out = append(out, e.ID)
	}
	return out
}

func loadEvent(t *testing.T, name string) events.DynamoDBEvent {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var ev events.DynamoDBEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ev
}

const (
	acmeSealed     = "0b6e7a4c-3f1d-4b2a-9c8e-5d7f6a1b2c3d"
	globexUnsealed = "7f3c9d21-8a4b-4e6f-b1d2-c3e4f5a6b7c8"
)

// TestStreamPublishesOutboxInserts: of a batch holding a tenant row
// MODIFY, an audit entry INSERT, two outbox INSERTs and a TTL REMOVE of an
// old outbox item, exactly the two outbox events are published, whole.
func TestStreamPublishesOutboxInserts(t *testing.T) {
	s := &sink{}
	h := &outbox.StreamHandler{Sink: s, Log: quiet}
	resp, err := h.Handle(context.Background(), loadEvent(t, "stream-seal-batch.json"))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle: %+v %v", resp, err)
	}
	if len(s.published) != 2 {
		t.Fatalf("published %v, want the two outbox events", s.ids())
	}
	want := keyseal.Event{ID: acmeSealed, Type: keyseal.EventSealed, TenantID: "acme", Time: "2026-11-23T12:00:00.123456789Z",
		Data: json.RawMessage(`{"reason":"key_disabled","sealed_since":"2026-11-23T12:00:00.123456789Z","last_error":"DisabledException"}`)}
	if got := s.published[0]; !reflect.DeepEqual(got, want) {
		t.Fatalf("first event %+v, want %+v", got, want)
	}
	var unsealed keyseal.UnsealedData
	if err := s.published[1].DecodeData(&unsealed); err != nil || s.published[1].ID != globexUnsealed ||
		s.published[1].Type != keyseal.EventUnsealed || unsealed.Trigger != keyseal.TriggerPoller {
		t.Fatalf("second event %+v (%v)", s.published[1], err)
	}
	// The response serialises as Lambda expects it, with an empty list
	// (not null) when nothing failed.
	b, _ := json.Marshal(resp)
	if string(b) != `{"batchItemFailures":[]}` {
		t.Fatalf("response %s", b)
	}
}

// TestStreamReportsFailedRecords: a refused put comes back as that
// record's sequence number, so Lambda retries it (and what follows it),
// and never as a handler error, which would retry the whole batch.
func TestStreamReportsFailedRecords(t *testing.T) {
	s := &sink{fail: map[string]bool{acmeSealed: true}}
	h := &outbox.StreamHandler{Sink: s, Log: quiet}
	resp, err := h.Handle(context.Background(), loadEvent(t, "stream-seal-batch.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.BatchItemFailures) != 1 || resp.BatchItemFailures[0].ItemIdentifier != "4100000000000000000000003" {
		t.Fatalf("failures %+v, want the acme outbox record's sequence number", resp.BatchItemFailures)
	}
	b, _ := json.Marshal(resp)
	if string(b) != `{"batchItemFailures":[{"itemIdentifier":"4100000000000000000000003"}]}` {
		t.Fatalf("response %s", b)
	}
	// The retry (the same batch from that record on) publishes it.
	delete(s.fail, acmeSealed)
	retry := loadEvent(t, "stream-seal-batch.json")
	retry.Records = retry.Records[2:]
	if resp, _ := h.Handle(context.Background(), retry); len(resp.BatchItemFailures) != 0 {
		t.Fatalf("retry: %+v", resp)
	}
	// At least once: globex's event went out twice; consumers dedupe on id.
	if got := s.ids(); len(got) != 3 || got[0] != globexUnsealed || got[1] != acmeSealed || got[2] != globexUnsealed {
		t.Fatalf("published %v", got)
	}
}

// TestStreamSkipsRecordsWithoutImage: an outbox INSERT without its event
// (a stream not set to NEW_IMAGE) cannot be published; it is skipped and
// logged, the rest of the batch goes out.
func TestStreamSkipsRecordsWithoutImage(t *testing.T) {
	s := &sink{}
	h := &outbox.StreamHandler{Sink: s, Log: quiet}
	resp, err := h.Handle(context.Background(), loadEvent(t, "stream-keys-only.json"))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle: %+v %v", resp, err)
	}
	if got := s.ids(); len(got) != 1 || got[0] != globexUnsealed {
		t.Fatalf("published %v", got)
	}
}

// seal writes one committed transition with its event, as tenantkms does.
func seal(t *testing.T, st *memstore.Store, tenantID, eventID string, at time.Time) {
	t.Helper()
	tn := &keyseal.Tenant{ID: tenantID, Status: keyseal.StatusActive, ActiveVersion: 1, CreatedAt: at, UpdatedAt: at}
	v := keyseal.TMKVersion{TenantID: tenantID, Version: 1, Wrapped: []byte("w"), CreatedAt: at}
	rec := keyseal.AuditRecord{At: at, Action: keyseal.ActionTenantProvision, Severity: keyseal.SeverityInfo, Actor: "test"}
	if err := st.CreateTenant(t.Context(), tn, v, rec); err != nil {
		t.Fatal(err)
	}
	tn.Status = keyseal.StatusSealed
	e := keyseal.Event{ID: eventID, Type: keyseal.EventSealed, TenantID: tenantID, Time: at.Format(time.RFC3339Nano),
		Data: json.RawMessage(`{"reason":"key_disabled"}`)}
	if err := st.UpdateTenant(t.Context(), tn, keyseal.Change{Events: []keyseal.Event{e}}); err != nil {
		t.Fatal(err)
	}
}

// TestDrainPublishesAndAcks: the drain publishes every committed event
// once, oldest first, in rounds of Batch, and acks them; a refused one
// stays and goes out on the next drain.
func TestDrainPublishesAndAcks(t *testing.T) {
	st := memstore.New()
	base := time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC)
	for i, id := range []string{"e1", "e2", "e3", "e4", "e5"} {
		seal(t, st, "tenant-"+id, id, base.Add(time.Duration(i)*time.Second))
	}
	s := &sink{fail: map[string]bool{"e4": true}}
	d := &outbox.Drainer{Store: st, Sink: s, Log: quiet, Batch: 2}
	n, err := d.Drain(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// Rounds: e1 e2 (both out), e3 e4 (e4 refused: stop for now).
	if got := s.ids(); n != 3 || len(got) != 3 || got[0] != "e1" || got[1] != "e2" || got[2] != "e3" {
		t.Fatalf("first drain: %d %v", n, got)
	}
	left, _ := st.ListOutbox(t.Context(), 0)
	if len(left) != 2 || left[0].ID != "e4" || left[1].ID != "e5" {
		t.Fatalf("outbox after the first drain: %v", left)
	}
	delete(s.fail, "e4")
	if n, err := d.Drain(t.Context()); err != nil || n != 2 {
		t.Fatalf("second drain: %d %v", n, err)
	}
	if n, err := d.Drain(t.Context()); err != nil || n != 0 {
		t.Fatalf("drain of an empty outbox: %d %v", n, err)
	}
	if got := s.ids(); len(got) != 5 || got[3] != "e4" || got[4] != "e5" {
		t.Fatalf("published %v, want each event exactly once", got)
	}
}
