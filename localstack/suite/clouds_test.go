//go:build integration

package suite

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyseal/keyseal/localstack/standin"
	"github.com/keyseal/keyseal/shared/gcpkms/gcpkmsfake"
	"github.com/keyseal/keyseal/shared/localserver"
	"github.com/keyseal/keyseal/shared/session"
)

// cloudsOn are newEnv settings that add the gcp-kms and azure-kv providers
// on the in-process stand-ins (localserver.Clouds), beside AWS KMS.
var cloudsOn = map[string]string{"KEYSEAL_DEV_CLOUDS": "1"}

func with(a, b map[string]string) map[string]string {
	out := map[string]string{}
	for _, m := range []map[string]string{a, b} {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// clouds is the env's GCP and Azure stand-ins, the customer's side of
// those keys (as e.kms is for AWS).
func (e *env) clouds() *localserver.Clouds {
	e.tb.Helper()
	if e.srv.Local.Clouds == nil {
		e.tb.Fatal("this env runs no cloud stand-ins: newEnv(t, cloudsOn)")
	}
	return e.srv.Local.Clouds
}

// cloudKey makes a key in a stand-in with POST /dev/kms/keys and returns
// it with its registration body.
func (e *env) cloudKey(provider string) (string, map[string]any) {
	e.tb.Helper()
	r := e.call(http.MethodPost, "/dev/kms/keys", "", "", map[string]any{"provider": provider}).want(http.StatusCreated)
	key := r.str("key_id")
	field := map[string]string{"gcp-kms": "key_name", "azure-kv": "key_url"}[provider]
	return key, map[string]any{"provider": provider, field: key}
}

// newCloudTenant registers a new tenant on a fresh stand-in key of
// provider through PUT /admin/tenant-kms and creates an agent.
func (e *env) newCloudTenant(provider string) tenant {
	e.tb.Helper()
	key, body := e.cloudKey(provider)
	t := tenant{ID: standin.Name("t-"), KeyARN: key, KeyID: key}
	admin := e.adminToken(t.ID, "alice")
	e.acknowledgeWaiver(admin)
	r := e.call(http.MethodPut, "/admin/tenant-kms", admin, e.stepUp(admin), body).want(http.StatusOK)
	if r.body["provider"] != provider || r.body["key_id"] != key {
		e.tb.Fatalf("registered: %s", r.raw)
	}
	r = e.call(http.MethodPost, "/admin/agents", admin, "", map[string]any{"name": "worker"}).want(http.StatusCreated)
	t.AgentKey = r.str("agent_key")
	return t
}

func (e *env) must(err error) {
	e.tb.Helper()
	if err != nil {
		e.tb.Fatal(err)
	}
}

// cloudTrigger is one of seed 000's seal triggers as a cloud produces it.
type cloudTrigger struct {
	name      string
	terminal  bool
	reason    string
	cut, heal func(key string)
}

// gcpTriggers pull each plug on a Cloud KMS key: the customer's gcloud
// commands, played on the fake.
func (e *env) gcpTriggers() []cloudTrigger {
	g := e.clouds().GCP
	fault := func(f gcpkmsfake.Fault) func(string) { return func(k string) { e.must(g.SetFault(k, f)) } }
	enabled := fault(gcpkmsfake.Fault{State: kmspb.CryptoKeyVersion_ENABLED})
	return []cloudTrigger{
		// gcloud kms keys remove-iam-policy-binding ... cryptoKeyEncrypterDecrypter
		{name: "iam_revoked", terminal: true, reason: "access_denied", cut: fault(gcpkmsfake.Fault{Denied: true}), heal: enabled},
		// gcloud kms keys versions disable
		{name: "key_disabled", terminal: true, reason: "key_disabled", cut: fault(gcpkmsfake.Fault{State: kmspb.CryptoKeyVersion_DISABLED}), heal: enabled},
		// gcloud kms keys versions destroy (24 h scheduled), then restore + enable
		{name: "destroy_scheduled", terminal: true, reason: "key_pending_deletion",
			cut: fault(gcpkmsfake.Fault{State: kmspb.CryptoKeyVersion_DESTROY_SCHEDULED}), heal: enabled},
		// The fake stops answering within the KMS timeout.
		{name: "network_partition", reason: "unreachable",
			cut:  func(k string) { e.must(g.SetKeyLatency(k, time.Minute)) },
			heal: func(k string) { e.must(g.SetKeyLatency(k, 0)) }},
		{name: "kms_outage", reason: "unreachable", cut: fault(gcpkmsfake.Fault{Outage: true}), heal: enabled},
	}
}

// azureTriggers pull each plug on a Key Vault key: the customer's az
// commands, played on the fake.
func (e *env) azureTriggers() []cloudTrigger {
	a := e.clouds().Azure
	return []cloudTrigger{
		// az role assignment delete --role "Key Vault Crypto User"
		{name: "rbac_revoked", terminal: true, reason: "access_denied",
			cut: func(k string) { e.must(a.SetDenied(k, true)) }, heal: func(k string) { e.must(a.SetDenied(k, false)) }},
		// az keyvault key set-attributes --enabled false
		{name: "key_disabled", terminal: true, reason: "key_disabled",
			cut: func(k string) { e.must(a.SetEnabled(k, false)) }, heal: func(k string) { e.must(a.SetEnabled(k, true)) }},
		// az keyvault key delete (soft delete), then recover: 404 KeyNotFound meanwhile
		{name: "key_deleted", terminal: true, reason: "key_not_found",
			cut: func(k string) { e.must(a.SetDeleted(k, true)) }, heal: func(k string) { e.must(a.SetDeleted(k, false)) }},
		// Connections to the vault are dropped.
		{name: "network_partition", reason: "unreachable",
			cut: func(k string) { e.must(a.SetDown(k, true)) }, heal: func(k string) { e.must(a.SetDown(k, false)) }},
		{name: "kms_outage", reason: "unreachable",
			cut: func(k string) { e.must(a.SetKeyOutage(k, true)) }, heal: func(k string) { e.must(a.SetKeyOutage(k, false)) }},
	}
}

// TestCloudSealTriggers: per provider, through its real SDK client and
// the HTTP API, each seal trigger of seed 000 ends in the documented state
// and reason within one poll (a transient one once the TMK cache TTL has
// run out), forced unseal answers 502 access_denied (terminal) or
// unreachable (transient) while it lasts, and
// restoring access brings the tenant back on the next poll.
func TestCloudSealTriggers(t *testing.T) {
	const cacheTTL = 2 * time.Second
	e := newEnv(t, with(cloudsOn, map[string]string{"KEYSEAL_TMK_CACHE_TTL": cacheTTL.String(), "KEYSEAL_KMS_TIMEOUT": "1s"}))
	for _, p := range []struct {
		provider string
		triggers []cloudTrigger
	}{{"gcp-kms", e.gcpTriggers()}, {"azure-kv", e.azureTriggers()}} {
		t.Run(p.provider, func(t *testing.T) {
			for _, tr := range p.triggers {
				t.Run(tr.name, func(t *testing.T) {
					tn := e.newCloudTenant(p.provider)
					admin := e.adminToken(tn.ID, "alice")
					e.session(tn).want(http.StatusCreated) // warms this process's TMK cache
					e.sweep()
					tr.cut(tn.KeyID)
					e.sweep()
					v := e.tenantKMS(tn)
					if !tr.terminal {
						if v.body["status"] != "active" || v.body["last_verify_error"] == nil || v.body["kms_reachable"] != false {
							t.Fatalf("transient failure inside the cache TTL: %s", v.raw)
						}
						e.session(tn).want(http.StatusCreated) // served from the cached TMK
						time.Sleep(cacheTTL)
						e.sweep()
						v = e.tenantKMS(tn)
					}
					if v.body["status"] != "sealed" || v.body["seal_reason"] != tr.reason {
						t.Fatalf("want sealed with reason %s, got %s", tr.reason, v.raw)
					}
					e.session(tn).agentError(http.StatusServiceUnavailable, "tenant_sealed")
					if got := e.awaitEvent("tenant.kms.sealed", tn.ID); got.Detail.Data.Reason != tr.reason {
						t.Fatalf("sealed event reason %q, want %q", got.Detail.Data.Reason, tr.reason)
					}
					// docs/contract.md §5: reason access_denied for a terminal
					// failure, unreachable for a transient one.
					want := map[bool]string{true: "access_denied", false: "unreachable"}[tr.terminal]
					r := e.call(http.MethodPost, "/admin/tenant-kms/unseal", admin, e.stepUp(admin), nil).adminError(http.StatusBadGateway, "unseal_failed")
					if r.body["reason"] != want {
						t.Fatalf("forced unseal reason %v, want %s: %s", r.body["reason"], want, r.raw)
					}

					tr.heal(tn.KeyID)
					e.sweep()
					if v := e.tenantKMS(tn); v.body["status"] != "active" || v.body["last_verify_error"] != nil {
						t.Fatalf("after restoring access: %s", v.raw)
					}
					e.session(tn).want(http.StatusCreated)
				})
			}
		})
	}
}

// TestCloudForcedUnseal: once access is back, a forced unseal of a tenant
// sealed on a cloud key succeeds (and is audited as the admin's act). The
// plug is pulled with the dev route, which LocalStack mode serves for the
// stand-ins' keys (escaped) and no local KMS.
func TestCloudForcedUnseal(t *testing.T) {
	e := newEnv(t, cloudsOn)
	e.call(http.MethodPost, "/dev/kms/keys", "", "", map[string]any{}).adminError(http.StatusUnprocessableEntity, "provider_not_configured")
	e.call(http.MethodPost, "/dev/kms/keys/"+url.PathEscape("arn:aws:kms:us-east-1:000000000000:key/nope")+"/state", "", "",
		map[string]any{"state": "disabled"}).adminError(http.StatusNotFound, "not_found")
	for _, provider := range []string{"gcp-kms", "azure-kv"} {
		t.Run(provider, func(t *testing.T) {
			tn := e.newCloudTenant(provider)
			admin := e.adminToken(tn.ID, "alice")
			e.call(http.MethodPost, "/dev/kms/keys/"+url.PathEscape(tn.KeyID)+"/state", "", "", map[string]any{"state": "access_denied"}).want(http.StatusOK)
			e.sweep()
			if v := e.tenantKMS(tn); v.body["status"] != "sealed" || v.body["seal_reason"] != "access_denied" {
				t.Fatalf("after access was revoked: %s", v.raw)
			}
			e.must(e.clouds().SetState(tn.KeyID, "enabled"))
			if r := e.call(http.MethodPost, "/admin/tenant-kms/unseal", admin, e.stepUp(admin), nil).want(http.StatusOK); r.raw != `{"unsealed":true}` {
				t.Fatalf("unseal: %s", r.raw)
			}
			if entries := e.auditEntries(tn, "byok.kms.unseal"); len(entries) != 1 || entries[0]["actor"] != "admin:alice" {
				t.Fatalf("unseal audit entries: %v", entries)
			}
			e.session(tn).want(http.StatusCreated)
		})
	}
}

// TestMigrateAcrossClouds moves one tenant AWS -> GCP -> Azure -> AWS with
// POST /admin/tenant-kms/migrate. Every session token issued before a
// migration keeps verifying against the JWKS after it (the TMKs moved, no
// signing key was lost); at the end the GCP and Azure keys no longer
// matter, and the new AWS key does.
func TestMigrateAcrossClouds(t *testing.T) {
	e := newEnv(t, cloudsOn)
	ctx := context.Background()
	tn := e.newTenant()
	admin := e.adminToken(tn.ID, "alice")
	gcpKey, gcpBody := e.cloudKey("gcp-kms")
	azureKey, azureBody := e.cloudKey("azure-kv")
	awsNext, awsNextID := e.createKey(false)

	tokens := []string{e.session(tn).want(http.StatusCreated).str("token")}
	for _, step := range []struct {
		provider, key string
		body          map[string]any
	}{{"gcp-kms", gcpKey, gcpBody}, {"azure-kv", azureKey, azureBody}, {"aws-kms", awsNext, awsKey(awsNext)}} {
		v := e.call(http.MethodPost, "/admin/tenant-kms/migrate", admin, e.stepUp(admin), step.body).want(http.StatusOK)
		if v.body["provider"] != step.provider || v.body["key_id"] != step.key {
			t.Fatalf("after migrating to %s: %s", step.provider, v.raw)
		}
		for _, ver := range v.body["versions"].([]any) {
			if m := ver.(map[string]any); m["provider"] != step.provider || m["key_id"] != step.key {
				t.Fatalf("a version is not under the %s key: %s", step.provider, v.raw)
			}
		}
		set := e.jwks(tn.ID)
		for i, tok := range tokens {
			if _, err := session.Verify(tok, set, time.Now()); err != nil {
				t.Fatalf("after migrating to %s, the token of step %d no longer verifies: %v", step.provider, i, err)
			}
		}
		// A sweep right after (a fresh unwrap through the new provider)
		// leaves the tenant active, and it keeps issuing sessions.
		e.sweep()
		if r := e.tenantKMS(tn); r.body["status"] != "active" || r.body["last_verify_error"] != nil {
			t.Fatalf("after migrating to %s: %s", step.provider, r.raw)
		}
		tokens = append(tokens, e.session(tn).want(http.StatusCreated).str("token"))
		// Rotating on the new provider adds a version the next step moves.
		e.call(http.MethodPost, "/admin/tenant-kms/rotate", admin, "", map[string]any{"rotation_type": "tmk", "reason": "after migrating to " + step.provider}).
			want(http.StatusOK)
	}
	if n := len(e.auditEntries(tn, "byok.kms.migrate")); n != 3 {
		t.Fatalf("%d migrate entries, want 3", n)
	}

	e.must(e.clouds().SetState(gcpKey, "disabled"))
	e.must(e.clouds().SetState(azureKey, "disabled"))
	if _, err := e.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(tn.KeyID)}); err != nil {
		t.Fatal(err)
	}
	e.sweep()
	if v := e.tenantKMS(tn); v.body["status"] != "active" || v.body["last_verify_error"] != nil {
		t.Fatalf("the earlier keys disabled after the last migration: %s", v.raw)
	}
	e.session(tn).want(http.StatusCreated)

	if _, err := e.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(awsNextID)}); err != nil {
		t.Fatal(err)
	}
	e.sweep()
	if v := e.tenantKMS(tn); v.body["status"] != "sealed" || v.body["seal_reason"] != "key_disabled" {
		t.Fatalf("the new AWS key disabled: %s", v.raw)
	}
	e.session(tn).agentError(http.StatusServiceUnavailable, "tenant_sealed")
}
