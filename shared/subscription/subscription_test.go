package subscription_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/localkms"
	"github.com/keyseal/keyseal/shared/memstore"
	"github.com/keyseal/keyseal/shared/subscription"
	"github.com/keyseal/keyseal/shared/webhook"
)

// fakeDNS answers from a table; unknown names are NXDOMAIN.
type fakeDNS map[string][]string

func (d fakeDNS) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	names, ok := d[host]
	if !ok {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	var out []netip.Addr
	for _, n := range names {
		out = append(out, netip.MustParseAddr(n))
	}
	return out, nil
}

// clock is a test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type fixture struct {
	svc   *subscription.Service
	store *memstore.Store
	kms   *localkms.Provider
	clock *clock
}

func newFixture(t *testing.T, dev bool) *fixture {
	t.Helper()
	lk, err := localkms.Open("")
	if err != nil {
		t.Fatal(err)
	}
	key, err := lk.CreateKey()
	if err != nil {
		t.Fatal(err)
	}
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	st := memstore.New()
	svc := &subscription.Service{Store: st, KMS: keyseal.Providers{keyseal.ProviderLocal: lk},
		PlatformKey: keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: key}, Policy: webhook.Policy{Dev: dev},
		Resolver: fakeDNS{
			"hooks.example.com": {"93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c"},
			"rebind.example":    {"93.184.215.14", "127.0.0.1"},
			"metadata.example":  {"169.254.169.254"},
			"inside.example":    {"10.0.0.7"},
		}, Now: c.Now}
	return &fixture{svc: svc, store: st, kms: lk, clock: c}
}

func (f *fixture) create(t *testing.T, url string, events ...string) *subscription.Created {
	t.Helper()
	if len(events) == 0 {
		events = []string{keyseal.EventSealed}
	}
	c, err := f.svc.Create(t.Context(), "tenant-a", url, events, "ops pager", "admin:alice")
	if err != nil {
		t.Fatalf("Create(%s): %v", url, err)
	}
	return c
}

func wantInvalid(t *testing.T, err error, contains string) {
	t.Helper()
	if keyseal.ErrorCode(err) != keyseal.EINVALID {
		t.Fatalf("err = %v, want %s", err, keyseal.EINVALID)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Fatalf("err = %q, want it to say %q", err, contains)
	}
}

// Every bad input is EINVALID with a message naming the rule, and
// nothing is stored.
func TestCreateRefusesBadInput(t *testing.T) {
	f := newFixture(t, false)
	sealed := []string{keyseal.EventSealed}
	tests := []struct {
		name, url   string
		events      []string
		description string
		want        string
	}{
		{"http", "http://hooks.example.com/x", sealed, "", "must use https"},
		{"not a URL", "hooks.example.com", sealed, "", "absolute https URL"},
		{"credentials", "https://u:p@hooks.example.com/x", sealed, "", "credentials"},
		{"too long", "https://hooks.example.com/" + strings.Repeat("a", keyseal.MaxWebhookURL), sealed, "", "at most 2048"},
		{"loopback literal", "https://127.0.0.1/x", sealed, "", "loopback"},
		{"localhost", "https://localhost/x", sealed, "", "loopback name"},
		{"resolves to loopback", "https://rebind.example/x", sealed, "", "resolves to 127.0.0.1"},
		{"resolves to metadata", "https://metadata.example/x", sealed, "", "resolves to 169.254.169.254"},
		{"resolves to private", "https://inside.example/x", sealed, "", "resolves to 10.0.0.7"},
		{"does not resolve", "https://nowhere.example/x", sealed, "", "does not resolve"},
		{"no events", "https://hooks.example.com/x", nil, "", "at least one event type"},
		{"unknown event", "https://hooks.example.com/x", []string{"tenant.kms.exploded"}, "", "valid types: tenant.kms.sealed"},
		{"test event", "https://hooks.example.com/x", []string{keyseal.EventWebhookTest}, "", "cannot be subscribed"},
		{"duplicate event", "https://hooks.example.com/x", []string{keyseal.EventSealed, keyseal.EventSealed}, "", "named twice"},
		{"long description", "https://hooks.example.com/x", sealed, strings.Repeat("é", subscription.MaxDescription+1), "at most 256"},
		{"control in description", "https://hooks.example.com/x", sealed, "a\x1bb", "visible characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.svc.Create(t.Context(), "tenant-a", tc.url, tc.events, tc.description, "admin:alice")
			wantInvalid(t, err, tc.want)
		})
	}
	if ws, _ := f.svc.List(t.Context(), "tenant-a"); len(ws) != 0 {
		t.Fatalf("refused creates stored %d subscriptions", len(ws))
	}
	// 256 characters (of two bytes each) are fine.
	if _, err := f.svc.Create(t.Context(), "tenant-a", "https://hooks.example.com/x", sealed, strings.Repeat("é", subscription.MaxDescription), "admin:alice"); err != nil {
		t.Fatalf("Create(256-character description): %v", err)
	}
}

// Dev mode admits http://127.0.0.1 and http://localhost, nothing else
// over http.
func TestCreateDevMode(t *testing.T) {
	f := newFixture(t, true)
	f.svc.Resolver = fakeDNS{"localhost": {"127.0.0.1", "::1"}, "hooks.example.com": {"93.184.215.14"}}
	f.create(t, "http://127.0.0.1:9000/hook")
	f.create(t, "http://localhost:9000/hook")
	_, err := f.svc.Create(t.Context(), "tenant-a", "http://hooks.example.com/x", []string{keyseal.EventSealed}, "", "admin:alice")
	wantInvalid(t, err, "only to 127.0.0.1 or localhost")
	_, err = f.svc.Create(t.Context(), "tenant-a", "https://169.254.169.254/latest", []string{keyseal.EventSealed}, "", "admin:alice")
	wantInvalid(t, err, "metadata")
}

// Create returns the secret once; the stored secret is sealed (not the
// plaintext), and neither list output nor any audit record holds it.
func TestSecretShownOnce(t *testing.T) {
	f := newFixture(t, false)
	c := f.create(t, "https://hooks.example.com/x", keyseal.EventSealed, keyseal.EventRotated)
	key, err := webhook.ParseSecret(c.Secret)
	if err != nil {
		t.Fatalf("Create returned a malformed secret: %v", err)
	}
	body, _ := json.Marshal(c)
	if !strings.Contains(string(body), c.Secret) || !strings.Contains(string(body), `"id":"`+c.ID) {
		t.Fatalf("the create answer lacks the secret or id: %s", body)
	}
	ws, err := f.svc.List(t.Context(), "tenant-a")
	if err != nil || len(ws) != 1 {
		t.Fatalf("List = %v, %v", ws, err)
	}
	listed, _ := json.Marshal(ws)
	stored, _ := f.store.GetWebhook(t.Context(), "tenant-a", c.ID)
	if len(stored.Secrets) != 1 || bytes.Contains(stored.Secrets[0].Sealed.Blob, key) {
		t.Fatalf("the store holds %d secrets, or the plaintext key", len(stored.Secrets))
	}
	rot, err := f.svc.RotateSecret(t.Context(), "tenant-a", c.ID, "admin:alice")
	if err != nil {
		t.Fatal(err)
	}
	entries, _ := f.store.ListAudit(t.Context(), "tenant-a", keyseal.AuditQuery{})
	audited, _ := json.Marshal(entries)
	b64 := strings.TrimPrefix(c.Secret, webhook.SecretPrefix)
	b64new := strings.TrimPrefix(rot.Secret, webhook.SecretPrefix)
	for what, out := range map[string]string{"list": string(listed), "audit": string(audited)} {
		if strings.Contains(out, b64) || strings.Contains(out, b64new) || strings.Contains(out, "whsec_") {
			t.Fatalf("%s output holds a secret: %s", what, out)
		}
	}
	if len(entries) != 2 || entries[0].Action != keyseal.ActionWebhookRotate || entries[1].Action != keyseal.ActionWebhookCreate {
		t.Fatalf("audit = %s", audited)
	}
	if entries[1].Details["webhook_id"] != c.ID {
		t.Fatalf("create's audit entry does not name the webhook: %v", entries[1].Details)
	}
}

// The secret is sealed under the platform key bound to tenant and
// webhook: unsealing it for another subscription fails.
func TestSecretBoundToWebhook(t *testing.T) {
	f := newFixture(t, false)
	c1 := f.create(t, "https://hooks.example.com/1")
	f.clock.Add(time.Second)
	c2 := f.create(t, "https://hooks.example.com/2")
	w1, _ := f.store.GetWebhook(t.Context(), "tenant-a", c1.ID)
	w2, _ := f.store.GetWebhook(t.Context(), "tenant-a", c2.ID)
	swapped := *w2
	swapped.Secrets = w1.Secrets
	f.svc.CacheTTL = -1
	if _, err := f.svc.SigningSecrets(t.Context(), &swapped, f.clock.Now()); err == nil {
		t.Fatal("a secret sealed for one webhook unsealed for another")
	}
	keys, err := f.svc.SigningSecrets(t.Context(), w1, f.clock.Now())
	if err != nil || len(keys) != 1 || subscription.FormatSecret(keys[0]) != c1.Secret {
		t.Fatalf("SigningSecrets = %d keys, %v; want the created secret", len(keys), err)
	}
}

// Rotation: the new secret is current, the old one signs for
// SecretOverlap and is dropped once expired.
func TestRotateOverlapAndExpiry(t *testing.T) {
	f := newFixture(t, false)
	f.svc.CacheTTL = -1 // every call unseals: what is stored is what is checked
	c := f.create(t, "https://hooks.example.com/x")
	f.clock.Add(time.Hour)
	r1, err := f.svc.RotateSecret(t.Context(), "tenant-a", c.ID, "admin:alice")
	if err != nil {
		t.Fatal(err)
	}
	if want := f.clock.Now().Add(keyseal.SecretOverlap); !r1.PreviousExpiresAt.Equal(want) {
		t.Fatalf("previous expires at %s, want %s", r1.PreviousExpiresAt, want)
	}
	secrets := func(at time.Time) []string {
		t.Helper()
		w, err := f.store.GetWebhook(t.Context(), "tenant-a", c.ID)
		if err != nil {
			t.Fatal(err)
		}
		keys, err := f.svc.SigningSecrets(t.Context(), w, at)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, k := range keys {
			out = append(out, subscription.FormatSecret(k))
		}
		return out
	}
	now := f.clock.Now()
	if got := secrets(now); len(got) != 2 || got[0] != r1.Secret || got[1] != c.Secret {
		t.Fatalf("after rotation: %d secrets (want new then old)", len(got))
	}
	if got := secrets(now.Add(keyseal.SecretOverlap - time.Second)); len(got) != 2 {
		t.Fatalf("just before the overlap ends: %d secrets, want 2", len(got))
	}
	if got := secrets(now.Add(keyseal.SecretOverlap)); len(got) != 1 || got[0] != r1.Secret {
		t.Fatalf("at the overlap's end: %d secrets, want only the new one", len(got))
	}
	// A rotation after the overlap drops the expired one from the store.
	f.clock.Add(keyseal.SecretOverlap + time.Minute)
	r2, err := f.svc.RotateSecret(t.Context(), "tenant-a", c.ID, "admin:alice")
	if err != nil {
		t.Fatal(err)
	}
	w, _ := f.store.GetWebhook(t.Context(), "tenant-a", c.ID)
	if len(w.Secrets) != 2 {
		t.Fatalf("stored secrets after a second rotation = %d, want 2 (the expired one dropped)", len(w.Secrets))
	}
	if got := secrets(f.clock.Now()); len(got) != 2 || got[0] != r2.Secret || got[1] != r1.Secret {
		t.Fatal("after the second rotation: want the newest two")
	}
	_, err = f.svc.RotateSecret(t.Context(), "tenant-b", c.ID, "admin:bob")
	if keyseal.ErrorCode(err) != keyseal.ENOTFOUND {
		t.Fatalf("rotating another tenant's webhook: %v", err)
	}
}

// Unsealed secrets are cached: a burst of deliveries unseals once.
func TestSigningSecretsCached(t *testing.T) {
	f := newFixture(t, false)
	c := f.create(t, "https://hooks.example.com/x")
	w, _ := f.store.GetWebhook(t.Context(), "tenant-a", c.ID)
	f.svc.CacheTTL = 0
	other := &subscription.Service{Store: f.store, KMS: f.svc.KMS, PlatformKey: f.svc.PlatformKey}
	_, before := f.kms.Calls()
	for range 10 {
		if _, err := other.SigningSecrets(t.Context(), w, f.clock.Now()); err != nil {
			t.Fatal(err)
		}
	}
	if _, after := f.kms.Calls(); after-before != 1 {
		t.Fatalf("10 signings unsealed %d times, want 1", after-before)
	}
}

// A tenant has at most 20 subscriptions.
func TestLimit(t *testing.T) {
	f := newFixture(t, false)
	for i := range keyseal.MaxWebhooksPerTenant {
		f.create(t, fmt.Sprintf("https://hooks.example.com/%d", i))
	}
	_, err := f.svc.Create(t.Context(), "tenant-a", "https://hooks.example.com/21", []string{keyseal.EventSealed}, "", "admin:alice")
	wantInvalid(t, err, "at most 20 webhooks")
	if _, err := f.svc.Create(t.Context(), "tenant-b", "https://hooks.example.com/b", []string{keyseal.EventSealed}, "", "admin:bob"); err != nil {
		t.Fatalf("another tenant's first: %v", err)
	}
}

// Test queues one webhook.test event naming the subscription; Targets
// sends it there only, and other events to the subscriptions naming their
// type that are not disabled.
func TestTestEventAndTargets(t *testing.T) {
	f := newFixture(t, false)
	a := f.create(t, "https://hooks.example.com/a", keyseal.EventSealed)
	b := f.create(t, "https://hooks.example.com/b", keyseal.EventSealed, keyseal.EventUnsealed)
	id, err := f.svc.Test(t.Context(), "tenant-a", a.ID)
	if err != nil {
		t.Fatal(err)
	}
	out, _ := f.store.ListOutbox(t.Context(), 0)
	if len(out) != 1 || out[0].ID != id || out[0].Type != keyseal.EventWebhookTest || subscription.TestTarget(out[0]) != a.ID {
		t.Fatalf("outbox = %+v", out)
	}
	ids := func(e keyseal.Event) []string {
		t.Helper()
		ws, err := f.svc.Targets(t.Context(), e)
		if err != nil {
			t.Fatal(err)
		}
		var s []string
		for _, w := range ws {
			s = append(s, w.ID)
		}
		return s
	}
	if got := ids(out[0]); len(got) != 1 || got[0] != a.ID {
		t.Fatalf("test event targets %v, want only %s", got, a.ID)
	}
	sealed := keyseal.Event{ID: "e1", Type: keyseal.EventSealed, TenantID: "tenant-a"}
	if got := ids(sealed); len(got) != 2 {
		t.Fatalf("sealed targets %v, want both", got)
	}
	if got := ids(keyseal.Event{ID: "e2", Type: keyseal.EventUnsealed, TenantID: "tenant-a"}); len(got) != 1 || got[0] != b.ID {
		t.Fatalf("unsealed targets %v, want %s", got, b.ID)
	}
	if got := ids(keyseal.Event{ID: "e3", Type: keyseal.EventSealed, TenantID: "tenant-b"}); len(got) != 0 {
		t.Fatalf("another tenant's event targets %v", got)
	}
	w, _ := f.store.GetWebhook(t.Context(), "tenant-a", b.ID)
	if err := f.svc.Disable(t.Context(), w, "410 Gone"); err != nil {
		t.Fatal(err)
	}
	if got := ids(sealed); len(got) != 1 || got[0] != a.ID {
		t.Fatalf("after disabling %s, sealed targets %v", b.ID, got)
	}
	entries, _ := f.store.ListAudit(t.Context(), "tenant-a", keyseal.AuditQuery{Action: keyseal.ActionWebhookDisable})
	if len(entries) != 1 || entries[0].Details["reason"] != "410 Gone" {
		t.Fatalf("disable audit = %+v", entries)
	}
	if err := f.svc.Disable(t.Context(), w, "410 Gone"); err != nil {
		t.Fatalf("Disable twice: %v", err)
	}
	if _, err := f.svc.Test(t.Context(), "tenant-a", b.ID); keyseal.ErrorCode(err) != keyseal.ECONFLICT {
		t.Fatalf("Test(disabled) = %v, want %s", err, keyseal.ECONFLICT)
	}
	if _, err := f.svc.Test(t.Context(), "tenant-b", a.ID); keyseal.ErrorCode(err) != keyseal.ENOTFOUND {
		t.Fatalf("Test(other tenant's) = %v", err)
	}
}

// Deliveries: default and maximum page sizes; Delete audits and removes.
func TestDeliveriesAndDelete(t *testing.T) {
	f := newFixture(t, false)
	c := f.create(t, "https://hooks.example.com/x")
	for i := range 30 {
		if err := f.store.RecordDelivery(t.Context(), keyseal.DeliveryAttempt{TenantID: "tenant-a", WebhookID: c.ID,
			EventID: fmt.Sprint("e", i), Attempt: 1, At: f.clock.Now().Add(time.Duration(i) * time.Second), Outcome: keyseal.DeliveryDelivered}); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := f.svc.Deliveries(t.Context(), "tenant-a", c.ID, 0)
	if err != nil || len(ds) != subscription.DefaultDeliveries || ds[0].EventID != "e29" {
		t.Fatalf("Deliveries(default) = %d, %v", len(ds), err)
	}
	if _, err := f.svc.Deliveries(t.Context(), "tenant-a", c.ID, 101); keyseal.ErrorCode(err) != keyseal.EINVALID {
		t.Fatalf("Deliveries(101) = %v", err)
	}
	if _, err := f.svc.Deliveries(t.Context(), "tenant-b", c.ID, 5); keyseal.ErrorCode(err) != keyseal.ENOTFOUND {
		t.Fatalf("Deliveries(other tenant's) = %v", err)
	}
	if err := f.svc.Delete(t.Context(), "tenant-b", c.ID, "admin:bob"); keyseal.ErrorCode(err) != keyseal.ENOTFOUND {
		t.Fatalf("Delete(other tenant's) = %v", err)
	}
	if err := f.svc.Delete(t.Context(), "tenant-a", c.ID, "admin:alice"); err != nil {
		t.Fatal(err)
	}
	if ws, _ := f.svc.List(t.Context(), "tenant-a"); len(ws) != 0 {
		t.Fatalf("List after delete = %d", len(ws))
	}
	entries, _ := f.store.ListAudit(t.Context(), "tenant-a", keyseal.AuditQuery{Limit: 1})
	if entries[0].Action != keyseal.ActionWebhookDelete || entries[0].Details["webhook_id"] != c.ID {
		t.Fatalf("delete audit = %+v", entries[0])
	}
}

// TestDisableAuditedOnceUnderConcurrency: many attempts answered 410 at
// once (each with its own copy of the subscription, as the deliverer
// reads it) disable it with one webhook.disable entry, and none fails.
func TestDisableAuditedOnceUnderConcurrency(t *testing.T) {
	f := newFixture(t, false)
	c, err := f.svc.Create(t.Context(), "tenant-a", "https://hooks.example.com/k", []string{keyseal.EventSealed}, "", "admin:carol")
	if err != nil {
		t.Fatal(err)
	}
	const n = 16
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range n {
		w, err := f.store.GetWebhook(t.Context(), "tenant-a", c.ID)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() { errs <- f.svc.Disable(t.Context(), w, "receiver answered 410 Gone") })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Disable: %v", err)
		}
	}
	entries, _ := f.store.ListAudit(t.Context(), "tenant-a", keyseal.AuditQuery{Action: keyseal.ActionWebhookDisable})
	if len(entries) != 1 {
		t.Fatalf("%d webhook.disable entries, want 1", len(entries))
	}
	if w, _ := f.store.GetWebhook(t.Context(), "tenant-a", c.ID); !w.Disabled {
		t.Fatal("not disabled")
	}
}
