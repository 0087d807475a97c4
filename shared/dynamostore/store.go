package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/internal/wait"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// API is the slice of the DynamoDB client the store uses, so tests can
// stand in a fake that injects faults.
type API interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	// DeleteItem acks outbox events (the local drain only).
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	// Scan reads the sparse key-ref index whole (KeysInUse only).
	Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error)
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
	// anchor signs each new head (nil: unsigned heads).
	anchor *audit.Anchor
}

var _ keyseal.Store = (*Store)(nil)

// Option configures a Store.
type Option func(*Store)

// WithAnchor makes the store sign a checkpoint with every append, written
// on the head item in the append's transaction, and publish it as the
// anchor decides once the transaction committed.
func WithAnchor(a *audit.Anchor) Option { return func(s *Store) { s.anchor = a } }

// New returns a store on table, which must exist with the schema of the
// package documentation (CreateTable makes one).
func New(client API, table string, opts ...Option) *Store {
	s := &Store{api: classified{client}, table: table, backoff: jitteredBackoff}
	for _, o := range opts {
		o(s)
	}
	return s
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
// The entry's ts is rec.At (the caller's clock, checked by
// storecheck.Record), never this process's, so a retry keeps it too.
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
			prev, err := s.readHead(ctx, tenantID)
			if err != nil {
				return keyseal.AuditEntry{}, fmt.Errorf("dynamostore: %s: %w", op, err)
			}
			entry = audit.Next(tenantID, prev, *rec, rec.At)
			head, checkpoint := s.anchor.NextHead(ctx, prev, entry)
			chain, err := s.chainWrites(prev, head, entry)
			if err == nil && checkpoint != nil {
				var ow []write
				ow, err = s.outboxWrites([]keyseal.Event{*checkpoint})
				chain = append(chain, ow...)
			}
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
			if throttled(err) {
				return keyseal.AuditEntry{}, keyseal.Unavailable(fmt.Errorf("dynamostore: %s: throttled %d times: %w", op, attempt, err))
			}
			return keyseal.AuditEntry{}, fmt.Errorf("dynamostore: %s: audit chain of tenant %s still contended after %d attempts: %w", op, tenantID, attempt, err)
		}
		if err := wait.Sleep(ctx, s.backoff(attempt)); err != nil {
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

// throttled reports whether a cancelled transaction names throttling as a
// reason: the store, not contention, stopped it.
func throttled(err error) bool {
	tce, ok := errors.AsType[*types.TransactionCanceledException](err)
	if !ok {
		return false
	}
	for _, r := range tce.CancellationReasons {
		if c := aws.ToString(r.Code); c == reasonThrottling || c == reasonProvisioned {
			return true
		}
	}
	return false
}

// chainWrites returns the head and entry writes that append e after prev:
// next is the new head (e's seq and hash, and its signed checkpoint).
func (s *Store) chainWrites(prev, next keyseal.AuditHead, e keyseal.AuditEntry) ([]write, error) {
	entry, err := encodeEntry(e)
	if err != nil {
		return nil, err
	}
	head, err := encodeHead(e.TenantID, next)
	if err != nil {
		return nil, err
	}
	headPut := &types.Put{TableName: &s.table, Item: head}
	if prev.Seq == 0 {
		headPut.ConditionExpression = aws.String("attribute_not_exists(pk)")
	} else {
		headPut.ConditionExpression = aws.String("seq = :prev")
		headPut.ExpressionAttributeValues = map[string]types.AttributeValue{":prev": number(prev.Seq)}
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
	return decodeHead(av)
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

// queryAll decodes every item of partition pk whose sort key starts with
// prefix, in sort key order; decode answers nil for an item to skip (a
// tombstone).
func queryAll[T any](ctx context.Context, s *Store, pk, prefix string, decode func(map[string]types.AttributeValue) (*T, error)) ([]T, error) {
	var out []T
	err := s.queryPrefix(ctx, pk, prefix, func(item map[string]types.AttributeValue) error {
		v, err := decode(item)
		if v != nil {
			out = append(out, *v)
		}
		return err
	})
	return out, err
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

func str(s string) types.AttributeValue { return &types.AttributeValueMemberS{Value: s} }

func number[T int | int64](n T) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: fmt.Sprint(n)}
}
