package memstore

import (
	"bytes"
	"cmp"
	"context"
	"slices"
	"strings"

	"github.com/keyseal/keyseal/shared/internal/storecheck"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// webhookKey addresses one subscription (and its attempts).
type webhookKey struct{ tenantID, id string }

// CreateWebhook implements keyseal.Store.
func (s *Store) CreateWebhook(ctx context.Context, w *keyseal.Webhook, rec keyseal.AuditRecord) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := storecheck.Webhook(w); err != nil {
		return err
	}
	if err := storecheck.Record(rec); err != nil {
		return err
	}
	k := webhookKey{w.TenantID, w.ID}
	if _, ok := s.webhooks[k]; ok {
		return keyseal.Errorf(keyseal.ECONFLICT, "webhook %s already exists", w.ID)
	}
	n := 0
	for k := range s.webhooks {
		if k.tenantID == w.TenantID {
			n++
		}
	}
	if n >= keyseal.MaxWebhooksPerTenant {
		return keyseal.WebhookLimitError()
	}
	row := cloneWebhook(*w)
	row.Revision = 1
	s.webhooks[k] = row
	s.appendLocked(ctx, w.TenantID, rec)
	w.Revision = 1
	return nil
}

// GetWebhook implements keyseal.Store.
func (s *Store) GetWebhook(ctx context.Context, tenantID, id string) (*keyseal.Webhook, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	w, ok := s.webhooks[webhookKey{tenantID, id}]
	if !ok {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "webhook %s not found", id)
	}
	c := cloneWebhook(w)
	return &c, nil
}

// ListWebhooks implements keyseal.Store: oldest first, ties by id.
func (s *Store) ListWebhooks(ctx context.Context, tenantID string) ([]keyseal.Webhook, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	var out []keyseal.Webhook
	for k, w := range s.webhooks {
		if k.tenantID == tenantID {
			out = append(out, cloneWebhook(w))
		}
	}
	slices.SortFunc(out, compareWebhooks)
	return out, nil
}

// compareWebhooks orders subscriptions oldest first, ties by id.
func compareWebhooks(x, y keyseal.Webhook) int {
	return cmp.Or(x.CreatedAt.Compare(y.CreatedAt), strings.Compare(x.ID, y.ID))
}

// UpdateWebhook implements keyseal.Store.
func (s *Store) UpdateWebhook(ctx context.Context, w *keyseal.Webhook, rec *keyseal.AuditRecord) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := storecheck.Webhook(w); err != nil {
		return err
	}
	if rec != nil {
		if err := storecheck.Record(*rec); err != nil {
			return err
		}
	}
	k := webhookKey{w.TenantID, w.ID}
	cur, ok := s.webhooks[k]
	if !ok {
		return keyseal.Errorf(keyseal.ENOTFOUND, "webhook %s not found", w.ID)
	}
	if cur.Revision != w.Revision {
		return keyseal.Errorf(keyseal.ECONFLICT, "webhook %s changed concurrently (revision %d, expected %d)", w.ID, cur.Revision, w.Revision)
	}
	row := cloneWebhook(*w)
	row.Revision = w.Revision + 1
	s.webhooks[k] = row
	if rec != nil {
		s.appendLocked(ctx, w.TenantID, *rec)
	}
	w.Revision = row.Revision
	return nil
}

// DeleteWebhook implements keyseal.Store.
func (s *Store) DeleteWebhook(ctx context.Context, tenantID, id string, rec keyseal.AuditRecord) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := storecheck.TenantID(tenantID); err != nil {
		return err
	}
	if err := storecheck.Record(rec); err != nil {
		return err
	}
	k := webhookKey{tenantID, id}
	if _, ok := s.webhooks[k]; !ok {
		return keyseal.Errorf(keyseal.ENOTFOUND, "webhook %s not found", id)
	}
	delete(s.webhooks, k)
	delete(s.deliveries, k)
	s.appendLocked(ctx, tenantID, rec)
	return nil
}

// RecordDelivery implements keyseal.Store. ENOTFOUND when the
// subscription is gone (deleted while the attempt ran).
func (s *Store) RecordDelivery(ctx context.Context, a keyseal.DeliveryAttempt) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := storecheck.Delivery(a); err != nil {
		return err
	}
	k := webhookKey{a.TenantID, a.WebhookID}
	if _, ok := s.webhooks[k]; !ok {
		return keyseal.Errorf(keyseal.ENOTFOUND, "webhook %s not found", a.WebhookID)
	}
	a.At = a.At.UTC()
	a.NextRetryAt = utcPtr(a.NextRetryAt)
	// Kept oldest first by time; an equal time keeps the order of writing.
	ds := s.deliveries[k]
	i, _ := slices.BinarySearchFunc(ds, a, func(x, y keyseal.DeliveryAttempt) int {
		if x.At.After(y.At) {
			return 1
		}
		return -1
	})
	ds = slices.Insert(ds, i, a)
	if over := len(ds) - keyseal.MaxDeliveriesKept; over > 0 {
		ds = slices.Delete(ds, 0, over)
	}
	s.deliveries[k] = ds
	return nil
}

// ListDeliveries implements keyseal.Store: newest first; a limit of zero
// or less returns every kept attempt.
func (s *Store) ListDeliveries(ctx context.Context, tenantID, webhookID string, limit int) ([]keyseal.DeliveryAttempt, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	ds := s.deliveries[webhookKey{tenantID, webhookID}]
	var out []keyseal.DeliveryAttempt
	for i := len(ds) - 1; i >= 0 && (limit <= 0 || len(out) < limit); i-- {
		a := ds[i]
		a.NextRetryAt = utcPtr(a.NextRetryAt)
		out = append(out, a)
	}
	return out, nil
}

// PutEvent implements keyseal.Store.
func (s *Store) PutEvent(ctx context.Context, e keyseal.Event) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	es := []keyseal.Event{e}
	if err := storecheck.TenantID(e.TenantID); err != nil {
		return err
	}
	if err := storecheck.Events(e.TenantID, es); err != nil {
		return err
	}
	if err := s.checkOutbox(es); err != nil {
		return err
	}
	s.putOutbox(es)
	return nil
}

func cloneWebhook(w keyseal.Webhook) keyseal.Webhook {
	w.Events = slices.Clone(w.Events)
	w.CreatedAt = w.CreatedAt.UTC()
	w.DisabledAt = utcPtr(w.DisabledAt)
	secrets := make([]keyseal.WebhookSecret, len(w.Secrets))
	for i, sec := range w.Secrets {
		sec.Sealed.Blob = bytes.Clone(sec.Sealed.Blob)
		sec.CreatedAt = sec.CreatedAt.UTC()
		sec.ExpiresAt = sec.ExpiresAt.UTC()
		secrets[i] = sec
	}
	w.Secrets = secrets
	return w
}
