package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/keyseal/keyseal/shared/events"
	"github.com/keyseal/keyseal/shared/keyseal"
)

type fakeBridge struct {
	in     *eventbridge.PutEventsInput
	failed bool
	err    error
}

func (f *fakeBridge) PutEvents(_ context.Context, in *eventbridge.PutEventsInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	f.in = in
	if f.err != nil {
		return nil, f.err
	}
	if f.failed {
		return &eventbridge.PutEventsOutput{FailedEntryCount: 1, Entries: []types.PutEventsResultEntry{{ErrorCode: aws.String("InternalFailure"), ErrorMessage: aws.String("x")}}}, nil
	}
	return &eventbridge.PutEventsOutput{}, nil
}

func TestPublish(t *testing.T) {
	f := &fakeBridge{}
	b := events.NewBridge(f, "keyseal-dev")
	e := keyseal.Event{Type: keyseal.EventSealed, TenantID: "acme", Reason: keyseal.ReasonKeyDisabled, Time: "2026-11-23T12:00:00Z"}
	if err := b.Publish(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	got := f.in.Entries[0]
	if aws.ToString(got.EventBusName) != "keyseal-dev" || aws.ToString(got.Source) != "keyseal" || aws.ToString(got.DetailType) != "tenant.kms.sealed" {
		t.Fatalf("entry: %+v", got)
	}
	var detail keyseal.Event
	if err := json.Unmarshal([]byte(aws.ToString(got.Detail)), &detail); err != nil || detail.TenantID != "acme" || detail.Reason != keyseal.ReasonKeyDisabled {
		t.Fatalf("detail %s: %v", aws.ToString(got.Detail), err)
	}

	if err := events.NewBridge(&fakeBridge{failed: true}, "b").Publish(context.Background(), e); err == nil {
		t.Fatal("a failed entry was not reported")
	}
	if err := events.NewBridge(&fakeBridge{err: errors.New("down")}, "b").Publish(context.Background(), e); err == nil {
		t.Fatal("a failed call was not reported")
	}
}
