package dynamostore

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keyseal/keyseal/shared/internal/storecheck"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// CreateAgent implements keyseal.Store. The agent, its key index item and
// the audit entry are one transaction, each index write conditional on
// being new, so neither an agent id nor a key hash can be taken twice.
func (s *Store) CreateAgent(ctx context.Context, a *keyseal.Agent, rec keyseal.AuditRecord) error {
	if err := storecheck.TenantID(a.TenantID); err != nil {
		return err
	}
	if a.ID == "" || a.KeyHash == "" {
		return keyseal.Errorf(keyseal.EINVALID, "agent id and key hash are required")
	}
	if err := storecheck.Record(rec); err != nil {
		return err
	}
	agent, err := encodeAgent(a)
	if err != nil {
		return fmt.Errorf("dynamostore: create agent: %w", err)
	}
	index := map[string]types.AttributeValue{
		attrPK:       str(agentKeyPK(a.KeyHash)),
		attrSK:       str(skAgentKey),
		attrTenantID: str(a.TenantID),
		"agent_id":   str(a.ID),
	}
	writes := []write{
		{
			item: types.TransactWriteItem{Put: &types.Put{
				TableName: &s.table, Item: agent, ConditionExpression: aws.String("attribute_not_exists(pk)"),
			}},
			onConditionFailed: func(context.Context) error {
				return keyseal.Errorf(keyseal.ECONFLICT, "agent %s already exists", a.ID)
			},
		},
		{
			item: types.TransactWriteItem{Put: &types.Put{
				TableName: &s.table, Item: index, ConditionExpression: aws.String("attribute_not_exists(pk)"),
			}},
			onConditionFailed: func(context.Context) error {
				return keyseal.Errorf(keyseal.ECONFLICT, "agent key already registered")
			},
		},
	}
	_, err = s.transact(ctx, "create agent", a.TenantID, writes, &rec)
	return err
}

// AgentByKeyHash implements keyseal.Store: the key index names the agent,
// whose own item is then read, so a revocation is seen at once.
func (s *Store) AgentByKeyHash(ctx context.Context, keyHash string) (*keyseal.Agent, error) {
	notFound := keyseal.Errorf(keyseal.ENOTFOUND, "unknown agent key")
	if keyHash == "" {
		return nil, notFound
	}
	av, err := s.get(ctx, agentKeyPK(keyHash), skAgentKey)
	if err != nil {
		return nil, fmt.Errorf("dynamostore: agent by key: %w", err)
	}
	if av == nil {
		return nil, notFound
	}
	var ref agentKeyItem
	if err := attributevalue.UnmarshalMap(av, &ref); err != nil {
		return nil, fmt.Errorf("dynamostore: agent by key: decode key index: %w", err)
	}
	av, err = s.get(ctx, tenantPK(ref.TenantID), agentSK(ref.AgentID))
	if err != nil {
		return nil, fmt.Errorf("dynamostore: agent by key: %w", err)
	}
	if av == nil {
		// The index and the agent are written together and neither is
		// ever deleted, so this is damage, not a normal miss.
		return nil, fmt.Errorf("dynamostore: agent by key: index points at missing agent %s of tenant %s", ref.AgentID, ref.TenantID)
	}
	a, err := decodeAgent(av)
	if err != nil {
		return nil, fmt.Errorf("dynamostore: agent by key: %w", err)
	}
	return a, nil
}

// ListAgents implements keyseal.Store. Agents are keyed by id, so they are
// sorted by creation time here (ties by id, for a stable order).
func (s *Store) ListAgents(ctx context.Context, tenantID string) ([]keyseal.Agent, error) {
	out, err := queryAll(ctx, s, tenantPK(tenantID), skAgentPre, decodeAgent)
	if err != nil {
		return nil, fmt.Errorf("dynamostore: list agents: %w", err)
	}
	slices.SortStableFunc(out, func(x, y keyseal.Agent) int {
		return cmp.Or(x.CreatedAt.Compare(y.CreatedAt), strings.Compare(x.ID, y.ID))
	})
	return out, nil
}

// RevokeAgent implements keyseal.Store. The agent is addressed under
// tenantID, so one tenant can never revoke another's agent.
func (s *Store) RevokeAgent(ctx context.Context, tenantID, agentID string, at time.Time, rec keyseal.AuditRecord) error {
	if err := storecheck.TenantID(tenantID); err != nil {
		return err
	}
	if err := storecheck.Record(rec); err != nil {
		return err
	}
	if agentID == "" {
		return keyseal.Errorf(keyseal.ENOTFOUND, "agent %s not found", agentID)
	}
	writes := []write{{
		item: types.TransactWriteItem{Update: &types.Update{
			TableName:                 &s.table,
			Key:                       key(tenantPK(tenantID), agentSK(agentID)),
			UpdateExpression:          aws.String("SET revoked_at = :at"),
			ConditionExpression:       aws.String("attribute_exists(pk) AND attribute_not_exists(revoked_at)"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":at": str(formatTime(at))},
		}},
		onConditionFailed: func(ctx context.Context) error {
			cur, err := s.get(ctx, tenantPK(tenantID), agentSK(agentID))
			switch {
			case err != nil:
				return fmt.Errorf("read after failed condition: %w", err)
			case cur == nil:
				return keyseal.Errorf(keyseal.ENOTFOUND, "agent %s not found", agentID)
			default:
				return keyseal.Errorf(keyseal.ECONFLICT, "agent %s is already revoked", agentID)
			}
		},
	}}
	_, err := s.transact(ctx, "revoke agent", tenantID, writes, &rec)
	return err
}
