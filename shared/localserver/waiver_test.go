package localserver_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/localserver"
)

// tenantAdmin is an admin of another tenant than the demo one, with
// step-up at hand.
type tenantAdmin struct {
	t     *testing.T
	s     *localserver.Server
	token string
}

func newTenantAdmin(t *testing.T, s *localserver.Server, tenantID string) *tenantAdmin {
	t.Helper()
	r := do(t, s, http.MethodPost, "/dev/admin-token", nil, `{"tenant_id":"`+tenantID+`","subject":"carol"}`)
	if r.status != http.StatusOK {
		t.Fatalf("admin token: %d %s", r.status, r.raw)
	}
	return &tenantAdmin{t: t, s: s, token: r.body["admin_token"].(string)}
}

func (a *tenantAdmin) call(method, path, body string) result {
	a.t.Helper()
	return do(a.t, a.s, method, path, bearer(a.token), body)
}

func (a *tenantAdmin) stepped(method, path, body string) result {
	a.t.Helper()
	r := a.call(http.MethodPost, "/admin/auth/step-up", "")
	if r.status != http.StatusOK {
		a.t.Fatalf("step-up: %d %s", r.status, r.raw)
	}
	h := bearer(a.token)
	h[auth.StepUpHeader] = r.body["step_up_token"].(string)
	return do(a.t, a.s, method, path, h, body)
}

func wantError(t *testing.T, r result, status int, code string) {
	t.Helper()
	if r.status != status || r.code() != code {
		t.Fatalf("%d %s; want %d %s", r.status, r.raw, status, code)
	}
}

func localKey(t *testing.T, s *localserver.Server, state string) string {
	t.Helper()
	id, err := s.Local.LocalKMS.CreateKey()
	if err != nil {
		t.Fatal(err)
	}
	if state != "" {
		if err := s.Local.LocalKMS.SetState(id, state); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

func keyBody(id string) string { return `{"provider":"local","key_id":"` + id + `"}` }

// TestLegalWaiverGatesRegistrationAndMigration walks the waiver, the key
// policy, registration's errors and migration through the HTTP API of dev
// mode: a tenant must acknowledge the current waiver before it registers;
// a new version (POST /dev/legal-waiver) leaves running tenants alone but
// blocks migrate until acknowledged again; migration moves the tenant from
// one key to the other, audited with both.
func TestLegalWaiverGatesRegistrationAndMigration(t *testing.T) {
	s := devServer(t, t.TempDir(), nil)
	demo := bearer(s.Credentials.AdminToken)

	// The text, on the path and its seed-004 alias, with its digest.
	w := do(t, s, http.MethodGet, "/admin/tenant-kms/legal-waiver", demo, "")
	alias := do(t, s, http.MethodGet, "/api/v1/byok/legal-waiver", demo, "")
	sum := sha256.Sum256([]byte(w.body["text"].(string)))
	if w.status != http.StatusOK || w.raw != alias.raw || w.body["sha256"] != hex.EncodeToString(sum[:]) ||
		!strings.HasPrefix(w.body["text"].(string), "version: "+w.body["version"].(string)) {
		t.Fatalf("waiver: %d %s / alias %s", w.status, w.raw, alias.raw)
	}
	first := w.body["version"].(string)
	// Dev mode's demo tenant starts acknowledged (and registered).
	if row := do(t, s, http.MethodGet, "/admin/tenant-kms", demo, ""); !strings.Contains(row.raw, `"waiver":{"acknowledged":true,"requires_reacknowledgment":false}`) {
		t.Fatalf("demo config row: %s", row.raw)
	}

	// The key policy names keyseal's principal and the tenant's context.
	a := newTenantAdmin(t, s, "newco")
	kp := a.call(http.MethodGet, "/admin/tenant-kms/key-policy", "")
	if kp.status != http.StatusOK || kp.body["principal"] != localserver.DevServicePrincipal ||
		!strings.Contains(kp.raw, `"Condition":{"StringEquals":{"kms:EncryptionContext:keyseal:tenant":"newco"}}`) ||
		!strings.Contains(kp.raw, `"kms:DescribeKey"`) {
		t.Fatalf("key policy: %d %s", kp.status, kp.raw)
	}

	// Not acknowledged: 409 with the version; nothing provisioned, and
	// the step-up token is not spent on the refusal.
	good := localKey(t, s, "")
	step := a.call(http.MethodPost, "/admin/auth/step-up", "").body["step_up_token"].(string)
	withStep := bearer(a.token)
	withStep[auth.StepUpHeader] = step
	r := do(t, s, http.MethodPut, "/admin/tenant-kms", withStep, keyBody(good))
	wantError(t, r, http.StatusConflict, "waiver_not_acknowledged")
	if r.body["waiver_version"] != first {
		t.Fatalf("waiver_version: %s", r.raw)
	}
	wantError(t, do(t, s, http.MethodPost, "/admin/tenant-kms/unseal", withStep, ""), http.StatusNotFound, "tenant_not_found") // the token still works
	wantError(t, a.call(http.MethodGet, "/admin/tenant-kms", ""), http.StatusNotFound, "tenant_not_found")

	// Bad acknowledgments are 400 and record nothing.
	for _, body := range []string{`{"acknowledged":false,"acknowledged_by":"legal@newco.example"}`,
		`{"acknowledged_by":"legal@newco.example"}`, `{"acknowledged":"yes","acknowledged_by":"legal@newco.example"}`,
		`{"acknowledged":true,"acknowledged_by":"legal"}`, `{"acknowledged":true}`} {
		wantError(t, a.call(http.MethodPost, "/admin/tenant-kms/legal-waiver", body), http.StatusBadRequest, "invalid_request")
	}
	st := a.call(http.MethodGet, "/api/v1/byok/legal-waiver/status", "")
	if st.raw != `{"acknowledged":false,"version":"`+first+`","acknowledged_version":null,"acknowledged_by":null,"acknowledged_at":null,"requires_reacknowledgment":false}` {
		t.Fatalf("status before: %s", st.raw)
	}
	if r := a.call(http.MethodPost, "/api/v1/byok/legal-waiver", `{"acknowledged":true,"acknowledged_by":"legal@newco.example"}`); r.status != http.StatusOK || r.body["acknowledged"] != true {
		t.Fatalf("acknowledge: %d %s", r.status, r.raw)
	}
	st = a.call(http.MethodGet, "/admin/tenant-kms/legal-waiver/status", "")
	if st.body["acknowledged"] != true || st.body["acknowledged_by"] != "legal@newco.example" || st.body["acknowledged_version"] != first || st.body["acknowledged_at"] == nil {
		t.Fatalf("status after: %s", st.raw)
	}

	// A key keyseal cannot use: 422 with the statement to add.
	r = a.stepped(http.MethodPut, "/admin/tenant-kms", keyBody(localKey(t, s, "access_denied")))
	wantError(t, r, 422, "cannot_access_cmk")
	if r.body["reason"] != "access_denied" || !strings.Contains(r.raw, `"principal":"`+localserver.DevServicePrincipal+`"}`) || !strings.Contains(r.raw, `"required_key_policy":{"statement":`) ||
		!strings.Contains(r.body["message"].(string), "required_key_policy") ||
		!strings.Contains(r.raw, `"kms:EncryptionContext:keyseal:tenant":"newco"`) {
		t.Fatalf("cannot_access_cmk: %s", r.raw)
	}
	if r := a.stepped(http.MethodPut, "/admin/tenant-kms", keyBody(good)); r.status != http.StatusOK {
		t.Fatalf("register: %d %s", r.status, r.raw)
	}
	r = a.stepped(http.MethodPut, "/admin/tenant-kms", keyBody(localKey(t, s, "")))
	wantError(t, r, http.StatusConflict, "byok_key_exists")
	if r.body["key_id"] != good || !strings.Contains(r.body["message"].(string), "POST /admin/tenant-kms/migrate") {
		t.Fatalf("byok_key_exists: %s", r.raw)
	}

	// A new version: running tenants keep serving, migrate is blocked.
	if r := do(t, s, http.MethodPost, "/dev/legal-waiver", nil, `{"version":"2099-01","text":"version: 2099-01\nNew terms."}`); r.status != http.StatusOK || r.body["version"] != "2099-01" {
		t.Fatalf("publish: %d %s", r.status, r.raw)
	}
	wantError(t, do(t, s, http.MethodPost, "/dev/legal-waiver", nil, `{"version":"two words","text":"x"}`), http.StatusBadRequest, "invalid_request")
	if r := do(t, s, http.MethodPost, "/agent/v1/session", bearer(s.Credentials.AgentKey), ""); r.status != http.StatusCreated {
		t.Fatalf("a running tenant's session after a new waiver: %d %s", r.status, r.raw)
	}
	if row := a.call(http.MethodGet, "/admin/tenant-kms", ""); !strings.Contains(row.raw, `"waiver":{"acknowledged":false,"requires_reacknowledgment":true}`) {
		t.Fatalf("config row after a new waiver: %s", row.raw)
	}
	next := localKey(t, s, "")
	r = a.stepped(http.MethodPost, "/admin/tenant-kms/migrate", keyBody(next))
	wantError(t, r, http.StatusConflict, "waiver_reacknowledgment_required")
	if r.body["waiver_version"] != "2099-01" {
		t.Fatalf("waiver_version: %s", r.raw)
	}
	a.call(http.MethodPost, "/admin/tenant-kms/legal-waiver", `{"acknowledged":true,"acknowledged_by":"legal@newco.example"}`)

	// Migration: a new key that fails says so and changes nothing; then
	// the move, without step-up refused, with it done and audited.
	r = a.stepped(http.MethodPost, "/admin/tenant-kms/migrate", keyBody(localKey(t, s, "disabled")))
	wantError(t, r, 422, "cannot_access_cmk")
	if r.body["key"] != "new" || r.body["reason"] != "key_disabled" || r.body["required_key_policy"] == nil {
		t.Fatalf("migrate to a disabled key: %s", r.raw)
	}
	wantError(t, a.call(http.MethodPost, "/admin/tenant-kms/migrate", keyBody(next)), http.StatusUnauthorized, "step_up_required")
	r = a.stepped(http.MethodPost, "/admin/tenant-kms/migrate", keyBody(next))
	if r.status != http.StatusOK || r.body["key_id"] != next {
		t.Fatalf("migrate: %d %s", r.status, r.raw)
	}
	au := a.call(http.MethodGet, "/admin/audit?action=byok.kms.migrate", "")
	var entries struct {
		Entries []struct {
			Severity string            `json:"severity"`
			Actor    string            `json:"actor"`
			Details  map[string]string `json:"details"`
		} `json:"entries"`
	}
	if err := json.Unmarshal([]byte(au.raw), &entries); err != nil || len(entries.Entries) != 1 {
		t.Fatalf("migrate audit: %s (%v)", au.raw, err)
	}
	if e := entries.Entries[0]; e.Severity != "critical" || e.Details["previous_key_id"] != good || e.Details["key_id"] != next || !strings.Contains(e.Actor, "carol") {
		t.Fatalf("migrate entry: %+v", e)
	}
	if n := strings.Count(a.call(http.MethodGet, "/admin/audit?action=byok.waiver.acknowledge", "").raw, `"byok.waiver.acknowledge"`); n != 2 {
		t.Fatalf("%d waiver acknowledgments audited, want 2", n)
	}
}
