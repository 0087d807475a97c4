package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/keyseal/keyseal/shared/events"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// fakeBridge records every call; failIDs names events whose entries
// EventBridge refuses, err fails whole calls.
type fakeBridge struct {
	calls   []*eventbridge.PutEventsInput
	failIDs map[string]bool
	err     error
}

func (f *fakeBridge) PutEvents(_ context.Context, in *eventbridge.PutEventsInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	f.calls = append(f.calls, in)
	if f.err != nil {
		return nil, f.err
	}
	out := &eventbridge.PutEventsOutput{}
	for _, e := range in.Entries {
		var d keyseal.Event
		_ = json.Unmarshal([]byte(aws.ToString(e.Detail)), &d)
		if f.failIDs[d.ID] {
			out.FailedEntryCount++
			out.Entries = append(out.Entries, types.PutEventsResultEntry{ErrorCode: aws.String("InternalFailure"), ErrorMessage: aws.String("x")})
		} else {
			out.Entries = append(out.Entries, types.PutEventsResultEntry{EventId: aws.String("eb-" + d.ID)})
		}
	}
	return out, nil
}

func event(i int) keyseal.Event {
	return keyseal.Event{ID: fmt.Sprintf("evt-%02d", i), Type: keyseal.EventSealed, TenantID: "acme",
		Time: "2026-11-23T12:00:00.5Z", Data: json.RawMessage(`{"reason":"key_disabled"}`)}
}

func TestPublish(t *testing.T) {
	f := &fakeBridge{}
	b := events.NewBridge(f, "keyseal-dev")
	if errs := b.Publish(context.Background(), []keyseal.Event{event(1)}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	got := f.calls[0].Entries[0]
	if aws.ToString(got.EventBusName) != "keyseal-dev" || aws.ToString(got.Source) != "keyseal" || aws.ToString(got.DetailType) != "tenant.kms.sealed" ||
		got.Time == nil || got.Time.UnixMilli()%1000 != 500 {
		t.Fatalf("entry: %+v", got)
	}
	// The detail is the event's one JSON shape, in this field order.
	want := `{"type":"tenant.kms.sealed","id":"evt-01","tenant_id":"acme","time":"2026-11-23T12:00:00.5Z","data":{"reason":"key_disabled"}}`
	if d := aws.ToString(got.Detail); d != want {
		t.Fatalf("detail %s, want %s", d, want)
	}
}

// TestPublishBatchesAndReportsEachEntry: 23 events go in calls of at most
// ten, and only the refused entries come back as errors.
func TestPublishBatchesAndReportsEachEntry(t *testing.T) {
	f := &fakeBridge{failIDs: map[string]bool{"evt-03": true, "evt-17": true}}
	var es []keyseal.Event
	for i := range 23 {
		es = append(es, event(i))
	}
	errs := events.NewBridge(f, "b").Publish(context.Background(), es)
	if len(f.calls) != 3 || len(f.calls[0].Entries) != 10 || len(f.calls[2].Entries) != 3 {
		t.Fatalf("%d calls", len(f.calls))
	}
	for i, err := range errs {
		if (err != nil) != (i == 3 || i == 17) {
			t.Errorf("event %d: %v", i, err)
		}
	}

	errs = events.NewBridge(&fakeBridge{err: errors.New("down")}, "b").Publish(context.Background(), es[:2])
	if errs[0] == nil || errs[1] == nil {
		t.Fatal("a failed call was not reported for every event")
	}
}
