package localserver

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/events"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/memstore"
	"github.com/keyseal/keyseal/shared/outbox"
	"github.com/keyseal/keyseal/shared/webhook"
)

// twoTargets is the subscription port's Targets: every event goes to two
// subscriptions.
type twoTargets struct{ webhook.Subscriptions }

func (twoTargets) Targets(_ context.Context, e keyseal.Event) ([]keyseal.Webhook, error) {
	return []keyseal.Webhook{{ID: "wh_a", TenantID: e.TenantID}, {ID: "wh_b", TenantID: e.TenantID}}, nil
}

// failingQueue fails Enqueue while down.
type failingQueue struct {
	keyseal.DeliveryQueue
	down bool
}

func (q *failingQueue) Enqueue(ctx context.Context, jobs ...keyseal.QueuedJob) error {
	if q.down {
		return errors.New("queue down")
	}
	return q.DeliveryQueue.Enqueue(ctx, jobs...)
}

// TestDrainAcksOnlyWhatWasEnqueued: an event whose webhook jobs were not
// enqueued stays in the outbox; the next drain enqueues them; a fan-out
// redone for an event already enqueued (a crash before the ack) adds no
// job.
func TestDrainAcksOnlyWhatWasEnqueued(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	q := &failingQueue{DeliveryQueue: memstore.NewDeliveryQueue(), down: true}
	log := slog.New(slog.DiscardHandler)
	d := &Delivery{Queue: q, Log: log, Deliverer: &webhook.Deliverer{Subscriptions: twoTargets{}}}
	drain := &outbox.Drainer{Store: store, Sink: d.Sink(events.Log{Logger: log}), Log: log}
	e, err := keyseal.NewEvent(keyseal.EventSealed, "acme", time.Now(), keyseal.SealedData{Reason: keyseal.ReasonKeyDisabled})
	if err != nil {
		t.Fatal(err)
	}
	if err := store.PutEvent(ctx, e); err != nil {
		t.Fatal(err)
	}
	if n, _ := drain.Drain(ctx); n != 0 {
		t.Fatalf("drain acked %d events its jobs were not enqueued for", n)
	}
	if left, _ := store.ListOutbox(ctx, 0); len(left) != 1 {
		t.Fatalf("outbox after a failed enqueue: %d entries, want the event kept", len(left))
	}
	q.down = false
	if n, err := drain.Drain(ctx); n != 1 || err != nil {
		t.Fatalf("drain after the queue recovered: %d, %v", n, err)
	}
	// The drain crashed before its ack: the same event is fanned out again.
	if errs := d.Sink(events.Log{Logger: log}).Publish(ctx, []keyseal.Event{e}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	due, err := q.Due(ctx, time.Now(), 0)
	if err != nil || len(due) != 2 || due[0].ID != e.ID+"/wh_a/1" || due[1].ID != e.ID+"/wh_b/1" {
		t.Fatalf("queued jobs %+v, %v: want one per subscription, attempt 1", due, err)
	}
}
