package dynamostore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keyseal/keyseal/shared/internal/storecheck"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// The outbox items' layout, which the stream publisher (shared/outbox)
// reads from the table's stream: see the package documentation.
const (
	// OutboxPrefix starts the partition key of every outbox item.
	OutboxPrefix = "outbox#"
	// OutboxEventAttr holds the event as JSON.
	OutboxEventAttr = "event"
	// OutboxTTL is how long an outbox item stays before DynamoDB may reap
	// it: far longer than the stream keeps records (24 h) and than the
	// publisher retries, so an item is never gone before it was published.
	OutboxTTL = 7 * 24 * time.Hour
)

// outboxPK spreads the outbox over the poll shards of its tenants, so a
// burst of seals writes no single hot partition and a drain reads 16.
func outboxPK(tenantID string) string { return OutboxPrefix + shardKey(keyseal.ShardOf(tenantID)) }

// outboxSK orders a partition by the event's time, then its id.
func outboxSK(e keyseal.Event) (string, error) {
	at, err := storecheck.EventTime(e)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%020d#%s", at.UnixNano(), e.ID), nil
}

// outboxWrites returns the Puts of checked events (storecheck.Events) for
// the transaction of the change that made them.
func (s *Store) outboxWrites(es []keyseal.Event) ([]write, error) {
	out := make([]write, 0, len(es))
	for _, e := range es {
		sk, err := outboxSK(e)
		if err != nil {
			return nil, err
		}
		body, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode event %s: %w", e.ID, err)
		}
		at, _ := storecheck.EventTime(e)
		item := map[string]types.AttributeValue{
			attrPK: str(outboxPK(e.TenantID)), attrSK: str(sk),
			attrTenantID: str(e.TenantID), "event_id": str(e.ID), "event_type": str(e.Type),
			OutboxEventAttr: str(string(body)),
			attrTTL:         number(at.Add(OutboxTTL).Unix()),
		}
		out = append(out, write{
			item: types.TransactWriteItem{Put: &types.Put{TableName: &s.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
			onConditionFailed: func(context.Context) error {
				return keyseal.Errorf(keyseal.ECONFLICT, "event %s is already in the outbox", e.ID)
			},
		})
	}
	return out, nil
}

// ListOutbox implements keyseal.Store: each outbox partition read in
// order (strongly consistent), merged by time.
func (s *Store) ListOutbox(ctx context.Context, limit int) ([]keyseal.Event, error) {
	type item struct {
		sk string
		e  keyseal.Event
	}
	var all []item
	for shard := range keyseal.PollShards {
		in := &dynamodb.QueryInput{
			TableName:                 &s.table,
			ConsistentRead:            aws.Bool(true),
			KeyConditionExpression:    aws.String("pk = :pk"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(OutboxPrefix + shardKey(shard))},
		}
		if limit > 0 {
			in.Limit = aws.Int32(int32(min(limit, 1000)))
		}
		n := 0
		for {
			out, err := s.api.Query(ctx, in)
			if err != nil {
				return nil, fmt.Errorf("dynamostore: list outbox: %w", err)
			}
			for _, av := range out.Items {
				e, err := DecodeOutbox(av)
				if err != nil {
					return nil, fmt.Errorf("dynamostore: list outbox: %w", err)
				}
				sk, _ := av[attrSK].(*types.AttributeValueMemberS)
				all = append(all, item{sk: sk.Value, e: e})
				n++
			}
			if len(out.LastEvaluatedKey) == 0 || (limit > 0 && n >= limit) {
				break
			}
			in.ExclusiveStartKey = out.LastEvaluatedKey
		}
	}
	slices.SortFunc(all, func(a, b item) int { return cmp.Compare(a.sk, b.sk) })
	if limit > 0 && len(all) > limit {
		all = all[:limit]
	}
	es := make([]keyseal.Event, len(all))
	for i, it := range all {
		es[i] = it.e
	}
	return es, nil
}

// AckOutbox implements keyseal.Store with one DeleteItem per event. Only
// the local server's drain acks; on AWS the stream publishes and TTL
// removes, so no Lambda's role may delete.
func (s *Store) AckOutbox(ctx context.Context, es []keyseal.Event) error {
	for _, e := range es {
		sk, err := outboxSK(e)
		if err != nil {
			return err
		}
		if _, err := s.api.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &s.table, Key: key(outboxPK(e.TenantID), sk)}); err != nil {
			return fmt.Errorf("dynamostore: ack outbox event %s: %w", e.ID, err)
		}
	}
	return nil
}

// DecodeOutbox returns the event an outbox item holds.
func DecodeOutbox(item map[string]types.AttributeValue) (keyseal.Event, error) {
	body, ok := item[OutboxEventAttr].(*types.AttributeValueMemberS)
	if !ok {
		return keyseal.Event{}, fmt.Errorf("outbox item without %s", OutboxEventAttr)
	}
	return DecodeOutboxEvent(body.Value)
}

// DecodeOutboxEvent parses the event attribute of an outbox item.
func DecodeOutboxEvent(body string) (keyseal.Event, error) {
	var e keyseal.Event
	if err := json.Unmarshal([]byte(body), &e); err != nil {
		return keyseal.Event{}, fmt.Errorf("decode outbox event: %w", err)
	}
	if e.ID == "" || e.Type == "" {
		return keyseal.Event{}, fmt.Errorf("outbox event without id or type: %.200s", body)
	}
	return e, nil
}
