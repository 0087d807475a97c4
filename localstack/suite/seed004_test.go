//go:build integration

package suite

import (
	"net/http"
	"strings"
	"testing"
)

// TestSeed004CurlCommands sends seed 004's curl commands as written (its
// methods, paths, headers and bodies; only the host and $ASCEND_TOKEN
// replaced) to the local server in LocalStack mode, with the AWS KMS
// provider behind them, and checks each answers what the seed expects.
func TestSeed004CurlCommands(t *testing.T) {
	e := newEnv(t, nil)
	tn := e.newTenant()
	token := e.adminToken(tn.ID, "alice")
	curl := func(method, path, body string) *reply {
		t.Helper()
		var b any
		if body != "" {
			b = body
		}
		return e.call(method, path, token, "", b)
	}

	// Quick diagnostics.
	h := curl(http.MethodGet, "/api/v1/byok/health", "").want(http.StatusOK)
	if h.body["status"] != "healthy" || h.body["checks"].(map[string]any)["key_state"] != "Enabled" {
		t.Fatalf("health: %s", h.raw)
	}
	k := curl(http.MethodGet, "/api/v1/byok/keys", "").want(http.StatusOK)
	if k.body["key_id"] != tn.KeyARN || k.body["byok"] != true {
		t.Fatalf("keys: %s", k.raw)
	}
	if w := curl(http.MethodGet, "/api/v1/byok/legal-waiver/status", "").want(http.StatusOK); w.body["acknowledged"] != true {
		t.Fatalf("waiver status: %s", w.raw)
	}

	// "DEK invalid": trigger DEK rotation.
	r := curl(http.MethodPost, "/api/v1/byok/keys/rotate", `{"rotation_type": "dek", "reason": "DEK recovery"}`).want(http.StatusOK)
	if r.body["active_version"] != float64(2) {
		t.Fatalf("rotate: %s", r.raw)
	}

	// "Legal waiver not acknowledged": get it, acknowledge it.
	g := curl(http.MethodGet, "/api/v1/byok/legal-waiver", "").want(http.StatusOK)
	if g.str("version") == "" || g.str("text") == "" || len(g.str("sha256")) != 64 {
		t.Fatalf("waiver: %s", g.raw)
	}
	a := curl(http.MethodPost, "/api/v1/byok/legal-waiver", `{
"acknowledged": true,
"acknowledged_by": "your-email@company.com"
}`).want(http.StatusOK)
	if a.body["acknowledged_by"] != "your-email@company.com" {
		t.Fatalf("acknowledge: %s", a.raw)
	}

	// Performance: the latency of a live probe.
	if _, ok := curl(http.MethodGet, "/api/v1/byok/health", "").want(http.StatusOK).body["latency_ms"].(float64); !ok {
		t.Fatal("health has no numeric latency_ms")
	}

	// Before contacting support: recent audit logs, with what was just done.
	l := curl(http.MethodGet, "/api/v1/byok/audit?limit=50", "").want(http.StatusOK)
	var actions []string
	for _, v := range l.body["entries"].([]any) {
		actions = append(actions, v.(map[string]any)["action"].(string))
	}
	for _, want := range []string{"byok.waiver.acknowledge", "byok.tmk.rotate", "byok.kms.register"} {
		if !strings.Contains(strings.Join(actions, " "), want) {
			t.Fatalf("audit lacks %s: %v", want, actions)
		}
	}

	// "Organization already has BYOK key": register again → byok_key_exists.
	step := e.stepUp(token)
	e.call(http.MethodPost, "/api/v1/byok/keys", token, step, map[string]any{"provider": "aws-kms", "key_arn": tn.KeyARN}).
		adminError(http.StatusConflict, "byok_key_exists")
}
