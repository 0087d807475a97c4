package localserver_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/keyseal/keyseal/shared/localserver"
)

// TestEventForwardingDev: over the dev server's HTTP, the demo tenant's
// local key gets the forwarding of the key ARN dev mode's CloudTrail-shaped
// events name, aimed at dev mode's nominal bus; a tenant on the platform
// key gets 409 not_forwardable, one without a TMK 404, no admin token 401.
func TestEventForwardingDev(t *testing.T) {
	s := devServer(t, t.TempDir(), nil)
	demo := newTenantAdmin(t, s, localserver.DemoTenant)
	r := demo.call(http.MethodGet, "/admin/tenant-kms/event-forwarding", "")
	if r.status != http.StatusOK {
		t.Fatalf("demo tenant: %d %s", r.status, r.raw)
	}
	arn, _ := r.body["key_arn"].(string)
	if !strings.HasPrefix(arn, "arn:aws:kms:local:000000000000:key/local-") || r.body["event_bus_arn"] != localserver.DevEventBusARN ||
		r.body["provider"] != "local" {
		t.Fatalf("demo forwarding: %s", r.raw)
	}
	var tpl map[string]any
	if err := json.Unmarshal([]byte(r.body["cloudformation"].(string)), &tpl); err != nil || !strings.Contains(r.body["cloudformation"].(string), arn) {
		t.Fatalf("template: %v", err)
	}
	if adm := r.body["admission"].(map[string]any); adm["mode"] != "own_account" || adm["admitted"] != true {
		t.Fatalf("admission %v", adm)
	}

	newco := newTenantAdmin(t, s, "newco")
	wantError(t, newco.call(http.MethodGet, "/admin/tenant-kms/event-forwarding", ""), 404, "tenant_not_found")
	if r := newco.call(http.MethodPost, "/admin/agents", `{"name":"a"}`); r.status != http.StatusCreated {
		t.Fatalf("create agent: %d %s", r.status, r.raw)
	}
	r = newco.call(http.MethodGet, "/admin/tenant-kms/event-forwarding", "")
	wantError(t, r, 409, "not_forwardable")
	if !strings.Contains(r.body["message"].(string), "no customer key") {
		t.Fatalf("message %s", r.raw)
	}
	wantError(t, do(t, s, http.MethodGet, "/admin/tenant-kms/event-forwarding", nil, ""), 401, "unauthorized")
}
