package boltstore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	bolt "go.etcd.io/bbolt"

	"github.com/keyseal/keyseal/shared/internal/storecheck"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// webhookRecord is the stored form of a subscription: keyseal.Webhook
// keeps its secrets and revision out of JSON (API responses); the store
// needs them.
type webhookRecord struct {
	keyseal.Webhook
	Secrets  []secretRecord `json:"secrets"`
	Revision int64          `json:"revision"`
}

type secretRecord struct {
	keyseal.WebhookSecret
	Blob       []byte `json:"blob"`
	KeyVersion string `json:"key_version,omitempty"`
}

func encodeWebhook(w *keyseal.Webhook, revision int64) webhookRecord {
	r := webhookRecord{Webhook: *w, Revision: revision}
	for _, s := range w.Secrets {
		r.Secrets = append(r.Secrets, secretRecord{WebhookSecret: s, Blob: s.Sealed.Blob, KeyVersion: s.Sealed.KeyVersion})
	}
	return r
}

func decodeWebhook(raw []byte) (*keyseal.Webhook, error) {
	var r webhookRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("decode webhook: %w", err)
	}
	w := r.Webhook
	w.Revision = r.Revision
	w.CreatedAt = w.CreatedAt.UTC()
	utcPtr(w.DisabledAt)
	w.Secrets = nil
	for _, s := range r.Secrets {
		sec := s.WebhookSecret
		sec.Sealed = keyseal.Wrapped{Blob: s.Blob, KeyVersion: s.KeyVersion}
		sec.CreatedAt = sec.CreatedAt.UTC()
		sec.ExpiresAt = sec.ExpiresAt.UTC()
		w.Secrets = append(w.Secrets, sec)
	}
	return &w, nil
}

// CreateWebhook implements keyseal.Store. Counting and writing happen in
// one bolt write transaction, which bolt serialises, so concurrent
// creates cannot pass MaxWebhooksPerTenant.
func (s *Store) CreateWebhook(ctx context.Context, w *keyseal.Webhook, rec keyseal.AuditRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := storecheck.Webhook(w); err != nil {
		return err
	}
	if err := storecheck.Record(rec); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.Bucket(bucketWebhooks).CreateBucketIfNotExists([]byte(w.TenantID))
		if err != nil {
			return err
		}
		if b.Get([]byte(w.ID)) != nil {
			return keyseal.Errorf(keyseal.ECONFLICT, "webhook %s already exists", w.ID)
		}
		if n := countKeys(b); n >= keyseal.MaxWebhooksPerTenant {
			return keyseal.WebhookLimitError()
		}
		if err := putJSON(b, []byte(w.ID), encodeWebhook(w, 1)); err != nil {
			return err
		}
		_, err = s.appendAudit(ctx, tx, w.TenantID, rec)
		return err
	})
	if err != nil {
		return wrap("create webhook", err)
	}
	w.Revision = 1
	return nil
}

func readWebhook(tx *bolt.Tx, tenantID, id string) (*keyseal.Webhook, error) {
	var raw []byte
	if b := tenantBucket(tx, bucketWebhooks, tenantID); b != nil && id != "" {
		raw = b.Get([]byte(id))
	}
	if raw == nil {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "webhook %s not found", id)
	}
	return decodeWebhook(raw)
}

// GetWebhook implements keyseal.Store.
func (s *Store) GetWebhook(ctx context.Context, tenantID, id string) (*keyseal.Webhook, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var w *keyseal.Webhook
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		w, err = readWebhook(tx, tenantID, id)
		return err
	})
	if err != nil {
		return nil, wrap("get webhook", err)
	}
	return w, nil
}

// ListWebhooks implements keyseal.Store: oldest first, ties by id.
func (s *Store) ListWebhooks(ctx context.Context, tenantID string) ([]keyseal.Webhook, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []keyseal.Webhook
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tenantBucket(tx, bucketWebhooks, tenantID)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, raw []byte) error {
			w, err := decodeWebhook(raw)
			if err != nil {
				return err
			}
			out = append(out, *w)
			return nil
		})
	})
	if err != nil {
		return nil, wrap("list webhooks", err)
	}
	slices.SortStableFunc(out, func(x, y keyseal.Webhook) int {
		return cmp.Or(x.CreatedAt.Compare(y.CreatedAt), strings.Compare(x.ID, y.ID))
	})
	return out, nil
}

// UpdateWebhook implements keyseal.Store.
func (s *Store) UpdateWebhook(ctx context.Context, w *keyseal.Webhook, rec *keyseal.AuditRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := storecheck.Webhook(w); err != nil {
		return err
	}
	if rec != nil {
		if err := storecheck.Record(*rec); err != nil {
			return err
		}
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		cur, err := readWebhook(tx, w.TenantID, w.ID)
		if err != nil {
			return err
		}
		if cur.Revision != w.Revision {
			return keyseal.Errorf(keyseal.ECONFLICT, "webhook %s changed concurrently (revision %d, expected %d)", w.ID, cur.Revision, w.Revision)
		}
		if err := putJSON(tx.Bucket(bucketWebhooks).Bucket([]byte(w.TenantID)), []byte(w.ID), encodeWebhook(w, w.Revision+1)); err != nil {
			return err
		}
		if rec != nil {
			_, err = s.appendAudit(ctx, tx, w.TenantID, *rec)
		}
		return err
	})
	if err != nil {
		return wrap("update webhook", err)
	}
	w.Revision++
	return nil
}

// DeleteWebhook implements keyseal.Store: the subscription, its attempts
// and the audit entry in one transaction.
func (s *Store) DeleteWebhook(ctx context.Context, tenantID, id string, rec keyseal.AuditRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := storecheck.TenantID(tenantID); err != nil {
		return err
	}
	if err := storecheck.Record(rec); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		if _, err := readWebhook(tx, tenantID, id); err != nil {
			return err
		}
		if err := tx.Bucket(bucketWebhooks).Bucket([]byte(tenantID)).Delete([]byte(id)); err != nil {
			return err
		}
		if d := tenantBucket(tx, bucketDeliveries, tenantID); d != nil && d.Bucket([]byte(id)) != nil {
			if err := d.DeleteBucket([]byte(id)); err != nil {
				return err
			}
		}
		_, err := s.appendAudit(ctx, tx, tenantID, rec)
		return err
	})
	return wrap("delete webhook", err)
}

// deliveryKey orders a subscription's attempts by time, then by the
// order of writing (a per-bucket sequence).
func deliveryKey(a keyseal.DeliveryAttempt, seq uint64) []byte {
	k := binary.BigEndian.AppendUint64(nil, uint64(a.At.UnixNano()))
	return binary.BigEndian.AppendUint64(k, seq)
}

// RecordDelivery implements keyseal.Store. ENOTFOUND when the
// subscription is gone.
func (s *Store) RecordDelivery(ctx context.Context, a keyseal.DeliveryAttempt) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := storecheck.Delivery(a); err != nil {
		return err
	}
	a.At = a.At.UTC()
	utcPtr(a.NextRetryAt)
	err := s.db.Update(func(tx *bolt.Tx) error {
		if _, err := readWebhook(tx, a.TenantID, a.WebhookID); err != nil {
			return err
		}
		t, err := tx.Bucket(bucketDeliveries).CreateBucketIfNotExists([]byte(a.TenantID))
		if err != nil {
			return err
		}
		b, err := t.CreateBucketIfNotExists([]byte(a.WebhookID))
		if err != nil {
			return err
		}
		seq, err := b.NextSequence()
		if err != nil {
			return err
		}
		if err := putJSON(b, deliveryKey(a, seq), a); err != nil {
			return err
		}
		// Trim the oldest beyond MaxDeliveriesKept.
		var drop [][]byte
		n := countKeys(b)
		c := b.Cursor()
		for k, _ := c.First(); k != nil && n-len(drop) > keyseal.MaxDeliveriesKept; k, _ = c.Next() {
			drop = append(drop, bytes.Clone(k))
		}
		for _, k := range drop {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap("record delivery", err)
}

// ListDeliveries implements keyseal.Store: newest first; a limit of zero
// or less returns every kept attempt.
func (s *Store) ListDeliveries(ctx context.Context, tenantID, webhookID string, limit int) ([]keyseal.DeliveryAttempt, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []keyseal.DeliveryAttempt
	err := s.db.View(func(tx *bolt.Tx) error {
		t := tenantBucket(tx, bucketDeliveries, tenantID)
		if t == nil || webhookID == "" {
			return nil
		}
		b := t.Bucket([]byte(webhookID))
		if b == nil {
			return nil
		}
		c := b.Cursor()
		for k, raw := c.Last(); k != nil && (limit <= 0 || len(out) < limit); k, raw = c.Prev() {
			var a keyseal.DeliveryAttempt
			if err := json.Unmarshal(raw, &a); err != nil {
				return fmt.Errorf("decode delivery attempt: %w", err)
			}
			a.At = a.At.UTC()
			utcPtr(a.NextRetryAt)
			out = append(out, a)
		}
		return nil
	})
	if err != nil {
		return nil, wrap("list deliveries", err)
	}
	return out, nil
}

// PutEvent implements keyseal.Store.
func (s *Store) PutEvent(ctx context.Context, e keyseal.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	es := []keyseal.Event{e}
	if err := storecheck.TenantID(e.TenantID); err != nil {
		return err
	}
	if err := storecheck.Events(e.TenantID, es); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error { return putOutbox(tx, es) })
	return wrap("put event", err)
}

// countKeys counts a bucket's keys with a cursor, which (unlike Stats)
// sees the writes of the open transaction.
func countKeys(b *bolt.Bucket) int {
	n := 0
	c := b.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		n++
	}
	return n
}
