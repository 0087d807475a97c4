//go:build integration

package suite

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/go-jose/go-jose/v4"

	"github.com/keyseal/keyseal/localstack/faultproxy"
	"github.com/keyseal/keyseal/shared/client"
	"github.com/keyseal/keyseal/shared/session"
)

// TestDisabledKeySealsAndReEnableUnseals is seed 000's story end to end:
// the customer disables the CMK, one poll seals the tenant, new sessions get
// 503 while tokens issued before keep verifying until exp, and re-enabling
// the key unseals by itself with a critical audit entry and an event.
func TestDisabledKeySealsAndReEnableUnseals(t *testing.T) {
	e := newEnv(t, nil)
	tn := e.newTenant()
	ctx := context.Background()

	before := e.session(tn).want(http.StatusCreated)
	token := before.str("token")
	if v := e.tenantKMS(tn); v.Status != "active" || v.SealedSince != nil {
		t.Fatalf("fresh tenant: %+v", v)
	}
	// The wire format itself (raw, not through the client's types).
	if _, ok := e.call(http.MethodGet, "/admin/tenant-kms", e.adminToken(tn.ID, "alice"), "", nil).want(http.StatusOK).body["sealed_since"]; !ok {
		t.Fatal("sealed_since must always be present (null when not sealed)")
	}

	if _, err := e.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(tn.KeyID)}); err != nil {
		t.Fatal(err)
	}
	e.sweep() // one poll

	v := e.tenantKMS(tn)
	if v.Status != "sealed" || str(v.SealReason) != "key_disabled" || v.SealedSince == nil || v.LastVerifyError == nil {
		t.Fatalf("after one poll with the key disabled: %+v", v)
	}
	e.session(tn).agentError(http.StatusServiceUnavailable, "tenant_sealed")
	sealed := e.awaitEvent("tenant.kms.sealed", tn.ID)
	if sealed.Detail.Data.Reason != "key_disabled" || sealed.Source != "keyseal" || sealed.Detail.ID == "" {
		t.Fatalf("sealed event: %+v", sealed)
	}
	if n := len(e.auditEntries(tn, "byok.kms.seal")); n != 1 {
		t.Fatalf("%d byok.kms.seal entries, want 1", n)
	}

	// The token minted before the seal still verifies with the public JWKS,
	// and stops at its exp.
	set := e.jwks(tn.ID)
	claims, err := session.Verify(token, set, time.Now())
	if err != nil {
		t.Fatalf("token issued before the seal no longer verifies: %v", err)
	}
	if _, err := session.Verify(token, set, claims.Expiry.Time().Add(time.Second)); err == nil {
		t.Fatal("token still verifies after its exp")
	}

	// A second poll while still disabled changes nothing and audits nothing.
	e.sweep()
	if again := e.tenantKMS(tn); again.SealedSince == nil || !again.SealedSince.Equal(*v.SealedSince) {
		t.Fatalf("sealed_since moved on a re-seal: %v -> %v", v.SealedSince, again.SealedSince)
	}
	if n := len(e.auditEntries(tn, "byok.kms.seal")); n != 1 {
		t.Fatalf("%d byok.kms.seal entries after a second failing poll, want 1", n)
	}

	if _, err := e.kms.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(tn.KeyID)}); err != nil {
		t.Fatal(err)
	}
	e.sweep()
	v = e.tenantKMS(tn)
	if v.Status != "active" || v.SealedSince != nil || v.SealReason != nil {
		t.Fatalf("after re-enabling: %+v", v)
	}
	unseals := e.auditEntries(tn, "byok.kms.unseal")
	if len(unseals) != 1 || unseals[0].Severity != "critical" || unseals[0].Actor != "system:poller" {
		t.Fatalf("unseal audit entries: %v", unseals)
	}
	if unsealed := e.awaitEvent("tenant.kms.unsealed", tn.ID); unsealed.Detail.ID == "" || unsealed.Detail.ID == sealed.Detail.ID || unsealed.Detail.Data.Trigger != "poller" {
		t.Fatalf("unsealed event id %q trigger %q (sealed was %q): want its own, by the poller", unsealed.Detail.ID, unsealed.Detail.Data.Trigger, sealed.Detail.ID)
	}
	e.session(tn).want(http.StatusCreated)
	// Both came through the outbox, which the drain empties.
	e.awaitOutboxEmpty()
}

func (e *env) jwks(tenantID string) jose.JSONWebKeySet {
	e.tb.Helper()
	return must(e.api("").JWKS(context.Background(), tenantID))(e.tb)
}

// TestForcedUnseal covers the unseal API of seed 000: 409 when not sealed,
// 502 with the reason while KMS still fails, 200 once it works.
func TestForcedUnseal(t *testing.T) {
	e := newEnv(t, nil)
	tn := e.newTenant()
	admin := e.admin(tn.ID)
	unseal := func() error {
		_, err := admin.Unseal(context.Background(), e.stepUpWith(admin))
		return err
	}

	wantAPIError(t, unseal(), http.StatusConflict, "not_sealed")

	e.proxy.Set(tn.KeyID, faultproxy.Deny) // the customer revokes keyseal's IAM access
	e.sweep()
	if v := e.tenantKMS(tn); v.Status != "sealed" || str(v.SealReason) != "access_denied" {
		t.Fatalf("after access was revoked: %+v", v)
	}
	if r := wantAPIError(t, unseal(), http.StatusBadGateway, "unseal_failed"); r.ExtraString("reason") != "access_denied" {
		t.Fatalf("reason %q, want access_denied: %s", r.ExtraString("reason"), r.Body)
	}

	e.proxy.Set(tn.KeyID, faultproxy.Drop) // and now the network is cut
	if r := wantAPIError(t, unseal(), http.StatusBadGateway, "unseal_failed"); r.ExtraString("reason") != "unreachable" {
		t.Fatalf("reason %q, want unreachable: %s", r.ExtraString("reason"), r.Body)
	}

	e.proxy.Clear()
	// The success body on the wire (raw, not through the client's types).
	tok := e.adminToken(tn.ID, "alice")
	if r := e.call(http.MethodPost, "/admin/tenant-kms/unseal", tok, e.stepUp(tok), nil).want(http.StatusOK); r.raw != `{"unsealed":true}` {
		t.Fatalf("body %s, want {\"unsealed\":true}", r.raw)
	}
	entries := e.auditEntries(tn, "byok.kms.unseal")
	if len(entries) != 1 || entries[0].Severity != "critical" || entries[0].Actor != "admin:alice" {
		t.Fatalf("unseal audit entries: %v", entries)
	}
	e.session(tn).want(http.StatusCreated)
	wantAPIError(t, unseal(), http.StatusConflict, "not_sealed")
}

// TestConcurrentForcedUnsealRecordsOne races ten admins' unseals: one wins,
// the others see not_sealed, and the chain holds exactly one unseal.
func TestConcurrentForcedUnsealRecordsOne(t *testing.T) {
	e := newEnv(t, nil)
	tn := e.newTenant()
	e.proxy.Set(tn.KeyID, faultproxy.Deny)
	e.sweep()
	e.proxy.Clear()

	const n = 10
	admin := e.admin(tn.ID)
	tokens := make([]string, n)
	for i := range tokens {
		tokens[i] = e.stepUpWith(admin)
	}
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := admin.Unseal(context.Background(), tokens[i])
			statuses[i] = http.StatusOK
			if ae, ok := errors.AsType[*client.Error](err); ok {
				statuses[i] = ae.Status
			} else if err != nil {
				statuses[i] = -1
			}
		}()
	}
	wg.Wait()
	ok, conflict := 0, 0
	for _, s := range statuses {
		switch s {
		case http.StatusOK:
			ok++
		case http.StatusConflict:
			conflict++
		}
	}
	if ok != 1 || conflict != n-1 {
		t.Fatalf("statuses %v: want one 200 and %d 409", statuses, n-1)
	}
	if got := len(e.auditEntries(tn, "byok.kms.unseal")); got != 1 {
		t.Fatalf("%d unseal audit entries, want 1", got)
	}
}

// TestSealTriggers drives each seal trigger of seed 000 and checks the
// documented end state, then restores access and checks the tenant comes
// back. Transient triggers (partition, outage) keep the tenant serving from
// the cached TMK until the cache TTL ends, then seal as unreachable.
func TestSealTriggers(t *testing.T) {
	const cacheTTL = 2 * time.Second
	e := newEnv(t, map[string]string{"KEYSEAL_TMK_CACHE_TTL": cacheTTL.String(), "KEYSEAL_KMS_TIMEOUT": "1s"})
	ctx := context.Background()

	type trigger struct {
		name      string
		terminal  bool
		reason    string
		cut, heal func(tenant)
	}
	keyCall := func(f func(id *string) error) func(tenant) {
		return func(tn tenant) {
			if err := f(aws.String(tn.KeyID)); err != nil {
				t.Fatal(err)
			}
		}
	}
	proxyFault := func(f faultproxy.Fault) func(tenant) { return func(tn tenant) { e.proxy.Set(tn.KeyID, f) } }
	heal := func(tenant) { e.proxy.Clear() }
	triggers := []trigger{
		{name: "iam_revoked", terminal: true, reason: "access_denied", cut: proxyFault(faultproxy.Deny), heal: heal},
		{name: "key_disabled", terminal: true, reason: "key_disabled",
			cut:  keyCall(func(id *string) error { _, err := e.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: id}); return err }),
			heal: keyCall(func(id *string) error { _, err := e.kms.EnableKey(ctx, &kms.EnableKeyInput{KeyId: id}); return err })},
		{name: "pending_deletion", terminal: true, reason: "key_pending_deletion",
			cut: keyCall(func(id *string) error {
				_, err := e.kms.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: id, PendingWindowInDays: aws.Int32(7)})
				return err
			}),
			heal: keyCall(func(id *string) error {
				if _, err := e.kms.CancelKeyDeletion(ctx, &kms.CancelKeyDeletionInput{KeyId: id}); err != nil {
					return err
				}
				_, err := e.kms.EnableKey(ctx, &kms.EnableKeyInput{KeyId: id}) // a cancelled deletion leaves the key disabled
				return err
			})},
		{name: "network_partition", reason: "unreachable", cut: proxyFault(faultproxy.Drop), heal: heal},
		{name: "kms_outage", reason: "unreachable", cut: proxyFault(faultproxy.ServerError), heal: heal},
	}
	for _, tr := range triggers {
		t.Run(tr.name, func(t *testing.T) {
			tn := e.newTenant()
			e.session(tn).want(http.StatusCreated) // warms this process's TMK cache
			e.sweep()                              // records a fresh last_verified_at
			tr.cut(tn)
			e.sweep()
			v := e.tenantKMS(tn)
			if !tr.terminal {
				// Inside the cache TTL a transient failure degrades, never seals.
				if v.Status != "active" || v.LastVerifyError == nil {
					t.Fatalf("transient failure inside the cache TTL: %+v", v)
				}
				e.session(tn).want(http.StatusCreated) // served from the cached TMK
				time.Sleep(cacheTTL)                   // let the TTL run out
				e.sweep()
				v = e.tenantKMS(tn)
			}
			if v.Status != "sealed" || str(v.SealReason) != tr.reason {
				t.Fatalf("want sealed with reason %s, got %+v", tr.reason, v)
			}
			e.session(tn).agentError(http.StatusServiceUnavailable, "tenant_sealed")
			if got := e.awaitEvent("tenant.kms.sealed", tn.ID); got.Detail.Data.Reason != tr.reason {
				t.Fatalf("sealed event reason %q, want %q", got.Detail.Data.Reason, tr.reason)
			}

			tr.heal(tn)
			e.sweep()
			if v := e.tenantKMS(tn); v.Status != "active" {
				t.Fatalf("after restoring access: %+v", v)
			}
			e.session(tn).want(http.StatusCreated)
		})
	}
}
