// Package subscription manages a tenant's webhook subscriptions: creating
// them (the URL checked against the SSRF policy, its host resolved and
// every address checked), listing, deleting, rotating the signing secret
// with an overlap, queueing a test event, and listing recent delivery
// attempts. It also answers the deliverer: which subscriptions an event
// goes to, and the secrets that sign it.
//
// Signing secrets are sealed under the platform key, never the tenant's
// TMK: a sealed tenant must still get its tenant.kms.sealed webhook. A
// secret's plaintext leaves the service only in the answer of Create and
// RotateSecret (shown once) and to the deliverer (SigningSecrets); it is
// never in an audit record, a list, a log or an error.
package subscription

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/webhook"
)

// MaxDescription bounds a subscription's description, in characters.
const MaxDescription = 256

// Deliveries' page sizes.
const (
	DefaultDeliveries = 20
	MaxDeliveries     = keyseal.MaxDeliveriesKept
)

// DefaultCacheTTL is how long an unsealed signing secret is kept in
// memory, so a burst of deliveries does not call KMS per attempt.
const DefaultCacheTTL = 5 * time.Minute

// SystemActor is the actor of what the deliverer does (Disable).
const SystemActor = "system:webhook-deliverer"

// Resolver resolves a host to its addresses; *net.Resolver is one, and
// tests replace it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// Service is the subscription service. Store, KMS and PlatformKey are
// required; the zero Policy is production's (dev mode sets Dev).
type Service struct {
	Store keyseal.WebhookStore
	// KMS seals and unseals signing secrets under PlatformKey.
	KMS         keyseal.KMS
	PlatformKey keyseal.KeyRef
	Policy      webhook.Policy
	// Resolver checks a new subscription's host; nil is net.DefaultResolver.
	Resolver Resolver
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// CacheTTL bounds how long unsealed secrets stay in memory; zero is
	// DefaultCacheTTL, negative disables the cache.
	CacheTTL time.Duration

	mu    sync.Mutex
	cache map[cacheKey]cached
}

type cacheKey struct {
	tenantID, webhookID string
	created             int64 // the secret's CreatedAt, unix nanos
}

type cached struct {
	key     []byte
	expires time.Time
}

// Created is a new subscription with its signing secret, which exists in
// plaintext only in this value.
type Created struct {
	keyseal.Webhook
	Secret string `json:"secret"`
}

// Rotated is the answer of RotateSecret: the new current secret (shown
// once) and when the previous one stops signing.
type Rotated struct {
	WebhookID         string    `json:"id"`
	Secret            string    `json:"secret"`
	CreatedAt         time.Time `json:"created_at"`
	PreviousExpiresAt time.Time `json:"previous_expires_at"`
}

func (s *Service) now() time.Time {
	if s.Now == nil {
		return time.Now().UTC().Truncate(time.Microsecond)
	}
	return s.Now().UTC().Truncate(time.Microsecond)
}

func (s *Service) resolver() Resolver {
	if s.Resolver == nil {
		return net.DefaultResolver
	}
	return s.Resolver
}

// secretContext binds a sealed secret to its tenant and subscription, so
// a blob cannot be replayed for another.
func secretContext(tenantID, webhookID string) map[string]string {
	return map[string]string{"keyseal:tenant": tenantID, "keyseal:purpose": "webhook_secret", "keyseal:webhook": webhookID}
}

// Create validates and stores a subscription, audited as webhook.create.
// Bad input is EINVALID naming the rule: the URL policy (webhook.Policy),
// a host address delivery may not reach, events (non-empty, known, no
// duplicates, not webhook.test), a description over MaxDescription
// characters, or a tenant already at keyseal.MaxWebhooksPerTenant.
func (s *Service) Create(ctx context.Context, tenantID, rawURL string, events []string, description, actor string) (*Created, error) {
	if err := checkDescription(description); err != nil {
		return nil, err
	}
	if err := checkEvents(events); err != nil {
		return nil, err
	}
	u, err := s.Policy.CheckURL(rawURL)
	if err != nil {
		return nil, err
	}
	if err := s.checkHost(ctx, u.Hostname()); err != nil {
		return nil, err
	}
	existing, err := s.Store.ListWebhooks(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	if len(existing) >= keyseal.MaxWebhooksPerTenant {
		return nil, keyseal.WebhookLimitError()
	}
	id, err := newID()
	if err != nil {
		return nil, err
	}
	now := s.now()
	secret, sealed, err := s.newSecret(ctx, tenantID, id, now)
	if err != nil {
		return nil, err
	}
	w := keyseal.Webhook{ID: id, TenantID: tenantID, URL: u.String(), Events: slices.Clone(events),
		Description: description, CreatedAt: now, Secrets: []keyseal.WebhookSecret{sealed}}
	rec := keyseal.AuditRecord{At: now, Action: keyseal.ActionWebhookCreate, Severity: keyseal.SeverityInfo, Actor: actor,
		Details: map[string]string{"webhook_id": id, "url": w.URL, "events": strings.Join(events, ",")}}
	if err := s.Store.CreateWebhook(ctx, &w, rec); err != nil {
		return nil, err
	}
	w.Secrets = nil
	return &Created{Webhook: w, Secret: secret}, nil
}

func checkDescription(d string) error {
	if !utf8.ValidString(d) || utf8.RuneCountInString(d) > MaxDescription {
		return keyseal.Errorf(keyseal.EINVALID, "description must be valid UTF-8 of at most %d characters", MaxDescription)
	}
	for _, r := range d {
		if !unicode.IsGraphic(r) {
			return keyseal.Errorf(keyseal.EINVALID, "description must be visible characters and spaces: no control, format (bidi, zero-width) or line-separator characters")
		}
	}
	return nil
}

func checkEvents(events []string) error {
	valid := strings.Join(keyseal.EventTypes, ", ")
	if len(events) == 0 {
		return keyseal.Errorf(keyseal.EINVALID, "events must name at least one event type: %s", valid)
	}
	seen := map[string]bool{}
	for _, e := range events {
		switch {
		case e == keyseal.EventWebhookTest:
			return keyseal.Errorf(keyseal.EINVALID, "events: %s cannot be subscribed to (POST /admin/webhooks/{id}/test sends it); valid types: %s", e, valid)
		case !slices.Contains(keyseal.EventTypes, e):
			return keyseal.Errorf(keyseal.EINVALID, "events: unknown event type %q; valid types: %s", e, valid)
		case seen[e]:
			return keyseal.Errorf(keyseal.EINVALID, "events: %s is named twice", e)
		}
		seen[e] = true
	}
	return nil
}

// checkHost resolves host and refuses it when any address it resolves to
// is one a delivery may not reach (the dial is checked again, so a name
// that later resolves elsewhere is still stopped).
func (s *Service) checkHost(ctx context.Context, host string) error {
	addrs, err := s.resolver().LookupNetIP(ctx, "ip", host)
	if err != nil {
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && !dnsErr.IsNotFound {
			return keyseal.Errorf(keyseal.EINVALID, "url: host %s could not be resolved now (%s); try again", host, dnsErr.Err)
		}
		return keyseal.Errorf(keyseal.EINVALID, "url: host %s does not resolve", host)
	}
	if len(addrs) == 0 {
		return keyseal.Errorf(keyseal.EINVALID, "url: host %s has no address", host)
	}
	for _, a := range addrs {
		if err := s.Policy.AllowedDial(host, a); err != nil {
			return keyseal.Errorf(keyseal.EINVALID, "url: host %s resolves to %s, which deliveries may not reach: %s", host, a.Unmap(), err.Error())
		}
	}
	return nil
}

// idPrefix and idHex are the shape of a subscription id: "wh_" and 16
// lowercase hex digits (newID).
const (
	idPrefix = "wh_"
	idHex    = 16
)

// checkID answers ENOTFOUND for an id no subscription can have, before
// any store sees it: an id from a request path may be longer than a
// DynamoDB key allows, or shaped like another item's key.
func checkID(id string) error {
	hexPart, ok := strings.CutPrefix(id, idPrefix)
	if ok && len(hexPart) == idHex && strings.Trim(hexPart, "0123456789abcdef") == "" {
		return nil
	}
	return keyseal.Errorf(keyseal.ENOTFOUND, "webhook not found: ids are %s and %d hex digits", idPrefix, idHex)
}

func newID() (string, error) {
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	return idPrefix + hex.EncodeToString(raw[:]), nil
}

// newSecret makes a signing secret and seals its key under the platform
// key.
func (s *Service) newSecret(ctx context.Context, tenantID, webhookID string, now time.Time) (string, keyseal.WebhookSecret, error) {
	secret, err := webhook.NewSecret()
	if err != nil {
		return "", keyseal.WebhookSecret{}, err
	}
	key, err := webhook.ParseSecret(secret)
	if err != nil {
		return "", keyseal.WebhookSecret{}, err
	}
	sealed, err := s.KMS.Wrap(ctx, s.PlatformKey, key, secretContext(tenantID, webhookID))
	if err != nil {
		return "", keyseal.WebhookSecret{}, fmt.Errorf("seal webhook secret under the platform key: %w", err)
	}
	s.remember(tenantID, webhookID, now, key)
	return secret, keyseal.WebhookSecret{Sealed: sealed, CreatedAt: now}, nil
}

// List returns a tenant's subscriptions, oldest first, without secrets.
func (s *Service) List(ctx context.Context, tenantID string) ([]keyseal.Webhook, error) {
	ws, err := s.Store.ListWebhooks(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	for i := range ws {
		ws[i].Secrets = nil
	}
	return ws, nil
}

// Get returns one subscription, without secrets; ENOTFOUND for an
// unknown id or another tenant's.
func (s *Service) Get(ctx context.Context, tenantID, id string) (*keyseal.Webhook, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	w, err := s.Store.GetWebhook(ctx, tenantID, id)
	if err != nil {
		return nil, err
	}
	w.Secrets = nil
	return w, nil
}

// Delete removes a subscription and its attempts, audited as
// webhook.delete.
func (s *Service) Delete(ctx context.Context, tenantID, id, actor string) error {
	if err := checkID(id); err != nil {
		return err
	}
	now := s.now()
	err := s.Store.DeleteWebhook(ctx, tenantID, id, keyseal.AuditRecord{At: now, Action: keyseal.ActionWebhookDelete,
		Severity: keyseal.SeverityInfo, Actor: actor, Details: map[string]string{"webhook_id": id}})
	if err != nil {
		return err
	}
	s.forget(tenantID, id)
	return nil
}

// maxUpdateAttempts bounds the re-reads of a subscription that changed
// under an update (a rotation racing a disable).
const maxUpdateAttempts = 3

// RotateSecret makes a new current secret (returned once); the previous
// one keeps signing until SecretOverlap from now, and older ones already
// expired are dropped. Audited as webhook.rotate_secret.
func (s *Service) RotateSecret(ctx context.Context, tenantID, id, actor string) (*Rotated, error) {
	if err := checkID(id); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		w, err := s.Store.GetWebhook(ctx, tenantID, id)
		if err != nil {
			return nil, err
		}
		now := s.now()
		secret, fresh, err := s.newSecret(ctx, tenantID, id, now)
		if err != nil {
			return nil, err
		}
		expires := now.Add(keyseal.SecretOverlap)
		kept := []keyseal.WebhookSecret{fresh}
		for i, old := range w.Secrets {
			switch {
			case i == 0:
				old.ExpiresAt = expires
			case !old.ExpiresAt.After(now):
				continue // expired: dropped
			}
			kept = append(kept, old)
		}
		w.Secrets = kept
		rec := keyseal.AuditRecord{At: now, Action: keyseal.ActionWebhookRotate, Severity: keyseal.SeverityInfo, Actor: actor,
			Details: map[string]string{"webhook_id": id, "previous_expires_at": expires.Format(time.RFC3339)}}
		err = s.Store.UpdateWebhook(ctx, w, &rec)
		if keyseal.ErrorCode(err) == keyseal.ECONFLICT && attempt < maxUpdateAttempts {
			continue
		}
		if err != nil {
			return nil, err
		}
		return &Rotated{WebhookID: id, Secret: secret, CreatedAt: now, PreviousExpiresAt: expires}, nil
	}
}

// TestEvent returns the webhook.test event for one subscription, which
// names it in its data.
func TestEvent(tenantID, webhookID string, at time.Time) (keyseal.Event, error) {
	return keyseal.NewEvent(keyseal.EventWebhookTest, tenantID, at, keyseal.WebhookTestData{WebhookID: webhookID})
}

// TestTarget returns the subscription a webhook.test event names ("" for
// none, or for data that does not decode).
func TestTarget(e keyseal.Event) string {
	var d keyseal.WebhookTestData
	if e.DecodeData(&d) != nil {
		return ""
	}
	return d.WebhookID
}

// Test queues a webhook.test event for one subscription and returns the
// event's id. A disabled subscription is ECONFLICT: nothing would be sent.
func (s *Service) Test(ctx context.Context, tenantID, id string) (string, error) {
	if err := checkID(id); err != nil {
		return "", err
	}
	w, err := s.Store.GetWebhook(ctx, tenantID, id)
	if err != nil {
		return "", err
	}
	if w.Disabled {
		return "", keyseal.Errorf(keyseal.ECONFLICT, "webhook %s is disabled (%s): delete it and create a new one", id, w.DisabledReason)
	}
	e, err := TestEvent(tenantID, id, s.now())
	if err != nil {
		return "", err
	}
	if err := s.Store.PutEvent(ctx, e); err != nil {
		return "", err
	}
	return e.ID, nil
}

// Deliveries returns a subscription's recent attempts, newest first:
// limit 0 is DefaultDeliveries, more than MaxDeliveries is EINVALID.
func (s *Service) Deliveries(ctx context.Context, tenantID, id string, limit int) ([]keyseal.DeliveryAttempt, error) {
	switch {
	case limit == 0:
		limit = DefaultDeliveries
	case limit < 0 || limit > MaxDeliveries:
		return nil, keyseal.Errorf(keyseal.EINVALID, "limit must be 1-%d", MaxDeliveries)
	}
	if err := checkID(id); err != nil {
		return nil, err
	}
	if _, err := s.Store.GetWebhook(ctx, tenantID, id); err != nil {
		return nil, err
	}
	ds, err := s.Store.ListDeliveries(ctx, tenantID, id, limit)
	if err != nil {
		return nil, err
	}
	if ds == nil {
		ds = []keyseal.DeliveryAttempt{}
	}
	return ds, nil
}

// The deliverer's port.
var _ webhook.Subscriptions = (*Service)(nil)

// Targets returns the subscriptions e goes to: those of its tenant that
// name its type and are not disabled; a webhook.test event goes only to
// the subscription it names.
func (s *Service) Targets(ctx context.Context, e keyseal.Event) ([]keyseal.Webhook, error) {
	ws, err := s.Store.ListWebhooks(ctx, e.TenantID)
	if err != nil {
		return nil, err
	}
	var out []keyseal.Webhook
	for _, w := range ws {
		if w.Disabled {
			continue
		}
		if e.Type == keyseal.EventWebhookTest {
			if w.ID == TestTarget(e) {
				out = append(out, w)
			}
			continue
		}
		if slices.Contains(w.Events, e.Type) {
			out = append(out, w)
		}
	}
	return out, nil
}

// SigningSecrets returns the keys that sign a delivery at now: the
// current secret and every older one not yet expired, newest first.
// Unsealed keys are cached for CacheTTL, keyed by subscription and the
// secret's creation time.
func (s *Service) SigningSecrets(ctx context.Context, w *keyseal.Webhook, now time.Time) ([][]byte, error) {
	var out [][]byte
	for i, sec := range w.Secrets {
		if i > 0 && !sec.ExpiresAt.After(now) {
			continue
		}
		if key := s.recall(w.TenantID, w.ID, sec.CreatedAt); key != nil {
			out = append(out, key)
			continue
		}
		key, err := s.KMS.Unwrap(ctx, s.PlatformKey, sec.Sealed, secretContext(w.TenantID, w.ID))
		if err != nil {
			return nil, fmt.Errorf("unseal signing secret of webhook %s: %w", w.ID, err)
		}
		s.remember(w.TenantID, w.ID, sec.CreatedAt, key)
		out = append(out, key)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("webhook %s has no signing secret", w.ID)
	}
	return out, nil
}

// Disable stops deliveries to a subscription whose receiver answered 410
// Gone, audited as webhook.disable. Already disabled is not an error.
func (s *Service) Disable(ctx context.Context, w *keyseal.Webhook, reason string) error {
	for attempt := 1; ; attempt++ {
		cur, err := s.Store.GetWebhook(ctx, w.TenantID, w.ID)
		if err != nil {
			return err
		}
		if cur.Disabled {
			*w = *cur
			return nil
		}
		now := s.now()
		cur.Disabled, cur.DisabledAt, cur.DisabledReason = true, &now, reason
		rec := keyseal.AuditRecord{At: now, Action: keyseal.ActionWebhookDisable, Severity: keyseal.SeverityWarning, Actor: SystemActor,
			Details: map[string]string{"webhook_id": w.ID, "reason": reason}}
		err = s.Store.UpdateWebhook(ctx, cur, &rec)
		if keyseal.ErrorCode(err) == keyseal.ECONFLICT && attempt < maxUpdateAttempts {
			continue
		}
		if err != nil {
			return err
		}
		*w = *cur
		return nil
	}
}

func (s *Service) cacheTTL() time.Duration {
	if s.CacheTTL == 0 {
		return DefaultCacheTTL
	}
	return s.CacheTTL
}

func (s *Service) remember(tenantID, webhookID string, created time.Time, key []byte) {
	ttl := s.cacheTTL()
	if ttl < 0 {
		return
	}
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cache == nil {
		s.cache = map[cacheKey]cached{}
	}
	for k, c := range s.cache {
		if !c.expires.After(now) {
			delete(s.cache, k)
		}
	}
	s.cache[cacheKey{tenantID, webhookID, created.UnixNano()}] = cached{key: slices.Clone(key), expires: now.Add(ttl)}
}

func (s *Service) recall(tenantID, webhookID string, created time.Time) []byte {
	if s.cacheTTL() < 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cache[cacheKey{tenantID, webhookID, created.UnixNano()}]
	if !ok || !c.expires.After(time.Now()) {
		return nil
	}
	return slices.Clone(c.key)
}

func (s *Service) forget(tenantID, webhookID string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k := range s.cache {
		if k.tenantID == tenantID && k.webhookID == webhookID {
			delete(s.cache, k)
		}
	}
}

// FormatSecret renders signing key bytes as the secret a receiver is
// given ("whsec_" and base64), so a test can compare what SigningSecrets
// returns with what Create showed.
func FormatSecret(key []byte) string {
	return webhook.SecretPrefix + base64.StdEncoding.EncodeToString(key)
}
