package storecheck

import "github.com/keyseal/keyseal/shared/keyseal"

// Webhook refuses a subscription a store cannot key or a deliverer could
// not use: no tenant, no id, no URL, or no signing secret.
func Webhook(w *keyseal.Webhook) error {
	if err := TenantID(w.TenantID); err != nil {
		return err
	}
	if w.ID == "" || len(w.ID) > 128 {
		return keyseal.Errorf(keyseal.EINVALID, "webhook id must be 1-128 characters")
	}
	if w.URL == "" {
		return keyseal.Errorf(keyseal.EINVALID, "webhook %s has no url", w.ID)
	}
	if len(w.Secrets) == 0 {
		return keyseal.Errorf(keyseal.EINVALID, "webhook %s has no signing secret", w.ID)
	}
	return nil
}

// Delivery refuses an attempt that names no subscription or event.
func Delivery(a keyseal.DeliveryAttempt) error {
	if err := TenantID(a.TenantID); err != nil {
		return err
	}
	if a.WebhookID == "" || a.EventID == "" || a.At.IsZero() {
		return keyseal.Errorf(keyseal.EINVALID, "delivery attempt needs webhook_id, event_id and at")
	}
	return nil
}
