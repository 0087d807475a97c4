package localserver_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/devissuer"
	"github.com/keyseal/keyseal/shared/localserver"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// cloudCase is one cloud's registration body and what each local key
// state seals as on it.
type cloudCase struct {
	provider, field string
	reasons         map[string]string // state -> seal reason
}

var cloudCases = []cloudCase{
	{"gcp-kms", "key_name", map[string]string{"disabled": "key_disabled", "pending_deletion": "key_pending_deletion",
		"access_denied": "access_denied", "unreachable": "unreachable"}},
	// A deleted Azure key answers 404 KeyNotFound (azurekv's TestDeletedKey).
	{"azure-kv", "key_url", map[string]string{"disabled": "key_disabled", "pending_deletion": "key_not_found",
		"access_denied": "access_denied", "unreachable": "unreachable"}},
}

// cloudTenant is a tenant registered on a cloud stand-in key over HTTP.
type cloudTenant struct {
	id, key     string
	admin       map[string]string
	agent       map[string]string
	stepUpAdmin func() map[string]string
}

// registerCloudTenant makes a key in the provider's fake with POST
// /dev/kms/keys and registers a new tenant on it.
func registerCloudTenant(t *testing.T, s *localserver.Server, c cloudCase, id string) cloudTenant {
	t.Helper()
	r := do(t, s, http.MethodPost, "/dev/kms/keys", nil, `{"provider":"`+c.provider+`"}`)
	if r.status != http.StatusCreated || r.body["provider"] != c.provider {
		t.Fatalf("create %s key: %d %s", c.provider, r.status, r.raw)
	}
	tn := cloudTenant{id: id, key: r.body["key_id"].(string)}
	tok, err := s.Local.Issuer.Mint(devissuer.Claims{Subject: "alice", TenantID: id, TTL: time.Hour, AuthTime: time.Now(),
		ACR: "mfa", AMR: []string{"pwd", "mfa"}, Roles: []string{"keyseal:admin"}})
	if err != nil {
		t.Fatal(err)
	}
	tn.admin = bearer(tok)
	tn.stepUpAdmin = func() map[string]string {
		r := do(t, s, http.MethodPost, "/admin/auth/step-up", tn.admin, "")
		if r.status != http.StatusOK {
			t.Fatalf("step-up: %d %s", r.status, r.raw)
		}
		return map[string]string{"Authorization": "Bearer " + tok, auth.StepUpHeader: r.body["step_up_token"].(string)}
	}
	if r := do(t, s, http.MethodPost, "/api/v1/byok/legal-waiver", tn.admin, `{"acknowledged":true,"acknowledged_by":"legal@customer.example"}`); r.status != http.StatusOK {
		t.Fatalf("waiver: %d %s", r.status, r.raw)
	}
	body, _ := json.Marshal(map[string]string{"provider": c.provider, c.field: tn.key})
	if r := do(t, s, http.MethodPut, "/admin/tenant-kms", tn.stepUpAdmin(), string(body)); r.status != http.StatusOK || r.body["key_id"] != tn.key {
		t.Fatalf("register on %s: %d %s", c.provider, r.status, r.raw)
	}
	r = do(t, s, http.MethodPost, "/admin/agents", tn.admin, `{"name":"worker"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("agent: %d %s", r.status, r.raw)
	}
	tn.agent = bearer(r.body["agent_key"].(string))
	return tn
}

// setCloudState pulls a plug with the escaped key id, as the README's curl.
func setCloudState(t *testing.T, s *localserver.Server, key, state string) {
	t.Helper()
	r := do(t, s, http.MethodPost, "/dev/kms/keys/"+url.PathEscape(key)+"/state", nil, `{"state":"`+state+`"}`)
	if r.status != http.StatusOK || r.body["key_id"] != key {
		t.Fatalf("set %s to %s: %d %s", key, state, r.status, r.raw)
	}
}

func cloudServer(t *testing.T, dir string) *localserver.Server {
	t.Helper()
	return devServer(t, dir, map[string]string{"KEYSEAL_DEV_CLOUDS": "1", "KEYSEAL_TMK_CACHE_TTL": "1s", "KEYSEAL_KMS_TIMEOUT": "1s"})
}

// TestCloudStandInsOverHTTP: per cloud, a tenant registered on a stand-in
// key through the real SDK client seals within one poll in each key state
// with that cloud's reason, recovers on enabled, rotates, and reports its
// health; forced unseal answers 502 with the reason.
func TestCloudStandInsOverHTTP(t *testing.T) {
	s := cloudServer(t, t.TempDir())
	sweep := func() {
		if _, err := s.App.Tenants.Sweep(context.Background(), tenantkms.AllShards()); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cloudCases {
		t.Run(c.provider, func(t *testing.T) {
			tn := registerCloudTenant(t, s, c, "acme-"+strings.TrimSuffix(c.provider, "-kms"))
			if r := do(t, s, http.MethodPost, "/agent/v1/session", tn.agent, ""); r.status != http.StatusCreated {
				t.Fatalf("session: %d %s", r.status, r.raw)
			}
			h := do(t, s, http.MethodGet, "/admin/tenant-kms/health", tn.admin, "")
			if h.status != http.StatusOK || h.body["status"] != "healthy" {
				t.Fatalf("health: %d %s", h.status, h.raw)
			}
			for _, state := range []string{"disabled", "pending_deletion", "access_denied", "unreachable"} {
				t.Run(state, func(t *testing.T) {
					setCloudState(t, s, tn.key, state)
					sweep()
					if state == "unreachable" { // transient: seals once the cache TTL has run out
						time.Sleep(time.Second)
						sweep()
					}
					v := do(t, s, http.MethodGet, "/admin/tenant-kms", tn.admin, "")
					if v.body["status"] != "sealed" || v.body["seal_reason"] != c.reasons[state] {
						t.Fatalf("after %s: want sealed with %s, got %s", state, c.reasons[state], v.raw)
					}
					if r := do(t, s, http.MethodPost, "/agent/v1/session", tn.agent, ""); r.status != http.StatusServiceUnavailable || r.code() != "tenant_sealed" {
						t.Fatalf("session while sealed: %d %s", r.status, r.raw)
					}
					if state == "access_denied" || state == "unreachable" {
						r := do(t, s, http.MethodPost, "/admin/tenant-kms/unseal", tn.stepUpAdmin(), "")
						if r.status != http.StatusBadGateway || r.code() != "unseal_failed" || r.body["reason"] != state {
							t.Fatalf("forced unseal while %s: %d %s", state, r.status, r.raw)
						}
					}
					if state == "disabled" {
						time.Sleep(1100 * time.Millisecond) // past the health answer's one-second cache
						h := do(t, s, http.MethodGet, "/admin/tenant-kms/health", tn.admin, "")
						if h.body["status"] != "unhealthy" || h.body["reason"] != "key_disabled" {
							t.Fatalf("health of a disabled key: %d %s", h.status, h.raw)
						}
					}
					setCloudState(t, s, tn.key, "enabled")
					sweep()
					if r := do(t, s, http.MethodPost, "/agent/v1/session", tn.agent, ""); r.status != http.StatusCreated {
						t.Fatalf("session after re-enabling: %d %s", r.status, r.raw)
					}
				})
			}
			r := do(t, s, http.MethodPost, "/admin/tenant-kms/rotate", tn.admin, `{"rotation_type":"tmk","reason":"yearly"}`)
			if r.status != http.StatusOK || r.body["active_version"] != float64(2) {
				t.Fatalf("rotate: %d %s", r.status, r.raw)
			}
			if n := len(jwksKeys(t, s, tn.id).Keys); n != 2 {
				t.Fatalf("JWKS has %d keys after rotation, want 2", n)
			}
			if r := do(t, s, http.MethodPost, "/agent/v1/session", tn.agent, ""); r.status != http.StatusCreated || r.body["tmk_version"] != float64(2) {
				t.Fatalf("session after rotation: %d %s", r.status, r.raw)
			}
		})
	}
}

// TestCloudKeyRoutes: the demo keys of dev-credentials.json are ready to
// register, cloud key ids must be escaped, and bad input is 4xx.
func TestCloudKeyRoutes(t *testing.T) {
	dir := t.TempDir()
	s := cloudServer(t, dir)
	b, err := os.ReadFile(filepath.Join(dir, "dev-credentials.json"))
	if err != nil {
		t.Fatal(err)
	}
	var creds map[string]string
	if err := json.Unmarshal(b, &creds); err != nil {
		t.Fatal(err)
	}
	if creds["gcp_key_name"] != localserver.DevGCPKeyName || creds["azure_key_url"] != localserver.DevAzureKeyURL {
		t.Fatalf("dev-credentials.json: %s", b)
	}
	// The demo tenant (waiver acknowledged) migrates to the GCP demo key.
	h := stepUpHeaders(t, s)
	if r := do(t, s, http.MethodPost, "/admin/tenant-kms/migrate", h, `{"provider":"gcp-kms","key_name":"`+creds["gcp_key_name"]+`"}`); r.status != http.StatusOK || r.body["key_id"] != creds["gcp_key_name"] {
		t.Fatalf("migrate the demo tenant to GCP: %d %s", r.status, r.raw)
	}
	for _, key := range []string{creds["gcp_key_name"], creds["azure_key_url"]} {
		setCloudState(t, s, key, "enabled")
		if r := do(t, s, http.MethodPost, "/dev/kms/keys/"+url.PathEscape(key)+"/latency", nil, `{"ms": 5}`); r.status != http.StatusOK {
			t.Fatalf("latency of %s: %d %s", key, r.status, r.raw)
		}
		if r := do(t, s, http.MethodPost, "/dev/kms/keys/"+url.PathEscape(key)+"/state", nil, `{"state":"melted"}`); r.status != http.StatusBadRequest {
			t.Fatalf("bad state for %s: %d %s", key, r.status, r.raw)
		}
		// Unescaped, the key's slashes make another path: no route.
		if r := do(t, s, http.MethodPost, "/dev/kms/keys/"+key+"/state", nil, `{"state":"disabled"}`); r.status != http.StatusNotFound {
			t.Fatalf("unescaped %s: %d %s", key, r.status, r.raw)
		}
	}
	for _, key := range []string{localserver.DevGCPKeyRing + "/cryptoKeys/nope", localserver.DevAzureVault + "/keys/nope"} {
		if r := do(t, s, http.MethodPost, "/dev/kms/keys/"+url.PathEscape(key)+"/state", nil, `{"state":"disabled"}`); r.status != http.StatusNotFound || r.code() != "not_found" {
			t.Fatalf("unknown key %s: %d %s", key, r.status, r.raw)
		}
	}
	for _, body := range []string{`{"provider":"aws-kms"}`, `{"provider":"gcp"}`, `{"provider":7}`} {
		if r := do(t, s, http.MethodPost, "/dev/kms/keys", nil, body); r.status != http.StatusBadRequest {
			t.Fatalf("create key %s: %d %s", body, r.status, r.raw)
		}
	}
	if r := do(t, s, http.MethodPost, "/dev/kms/keys", nil, ""); r.status != http.StatusCreated || r.body["provider"] != "local" {
		t.Fatalf("create a local key: %d %s", r.status, r.raw)
	}
}

// TestCloudStandInsWithoutClouds: without KEYSEAL_DEV_CLOUDS the cloud
// providers are not configured (422) and no cloud key can be made.
func TestCloudStandInsWithoutClouds(t *testing.T) {
	s := devServer(t, t.TempDir(), nil)
	if r := do(t, s, http.MethodPost, "/dev/kms/keys", nil, `{"provider":"gcp-kms"}`); r.status != http.StatusUnprocessableEntity || r.code() != "provider_not_configured" {
		t.Fatalf("create a gcp-kms key without the stand-ins: %d %s", r.status, r.raw)
	}
	r := do(t, s, http.MethodPost, "/admin/tenant-kms/migrate", stepUpHeaders(t, s), `{"provider":"gcp-kms","key_name":"`+localserver.DevGCPKeyName+`"}`)
	if r.status != http.StatusUnprocessableEntity || r.code() != "provider_not_configured" {
		t.Fatalf("migrate to gcp-kms without the stand-ins: %d %s", r.status, r.raw)
	}
	if _, _, err := localserver.Wire(context.Background(), func(k string) string { return map[string]string{"KEYSEAL_DEV_CLOUDS": "yes"}[k] },
		localserver.ModeDev, t.TempDir()); err == nil || !strings.Contains(err.Error(), "KEYSEAL_DEV_CLOUDS") {
		t.Fatalf("KEYSEAL_DEV_CLOUDS=yes: %v", err)
	}
}

// TestCloudKeysSurviveRestart: a restart of make run-clouds keeps the
// stand-ins' keys and states (dev-clouds.json, 0600), so a tenant on a
// cloud key still unwraps in the new process.
func TestCloudKeysSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	s, stop := startServer(t, dir, map[string]string{"KEYSEAL_DEV_CLOUDS": "1"}, localserver.Options{})
	var tenants []cloudTenant
	for _, c := range cloudCases {
		tn := registerCloudTenant(t, s, c, "keep-"+strings.TrimSuffix(c.provider, "-kms"))
		if r := do(t, s, http.MethodPost, "/agent/v1/session", tn.agent, ""); r.status != http.StatusCreated {
			t.Fatalf("session: %d %s", r.status, r.raw)
		}
		tenants = append(tenants, tn)
	}
	disabled := registerCloudTenant(t, s, cloudCases[0], "keep-disabled")
	setCloudState(t, s, disabled.key, "disabled")
	stop()
	if fi, err := os.Stat(filepath.Join(dir, "dev-clouds.json")); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("dev-clouds.json: %v %v, want mode 0600", fi, err)
	}

	s2 := devServer(t, dir, map[string]string{"KEYSEAL_DEV_CLOUDS": "1"})
	for _, tn := range tenants {
		if r := do(t, s2, http.MethodPost, "/agent/v1/session", tn.agent, ""); r.status != http.StatusCreated {
			t.Fatalf("session of %s after restart: %d %s", tn.id, r.status, r.raw)
		}
	}
	if _, err := s2.App.Tenants.Sweep(context.Background(), tenantkms.AllShards()); err != nil {
		t.Fatal(err)
	}
	if v := do(t, s2, http.MethodGet, "/admin/tenant-kms", disabled.admin, ""); v.body["status"] != "sealed" || v.body["seal_reason"] != "key_disabled" {
		t.Fatalf("the disabled key after restart: %s", v.raw)
	}
}
