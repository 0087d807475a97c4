//go:build integration

package suite

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyseal/keyseal/localstack/standin"
	"github.com/keyseal/keyseal/shared/client"
	"github.com/keyseal/keyseal/shared/gcpkms"
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
func (e *env) cloudKey(provider string) (string, keyRef) {
	e.tb.Helper()
	key := must(e.api("").DevCreateKey(context.Background(), provider))(e.tb).KeyID
	field := map[string]string{"gcp-kms": "key_name", "azure-kv": "key_url"}[provider]
	return key, keyRef{provider, map[string]string{field: key}}
}

// newCloudTenant registers a new tenant on a fresh stand-in key of
// provider through PUT /admin/tenant-kms and creates an agent.
func (e *env) newCloudTenant(provider string) tenant {
	e.tb.Helper()
	key, body := e.cloudKey(provider)
	t := tenant{ID: standin.Name("t-"), KeyARN: key, KeyID: key}
	admin := e.admin(t.ID)
	e.acknowledgeWaiver(admin)
	if v := must(e.register(admin, body))(e.tb); v.Provider != provider || v.KeyID != key {
		e.tb.Fatalf("registered: %+v", v)
	}
	t.AgentKey = must(admin.CreateAgent(context.Background(), "worker"))(e.tb).Key
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
	enabled := fault(gcpkmsfake.Fault{State: gcpkms.StateEnabled})
	return []cloudTrigger{
		// gcloud kms keys remove-iam-policy-binding ... cryptoKeyEncrypterDecrypter
		{name: "iam_revoked", terminal: true, reason: "access_denied", cut: fault(gcpkmsfake.Fault{Denied: true}), heal: enabled},
		// gcloud kms keys versions disable
		{name: "key_disabled", terminal: true, reason: "key_disabled", cut: fault(gcpkmsfake.Fault{State: gcpkms.StateDisabled}), heal: enabled},
		// gcloud kms keys versions destroy (24 h scheduled), then restore + enable
		{name: "destroy_scheduled", terminal: true, reason: "key_pending_deletion",
			cut: fault(gcpkmsfake.Fault{State: gcpkms.StateDestroyScheduled}), heal: enabled},
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
					admin := e.admin(tn.ID)
					e.session(tn).want(http.StatusCreated) // warms this process's TMK cache
					e.sweep()
					tr.cut(tn.KeyID)
					e.sweep()
					v := e.tenantKMS(tn)
					if !tr.terminal {
						if v.Status != "active" || v.LastVerifyError == nil || v.KMSReachable {
							t.Fatalf("transient failure inside the cache TTL: %+v", v)
						}
						e.session(tn).want(http.StatusCreated) // served from the cached TMK
						time.Sleep(cacheTTL)
						e.sweep()
						v = e.tenantKMS(tn)
					}
					if v.Status != "sealed" || str(v.SealReason) != tr.reason {
						t.Fatalf("want sealed with reason %s, got %+v", tr.reason, v)
					}
					e.session(tn).agentError(http.StatusServiceUnavailable, "tenant_sealed")
					if got := e.awaitEvent("tenant.kms.sealed", tn.ID); got.Detail.Data.Reason != tr.reason {
						t.Fatalf("sealed event reason %q, want %q", got.Detail.Data.Reason, tr.reason)
					}
					// docs/contract.md §5: reason access_denied for a terminal
					// failure, unreachable for a transient one.
					want := map[bool]string{true: "access_denied", false: "unreachable"}[tr.terminal]
					_, err := admin.Unseal(context.Background(), e.stepUpWith(admin))
					if ae := wantAPIError(t, err, http.StatusBadGateway, "unseal_failed"); ae.ExtraString("reason") != want {
						t.Fatalf("forced unseal reason %q, want %s: %s", ae.ExtraString("reason"), want, ae.Body)
					}

					tr.heal(tn.KeyID)
					e.sweep()
					if v := e.tenantKMS(tn); v.Status != "active" || v.LastVerifyError != nil {
						t.Fatalf("after restoring access: %+v", v)
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
	ctx := context.Background()
	dev := e.api("")
	_, err := dev.DevCreateKey(ctx, "")
	wantAPIError(t, err, http.StatusUnprocessableEntity, "provider_not_configured")
	wantAPIError(t, dev.DevSetKeyState(ctx, "arn:aws:kms:us-east-1:000000000000:key/nope", "disabled"), http.StatusNotFound, "not_found")
	for _, provider := range []string{"gcp-kms", "azure-kv"} {
		t.Run(provider, func(t *testing.T) {
			tn := e.newCloudTenant(provider)
			admin := e.admin(tn.ID)
			e.must(dev.DevSetKeyState(ctx, tn.KeyID, "access_denied")) // a name or URL with slashes, escaped by the client
			e.sweep()
			if v := e.tenantKMS(tn); v.Status != "sealed" || str(v.SealReason) != "access_denied" {
				t.Fatalf("after access was revoked: %+v", v)
			}
			e.must(e.clouds().SetState(tn.KeyID, "enabled"))
			if r := must(admin.Unseal(ctx, e.stepUpWith(admin)))(t); !r.Unsealed {
				t.Fatalf("unseal: %+v", r)
			}
			if entries := e.auditEntries(tn, "byok.kms.unseal"); len(entries) != 1 || entries[0].Actor != "admin:alice" {
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
	admin := e.admin(tn.ID)
	gcpKey, gcpBody := e.cloudKey("gcp-kms")
	azureKey, azureBody := e.cloudKey("azure-kv")
	awsNext, awsNextID := e.createKey(false)

	tokens := []string{e.session(tn).want(http.StatusCreated).str("token")}
	for _, step := range []struct {
		provider, key string
		body          keyRef
	}{{"gcp-kms", gcpKey, gcpBody}, {"azure-kv", azureKey, azureBody}, {"aws-kms", awsNext, awsKey(awsNext)}} {
		v := must(e.migrate(admin, step.body))(t)
		if v.Provider != step.provider || v.KeyID != step.key {
			t.Fatalf("after migrating to %s: %+v", step.provider, v)
		}
		for _, ver := range v.Versions {
			if ver.Provider != step.provider || ver.KeyID != step.key {
				t.Fatalf("a version is not under the %s key: %+v", step.provider, v)
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
		if r := e.tenantKMS(tn); r.Status != "active" || r.LastVerifyError != nil {
			t.Fatalf("after migrating to %s: %+v", step.provider, r)
		}
		tokens = append(tokens, e.session(tn).want(http.StatusCreated).str("token"))
		// Rotating on the new provider adds a version the next step moves.
		must(admin.Rotate(ctx, client.RotateRequest{RotationType: "tmk", Reason: "after migrating to " + step.provider}))(t)
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
	if v := e.tenantKMS(tn); v.Status != "active" || v.LastVerifyError != nil {
		t.Fatalf("the earlier keys disabled after the last migration: %+v", v)
	}
	e.session(tn).want(http.StatusCreated)

	if _, err := e.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(awsNextID)}); err != nil {
		t.Fatal(err)
	}
	e.sweep()
	if v := e.tenantKMS(tn); v.Status != "sealed" || str(v.SealReason) != "key_disabled" {
		t.Fatalf("the new AWS key disabled: %+v", v)
	}
	e.session(tn).agentError(http.StatusServiceUnavailable, "tenant_sealed")
}
