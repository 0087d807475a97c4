// Package events publishes tenant.kms.* events to EventBridge.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// Source is the EventBridge "source" of every keyseal event.
const Source = "keyseal"

// API is the slice of the EventBridge client keyseal uses.
type API interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, optFns ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

var _ API = (*eventbridge.Client)(nil)

// Bridge publishes to one EventBridge bus: detail-type is the event type
// (tenant.kms.sealed, ...), detail the event as JSON.
type Bridge struct {
	client API
	bus    string
}

// NewBridge returns a publisher for bus.
func NewBridge(client API, bus string) *Bridge { return &Bridge{client: client, bus: bus} }

// Publish implements keyseal.Events.
func (b *Bridge) Publish(ctx context.Context, e keyseal.Event) error {
	detail, err := json.Marshal(e)
	if err != nil {
		return err
	}
	out, err := b.client.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{{
		EventBusName: aws.String(b.bus), Source: aws.String(Source), DetailType: aws.String(e.Type),
		Detail: aws.String(string(detail)), Resources: []string{},
	}}})
	if err != nil {
		return fmt.Errorf("put event %s: %w", e.Type, err)
	}
	if out.FailedEntryCount > 0 && len(out.Entries) > 0 {
		return fmt.Errorf("put event %s: %s: %s", e.Type, aws.ToString(out.Entries[0].ErrorCode), aws.ToString(out.Entries[0].ErrorMessage))
	}
	return nil
}

// Log publishes events to a structured log; dev mode uses it where no
// EventBridge exists.
type Log struct{ Logger *slog.Logger }

// Publish implements keyseal.Events.
func (l Log) Publish(_ context.Context, e keyseal.Event) error {
	l.Logger.Info("event", "type", e.Type, "tenant_id", e.TenantID, "reason", e.Reason)
	return nil
}
