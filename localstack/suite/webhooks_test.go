//go:build integration

package suite

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyseal/keyseal/shared/client"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/subscription"
)

// TestWebhookSubscriptions: in LocalStack mode (DynamoDB store, AWS KMS
// platform key) a subscription's secret is sealed under the platform key
// and unseals for signing, also once the tenant is sealed (its own CMK
// disabled); rotation keeps the old secret signing; the test event
// reaches the bus through the outbox.
func TestWebhookSubscriptions(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	tn := e.newTenant()
	admin := e.admin(tn.ID)
	created := must(admin.CreateWebhook(ctx, client.WebhookRequest{URL: "http://127.0.0.1:9/hook", Events: []string{"tenant.kms.sealed"}}))(t)
	id, secret := created.ID, created.Secret

	if _, err := e.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(tn.KeyID)}); err != nil {
		t.Fatal(err)
	}
	e.sweep()
	if v := e.tenantKMS(tn); v.Status != "sealed" {
		t.Fatalf("tenant not sealed: %+v", v)
	}
	rot := must(admin.RotateWebhookSecret(ctx, id))(t)

	svc := e.srv.App.Deps.Webhooks
	w, err := e.srv.App.Store.GetWebhook(ctx, tn.ID, id)
	if err != nil {
		t.Fatal(err)
	}
	fresh := &subscription.Service{Store: svc.Store, KMS: svc.KMS, PlatformKey: svc.PlatformKey} // an empty cache: AWS KMS unseals
	keys, err := fresh.SigningSecrets(ctx, w, time.Now())
	if err != nil {
		t.Fatalf("SigningSecrets of a sealed tenant's webhook: %v", err)
	}
	if len(keys) != 2 || subscription.FormatSecret(keys[0]) != rot.Secret || subscription.FormatSecret(keys[1]) != secret {
		t.Fatalf("SigningSecrets = %d keys; want the rotated and the original secret", len(keys))
	}
	sealed := e.awaitEvent(keyseal.EventSealed, tn.ID)
	targets, err := svc.Targets(ctx, keyseal.Event{ID: sealed.Detail.ID, Type: sealed.DetailType, TenantID: tn.ID})
	if err != nil || len(targets) != 1 || targets[0].ID != id {
		t.Fatalf("Targets(sealed) = %v, %v", targets, err)
	}

	ev := must(admin.TestWebhook(ctx, id))(t).EventID
	if got := e.awaitEvent("webhook.test", tn.ID); got.Detail.ID != ev {
		t.Fatalf("webhook.test on the bus has id %s, want %s", got.Detail.ID, ev)
	}
	if err := admin.DeleteWebhook(ctx, id); err != nil {
		t.Fatal(err)
	}
	_, err = admin.Deliveries(ctx, id, 0)
	wantAPIError(t, err, http.StatusNotFound, "not_found")
	if got := e.auditEntries(tn, "webhook.delete"); len(got) != 1 {
		t.Fatalf("webhook.delete entries: %v", got)
	}
}
