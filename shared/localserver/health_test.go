package localserver_test

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
)

// remediation returns a health answer's remediation as "action: command"
// lines.
func remediation(t *testing.T, r result) string {
	t.Helper()
	steps, _ := r.body["remediation"].([]any)
	var b strings.Builder
	for _, s := range steps {
		m := s.(map[string]any)
		b.WriteString(m["action"].(string) + ": " + m["command"].(string) + "\n")
	}
	return b.String()
}

// TestDevHealthLatencyClasses rehearses each latency class with curl's
// routes: POST /dev/kms/keys/{id}/latency, then seed 004's GET
// /api/v1/byok/health. Each class gets its own server, so each answer is a
// live probe (one per tenant per second) without waiting. The latencies are
// lower bounds the local key waits; the bands above them are wide.
func TestDevHealthLatencyClasses(t *testing.T) {
	for _, c := range []struct {
		ms            int
		class, status string
	}{
		{0, "normal", "healthy"}, {120, "elevated", "healthy"}, {250, "high", "degraded"}, {600, "critical", "degraded"},
	} {
		t.Run(c.class, func(t *testing.T) {
			s := devServer(t, t.TempDir(), nil)
			key := s.Credentials.KMSKeyID
			if r := do(t, s, http.MethodPost, "/dev/kms/keys/"+key+"/latency", nil, `{"ms": `+strconv.Itoa(c.ms)+`}`); r.status != http.StatusOK {
				t.Fatalf("latency: %d %s", r.status, r.raw)
			}
			r := do(t, s, http.MethodGet, "/api/v1/byok/health", bearer(s.Credentials.AdminToken), "")
			checks, _ := r.body["checks"].(map[string]any)
			if r.status != http.StatusOK || r.body["latency_class"] != c.class || r.body["status"] != c.status ||
				r.body["latency_ms"].(float64) < float64(c.ms) || r.body["cached"] != false || r.body["sealed"] != false ||
				checks["cmk_accessible"] != true || checks["tmk_valid"] != true || checks["key_state"] != "Enabled" {
				t.Fatalf("health: %d %s", r.status, r.raw)
			}
			if (c.status == "degraded") != (r.body["diagnosis"] != nil) {
				t.Fatalf("diagnosis present=%v for %s: %s", r.body["diagnosis"] != nil, c.status, r.raw)
			}
		})
	}
}

// TestDevHealthDisabledKey: a disabled key is unhealthy with seed 004's
// enable-key step for that key; the probe does not seal (the poller does).
func TestDevHealthDisabledKey(t *testing.T) {
	s := devServer(t, t.TempDir(), nil)
	key := s.Credentials.KMSKeyID
	if r := do(t, s, http.MethodPost, "/dev/kms/keys/"+key+"/state", nil, `{"state":"disabled"}`); r.status != http.StatusOK {
		t.Fatalf("state: %d %s", r.status, r.raw)
	}
	r := do(t, s, http.MethodGet, "/admin/tenant-kms/health", bearer(s.Credentials.AdminToken), "")
	checks, _ := r.body["checks"].(map[string]any)
	if r.status != http.StatusOK || r.body["status"] != "unhealthy" || r.body["reason"] != "key_disabled" ||
		checks["key_state"] != "Disabled" || checks["cmk_accessible"] != false || checks["tmk_valid"] != false ||
		!strings.Contains(r.body["diagnosis"].(string), "disabled") {
		t.Fatalf("health: %d %s", r.status, r.raw)
	}
	if rem := remediation(t, r); !strings.Contains(rem, "enable-key: POST /dev/kms/keys/"+key+`/state {"state": "enabled"}`) {
		t.Fatalf("remediation lacks the enable-key step for %s:\n%s", key, rem)
	}
	if v := do(t, s, http.MethodGet, "/api/v1/byok/keys", bearer(s.Credentials.AdminToken), ""); v.body["status"] != "active" {
		t.Fatalf("the health probe changed the tenant: %s", v.raw)
	}
}

// TestDevHealthNeedsAdmin: the probe is an admin route.
func TestDevHealthNeedsAdmin(t *testing.T) {
	s := devServer(t, t.TempDir(), nil)
	for _, p := range []string{"/admin/tenant-kms/health", "/api/v1/byok/health"} {
		if r := do(t, s, http.MethodGet, p, nil, ""); r.status != http.StatusUnauthorized {
			t.Errorf("%s without a token: %d %s", p, r.status, r.raw)
		}
		if r := do(t, s, http.MethodPost, p, bearer(s.Credentials.AdminToken), ""); r.status != http.StatusMethodNotAllowed {
			t.Errorf("POST %s: %d %s", p, r.status, r.raw)
		}
	}
}

// TestSeed004KeyAndAuditAliases: the /api/v1/byok/keys and audit aliases
// answer what their routes do, with the same auth and step-up.
func TestSeed004KeyAndAuditAliases(t *testing.T) {
	s := devServer(t, t.TempDir(), nil)
	admin := bearer(s.Credentials.AdminToken)
	a, b := do(t, s, http.MethodGet, "/api/v1/byok/keys", admin, ""), do(t, s, http.MethodGet, "/admin/tenant-kms", admin, "")
	if a.status != http.StatusOK || a.body["key_id"] != b.body["key_id"] || a.body["byok"] != true {
		t.Fatalf("GET keys: %d %s", a.status, a.raw)
	}
	if r := do(t, s, http.MethodDelete, "/api/v1/byok/keys", admin, ""); r.status != http.StatusUnauthorized || r.code() != "step_up_required" {
		t.Fatalf("DELETE keys without step-up: %d %s", r.status, r.raw)
	}
	if r := do(t, s, http.MethodDelete, "/api/v1/byok/keys", stepUpHeaders(t, s), ""); r.status != http.StatusOK || r.body["byok"] != false {
		t.Fatalf("DELETE keys: %d %s", r.status, r.raw)
	}
	k := do(t, s, http.MethodPost, "/dev/kms/keys", nil, "")
	key, _ := k.body["key_id"].(string)
	if k.status != http.StatusCreated || key == "" {
		t.Fatalf("create key: %d %s", k.status, k.raw)
	}
	if r := do(t, s, http.MethodPost, "/api/v1/byok/keys", stepUpHeaders(t, s), `{"provider":"local","key_id":"`+key+`"}`); r.status != http.StatusOK ||
		r.body["byok"] != true || r.body["key_id"] != key {
		t.Fatalf("POST keys: %d %s", r.status, r.raw)
	}
	au := do(t, s, http.MethodGet, "/api/v1/byok/audit?limit=50", admin, "")
	entries, _ := au.body["entries"].([]any)
	if au.status != http.StatusOK || len(entries) == 0 || entries[0].(map[string]any)["action"] != "byok.kms.register" {
		t.Fatalf("GET audit: %d %s", au.status, au.raw)
	}
}

// TestDevKMSRoutesBadInput: the key routes refuse bad input with a 4xx and
// change nothing.
func TestDevKMSRoutesBadInput(t *testing.T) {
	s := devServer(t, t.TempDir(), nil)
	key := s.Credentials.KMSKeyID
	for _, c := range []struct {
		path, body string
		status     int
	}{
		{"/dev/kms/keys", `{"key_id":"mine"}`, 400},
		{"/dev/kms/keys", `[`, 400},
		{"/dev/kms/keys/" + key + "/latency", ``, 400},
		{"/dev/kms/keys/" + key + "/latency", `{}`, 400},
		{"/dev/kms/keys/" + key + "/latency", `{"ms": -1}`, 400},
		{"/dev/kms/keys/" + key + "/latency", `{"ms": 1.5}`, 400},
		{"/dev/kms/keys/" + key + "/latency", `{"ms": "100"}`, 400},
		{"/dev/kms/keys/" + key + "/latency", `{"ms": null}`, 400},
		{"/dev/kms/keys/" + key + "/latency", `{"ms": 100, "ms": 200}`, 400},
		{"/dev/kms/keys/" + key + "/latency", `{"ms": 100, "extra": 1}`, 400},
		{"/dev/kms/keys/" + key + "/latency", `{"ms": 120001}`, 400},
		{"/dev/kms/keys/" + key + "/latency", `{"ms": ` + strings.Repeat("1", 70<<10) + `}`, 400},
		{"/dev/kms/keys/no-such-key/latency", `{"ms": 100}`, 404},
	} {
		r := do(t, s, http.MethodPost, c.path, nil, c.body)
		if r.status != c.status || r.body["message"] == nil {
			t.Errorf("POST %s %.40q: %d %s, want %d", c.path, c.body, r.status, r.raw, c.status)
		}
	}
	// Nothing took: the probe is still fast and healthy.
	r := do(t, s, http.MethodGet, "/api/v1/byok/health", bearer(s.Credentials.AdminToken), "")
	if r.body["status"] != "healthy" || r.body["latency_class"] != "normal" {
		t.Fatalf("health after refused input: %s", r.raw)
	}
	if r := do(t, s, http.MethodGet, "/dev/kms/keys", nil, ""); r.status != http.StatusMethodNotAllowed {
		t.Fatalf("GET /dev/kms/keys: %d %s", r.status, r.raw)
	}
}
