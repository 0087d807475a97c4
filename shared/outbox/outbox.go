// Package outbox delivers the events that committed state changes wrote to
// the store's outbox (keyseal.Change.Events), at least once: an event is
// published from what was committed, never from the request that committed
// it, so a write whose answer was lost still has its event sent, and a
// write that failed never has one.
//
// Two drivers share one Sink (shared/events):
//
//   - StreamHandler is the event-publisher Lambda: the table's DynamoDB
//     Stream (NEW_IMAGE) invokes it with the outbox items' INSERTs; it puts
//     them to EventBridge and reports the records that failed
//     (ReportBatchItemFailures), so Lambda retries from the first of them.
//     The items then age out by TTL (dynamostore.OutboxTTL).
//   - Drainer is the local server's loop (dev mode on bbolt, LocalStack mode
//     on DynamoDB Local): it lists undelivered items, publishes them, and
//     acks (deletes) what was delivered.
//
// Why a stream and a Lambda rather than EventBridge Pipes: a Pipe (source
// the stream, target the bus) would need no code of keyseal's, but
// LocalStack Community has no Pipes, so that path would run nowhere but in
// AWS and the local modes would exercise something else; its input
// template would also have to rebuild the event from DynamoDB-JSON
// attributes, a second copy of the item layout. The Lambda sends the
// event's own JSON as the detail and runs the same Sink as the local
// drain, so what dev mode tests is what AWS runs. The cost is one small
// function invoked only for outbox INSERTs (the event source mapping
// filters the rest).
//
// Why the local drain queries the outbox rather than reading DynamoDB
// Local's stream: the outbox items are durable until acked, so a drain that
// stops (a restart, a crash between publish and ack) resumes where it was
// with nothing to checkpoint; a stream reader would have to persist shard
// iterators, and bbolt has no stream at all. One drain loop serves both
// stores.
//
// Delivery is at least once: a Lambda retry after a partial failure, or a
// drain that published and crashed before acking, sends an event again.
// Every event carries its id (keyseal.Event.ID, the EventBridge detail's
// "id"); consumers deduplicate on it. Order is by event time within a
// batch, not guaranteed across retries: a consumer that cares compares
// detail.time.
package outbox

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keyseal/keyseal/shared/dynamostore"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// Sink delivers events. Publish returns one error per event, nil for each
// delivered (events.Bridge, events.Log).
type Sink interface {
	Publish(ctx context.Context, es []keyseal.Event) []error
}

// StreamHandler is the event-publisher Lambda's handler.
type StreamHandler struct {
	Sink Sink
	Log  *slog.Logger
}

// Handle publishes the outbox INSERTs of a stream batch. Other records
// (every other item of the table, MODIFYs, TTL REMOVEs) are skipped; the
// event source mapping's filter already drops them on AWS, the check here
// keeps the handler right without it. It never returns an error: a record
// that failed is reported in BatchItemFailures, so Lambda retries from the
// first failed record (and the records after it, which may publish twice:
// at least once) instead of the whole batch.
func (h *StreamHandler) Handle(ctx context.Context, ev events.DynamoDBEvent) (events.DynamoDBEventResponse, error) {
	var (
		batch []keyseal.Event
		seqs  []string
	)
	for _, r := range ev.Records {
		e, ok, err := outboxEvent(r)
		if err != nil {
			// An outbox item keyseal cannot read back would fail every
			// retry and hold the shard until the record ages out; it is
			// logged with its key for an operator, and skipped.
			h.Log.Error("outbox: undecodable stream record skipped", "event_id", r.EventID, "sequence_number", r.Change.SequenceNumber, "err", err)
			continue
		}
		if ok {
			batch = append(batch, e)
			seqs = append(seqs, r.Change.SequenceNumber)
		}
	}
	resp := events.DynamoDBEventResponse{BatchItemFailures: []events.DynamoDBBatchItemFailure{}}
	if len(batch) == 0 {
		return resp, nil
	}
	for i, err := range h.Sink.Publish(ctx, batch) {
		if err != nil {
			h.Log.Warn("outbox: publish failed; the stream retries it", "event_id", batch[i].ID, "type", batch[i].Type, "tenant_id", batch[i].TenantID, "err", err)
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.DynamoDBBatchItemFailure{ItemIdentifier: seqs[i]})
			continue
		}
		h.Log.Info("event published", "event_id", batch[i].ID, "type", batch[i].Type, "tenant_id", batch[i].TenantID)
	}
	return resp, nil
}

// outboxEvent returns the event of an outbox INSERT; ok is false for any
// other record.
func outboxEvent(r events.DynamoDBEventRecord) (keyseal.Event, bool, error) {
	if r.EventName != string(events.DynamoDBOperationTypeInsert) {
		return keyseal.Event{}, false, nil
	}
	pk, ok := r.Change.Keys["pk"]
	if !ok || pk.DataType() != events.DataTypeString || !strings.HasPrefix(pk.String(), dynamostore.OutboxPrefix) {
		return keyseal.Event{}, false, nil
	}
	body, ok := r.Change.NewImage[dynamostore.OutboxEventAttr]
	if !ok || body.DataType() != events.DataTypeString {
		return keyseal.Event{}, false, errors.New("outbox INSERT without its event attribute (is the stream NEW_IMAGE?)")
	}
	e, err := dynamostore.DecodeOutboxEvent(body.String())
	return e, err == nil, err
}

// Drainer publishes a store's outbox in process: the local server's
// replacement for the stream and its Lambda.
type Drainer struct {
	Store keyseal.OutboxStore
	Sink  Sink
	Log   *slog.Logger
	// Batch is how many events one round lists (default 25).
	Batch int
}

// Drain publishes undelivered events until the outbox is empty or a round
// delivered nothing, and returns how many it delivered. Delivered events
// are acked; a failed one stays for the next Drain.
func (d *Drainer) Drain(ctx context.Context) (int, error) {
	batch := d.Batch
	if batch <= 0 {
		batch = 25
	}
	total := 0
	for {
		es, err := d.Store.ListOutbox(ctx, batch)
		if err != nil || len(es) == 0 {
			return total, err
		}
		var done []keyseal.Event
		for i, err := range d.Sink.Publish(ctx, es) {
			if err != nil {
				d.Log.Warn("outbox: publish failed; the next drain retries it", "event_id", es[i].ID, "type", es[i].Type, "err", err)
				continue
			}
			done = append(done, es[i])
		}
		if len(done) > 0 {
			// Published but not acked (a crash here, a failed ack) means
			// published again next time: at least once.
			if err := d.Store.AckOutbox(ctx, done); err != nil {
				return total, err
			}
		}
		total += len(done)
		if len(done) < len(es) || len(es) < batch {
			return total, nil
		}
	}
}

// Run drains every interval until ctx ends, logging failed rounds.
func (d *Drainer) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := d.Drain(ctx); err != nil && ctx.Err() == nil {
			d.Log.Error("outbox: drain", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
