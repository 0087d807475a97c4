package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keyseal/keyseal/shared/internal/wait"
)

// tableWaitMax bounds how long CreateTable waits for the table and its
// index to become ACTIVE; DynamoDB Local and LocalStack take milliseconds,
// AWS usually seconds.
const tableWaitMax = 5 * time.Minute

// CreateTable creates the store's table with the schema of the package
// documentation (PAY_PER_REQUEST, the poll-shard and key-ref indexes, TTL on "ttl") and
// waits until it is ACTIVE. A table that already exists is accepted, and
// its TTL is switched on if it is not yet, so the call is safe to repeat
// and to race. Production tables come from the CDK stack; this is for
// DynamoDB Local, LocalStack and tests.
func CreateTable(ctx context.Context, client *dynamodb.Client, table string) error {
	_, err := client.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   &table,
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String(attrPK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrSK), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrPollShard), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrTenantID), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrKeyRef), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String(attrPK), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String(attrSK), KeyType: types.KeyTypeRange},
		},
		GlobalSecondaryIndexes: []types.GlobalSecondaryIndex{{
			IndexName: aws.String(pollShardIndex),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(attrPollShard), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(attrTenantID), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
		}, {
			IndexName: aws.String(keyRefIndex),
			KeySchema: []types.KeySchemaElement{
				{AttributeName: aws.String(attrKeyRef), KeyType: types.KeyTypeHash},
				{AttributeName: aws.String(attrTenantID), KeyType: types.KeyTypeRange},
			},
			Projection: &types.Projection{ProjectionType: types.ProjectionTypeKeysOnly},
		}},
	})
	if _, exists := errors.AsType[*types.ResourceInUseException](err); err != nil && !exists {
		return fmt.Errorf("dynamostore: create table %s: %w", table, err)
	}
	if err := waitActive(ctx, client, table); err != nil {
		return fmt.Errorf("dynamostore: create table %s: %w", table, err)
	}
	if err := enableTTL(ctx, client, table); err != nil {
		return fmt.Errorf("dynamostore: create table %s: %w", table, err)
	}
	return nil
}

// waitActive polls until the table and all its global indexes are ACTIVE:
// an index still CREATING cannot be queried yet.
func waitActive(ctx context.Context, client *dynamodb.Client, table string) error {
	ctx, cancel := context.WithTimeout(ctx, tableWaitMax)
	defer cancel()
	pause := 50 * time.Millisecond
	for {
		out, err := client.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &table})
		if err != nil {
			return fmt.Errorf("describe: %w", err)
		}
		if active(out.Table) {
			return nil
		}
		if err := wait.Sleep(ctx, pause); err != nil {
			return fmt.Errorf("waiting for ACTIVE: %w", err)
		}
		pause = min(2*pause, 2*time.Second)
	}
}

func active(t *types.TableDescription) bool {
	if t == nil || t.TableStatus != types.TableStatusActive {
		return false
	}
	for _, gsi := range t.GlobalSecondaryIndexes {
		if gsi.IndexStatus != types.IndexStatusActive {
			return false
		}
	}
	return true
}

// enableTTL turns TTL on for the "ttl" attribute unless it already is.
// DynamoDB rejects enabling it twice, so a racing caller that loses is
// accepted when a second look shows TTL on.
func enableTTL(ctx context.Context, client *dynamodb.Client, table string) error {
	on, err := ttlEnabled(ctx, client, table)
	if err != nil || on {
		return err
	}
	_, err = client.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
		TableName: &table,
		TimeToLiveSpecification: &types.TimeToLiveSpecification{
			AttributeName: aws.String(attrTTL),
			Enabled:       aws.Bool(true),
		},
	})
	if err == nil {
		return nil
	}
	if on, derr := ttlEnabled(ctx, client, table); derr == nil && on {
		return nil
	}
	return fmt.Errorf("enable TTL: %w", err)
}

func ttlEnabled(ctx context.Context, client *dynamodb.Client, table string) (bool, error) {
	out, err := client.DescribeTimeToLive(ctx, &dynamodb.DescribeTimeToLiveInput{TableName: &table})
	if err != nil {
		return false, fmt.Errorf("describe TTL: %w", err)
	}
	d := out.TimeToLiveDescription
	if d == nil {
		return false, nil
	}
	switch d.TimeToLiveStatus {
	case types.TimeToLiveStatusEnabled, types.TimeToLiveStatusEnabling:
		if aws.ToString(d.AttributeName) != attrTTL {
			return false, fmt.Errorf("TTL is on attribute %q, want %q", aws.ToString(d.AttributeName), attrTTL)
		}
		return true, nil
	}
	return false, nil
}
