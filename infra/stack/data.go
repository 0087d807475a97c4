package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsdynamodb"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// PollIndex is the sparse index the poller lists tenants by (schema:
// shared/dynamostore/doc.go).
const PollIndex = "poll-shard"

// KeyIndex is the sparse index push sealing finds the tenants of a
// customer key by: only BYOK tenant rows carry "key_ref".
const KeyIndex = "key-ref"

// Data is keyseal's single DynamoDB table: tenant config and seal state,
// TMK versions, the audit chain, agents, step-up tokens and the event
// outbox, with a stream for the outbox.
type Data struct {
	constructs.Construct
	Table awsdynamodb.Table
}

// NewData creates the table with the key schema, index and TTL attribute
// that shared/dynamostore expects.
func NewData(scope constructs.Construct, id string, c Config) *Data {
	s := constructs.NewConstruct(scope, jsii.String(id))
	str := awsdynamodb.AttributeType_STRING
	table := awsdynamodb.NewTable(s, jsii.String("Table"), &awsdynamodb.TableProps{
		TableName:    jsii.String(c.Prefix("data")),
		PartitionKey: &awsdynamodb.Attribute{Name: jsii.String("pk"), Type: str},
		SortKey:      &awsdynamodb.Attribute{Name: jsii.String("sk"), Type: str},
		BillingMode:  awsdynamodb.BillingMode_PAY_PER_REQUEST,
		// Step-up token and outbox items carry "ttl" (epoch seconds);
		// audit entries never do, so the chain is never reaped.
		TimeToLiveAttribute: jsii.String("ttl"),
		// The outbox's delivery path: the event publisher reads the outbox
		// items' INSERTs from the stream (EventPublisher). NEW_IMAGE: the
		// publisher needs the item written, never the one before.
		Stream: awsdynamodb.StreamViewType_NEW_IMAGE,
		PointInTimeRecoverySpecification: &awsdynamodb.PointInTimeRecoverySpecification{
			PointInTimeRecoveryEnabled: jsii.Bool(c.PITR),
		},
		DeletionProtection: jsii.Bool(c.DeletionProtection),
		RemovalPolicy:      c.RemovalPolicy(),
	})
	table.AddGlobalSecondaryIndex(&awsdynamodb.GlobalSecondaryIndexProps{
		IndexName:      jsii.String(PollIndex),
		PartitionKey:   &awsdynamodb.Attribute{Name: jsii.String("poll_shard"), Type: str},
		SortKey:        &awsdynamodb.Attribute{Name: jsii.String("tenant_id"), Type: str},
		ProjectionType: awsdynamodb.ProjectionType_KEYS_ONLY,
	})
	table.AddGlobalSecondaryIndex(&awsdynamodb.GlobalSecondaryIndexProps{
		IndexName:      jsii.String(KeyIndex),
		PartitionKey:   &awsdynamodb.Attribute{Name: jsii.String("key_ref"), Type: str},
		SortKey:        &awsdynamodb.Attribute{Name: jsii.String("tenant_id"), Type: str},
		ProjectionType: awsdynamodb.ProjectionType_KEYS_ONLY,
	})
	return &Data{Construct: s, Table: table}
}
