package localserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/localserver"
	"github.com/keyseal/keyseal/shared/session"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

func jwksKeys(t *testing.T, s *localserver.Server, tenant string) jose.JSONWebKeySet {
	t.Helper()
	r := do(t, s, http.MethodGet, "/agent/v1/jwks/"+tenant, nil, "")
	var set jose.JSONWebKeySet
	if err := json.Unmarshal([]byte(r.raw), &set); err != nil {
		t.Fatal(err)
	}
	return set
}

// TestRotateAndRevokeOverHTTP drives seed 004's rotation command as written,
// then revokes an older and the active version, and rotates back out of
// revoked, through the same handlers the admin Lambda runs.
func TestRotateAndRevokeOverHTTP(t *testing.T) {
	s := devServer(t, t.TempDir(), nil)
	admin := bearer(s.Credentials.AdminToken)
	agent := bearer(s.Credentials.AgentKey)
	first := do(t, s, http.MethodPost, "/agent/v1/session", agent, "")
	if first.status != http.StatusCreated {
		t.Fatalf("session: %d %s", first.status, first.raw)
	}

	// Seed 004's curl: the alias, no step-up.
	r := do(t, s, http.MethodPost, "/api/v1/byok/keys/rotate", map[string]string{"Authorization": "Bearer " + s.Credentials.AdminToken,
		"Content-Type": "application/json"}, `{"rotation_type": "dek", "reason": "DEK recovery"}`)
	if r.status != http.StatusOK || r.body["rotation_type"] != "dek" || r.body["active_version"] != float64(2) || r.body["rotated_at"] == nil {
		t.Fatalf("rotate (alias): %d %s", r.status, r.raw)
	}
	v := do(t, s, http.MethodGet, "/admin/tenant-kms", admin, "")
	if v.body["active_version"] != float64(2) || v.body["rotated_at"] != r.body["rotated_at"] || v.body["rotation_age_days"] != float64(0) ||
		v.body["rotation_due"] != false || len(v.body["versions"].([]any)) != 2 {
		t.Fatalf("config row after rotation: %s", v.raw)
	}
	if n := len(jwksKeys(t, s, "demo").Keys); n != 2 {
		t.Fatalf("JWKS has %d keys after rotation, want 2", n)
	}
	if r := do(t, s, http.MethodPost, "/admin/tenant-kms/rotate", admin, `{"rotation_type": "rewrap", "reason": "yearly"}`); r.status != http.StatusOK || r.body["active_version"] != float64(2) {
		t.Fatalf("rewrap: %d %s", r.status, r.raw)
	}
	a := do(t, s, http.MethodGet, "/admin/audit?action=byok.tmk.rotate", admin, "")
	entries := a.body["entries"].([]any)
	if len(entries) != 1 || !strings.HasPrefix(entries[0].(map[string]any)["actor"].(string), "admin:") ||
		entries[0].(map[string]any)["details"].(map[string]any)["reason"] != "DEK recovery" {
		t.Fatalf("rotate audit: %s", a.raw)
	}

	// Revoke refusals: no step-up, wrong confirm (the token survives it),
	// unknown version, malformed versions.
	if r := do(t, s, http.MethodPost, "/admin/tenant-kms/versions/1/revoke", admin, `{"confirm":"demo"}`); r.status != http.StatusUnauthorized || r.code() != "step_up_required" {
		t.Fatalf("revoke without step-up: %d %s", r.status, r.raw)
	}
	h := stepUpHeaders(t, s)
	for _, body := range []string{`{"confirm":"other"}`, `{"confirm":"DEMO"}`, `{}`, `{"confirm":null}`} {
		if r := do(t, s, http.MethodPost, "/admin/tenant-kms/versions/1/revoke", h, body); r.status != http.StatusBadRequest || r.code() != "invalid_request" {
			t.Fatalf("revoke with %s: %d %s", body, r.status, r.raw)
		}
	}
	for _, ver := range []string{"abc", "0", "-1", "01", "v", "1.5", "9999999"} {
		if r := do(t, s, http.MethodPost, "/admin/tenant-kms/versions/"+ver+"/revoke", h, `{"confirm":"demo"}`); r.status != http.StatusBadRequest {
			t.Fatalf("revoke version %q: %d %s", ver, r.status, r.raw)
		}
	}
	if r := do(t, s, http.MethodPost, "/admin/tenant-kms/versions/99/revoke", h, `{"confirm":"demo"}`); r.status != http.StatusNotFound {
		t.Fatalf("revoke unknown version: %d %s", r.status, r.raw)
	}

	// Revoke version 1 (not active): erased, out of the JWKS.
	r = do(t, s, http.MethodPost, "/admin/tenant-kms/versions/v1/revoke", stepUpHeaders(t, s), `{"confirm":"demo"}`)
	if r.status != http.StatusOK || r.body["version"] != float64(1) || r.body["tenant_status"] != "active" {
		t.Fatalf("revoke v1: %d %s", r.status, r.raw)
	}
	revokedAt, _ := time.Parse(time.RFC3339Nano, r.body["revoked_at"].(string))
	expires, _ := time.Parse(time.RFC3339Nano, r.body["backups_expire_at"].(string))
	if !expires.Equal(revokedAt.Add(35*24*time.Hour)) || !strings.Contains(r.body["note"].(string), "point-in-time") {
		t.Fatalf("revoke answer: %s", r.raw)
	}
	if _, err := session.Verify(first.body["token"].(string), jwksKeys(t, s, "demo"), time.Now()); err == nil {
		t.Fatal("a token of the revoked version still verifies against the JWKS")
	}
	if r := do(t, s, http.MethodPost, "/admin/tenant-kms/versions/1/revoke", stepUpHeaders(t, s), `{"confirm":"demo"}`); r.status != http.StatusConflict || r.code() != "already_revoked" {
		t.Fatalf("second revoke: %d %s", r.status, r.raw)
	}
	if r := do(t, s, http.MethodPost, "/agent/v1/session", agent, ""); r.status != http.StatusCreated || r.body["tmk_version"] != float64(2) {
		t.Fatalf("session after revoking v1: %d %s", r.status, r.raw)
	}

	// Revoke the active version: the tenant is revoked.
	r = do(t, s, http.MethodPost, "/admin/tenant-kms/versions/2/revoke", stepUpHeaders(t, s), `{"confirm":"demo"}`)
	if r.status != http.StatusOK || r.body["tenant_status"] != "revoked" {
		t.Fatalf("revoke v2: %d %s", r.status, r.raw)
	}
	if r := do(t, s, http.MethodPost, "/agent/v1/session", agent, ""); r.status != http.StatusServiceUnavailable || r.code() != "tenant_sealed" ||
		!strings.Contains(r.raw, "revoked") {
		t.Fatalf("session of a revoked tenant: %d %s", r.status, r.raw)
	}
	if r := do(t, s, http.MethodPost, "/admin/tenant-kms/unseal", stepUpHeaders(t, s), ""); r.status != http.StatusConflict || r.code() != "tenant_revoked" {
		t.Fatalf("unseal of a revoked tenant: %d %s", r.status, r.raw)
	}
	if n := len(jwksKeys(t, s, "demo").Keys); n != 0 {
		t.Fatalf("JWKS has %d keys with every version revoked", n)
	}
	if r := do(t, s, http.MethodPost, "/admin/tenant-kms/rotate", admin, `{"rotation_type":"rewrap"}`); r.status != http.StatusServiceUnavailable {
		t.Fatalf("rewrap of a revoked tenant: %d %s", r.status, r.raw)
	}
	r = do(t, s, http.MethodPost, "/admin/tenant-kms/rotate", admin, `{"rotation_type":"tmk","reason":"after revoke"}`)
	if r.status != http.StatusOK || r.body["active_version"] != float64(3) {
		t.Fatalf("rotate out of revoked: %d %s", r.status, r.raw)
	}
	if r := do(t, s, http.MethodPost, "/agent/v1/session", agent, ""); r.status != http.StatusCreated || r.body["tmk_version"] != float64(3) {
		t.Fatalf("session after the rotation: %d %s", r.status, r.raw)
	}
	if v := do(t, s, http.MethodGet, "/admin/tenant-kms", admin, ""); v.body["status"] != "active" || v.body["sealed_since"] != nil {
		t.Fatalf("config row after the rotation: %s", v.raw)
	}
}

// TestRotateSealedTenantOverHTTP: 503 tenant_sealed and the row untouched.
func TestRotateSealedTenantOverHTTP(t *testing.T) {
	s := devServer(t, t.TempDir(), nil)
	admin := bearer(s.Credentials.AdminToken)
	if r := do(t, s, http.MethodPost, "/dev/kms/keys/"+s.Credentials.KMSKeyID+"/state", nil, `{"state":"disabled"}`); r.status != http.StatusOK {
		t.Fatal(r.raw)
	}
	if _, err := s.App.Tenants.Sweep(context.Background(), tenantkms.AllShards()); err != nil {
		t.Fatal(err)
	}
	before := do(t, s, http.MethodGet, "/admin/tenant-kms", admin, "")
	for _, typ := range []string{"tmk", "dek", "rewrap"} {
		if r := do(t, s, http.MethodPost, "/admin/tenant-kms/rotate", admin, `{"rotation_type":"`+typ+`"}`); r.status != http.StatusServiceUnavailable || r.code() != "tenant_sealed" {
			t.Fatalf("%s while sealed: %d %s", typ, r.status, r.raw)
		}
	}
	if after := do(t, s, http.MethodGet, "/admin/tenant-kms", admin, ""); after.raw != before.raw {
		t.Fatalf("a refused rotation changed the row:\n%s\n%s", before.raw, after.raw)
	}
}

// TestRotateRevokeBadInput: every refusal is a 400 invalid_request.
func TestRotateRevokeBadInput(t *testing.T) {
	s := devServer(t, t.TempDir(), nil)
	admin := bearer(s.Credentials.AdminToken)
	bodies := []string{``, `{"rotation_type": `, `{"nonsense": true}`, `{} {}`, `[1,2]`, `{"rotation_type": 1}`, `{"rotation_type": null}`,
		`{"rotation_type": "kek"}`, `{"rotation_type": "TMK"}`, `{"Rotation_Type": "tmk"}`, `{"rotation_type": "tmk", "rotation_type": "tmk"}`,
		`{"rotation_type": "tmk", "reason": 5}`, `{"rotation_type": "tmk", "reason": "a\u0000b"}`,
		`{"rotation_type": "tmk", "reason": "` + strings.Repeat("x", 501) + `"}`,
		`{"rotation_type":"` + strings.Repeat("x", api.MaxBody) + `"}`}
	for _, path := range []string{"/admin/tenant-kms/rotate", "/api/v1/byok/keys/rotate"} {
		for _, body := range bodies {
			if r := do(t, s, http.MethodPost, path, admin, body); r.status != http.StatusBadRequest || r.code() != "invalid_request" {
				t.Fatalf("%s %.60q: %d %s", path, body, r.status, r.raw)
			}
		}
	}
	for _, body := range []string{``, `{"confirm": `, `{"confirm":"demo","x":1}`, `{"confirm": 1}`, `{"confirm":"demo"} {}`,
		`{"confirm":"` + strings.Repeat("x", api.MaxBody) + `"}`} {
		if r := do(t, s, http.MethodPost, "/admin/tenant-kms/versions/1/revoke", stepUpHeaders(t, s), body); r.status != http.StatusBadRequest || r.code() != "invalid_request" {
			t.Fatalf("revoke %.60q: %d %s", body, r.status, r.raw)
		}
	}
	if v := do(t, s, http.MethodGet, "/admin/tenant-kms", admin, ""); v.body["active_version"] != float64(1) || len(v.body["versions"].([]any)) != 1 {
		t.Fatalf("bad input changed the tenant: %s", v.raw)
	}
	if r := do(t, s, http.MethodGet, "/admin/tenant-kms/rotate", admin, ""); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("GET rotate: %d %s", r.status, r.raw)
	}
}
