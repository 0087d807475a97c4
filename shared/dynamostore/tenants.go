package dynamostore

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keyseal/keyseal/shared/internal/storecheck"
	"github.com/keyseal/keyseal/shared/internal/wait"
	"github.com/keyseal/keyseal/shared/keyseal"
)

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
// the audit entry go in one transaction conditional on the row (and the
// version) being new; on success t.Revision is 1.
func (s *Store) CreateTenant(ctx context.Context, t *keyseal.Tenant, v keyseal.TMKVersion, rec keyseal.AuditRecord) error {
	if err := storecheck.NewTenant(t, v, rec); err != nil {
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
	vw, err := s.versionWrites([]keyseal.TMKVersion{v}, nil)
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
	if err := storecheck.Change(t.ID, c); err != nil {
		return err
	}
	row, err := encodeTenant(t, t.Revision+1)
	if err != nil {
		return fmt.Errorf("dynamostore: update tenant: %w", err)
	}
	// A random id of this write, stored on the row: after a lost answer it
	// tells this write from another writer's of the same revision, even
	// one with identical content.
	writeID := rand.Text()
	row[attrWriteID] = str(writeID)
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
			case isOurWrite(cur, t.Revision+1, writeID):
				// An earlier attempt of this very write committed and its
				// answer was lost; the retry found its own revision.
				return errCommitted
			default:
				return keyseal.Errorf(keyseal.ECONFLICT, "tenant %s changed concurrently (expected revision %d)", t.ID, t.Revision)
			}
		},
	}}
	vw, err := s.versionWrites(c.NewVersions, c.Replace)
	if err != nil {
		return fmt.Errorf("dynamostore: update tenant: %w", err)
	}
	writes = append(writes, vw...)
	ow, err := s.outboxWrites(c.Events)
	if err != nil {
		return fmt.Errorf("dynamostore: update tenant: %w", err)
	}
	writes = append(writes, ow...)
	_, err = s.transact(ctx, "update tenant", t.ID, writes, c.Audit)
	if unknownOutcome(err) && s.committed(ctx, t, writeID) {
		err = nil
	}
	if err != nil && !errors.Is(err, errCommitted) {
		return err
	}
	t.Revision++
	return nil
}

// errCommitted tells UpdateTenant that a failed condition was its own
// earlier attempt, committed.
var errCommitted = errors.New("committed by an earlier attempt")

// attrWriteID holds the random id of the write that left the row as it is.
const attrWriteID = "write_id"

// committed settles an unknown outcome (every attempt lost its answer, or
// timed out): a strongly consistent read of the row says whether the write
// landed. The decision is made here, in the adapter, because only the
// adapter can tell an unknown outcome (a lost answer) from a refusal (a
// cancelled transaction), and the row, its revision and the audit entry
// were one transaction: the row being ours proves all of it committed. The
// read runs even when ctx has ended, with its own short deadline: the
// caller's deadline is often what cut the answer.
func (s *Store) committed(ctx context.Context, t *keyseal.Tenant, writeID string) bool {
	cur, err := s.settle(ctx, tenantPK(t.ID), skConfig)
	return err == nil && cur != nil && isOurWrite(cur, t.Revision+1, writeID)
}

// reconcileTimeout bounds the reads that settle an unknown outcome.
const reconcileTimeout = 5 * time.Second

// settle reads an item to settle an unknown outcome. The store that lost
// the answer is likely still faulty, so the read is retried (with backoff)
// until it gets an answer or reconcileTimeout passes: an outcome left
// unknown is a 503 and, for a transition, an event this process cannot
// publish.
func (s *Store) settle(ctx context.Context, pk, sk string) (map[string]types.AttributeValue, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), reconcileTimeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		cur, err := s.get(ctx, pk, sk)
		if err == nil || keyseal.ErrorCode(err) != keyseal.EUNAVAILABLE {
			return cur, err
		}
		if serr := wait.Sleep(ctx, min(25*time.Millisecond<<min(attempt, 5), 500*time.Millisecond)); serr != nil {
			return nil, err
		}
	}
}

// isOurWrite reports whether the stored row is the one written with
// writeID at revision. A later write replaces the id, so a row that moved
// on since is not recognised: the caller then reports the unknown outcome
// (EUNAVAILABLE) rather than guess.
func isOurWrite(cur map[string]types.AttributeValue, revision int64, writeID string) bool {
	id, ok := cur[attrWriteID].(*types.AttributeValueMemberS)
	if !ok || id.Value != writeID {
		return false
	}
	got, err := decodeTenant(cur)
	return err == nil && got.Revision == revision
}

// versionWrites returns the Puts of TMK versions, each conditional
// on the version's own state, not only on the tenant row beside it: a new
// version must not exist, and a replaced one must exist and not be
// revoked. The row's revision alone would not do: a re-wrap that read the
// versions before a concurrent revoke, and the row after it, would write
// the crypto-erased blob back.
func (s *Store) versionWrites(create, replace []keyseal.TMKVersion) ([]write, error) {
	out := make([]write, 0, len(create)+len(replace))
	add := func(vs []keyseal.TMKVersion, condition, problem string) error {
		for _, v := range vs {
			item, err := encodeVersion(v)
			if err != nil {
				return err
			}
			out = append(out, write{
				item: types.TransactWriteItem{Put: &types.Put{TableName: &s.table, Item: item, ConditionExpression: aws.String(condition)}},
				onConditionFailed: func(context.Context) error {
					return keyseal.Errorf(keyseal.ECONFLICT, "TMK version %d %s", v.Version, problem)
				},
			})
		}
		return nil
	}
	if err := add(create, "attribute_not_exists(pk)", "already exists"); err != nil {
		return nil, err
	}
	if err := add(replace, "attribute_exists(pk) AND attribute_not_exists(revoked_at)", "is missing or revoked"); err != nil {
		return nil, err
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

// TenantsByKey implements keyseal.KeyIndex on the sparse key-ref index
// (eventually consistent: a key set a moment ago may be missed once).
func (s *Store) TenantsByKey(ctx context.Context, provider, keyID string) ([]string, error) {
	in := &dynamodb.QueryInput{
		TableName:                 &s.table,
		IndexName:                 aws.String(keyRefIndex),
		KeyConditionExpression:    aws.String("key_ref = :ref"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":ref": str(keyRef(provider, keyID))},
	}
	ids := []string{}
	for {
		out, err := s.api.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("dynamostore: tenants by key: %w", err)
		}
		for _, item := range out.Items {
			id, ok := item[attrTenantID].(*types.AttributeValueMemberS)
			if !ok {
				return nil, fmt.Errorf("dynamostore: tenants by key: index item without tenant_id")
			}
			ids = append(ids, id.Value)
		}
		if len(out.LastEvaluatedKey) == 0 {
			return ids, nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// KeysInUse implements keyseal.KeyIndex with a Scan of the sparse key-ref
// index: it holds one small item per BYOK tenant and nothing else, so
// the scan reads exactly the customer keys (eventually consistent, like
// TenantsByKey).
func (s *Store) KeysInUse(ctx context.Context, provider string) ([]string, error) {
	in := &dynamodb.ScanInput{
		TableName:                &s.table,
		IndexName:                aws.String(keyRefIndex),
		ProjectionExpression:     aws.String("#ref"),
		ExpressionAttributeNames: map[string]string{"#ref": attrKeyRef},
	}
	prefix := keyRef(provider, "")
	seen := map[string]bool{}
	for {
		out, err := s.api.Scan(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("dynamostore: keys in use: %w", err)
		}
		for _, item := range out.Items {
			ref, ok := item[attrKeyRef].(*types.AttributeValueMemberS)
			if !ok {
				return nil, fmt.Errorf("dynamostore: keys in use: index item without key_ref")
			}
			if id, ok := strings.CutPrefix(ref.Value, prefix); ok {
				seen[id] = true
			}
		}
		if len(out.LastEvaluatedKey) == 0 {
			return append([]string{}, slices.Sorted(maps.Keys(seen))...), nil
		}
		in.ExclusiveStartKey = out.LastEvaluatedKey
	}
}

// Versions implements keyseal.Store. An unknown tenant has no versions.
func (s *Store) Versions(ctx context.Context, tenantID string) ([]keyseal.TMKVersion, error) {
	out, err := queryAll(ctx, s, tenantPK(tenantID), skVersionPre, func(item map[string]types.AttributeValue) (*keyseal.TMKVersion, error) {
		v, err := decodeVersion(item)
		return &v, err
	})
	if err != nil {
		return nil, fmt.Errorf("dynamostore: versions: %w", err)
	}
	return out, nil
}
