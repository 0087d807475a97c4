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
// being new, so neither an agent id nor a key hash can be taken twice. The
// key index item is a full copy of the agent, so authenticating an agent
// key is one read (RevokeAgent updates both).
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
	index, err := encodeAgent(a)
	if err != nil {
		return fmt.Errorf("dynamostore: create agent: %w", err)
	}
	index[attrPK], index[attrSK] = str(agentKeyPK(a.KeyHash)), str(skAgentKey)
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

// AgentByKeyHash implements keyseal.Store: one read, of the key index item,
// which carries the whole agent (revoked_at included: RevokeAgent writes it
// in the same transaction as the agent's). An index item written before it
// carried the agent (tenant_id and agent_id only) is followed to the agent.
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
	if _, full := av["created_at"]; full {
		a, err := decodeAgent(av)
		if err != nil {
			return nil, fmt.Errorf("dynamostore: agent by key: decode key index: %w", err)
		}
		return a, nil
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
// tenantID, so one tenant can never revoke another's agent. The agent is
// read first for its key hash; then the agent and its key index item (what
// AgentByKeyHash reads) get revoked_at in one transaction, so the key stops
// working at the commit.
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
	cur, err := s.get(ctx, tenantPK(tenantID), agentSK(agentID))
	if err != nil {
		return fmt.Errorf("dynamostore: revoke agent: %w", err)
	}
	if cur == nil {
		return keyseal.Errorf(keyseal.ENOTFOUND, "agent %s not found", agentID)
	}
	a, err := decodeAgent(cur)
	if err != nil {
		return fmt.Errorf("dynamostore: revoke agent: %w", err)
	}
	if a.RevokedAt != nil {
		return keyseal.Errorf(keyseal.ECONFLICT, "agent %s is already revoked", agentID)
	}
	set := map[string]types.AttributeValue{":at": str(formatTime(at))}
	writes := []write{{
		item: types.TransactWriteItem{Update: &types.Update{
			TableName:                 &s.table,
			Key:                       key(tenantPK(tenantID), agentSK(agentID)),
			UpdateExpression:          aws.String("SET revoked_at = :at"),
			ConditionExpression:       aws.String("attribute_exists(pk) AND attribute_not_exists(revoked_at)"),
			ExpressionAttributeValues: set,
		}},
		onConditionFailed: func(context.Context) error {
			// Revoked (the item is never deleted) between the read and
			// the write.
			return keyseal.Errorf(keyseal.ECONFLICT, "agent %s is already revoked", agentID)
		},
	}, {
		item: types.TransactWriteItem{Update: &types.Update{
			TableName:                 &s.table,
			Key:                       key(agentKeyPK(a.KeyHash), skAgentKey),
			UpdateExpression:          aws.String("SET revoked_at = :at"),
			ConditionExpression:       aws.String("attribute_exists(pk)"),
			ExpressionAttributeValues: set,
		}},
		onConditionFailed: func(context.Context) error {
			return fmt.Errorf("dynamostore: revoke agent: key index of agent %s of tenant %s is missing", agentID, tenantID)
		},
	}}
	_, err = s.transact(ctx, "revoke agent", tenantID, writes, &rec)
	return err
}
