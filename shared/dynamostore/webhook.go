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
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keyseal/keyseal/shared/internal/storecheck"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// Webhook sort keys (see the package documentation).
const (
	skWebhookPre  = "webhook#"
	skWebhookN    = "webhooks#count"
	skDeliveryPre = "whdelivery#"
)

// DeliveryTTL is how long a delivery attempt item (and a deleted
// subscription's tombstone) stays before DynamoDB may reap it. The write
// role has no DeleteItem (the audit chain shares the partition and must
// stay append-only), so nothing is deleted by keyseal: ListDeliveries
// returns at most the newest MaxDeliveriesKept, and TTL removes the rest.
const DeliveryTTL = 7 * 24 * time.Hour

func webhookSK(id string) string { return skWebhookPre + id }

func deliveryPrefix(webhookID string) string { return skDeliveryPre + webhookID + "#" }

// deliverySK orders a subscription's attempts by time (then event and
// attempt, which are unique per try), so a backward Query is newest first.
func deliverySK(a keyseal.DeliveryAttempt) string {
	return fmt.Sprintf("%s%020d#%s#%06d", deliveryPrefix(a.WebhookID), a.At.UnixNano(), a.EventID, a.Attempt)
}

type secretItem struct {
	Sealed     []byte `dynamodbav:"sealed"`
	KeyVersion string `dynamodbav:"key_version,omitempty"`
	CreatedAt  string `dynamodbav:"created_at"`
	ExpiresAt  string `dynamodbav:"expires_at,omitempty"`
}

type webhookItem struct {
	PK             string       `dynamodbav:"pk"`
	SK             string       `dynamodbav:"sk"`
	TenantID       string       `dynamodbav:"tenant_id"`
	WebhookID      string       `dynamodbav:"webhook_id"`
	URL            string       `dynamodbav:"url"`
	Events         []string     `dynamodbav:"events"`
	Description    string       `dynamodbav:"description,omitempty"`
	CreatedAt      string       `dynamodbav:"created_at"`
	Secrets        []secretItem `dynamodbav:"secrets"`
	Disabled       bool         `dynamodbav:"disabled"`
	DisabledAt     string       `dynamodbav:"disabled_at,omitempty"`
	DisabledReason string       `dynamodbav:"disabled_reason,omitempty"`
	Revision       int64        `dynamodbav:"revision"`
	// DeletedAt marks a tombstone (DeleteWebhook), reaped at TTL.
	DeletedAt string `dynamodbav:"deleted_at,omitempty"`
	TTL       int64  `dynamodbav:"ttl,omitempty"`
}

func encodeWebhook(w *keyseal.Webhook, revision int64) (map[string]types.AttributeValue, error) {
	it := webhookItem{PK: tenantPK(w.TenantID), SK: webhookSK(w.ID), TenantID: w.TenantID, WebhookID: w.ID,
		URL: w.URL, Events: w.Events, Description: w.Description, CreatedAt: formatTime(w.CreatedAt),
		Disabled: w.Disabled, DisabledAt: formatTimePtr(w.DisabledAt), DisabledReason: w.DisabledReason, Revision: revision}
	if it.Events == nil {
		it.Events = []string{}
	}
	for _, s := range w.Secrets {
		si := secretItem{Sealed: s.Sealed.Blob, KeyVersion: s.Sealed.KeyVersion, CreatedAt: formatTime(s.CreatedAt)}
		if !s.ExpiresAt.IsZero() {
			si.ExpiresAt = formatTime(s.ExpiresAt)
		}
		it.Secrets = append(it.Secrets, si)
	}
	return attributevalue.MarshalMap(it)
}

func decodeWebhook(av map[string]types.AttributeValue) (*keyseal.Webhook, error) {
	var it webhookItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return nil, fmt.Errorf("decode webhook: %w", err)
	}
	if it.DeletedAt != "" {
		return nil, nil
	}
	w := &keyseal.Webhook{ID: it.WebhookID, TenantID: it.TenantID, URL: it.URL, Events: it.Events,
		Description: it.Description, Disabled: it.Disabled, DisabledReason: it.DisabledReason, Revision: it.Revision}
	var err error
	if w.CreatedAt, err = parseTime("created_at", it.CreatedAt); err != nil {
		return nil, err
	}
	if w.DisabledAt, err = parseTimePtr("disabled_at", it.DisabledAt); err != nil {
		return nil, err
	}
	for _, si := range it.Secrets {
		s := keyseal.WebhookSecret{Sealed: keyseal.Wrapped{Blob: si.Sealed, KeyVersion: si.KeyVersion}}
		if s.CreatedAt, err = parseTime("secret created_at", si.CreatedAt); err != nil {
			return nil, err
		}
		if si.ExpiresAt != "" {
			if s.ExpiresAt, err = parseTime("secret expires_at", si.ExpiresAt); err != nil {
				return nil, err
			}
		}
		w.Secrets = append(w.Secrets, s)
	}
	return w, nil
}

// CreateWebhook implements keyseal.Store: the subscription (conditional on
// being new), the tenant's subscription count (conditional on staying
// within MaxWebhooksPerTenant) and the audit entry are one transaction,
// so concurrent creates can never pass the limit.
func (s *Store) CreateWebhook(ctx context.Context, w *keyseal.Webhook, rec keyseal.AuditRecord) error {
	if err := storecheck.Webhook(w); err != nil {
		return err
	}
	if err := storecheck.Record(rec); err != nil {
		return err
	}
	item, err := encodeWebhook(w, 1)
	if err != nil {
		return fmt.Errorf("dynamostore: create webhook: %w", err)
	}
	writes := []write{
		{
			item: types.TransactWriteItem{Put: &types.Put{
				TableName: &s.table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)"),
			}},
			onConditionFailed: func(context.Context) error {
				return keyseal.Errorf(keyseal.ECONFLICT, "webhook %s already exists", w.ID)
			},
		},
		{
			item: types.TransactWriteItem{Update: &types.Update{
				TableName:           &s.table,
				Key:                 key(tenantPK(w.TenantID), skWebhookN),
				UpdateExpression:    aws.String("ADD n :one"),
				ConditionExpression: aws.String("attribute_not_exists(n) OR n < :max"),
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":one": number(1), ":max": number(keyseal.MaxWebhooksPerTenant),
				},
			}},
			onConditionFailed: func(context.Context) error {
				return keyseal.WebhookLimitError()
			},
		},
	}
	if _, err := s.transact(ctx, "create webhook", w.TenantID, writes, &rec); err != nil {
		return err
	}
	w.Revision = 1
	return nil
}

// GetWebhook implements keyseal.Store.
func (s *Store) GetWebhook(ctx context.Context, tenantID, id string) (*keyseal.Webhook, error) {
	notFound := keyseal.Errorf(keyseal.ENOTFOUND, "webhook %s not found", id)
	if tenantID == "" || id == "" {
		return nil, notFound
	}
	av, err := s.get(ctx, tenantPK(tenantID), webhookSK(id))
	if err != nil {
		return nil, fmt.Errorf("dynamostore: get webhook: %w", err)
	}
	if av == nil {
		return nil, notFound
	}
	w, err := decodeWebhook(av)
	if err != nil {
		return nil, fmt.Errorf("dynamostore: get webhook: %w", err)
	}
	if w == nil {
		return nil, notFound
	}
	return w, nil
}

// ListWebhooks implements keyseal.Store: oldest first, ties by id.
func (s *Store) ListWebhooks(ctx context.Context, tenantID string) ([]keyseal.Webhook, error) {
	if tenantID == "" {
		return nil, nil
	}
	out, err := queryAll(ctx, s, tenantPK(tenantID), skWebhookPre, decodeWebhook)
	if err != nil {
		return nil, fmt.Errorf("dynamostore: list webhooks: %w", err)
	}
	slices.SortStableFunc(out, func(x, y keyseal.Webhook) int {
		return cmp.Or(x.CreatedAt.Compare(y.CreatedAt), strings.Compare(x.ID, y.ID))
	})
	return out, nil
}

// UpdateWebhook implements keyseal.Store: a Put conditional on the stored
// revision.
func (s *Store) UpdateWebhook(ctx context.Context, w *keyseal.Webhook, rec *keyseal.AuditRecord) error {
	if err := storecheck.Webhook(w); err != nil {
		return err
	}
	if rec != nil {
		if err := storecheck.Record(*rec); err != nil {
			return err
		}
	}
	item, err := encodeWebhook(w, w.Revision+1)
	if err != nil {
		return fmt.Errorf("dynamostore: update webhook: %w", err)
	}
	writes := []write{{
		item: types.TransactWriteItem{Put: &types.Put{
			TableName: &s.table, Item: item,
			ConditionExpression:       aws.String("attribute_exists(pk) AND attribute_not_exists(deleted_at) AND revision = :rev"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":rev": number(w.Revision)},
		}},
		onConditionFailed: func(ctx context.Context) error {
			cur, err := s.get(ctx, tenantPK(w.TenantID), webhookSK(w.ID))
			switch {
			case err != nil:
				return fmt.Errorf("read after failed condition: %w", err)
			case cur == nil || cur["deleted_at"] != nil:
				return keyseal.Errorf(keyseal.ENOTFOUND, "webhook %s not found", w.ID)
			default:
				return keyseal.Errorf(keyseal.ECONFLICT, "webhook %s changed concurrently (expected revision %d)", w.ID, w.Revision)
			}
		},
	}}
	if _, err := s.transact(ctx, "update webhook", w.TenantID, writes, rec); err != nil {
		return err
	}
	w.Revision++
	return nil
}

// DeleteWebhook implements keyseal.Store: the subscription becomes a
// tombstone (deleted_at, a TTL) in one transaction with the count's
// decrement and the audit entry. A tombstone is not found by any read, and
// its attempts are listed no more (ListDeliveries checks the subscription
// first); TTL reaps both. Nothing is deleted: the write role has no
// DeleteItem.
func (s *Store) DeleteWebhook(ctx context.Context, tenantID, id string, rec keyseal.AuditRecord) error {
	if err := storecheck.TenantID(tenantID); err != nil {
		return err
	}
	if err := storecheck.Record(rec); err != nil {
		return err
	}
	if id == "" {
		return keyseal.Errorf(keyseal.ENOTFOUND, "webhook %s not found", id)
	}
	writes := []write{
		{
			item: types.TransactWriteItem{Update: &types.Update{
				TableName: &s.table, Key: key(tenantPK(tenantID), webhookSK(id)),
				UpdateExpression:         aws.String("SET deleted_at = :at, #ttl = :ttl REMOVE secrets"),
				ConditionExpression:      aws.String("attribute_exists(pk) AND attribute_not_exists(deleted_at)"),
				ExpressionAttributeNames: map[string]string{"#ttl": attrTTL},
				ExpressionAttributeValues: map[string]types.AttributeValue{
					":at": str(formatTime(rec.At)), ":ttl": number(rec.At.Add(DeliveryTTL).Unix()),
				},
			}},
			onConditionFailed: func(context.Context) error {
				return keyseal.Errorf(keyseal.ENOTFOUND, "webhook %s not found", id)
			},
		},
		{
			item: types.TransactWriteItem{Update: &types.Update{
				TableName:                 &s.table,
				Key:                       key(tenantPK(tenantID), skWebhookN),
				UpdateExpression:          aws.String("ADD n :minus"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":minus": number(-1)},
			}},
			onConditionFailed: func(context.Context) error {
				return fmt.Errorf("unconditional count update reported a failed condition")
			},
		},
	}
	_, err := s.transact(ctx, "delete webhook", tenantID, writes, &rec)
	return err
}

type deliveryItem struct {
	PK           string `dynamodbav:"pk"`
	SK           string `dynamodbav:"sk"`
	TenantID     string `dynamodbav:"tenant_id"`
	WebhookID    string `dynamodbav:"webhook_id"`
	EventID      string `dynamodbav:"event_id"`
	EventType    string `dynamodbav:"event_type"`
	Attempt      int    `dynamodbav:"attempt"`
	At           string `dynamodbav:"at"`
	Outcome      string `dynamodbav:"outcome"`
	ResponseCode int    `dynamodbav:"response_code,omitempty"`
	LatencyMS    int64  `dynamodbav:"latency_ms"`
	Error        string `dynamodbav:"error,omitempty"`
	NextRetryAt  string `dynamodbav:"next_retry_at,omitempty"`
	TTL          int64  `dynamodbav:"ttl"`
}

// RecordDelivery implements keyseal.Store: the attempt's Put with a
// condition check that the subscription still exists (ENOTFOUND when it
// was deleted). Older attempts are not deleted (no DeleteItem): they fall
// out of ListDeliveries past MaxDeliveriesKept and TTL reaps them.
func (s *Store) RecordDelivery(ctx context.Context, a keyseal.DeliveryAttempt) error {
	if err := storecheck.Delivery(a); err != nil {
		return err
	}
	item, err := attributevalue.MarshalMap(deliveryItem{PK: tenantPK(a.TenantID), SK: deliverySK(a), TenantID: a.TenantID,
		WebhookID: a.WebhookID, EventID: a.EventID, EventType: a.EventType, Attempt: a.Attempt, At: formatTime(a.At),
		Outcome: a.Outcome, ResponseCode: a.ResponseCode, LatencyMS: a.LatencyMS, Error: a.Error,
		NextRetryAt: formatTimePtr(a.NextRetryAt), TTL: a.At.Add(DeliveryTTL).Unix()})
	if err != nil {
		return fmt.Errorf("dynamostore: record delivery: %w", err)
	}
	writes := []write{
		{
			item: types.TransactWriteItem{ConditionCheck: &types.ConditionCheck{
				TableName: &s.table, Key: key(tenantPK(a.TenantID), webhookSK(a.WebhookID)),
				ConditionExpression: aws.String("attribute_exists(pk) AND attribute_not_exists(deleted_at)"),
			}},
			onConditionFailed: func(context.Context) error {
				return keyseal.Errorf(keyseal.ENOTFOUND, "webhook %s not found", a.WebhookID)
			},
		},
		{
			item: types.TransactWriteItem{Put: &types.Put{TableName: &s.table, Item: item}},
			onConditionFailed: func(context.Context) error {
				return fmt.Errorf("unconditional attempt put reported a failed condition")
			},
		},
	}
	_, err = s.transact(ctx, "record delivery", a.TenantID, writes, nil)
	return err
}

// ListDeliveries implements keyseal.Store: a backward Query, newest
// first, at most MaxDeliveriesKept (a limit of zero or less: that many).
// A deleted subscription has none.
func (s *Store) ListDeliveries(ctx context.Context, tenantID, webhookID string, limit int) ([]keyseal.DeliveryAttempt, error) {
	if tenantID == "" || webhookID == "" {
		return nil, nil
	}
	if _, err := s.GetWebhook(ctx, tenantID, webhookID); keyseal.ErrorCode(err) == keyseal.ENOTFOUND {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("dynamostore: list deliveries: %w", err)
	}
	if limit <= 0 || limit > keyseal.MaxDeliveriesKept {
		limit = keyseal.MaxDeliveriesKept
	}
	in := &dynamodb.QueryInput{
		TableName:              &s.table,
		ConsistentRead:         aws.Bool(true),
		ScanIndexForward:       aws.Bool(false),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :prefix)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": str(tenantPK(tenantID)), ":prefix": str(deliveryPrefix(webhookID)),
		},
	}
	in.Limit = aws.Int32(int32(limit))
	var out []keyseal.DeliveryAttempt
	for {
		res, err := s.api.Query(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("dynamostore: list deliveries: %w", err)
		}
		for _, av := range res.Items {
			if len(out) >= limit {
				return out, nil
			}
			a, err := decodeDelivery(av)
			if err != nil {
				return nil, fmt.Errorf("dynamostore: list deliveries: %w", err)
			}
			out = append(out, a)
		}
		if len(res.LastEvaluatedKey) == 0 || len(out) >= limit {
			return out, nil
		}
		in.ExclusiveStartKey = res.LastEvaluatedKey
	}
}

func decodeDelivery(av map[string]types.AttributeValue) (keyseal.DeliveryAttempt, error) {
	var it deliveryItem
	if err := attributevalue.UnmarshalMap(av, &it); err != nil {
		return keyseal.DeliveryAttempt{}, fmt.Errorf("decode delivery attempt: %w", err)
	}
	a := keyseal.DeliveryAttempt{TenantID: it.TenantID, WebhookID: it.WebhookID, EventID: it.EventID, EventType: it.EventType,
		Attempt: it.Attempt, Outcome: it.Outcome, ResponseCode: it.ResponseCode, LatencyMS: it.LatencyMS, Error: it.Error}
	var err error
	if a.At, err = parseTime("at", it.At); err != nil {
		return a, err
	}
	if a.NextRetryAt, err = parseTimePtr("next_retry_at", it.NextRetryAt); err != nil {
		return a, err
	}
	return a, nil
}

// PutEvent implements keyseal.Store: the outbox item on its own, in a
// transaction of one so the outbox write path is the changes' own.
func (s *Store) PutEvent(ctx context.Context, e keyseal.Event) error {
	es := []keyseal.Event{e}
	if err := storecheck.TenantID(e.TenantID); err != nil {
		return err
	}
	if err := storecheck.Events(e.TenantID, es); err != nil {
		return err
	}
	writes, err := s.outboxWrites(es)
	if err != nil {
		return fmt.Errorf("dynamostore: put event: %w", err)
	}
	_, err = s.transact(ctx, "put event", e.TenantID, writes, nil)
	return err
}
