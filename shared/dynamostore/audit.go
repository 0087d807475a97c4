package dynamostore

import (
	"context"
	"fmt"
	"math"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keyseal/keyseal/shared/internal/storecheck"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// AppendAudit implements keyseal.Store: one transaction of head and entry,
// rebuilt on the new head when a concurrent append won the race.
func (s *Store) AppendAudit(ctx context.Context, tenantID string, rec keyseal.AuditRecord) (keyseal.AuditEntry, error) {
	if err := storecheck.TenantID(tenantID); err != nil {
		return keyseal.AuditEntry{}, err
	}
	if err := storecheck.Record(rec); err != nil {
		return keyseal.AuditEntry{}, err
	}
	return s.transact(ctx, "append audit", tenantID, nil, &rec)
}

// ListAudit implements keyseal.Store. The Before cursor is part of the key
// condition and the action filter a FilterExpression; because DynamoDB
// applies a filter after its per-page limit, pages are read until Limit
// entries matched or the chain is exhausted. A limit of zero or less
// returns every match.
func (s *Store) ListAudit(ctx context.Context, tenantID string, q keyseal.AuditQuery) ([]keyseal.AuditEntry, error) {
	upper := int64(math.MaxInt64)
	if q.Before > 0 {
		if q.Before <= 1 {
			return nil, nil
		}
		upper = q.Before - 1
	}
	in := &dynamodb.QueryInput{
		TableName:              &s.table,
		ConsistentRead:         aws.Bool(true),
		ScanIndexForward:       aws.Bool(false),
		KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :lo AND :hi"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(tenantPK(tenantID)),
			":lo": str(auditSK(1)),
			":hi": str(auditSK(upper)),
		},
	}
	if q.Action != "" {
		in.FilterExpression = aws.String("#action = :action")
		in.ExpressionAttributeNames = map[string]string{"#action": "action"}
		in.ExpressionAttributeValues[":action"] = str(q.Action)
	}
	var out []keyseal.AuditEntry
	for {
		if q.Limit > 0 && q.Action == "" {
			// Without a filter every item read matches, so the page can
			// stop exactly at the limit.
			in.Limit = aws.Int32(int32(min(q.Limit-len(out), math.MaxInt32)))
		}
		page, err := s.api.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("dynamostore: list audit: %w", err)
		}
		for _, item := range page.Items {
			out = append(out, decodeStoredEntry(item))
			if q.Limit > 0 && len(out) == q.Limit {
				return out, nil
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return out, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// ScanAudit implements keyseal.Store. It reads the head first and then
// only the entries up to it: entries at or below a head are immutable, so
// head and entries form a consistent snapshot even while appends go on,
// and an entry removed from anywhere up to the head shows as a gap.
func (s *Store) ScanAudit(ctx context.Context, tenantID string, fn func(keyseal.AuditEntry) error) (keyseal.AuditHead, error) {
	head, err := s.readHead(ctx, tenantID)
	if err != nil {
		return keyseal.AuditHead{}, fmt.Errorf("dynamostore: scan audit: %w", err)
	}
	if head.Seq == 0 {
		return head, nil
	}
	in := &dynamodb.QueryInput{
		TableName:              &s.table,
		ConsistentRead:         aws.Bool(true),
		KeyConditionExpression: aws.String("pk = :pk AND sk BETWEEN :lo AND :hi"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(tenantPK(tenantID)),
			":lo": str(auditSK(1)),
			":hi": str(auditSK(head.Seq)),
		},
	}
	for {
		page, err := s.api.Query(ctx, in)
		if err != nil {
			return keyseal.AuditHead{}, fmt.Errorf("dynamostore: scan audit: %w", err)
		}
		for _, item := range page.Items {
			if err := fn(decodeStoredEntry(item)); err != nil {
				return keyseal.AuditHead{}, err
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return head, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

// ReadAuditHead implements keyseal.Store (a strongly consistent read).
func (s *Store) ReadAuditHead(ctx context.Context, tenantID string) (keyseal.AuditHead, error) {
	head, err := s.readHead(ctx, tenantID)
	if err != nil {
		return keyseal.AuditHead{}, fmt.Errorf("dynamostore: read audit head: %w", err)
	}
	return head, nil
}
