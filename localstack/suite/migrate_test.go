//go:build integration

package suite

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyseal/keyseal/localstack/faultproxy"
	"github.com/keyseal/keyseal/localstack/standin"
	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/client"
	"github.com/keyseal/keyseal/shared/localserver"
)

// createKey makes a customer key in LocalStack and returns its ARN and id.
func (e *env) createKey(multiRegion bool) (arn, id string) {
	e.tb.Helper()
	k, err := e.kms.CreateKey(context.Background(), &kms.CreateKeyInput{Description: aws.String("customer CMK for a keyseal test"),
		MultiRegion: aws.Bool(multiRegion)})
	if err != nil {
		e.tb.Fatal(err)
	}
	return aws.ToString(k.KeyMetadata.Arn), aws.ToString(k.KeyMetadata.KeyId)
}

// keyRef is a registration body: the provider and its fields.
type keyRef struct {
	provider string
	fields   map[string]string
}

func awsKey(arn string) keyRef { return keyRef{"aws-kms", map[string]string{"key_arn": arn}} }

// register is PUT /admin/tenant-kms of k, with a fresh step-up token.
func (e *env) register(admin *client.Client, k keyRef) (api.TenantView, error) {
	e.tb.Helper()
	return admin.Register(context.Background(), e.stepUpWith(admin), k.provider, k.fields)
}

// migrate is POST /admin/tenant-kms/migrate to k, with a fresh step-up
// token.
func (e *env) migrate(admin *client.Client, k keyRef) (api.TenantView, error) {
	e.tb.Helper()
	return admin.Migrate(context.Background(), e.stepUpWith(admin), k.provider, k.fields)
}

// TestRegistrationGatesWithAWSKMS: with the real AWS KMS provider, the
// waiver gates registration (409 with the version), a disabled key is 422
// cannot_access_cmk with the key policy statement to add, a multi-region
// key registers, and a second key is 409 byok_key_exists pointing at
// migrate.
func TestRegistrationGatesWithAWSKMS(t *testing.T) {
	e := newEnv(t, nil)
	admin := e.admin(standin.Name("t-"))
	mrk, mrkID := e.createKey(true)
	if !strings.HasPrefix(mrkID, "mrk-") {
		t.Fatalf("LocalStack multi-region key id %q", mrkID)
	}
	_, err := e.register(admin, awsKey(mrk))
	if ae := wantAPIError(t, err, http.StatusConflict, "waiver_not_acknowledged"); ae.Extra["waiver_version"] == nil {
		t.Fatalf("no waiver_version: %s", ae.Body)
	}
	e.acknowledgeWaiver(admin)

	disabled, disabledID := e.createKey(false)
	if _, err := e.kms.DisableKey(context.Background(), &kms.DisableKeyInput{KeyId: aws.String(disabledID)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.register(admin, awsKey(disabled))
	ae := wantAPIError(t, err, 422, "cannot_access_cmk")
	var policy map[string]any
	_ = json.Unmarshal(ae.Extra["required_key_policy"], &policy)
	if ae.ExtraString("reason") != "key_disabled" || policy == nil || policy["principal"] != localserver.DevServicePrincipal ||
		!strings.Contains(string(ae.Body), `"kms:EncryptionContext:keyseal:tenant"`) || !strings.Contains(string(ae.Body), `"kms:DescribeKey"`) {
		t.Fatalf("cannot_access_cmk: %s", ae.Body)
	}
	var kp map[string]any
	if err := json.Unmarshal(must(admin.KeyPolicy(context.Background(), "", nil))(t), &kp); err != nil ||
		kp["principal"] != localserver.DevServicePrincipal || kp["statement"] == nil {
		t.Fatalf("key policy: %v %v", kp, err)
	}

	must(e.register(admin, awsKey(mrk)))(t)
	other, _ := e.createKey(false)
	_, err = e.register(admin, awsKey(other))
	if ae := wantAPIError(t, err, http.StatusConflict, "byok_key_exists"); ae.ExtraString("key_id") != mrk || !strings.Contains(ae.Message, "POST /admin/tenant-kms/migrate") {
		t.Fatalf("byok_key_exists: %s", ae.Body)
	}
}

// TestMigrateBetweenLocalStackKeys moves a tenant between two LocalStack
// keys. An old key keyseal cannot use (denied by the fault proxy) or a
// disabled new key refuse it with nothing moved; the move itself re-wraps
// every version under the new key. Afterwards disabling the old key does
// not seal the tenant, and disabling the new one does.
func TestMigrateBetweenLocalStackKeys(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	tn := e.newTenant()
	admin := e.admin(tn.ID)
	next, nextID := e.createKey(false)

	e.proxy.Set(tn.KeyID, faultproxy.Deny)
	_, err := e.migrate(admin, awsKey(next))
	if ae := wantAPIError(t, err, http.StatusServiceUnavailable, "tenant_sealed"); ae.ExtraString("key") != "old" {
		t.Fatalf("old key denied: %s", ae.Body)
	}
	e.proxy.Clear()
	e.sweep()
	if v := e.tenantKMS(tn); v.KeyID != tn.KeyARN || v.Status != "active" {
		t.Fatalf("after a refused migration: %+v", v)
	}

	bad, badID := e.createKey(false)
	if _, err := e.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(badID)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.migrate(admin, awsKey(bad))
	if ae := wantAPIError(t, err, 422, "cannot_access_cmk"); ae.ExtraString("key") != "new" || ae.ExtraString("reason") != "key_disabled" {
		t.Fatalf("new key disabled: %s", ae.Body)
	}
	if n := len(e.auditEntries(tn, "byok.kms.migrate")); n != 0 {
		t.Fatalf("%d migrate entries after refusals", n)
	}

	v := must(e.migrate(admin, awsKey(next)))(t)
	if v.KeyID != next || !v.BYOK {
		t.Fatalf("after migrating: %+v", v)
	}
	for _, ver := range v.Versions {
		if ver.KeyID != next {
			t.Fatalf("a version is not under the new key: %+v", v)
		}
	}
	entries := e.auditEntries(tn, "byok.kms.migrate")
	if len(entries) != 1 || entries[0].Severity != "critical" {
		t.Fatalf("migrate entries: %v", entries)
	}
	if d := entries[0].Details; d["previous_key_id"] != tn.KeyARN || d["key_id"] != next {
		t.Fatalf("migrate entry details: %v", d)
	}

	if _, err := e.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(tn.KeyID)}); err != nil {
		t.Fatal(err)
	}
	e.sweep()
	if v := e.tenantKMS(tn); v.Status != "active" || v.LastVerifyError != nil {
		t.Fatalf("the old key disabled after migrating: %+v", v)
	}
	e.session(tn).want(http.StatusCreated)

	if _, err := e.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(nextID)}); err != nil {
		t.Fatal(err)
	}
	e.sweep()
	if v := e.tenantKMS(tn); v.Status != "sealed" || str(v.SealReason) != "key_disabled" {
		t.Fatalf("the new key disabled: %+v", v)
	}
	e.session(tn).agentError(http.StatusServiceUnavailable, "tenant_sealed")
}
