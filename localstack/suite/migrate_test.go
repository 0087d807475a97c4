//go:build integration

package suite

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyseal/keyseal/localstack/faultproxy"
	"github.com/keyseal/keyseal/localstack/standin"
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

func awsKey(arn string) map[string]any { return map[string]any{"provider": "aws-kms", "key_arn": arn} }

// TestRegistrationGatesWithAWSKMS: with the real AWS KMS provider, the
// waiver gates registration (409 with the version), a disabled key is 422
// cannot_access_cmk with the key policy statement to add, a multi-region
// key registers, and a second key is 409 byok_key_exists pointing at
// migrate.
func TestRegistrationGatesWithAWSKMS(t *testing.T) {
	e := newEnv(t, nil)
	admin := e.adminToken(standin.Name("t-"), "alice")
	mrk, mrkID := e.createKey(true)
	if !strings.HasPrefix(mrkID, "mrk-") {
		t.Fatalf("LocalStack multi-region key id %q", mrkID)
	}
	r := e.call(http.MethodPut, "/admin/tenant-kms", admin, e.stepUp(admin), awsKey(mrk)).adminError(http.StatusConflict, "waiver_not_acknowledged")
	if r.body["waiver_version"] == nil {
		t.Fatalf("no waiver_version: %s", r.raw)
	}
	e.acknowledgeWaiver(admin)

	disabled, disabledID := e.createKey(false)
	if _, err := e.kms.DisableKey(context.Background(), &kms.DisableKeyInput{KeyId: aws.String(disabledID)}); err != nil {
		t.Fatal(err)
	}
	r = e.call(http.MethodPut, "/admin/tenant-kms", admin, e.stepUp(admin), awsKey(disabled)).adminError(422, "cannot_access_cmk")
	policy, _ := r.body["required_key_policy"].(map[string]any)
	if r.body["reason"] != "key_disabled" || policy == nil || policy["principal"] != localserver.DevServicePrincipal ||
		!strings.Contains(r.raw, `"kms:EncryptionContext:keyseal:tenant"`) || !strings.Contains(r.raw, `"kms:DescribeKey"`) {
		t.Fatalf("cannot_access_cmk: %s", r.raw)
	}
	kp := e.call(http.MethodGet, "/admin/tenant-kms/key-policy", admin, "", nil).want(http.StatusOK)
	if kp.body["principal"] != localserver.DevServicePrincipal || kp.body["statement"] == nil {
		t.Fatalf("key policy: %s", kp.raw)
	}

	e.call(http.MethodPut, "/admin/tenant-kms", admin, e.stepUp(admin), awsKey(mrk)).want(http.StatusOK)
	other, _ := e.createKey(false)
	r = e.call(http.MethodPut, "/admin/tenant-kms", admin, e.stepUp(admin), awsKey(other)).adminError(http.StatusConflict, "byok_key_exists")
	if r.body["key_id"] != mrk || !strings.Contains(r.str("message"), "POST /admin/tenant-kms/migrate") {
		t.Fatalf("byok_key_exists: %s", r.raw)
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
	admin := e.adminToken(tn.ID, "alice")
	next, nextID := e.createKey(false)

	e.proxy.Set(tn.KeyID, faultproxy.Deny)
	r := e.call(http.MethodPost, "/admin/tenant-kms/migrate", admin, e.stepUp(admin), awsKey(next)).adminError(http.StatusServiceUnavailable, "tenant_sealed")
	if r.body["key"] != "old" {
		t.Fatalf("old key denied: %s", r.raw)
	}
	e.proxy.Clear()
	e.sweep()
	if v := e.tenantKMS(tn); v.body["key_id"] != tn.KeyARN || v.body["status"] != "active" {
		t.Fatalf("after a refused migration: %s", v.raw)
	}

	bad, badID := e.createKey(false)
	if _, err := e.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(badID)}); err != nil {
		t.Fatal(err)
	}
	r = e.call(http.MethodPost, "/admin/tenant-kms/migrate", admin, e.stepUp(admin), awsKey(bad)).adminError(422, "cannot_access_cmk")
	if r.body["key"] != "new" || r.body["reason"] != "key_disabled" {
		t.Fatalf("new key disabled: %s", r.raw)
	}
	if n := len(e.auditEntries(tn, "byok.kms.migrate")); n != 0 {
		t.Fatalf("%d migrate entries after refusals", n)
	}

	v := e.call(http.MethodPost, "/admin/tenant-kms/migrate", admin, e.stepUp(admin), awsKey(next)).want(http.StatusOK)
	if v.body["key_id"] != next || v.body["byok"] != true {
		t.Fatalf("after migrating: %s", v.raw)
	}
	for _, ver := range v.body["versions"].([]any) {
		if ver.(map[string]any)["key_id"] != next {
			t.Fatalf("a version is not under the new key: %s", v.raw)
		}
	}
	entries := e.auditEntries(tn, "byok.kms.migrate")
	if len(entries) != 1 || entries[0]["severity"] != "critical" {
		t.Fatalf("migrate entries: %v", entries)
	}
	if d := entries[0]["details"].(map[string]any); d["previous_key_id"] != tn.KeyARN || d["key_id"] != next {
		t.Fatalf("migrate entry details: %v", d)
	}

	if _, err := e.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(tn.KeyID)}); err != nil {
		t.Fatal(err)
	}
	e.sweep()
	if v := e.tenantKMS(tn); v.body["status"] != "active" || v.body["last_verify_error"] != nil {
		t.Fatalf("the old key disabled after migrating: %s", v.raw)
	}
	e.session(tn).want(http.StatusCreated)

	if _, err := e.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(nextID)}); err != nil {
		t.Fatal(err)
	}
	e.sweep()
	if v := e.tenantKMS(tn); v.body["status"] != "sealed" || v.body["seal_reason"] != "key_disabled" {
		t.Fatalf("the new key disabled: %s", v.raw)
	}
	e.session(tn).agentError(http.StatusServiceUnavailable, "tenant_sealed")
}
