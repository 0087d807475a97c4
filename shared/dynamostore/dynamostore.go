package dynamostore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/internal/storecheck"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// API is the slice of the DynamoDB client the store uses, so tests can
// stand in a fake that injects faults.
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error)
}

var _ API = (*dynamodb.Client)(nil)

// maxChainAttempts bounds how often one write is rebuilt on a moved audit
// head. Appends to one tenant's chain are rare (admin actions, seal
// changes), so this only matters when many race, and then every round
// lets at least one of them through.
const maxChainAttempts = 25

// Backoff between chain retries: full jitter over an exponentially growing
// window, so racing writers spread out instead of colliding again.
const (
	backoffBase = 5 * time.Millisecond
	backoffMax  = 250 * time.Millisecond
)

// Cancellation reason codes DynamoDB reports per item of a cancelled
// transaction.
const (
	reasonNone        = "None"
	reasonCondition   = "ConditionalCheckFailed"
	reasonConflict    = "TransactionConflict"
	reasonThrottling  = "ThrottlingError"
	reasonProvisioned = "ProvisionedThroughputExceeded"
)

// Store is a keyseal.Store on one DynamoDB table laid out as the package
// documentation describes. It is safe for concurrent use, also across
// processes: every invariant is a DynamoDB condition, never a local lock.
type Store struct {
	api   API
	table string
	// backoff returns the pause before retry attempt n (1-based); unit
	// tests replace it to run without sleeping.
	backoff func(attempt int) time.Duration
}

var _ keyseal.Store = (*Store)(nil)

// New returns a store on table, which must exist with the schema of the
// package documentation (CreateTable makes one).
func New(client API, table string) *Store {
	return &Store{api: client, table: table, backoff: jitteredBackoff}
}

func jitteredBackoff(attempt int) time.Duration {
	window := backoffBase << min(attempt, 8)
	return rand.N(min(window, backoffMax)) + time.Millisecond
}

// Ping reports whether the table is reachable with the store's
// credentials.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.api.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: &s.table}); err != nil {
		return fmt.Errorf("dynamostore: ping %s: %w", s.table, err)
	}
	return nil
}

// GetTenant implements keyseal.Store.
func (s *Store) GetTenant(ctx context.Context, tenantID string) (*keyseal.Tenant, error) {
	av, err := s.get(ctx, tenantPK(tenantID), skConfig)
	if err != nil {
		return nil, fmt.Errorf("dynamostore: get tenant: %w", err)
	}
	if av == nil {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "tenant %s has no KMS configuration", tenantID)
	}
	t, err := decodeTenant(av)
	if err != nil {
		return nil, fmt.Errorf("dynamostore: %w", err)
	}
	return t, nil
}

// CreateTenant implements keyseal.Store. The row, the first version and
// the audit entry go in one transaction conditional on the row being new;
// on success t.Revision is 1.
func (s *Store) CreateTenant(ctx context.Context, t *keyseal.Tenant, v keyseal.TMKVersion, rec keyseal.AuditRecord) error {
	if err := storecheck.TenantID(t.ID); err != nil {
		return err
	}
	if err := storecheck.Versions(t.ID, []keyseal.TMKVersion{v}); err != nil {
		return err
	}
	row, err := encodeTenant(t, 1)
	if err != nil {
		return fmt.Errorf("dynamostore: create tenant: %w", err)
	}
	writes := []write{{
		item: types.TransactWriteItem{Put: &types.Put{
			TableName:           &s.table,
			Item:                row,
			ConditionExpression: aws.String("attribute_not_exists(pk)"),
		}},
		onConditionFailed: func(context.Context) error {
			return keyseal.Errorf(keyseal.ECONFLICT, "tenant %s already exists", t.ID)
		},
	}}
	vw, err := s.versionWrites([]keyseal.TMKVersion{v})
	if err != nil {
		return fmt.Errorf("dynamostore: create tenant: %w", err)
	}
	writes = append(writes, vw...)
	if _, err := s.transact(ctx, "create tenant", t.ID, writes, &rec); err != nil {
		return err
	}
	t.Revision = 1
	return nil
}

// UpdateTenant implements keyseal.Store. The row is replaced only if its
// stored revision is still t.Revision; t.Revision is incremented only once
// the transaction has committed, so a failed write can be retried as is.
func (s *Store) UpdateTenant(ctx context.Context, t *keyseal.Tenant, c keyseal.Change) error {
	if err := storecheck.TenantID(t.ID); err != nil {
		return err
	}
	if err := storecheck.Versions(t.ID, c.PutVersions); err != nil {
		return err
	}
	row, err := encodeTenant(t, t.Revision+1)
	if err != nil {
		return fmt.Errorf("dynamostore: update tenant: %w", err)
	}
	writes := []write{{
		item: types.TransactWriteItem{Put: &types.Put{
			TableName:                 &s.table,
			Item:                      row,
			ConditionExpression:       aws.String("#rev = :rev"),
			ExpressionAttributeNames:  map[string]string{"#rev": "revision"},
			ExpressionAttributeValues: map[string]types.AttributeValue{":rev": number(t.Revision)},
		}},
		onConditionFailed: func(ctx context.Context) error {
			// The condition fails the same way for a missing row and a
			// moved revision; a strongly consistent read tells them apart.
			cur, err := s.get(ctx, tenantPK(t.ID), skConfig)
			switch {
			case err != nil:
				return fmt.Errorf("read after failed condition: %w", err)
			case cur == nil:
				return keyseal.Errorf(keyseal.ENOTFOUND, "tenant %s has no KMS configuration", t.ID)
			default:
				return keyseal.Errorf(keyseal.ECONFLICT, "tenant %s changed concurrently (expected revision %d)", t.ID, t.Revision)
			}
		},
	}}
	vw, err := s.versionWrites(c.PutVersions)
	if err != nil {
		return fmt.Errorf("dynamostore: update tenant: %w", err)
	}
	writes = append(writes, vw...)
	if _, err := s.transact(ctx, "update tenant", t.ID, writes, c.Audit); err != nil {
		return err
	}
	t.Revision++
	return nil
}

// versionWrites returns unconditional Puts of TMK versions: a version is
// created or replaced as given, guarded by the tenant row's condition in
// the same transaction.
func (s *Store) versionWrites(vs []keyseal.TMKVersion) ([]write, error) {
	out := make([]write, 0, len(vs))
	for _, v := range vs {
		item, err := encodeVersion(v)
		if err != nil {
			return nil, err
		}
		out = append(out, write{item: types.TransactWriteItem{Put: &types.Put{TableName: &s.table, Item: item}}})
	}
	return out, nil
}

// ListTenants implements keyseal.Store on the sparse poll-shard index. The
// cursor is the last tenant id of the previous page; a limit of zero or
// less lists the whole shard. The index is eventually consistent, which
// the poller tolerates: a tenant created a moment ago is seen next sweep.
func (s *Store) ListTenants(ctx context.Context, shard int, cursor string, limit int) ([]string, string, error) {
	if shard < 0 || shard >= keyseal.PollShards {
		return nil, "", keyseal.Errorf(keyseal.EINVALID, "shard %d out of range 0..%d", shard, keyseal.PollShards-1)
	}
	in := &dynamodb.QueryInput{
		TableName:                 &s.table,
		IndexName:                 aws.String(pollShardIndex),
		KeyConditionExpression:    aws.String("poll_shard = :shard"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":shard": str(shardKey(shard))},
	}
	if cursor != "" {
		in.KeyConditionExpression = aws.String("poll_shard = :shard AND tenant_id > :cursor")
		in.ExpressionAttributeValues[":cursor"] = str(cursor)
	}
	var ids []string
	for {
		if limit > 0 {
			in.Limit = aws.Int32(int32(min(limit-len(ids), math.MaxInt32)))
		}
		out, err := s.api.Query(ctx, in)
		if err != nil {
			return nil, "", fmt.Errorf("dynamostore: list tenants: %w", err)
		}
		for _, item := range out.Items {
			id, ok := item[attrTenantID].(*types.AttributeValueMemberS)
			if !ok {
				return nil, "", fmt.Errorf("dynamostore: list tenants: index item without tenant_id")
			}
			ids = append(ids, id.Value)
		}
		if len(out.LastEvaluatedKey) == 0 {
			return ids, "", nil
		}
		if limit > 0 && len(ids) >= limit {
			// More may follow; an empty last page is allowed by the
			// contract and cheaper than probing for one.
			return ids, ids[len(ids)-1], nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// Versions implements keyseal.Store. An unknown tenant has no versions.
func (s *Store) Versions(ctx context.Context, tenantID string) ([]keyseal.TMKVersion, error) {
	var out []keyseal.TMKVersion
	err := s.queryPrefix(ctx, tenantPK(tenantID), skVersionPre, func(item map[string]types.AttributeValue) error {
		v, err := decodeVersion(item)
		if err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("dynamostore: versions: %w", err)
	}
	return out, nil
}

// AppendAudit implements keyseal.Store: one transaction of head and entry,
// rebuilt on the new head when a concurrent append won the race.
func (s *Store) AppendAudit(ctx context.Context, tenantID string, rec keyseal.AuditRecord) (keyseal.AuditEntry, error) {
	if err := storecheck.TenantID(tenantID); err != nil {
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
			e, err := decodeEntry(item)
			if err != nil {
				return nil, fmt.Errorf("dynamostore: list audit: %w", err)
			}
			out = append(out, e)
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
			e, err := decodeEntry(item)
			if err != nil {
				return keyseal.AuditHead{}, fmt.Errorf("dynamostore: scan audit: %w", err)
			}
			if err := fn(e); err != nil {
				return keyseal.AuditHead{}, err
			}
		}
		if len(page.LastEvaluatedKey) == 0 {
			return head, nil
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
}

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
	var out []keyseal.Agent
	err := s.queryPrefix(ctx, tenantPK(tenantID), skAgentPre, func(item map[string]types.AttributeValue) error {
		a, err := decodeAgent(item)
		if err != nil {
			return err
		}
		out = append(out, *a)
		return nil
	})
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

// PutStepUp implements keyseal.Store. The item carries a TTL past its
// expiry, so DynamoDB reaps spent tokens without a sweeper.
func (s *Store) PutStepUp(ctx context.Context, tok keyseal.StepUpToken) error {
	if tok.Hash == "" {
		return keyseal.Errorf(keyseal.EINVALID, "step-up token hash is required")
	}
	item, err := encodeStepUp(tok)
	if err != nil {
		return fmt.Errorf("dynamostore: put step-up: %w", err)
	}
	_, err = s.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           &s.table,
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	if isConditionFailed(err) {
		return keyseal.Errorf(keyseal.ECONFLICT, "step-up token already exists")
	}
	if err != nil {
		return fmt.Errorf("dynamostore: put step-up: %w", err)
	}
	return nil
}

// GetStepUp implements keyseal.Store. A token past its TTL but not yet
// reaped is still returned; expiry is the caller's check, made on
// ExpiresAt.
func (s *Store) GetStepUp(ctx context.Context, hash string) (*keyseal.StepUpToken, error) {
	if hash == "" {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "step-up token not found")
	}
	av, err := s.get(ctx, stepUpPK(hash), skStepUp)
	if err != nil {
		return nil, fmt.Errorf("dynamostore: get step-up: %w", err)
	}
	if av == nil {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "step-up token not found")
	}
	tok, err := decodeStepUp(av)
	if err != nil {
		return nil, fmt.Errorf("dynamostore: get step-up: %w", err)
	}
	return tok, nil
}

// UseStepUp implements keyseal.Store. The flip from unused to used is one
// conditional update, so of many concurrent uses exactly one succeeds.
func (s *Store) UseStepUp(ctx context.Context, hash string) error {
	if hash == "" {
		return keyseal.Errorf(keyseal.ENOTFOUND, "step-up token not found")
	}
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &s.table,
		Key:                      key(stepUpPK(hash), skStepUp),
		UpdateExpression:         aws.String("SET #used = :true"),
		ConditionExpression:      aws.String("attribute_exists(pk) AND #used = :false"),
		ExpressionAttributeNames: map[string]string{"#used": "used"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":true":  &types.AttributeValueMemberBOOL{Value: true},
			":false": &types.AttributeValueMemberBOOL{Value: false},
		},
	})
	if err == nil {
		return nil
	}
	if !isConditionFailed(err) {
		return fmt.Errorf("dynamostore: use step-up: %w", err)
	}
	cur, err := s.get(ctx, stepUpPK(hash), skStepUp)
	switch {
	case err != nil:
		return fmt.Errorf("dynamostore: use step-up: read after failed condition: %w", err)
	case cur == nil:
		return keyseal.Errorf(keyseal.ENOTFOUND, "step-up token not found")
	default:
		return keyseal.Errorf(keyseal.ECONFLICT, "step-up token already used")
	}
}

// write is one item of a transaction and what a failed condition on it
// means.
type write struct {
	item types.TransactWriteItem
	// onConditionFailed returns the caller's error when this write's
	// condition failed (ECONFLICT, ENOTFOUND). Nil marks the audit chain
	// writes: their condition fails only when a concurrent append moved the
	// head, and the cure is to rebuild the transaction on the new head.
	onConditionFailed func(ctx context.Context) error
}

// transact commits writes in one TransactWriteItems, together with the
// next audit entry for rec when rec is not nil, and returns that entry.
//
// The entry is linked to the head as read just before; the head write is
// conditional on that head still being current and the entry write on its
// key being free, so two writers can never both commit the same seq. When
// only chain writes failed (or DynamoDB reported a transaction conflict or
// throttling) the whole transaction is rebuilt on a fresh head and tried
// again, up to maxChainAttempts times. A cancelled transaction wrote
// nothing, so a retry never doubles an entry; any other error (network,
// timeout) is returned as is, because the write may or may not have
// happened and only the caller can decide.
func (s *Store) transact(ctx context.Context, op, tenantID string, writes []write, rec *keyseal.AuditRecord) (keyseal.AuditEntry, error) {
	for attempt := 1; ; attempt++ {
		all := writes
		var entry keyseal.AuditEntry
		if rec != nil {
			head, err := s.readHead(ctx, tenantID)
			if err != nil {
				return keyseal.AuditEntry{}, fmt.Errorf("dynamostore: %s: %w", op, err)
			}
			entry = audit.Next(tenantID, head, *rec, time.Now().UTC().Truncate(time.Microsecond))
			chain, err := s.chainWrites(head, entry)
			if err != nil {
				return keyseal.AuditEntry{}, fmt.Errorf("dynamostore: %s: %w", op, err)
			}
			all = append(slices.Clip(writes), chain...)
		}
		items := make([]types.TransactWriteItem, len(all))
		for i, w := range all {
			items[i] = w.item
		}
		_, err := s.api.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		if err == nil {
			return entry, nil
		}
		retry, err := classify(ctx, all, err)
		if !retry {
			if _, ok := errors.AsType[*keyseal.Error](err); ok {
				return keyseal.AuditEntry{}, err
			}
			return keyseal.AuditEntry{}, fmt.Errorf("dynamostore: %s: %w", op, err)
		}
		if attempt >= maxChainAttempts {
			return keyseal.AuditEntry{}, fmt.Errorf("dynamostore: %s: audit chain of tenant %s still contended after %d attempts: %w", op, tenantID, attempt, err)
		}
		if err := sleep(ctx, s.backoff(attempt)); err != nil {
			return keyseal.AuditEntry{}, fmt.Errorf("dynamostore: %s: %w", op, err)
		}
	}
}

// classify decides what a failed TransactWriteItems means. It returns
// retry=true when the transaction was cancelled only because of the audit
// chain or transient contention; otherwise the error to return, which is
// the domain error of the first domain write whose condition failed.
func classify(ctx context.Context, writes []write, err error) (retry bool, _ error) {
	tce, ok := errors.AsType[*types.TransactionCanceledException](err)
	if !ok {
		return false, err
	}
	reasons := tce.CancellationReasons
	if len(reasons) != len(writes) {
		return false, fmt.Errorf("transaction cancelled with %d reasons for %d writes: %w", len(reasons), len(writes), err)
	}
	// Domain conditions are decided first: they are final whatever else
	// failed beside them, whereas a moved head alone is worth a retry.
	for i, r := range reasons {
		if aws.ToString(r.Code) == reasonCondition && writes[i].onConditionFailed != nil {
			return false, writes[i].onConditionFailed(ctx)
		}
	}
	for _, r := range reasons {
		switch aws.ToString(r.Code) {
		case reasonNone, "":
		case reasonCondition, reasonConflict, reasonThrottling, reasonProvisioned:
			retry = true
		default:
			return false, err
		}
	}
	return retry, err
}

// chainWrites returns the head and entry writes that append e after head.
func (s *Store) chainWrites(head keyseal.AuditHead, e keyseal.AuditEntry) ([]write, error) {
	entry, err := encodeEntry(e)
	if err != nil {
		return nil, err
	}
	headPut := &types.Put{
		TableName: &s.table,
		Item: map[string]types.AttributeValue{
			attrPK: str(tenantPK(e.TenantID)),
			attrSK: str(skAuditHead),
			"seq":  number(e.Seq),
			"hash": str(e.Hash),
		},
	}
	if head.Seq == 0 {
		headPut.ConditionExpression = aws.String("attribute_not_exists(pk)")
	} else {
		headPut.ConditionExpression = aws.String("seq = :prev")
		headPut.ExpressionAttributeValues = map[string]types.AttributeValue{":prev": number(head.Seq)}
	}
	return []write{
		{item: types.TransactWriteItem{Put: headPut}},
		{item: types.TransactWriteItem{Put: &types.Put{
			TableName: &s.table, Item: entry, ConditionExpression: aws.String("attribute_not_exists(pk)"),
		}}},
	}, nil
}

// readHead returns a tenant's chain head; the zero head when the chain is
// empty.
func (s *Store) readHead(ctx context.Context, tenantID string) (keyseal.AuditHead, error) {
	av, err := s.get(ctx, tenantPK(tenantID), skAuditHead)
	if err != nil || av == nil {
		return keyseal.AuditHead{}, err
	}
	var it headItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return keyseal.AuditHead{}, fmt.Errorf("decode audit head: %w", err)
	}
	return keyseal.AuditHead{Seq: it.Seq, Hash: it.Hash}, nil
}

// get reads one item with a strongly consistent read; nil when absent.
func (s *Store) get(ctx context.Context, pk, sk string) (map[string]types.AttributeValue, error) {
	out, err := s.api.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &s.table,
		Key:            key(pk, sk),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return nil, err
	}
	if len(out.Item) == 0 {
		return nil, nil
	}
	return out.Item, nil
}

// queryPrefix calls fn for every item of partition pk whose sort key starts
// with prefix, in sort key order.
func (s *Store) queryPrefix(ctx context.Context, pk, prefix string, fn func(map[string]types.AttributeValue) error) error {
	in := &dynamodb.QueryInput{
		TableName:              &s.table,
		ConsistentRead:         aws.Bool(true),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :prefix)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk":     str(pk),
			":prefix": str(prefix),
		},
	}
	for {
		out, err := s.api.Query(ctx, in)
		if err != nil {
			return err
		}
		for _, item := range out.Items {
			if err := fn(item); err != nil {
				return err
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// isConditionFailed reports whether a single-item write failed its
// condition.
func isConditionFailed(err error) bool {
	_, ok := errors.AsType[*types.ConditionalCheckFailedException](err)
	return ok
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func number[T int | int64](n T) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: fmt.Sprint(n)}
}
