// Package events delivers tenant.kms.* events to where consumers read them:
// EventBridge on AWS and in LocalStack mode, the log in dev mode. Nothing
// calls it from a request: shared/outbox hands it what the store's outbox
// committed.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// Source is the EventBridge "source" of every keyseal event.
const Source = "keyseal"

// maxEntries is how many entries one PutEvents call takes.
const maxEntries = 10

// API is the slice of the EventBridge client keyseal uses.
type API interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, optFns ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

var _ API = (*eventbridge.Client)(nil)

// Bridge publishes to one EventBridge bus: detail-type is the event type
// (tenant.kms.sealed, ...), detail the event as JSON, whose "id" is the
// event's own id. EventBridge gives every entry it accepts a new envelope
// id, so a redelivered event has a new envelope id and the same detail.id:
// consumers deduplicate on detail.id.
type Bridge struct {
	client API
	bus    string
}

// NewBridge returns a publisher for bus.
func NewBridge(client API, bus string) *Bridge { return &Bridge{client: client, bus: bus} }

// Publish puts es in calls of up to ten entries and returns one error per
// event, nil for each EventBridge accepted, so a caller retries only what
// failed.
func (b *Bridge) Publish(ctx context.Context, es []keyseal.Event) []error {
	errs := make([]error, len(es))
	for lo := 0; lo < len(es); lo += maxEntries {
		batch := es[lo:min(lo+maxEntries, len(es))]
		entries := make([]types.PutEventsRequestEntry, len(batch))
		for i, e := range batch {
			detail, err := json.Marshal(e)
			if err != nil {
				return fillErr(errs, err)
			}
			entries[i] = types.PutEventsRequestEntry{EventBusName: aws.String(b.bus), Source: aws.String(Source),
				DetailType: aws.String(e.Type), Detail: aws.String(string(detail)), Resources: []string{}}
			if at, err := time.Parse(time.RFC3339Nano, e.Time); err == nil {
				entries[i].Time = aws.Time(at)
			}
		}
		out, err := b.client.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: entries})
		for i, e := range batch {
			switch {
			case err != nil:
				errs[lo+i] = fmt.Errorf("put event %s %s: %w", e.Type, e.ID, err)
			case i >= len(out.Entries):
				if out.FailedEntryCount > 0 {
					errs[lo+i] = fmt.Errorf("put event %s %s: EventBridge answered %d entries for %d", e.Type, e.ID, len(out.Entries), len(batch))
				}
			case out.Entries[i].ErrorCode != nil:
				errs[lo+i] = fmt.Errorf("put event %s %s: %s: %s", e.Type, e.ID, aws.ToString(out.Entries[i].ErrorCode), aws.ToString(out.Entries[i].ErrorMessage))
			}
		}
	}
	return errs
}

func fillErr(errs []error, err error) []error {
	for i := range errs {
		if errs[i] == nil {
			errs[i] = err
		}
	}
	return errs
}

// Log publishes events to a structured log; dev mode uses it where no
// EventBridge exists.
type Log struct{ Logger *slog.Logger }

// Publish logs each event; it never fails.
func (l Log) Publish(_ context.Context, es []keyseal.Event) []error {
	for _, e := range es {
		l.Logger.Info("event", "event_id", e.ID, "type", e.Type, "tenant_id", e.TenantID, "data", string(e.Data))
	}
	return make([]error, len(es))
}
