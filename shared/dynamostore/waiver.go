package dynamostore

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keyseal/keyseal/shared/internal/storecheck"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// waiverItem is a tenant's latest waiver acknowledgment, in the tenant's
// partition beside its config row.
type waiverItem struct {
	PK             string `dynamodbav:"pk"`
	SK             string `dynamodbav:"sk"`
	TenantID       string `dynamodbav:"tenant_id"`
	Version        string `dynamodbav:"version"`
	SHA256         string `dynamodbav:"sha256"`
	AcknowledgedBy string `dynamodbav:"acknowledged_by"`
	Actor          string `dynamodbav:"actor"`
	AcknowledgedAt string `dynamodbav:"acknowledged_at"`
}

// PutWaiverAck implements keyseal.Store: the acknowledgment item and the
// audit entry are one transaction. The put is unconditional: a newer
// acknowledgment replaces the older one, and the chain keeps both.
func (s *Store) PutWaiverAck(ctx context.Context, ack keyseal.WaiverAck, rec keyseal.AuditRecord) error {
	if err := storecheck.WaiverAck(ack, rec); err != nil {
		return err
	}
	item, err := attributevalue.MarshalMap(waiverItem{PK: tenantPK(ack.TenantID), SK: skWaiver, TenantID: ack.TenantID,
		Version: ack.Version, SHA256: ack.SHA256, AcknowledgedBy: ack.AcknowledgedBy, Actor: ack.Actor,
		AcknowledgedAt: formatTime(ack.AcknowledgedAt)})
	if err != nil {
		return fmt.Errorf("dynamostore: put waiver acknowledgment: %w", err)
	}
	writes := []write{{
		item: types.TransactWriteItem{Put: &types.Put{TableName: &s.table, Item: item}},
		onConditionFailed: func(context.Context) error {
			return fmt.Errorf("unconditional waiver put reported a failed condition")
		},
	}}
	_, err = s.transact(ctx, "put waiver acknowledgment", ack.TenantID, writes, &rec)
	return err
}

// GetWaiverAck implements keyseal.Store.
func (s *Store) GetWaiverAck(ctx context.Context, tenantID string) (*keyseal.WaiverAck, error) {
	notFound := keyseal.Errorf(keyseal.ENOTFOUND, "no waiver acknowledgment")
	if tenantID == "" {
		return nil, notFound
	}
	av, err := s.get(ctx, tenantPK(tenantID), skWaiver)
	if err != nil {
		return nil, fmt.Errorf("dynamostore: get waiver acknowledgment: %w", err)
	}
	if av == nil {
		return nil, notFound
	}
	var it waiverItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return nil, fmt.Errorf("dynamostore: get waiver acknowledgment: decode: %w", err)
	}
	at, err := parseTime("acknowledged_at", it.AcknowledgedAt)
	if err != nil {
		return nil, fmt.Errorf("dynamostore: get waiver acknowledgment: %w", err)
	}
	return &keyseal.WaiverAck{TenantID: it.TenantID, Version: it.Version, SHA256: it.SHA256,
		AcknowledgedBy: it.AcknowledgedBy, Actor: it.Actor, AcknowledgedAt: at}, nil
}
