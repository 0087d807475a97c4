package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Event source mapping settings of the publisher.
const (
	// publisherBatch is EventBridge's PutEvents limit: one call a batch.
	publisherBatch = 10
	// publisherRetries and publisherMaxAge keep retrying a failed record
	// for as long as the stream holds it (24 hours); after that it is
	// dropped from the stream but not from the table, where the outbox
	// item stays until its TTL (7 days) for a replay by hand.
	publisherRetries = 10000
	publisherMaxAge  = 24 * 60 * 60
)

// EventPublisher connects the table's stream to the event-publisher
// Lambda, which puts the outbox events to the bus (shared/outbox: why a
// stream and a Lambda rather than EventBridge Pipes).
type EventPublisher struct {
	constructs.Construct
	Mapping awslambda.EventSourceMapping
}

// NewEventPublisher creates the event source mapping. Only outbox INSERTs
// pass its filter (every other write of the table, and the TTL REMOVEs,
// never invoke the function); the handler reports failed records
// (ReportBatchItemFailures), so a failed put is retried from that record,
// and bisecting a failing batch isolates a record that keeps failing.
func NewEventPublisher(scope constructs.Construct, id string, data *Data, fns *Functions) *EventPublisher {
	s := constructs.NewConstruct(scope, jsii.String(id))
	// The key layout of shared/dynamostore/doc.go: outbox items are the
	// partitions "outbox#NN".
	filter := awslambda.FilterCriteria_Filter(&map[string]any{
		"eventName": awslambda.FilterRule_IsEqual(jsii.String("INSERT")),
		"dynamodb": map[string]any{
			"Keys": map[string]any{"pk": map[string]any{"S": awslambda.FilterRule_BeginsWith(jsii.String("outbox#"))}},
		},
	})
	m := awslambda.NewEventSourceMapping(s, jsii.String("Stream"), &awslambda.EventSourceMappingProps{
		Target:                  fns.ByName[FnPublisher],
		EventSourceArn:          data.Table.TableStreamArn(),
		StartingPosition:        awslambda.StartingPosition_TRIM_HORIZON,
		BatchSize:               jsii.Number(publisherBatch),
		BisectBatchOnError:      jsii.Bool(true),
		RetryAttempts:           jsii.Number(publisherRetries),
		MaxRecordAge:            awscdk.Duration_Seconds(jsii.Number(publisherMaxAge)),
		ReportBatchItemFailures: jsii.Bool(true),
		Filters:                 &[]*map[string]any{filter},
	})
	return &EventPublisher{Construct: s, Mapping: m}
}
