package api

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/memstore"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

const testBusARN = "arn:aws:events:us-east-1:999999999999:event-bus/keyseal-prod-events"

// forwardingDeps serves the event-forwarding route over a memstore
// holding one tenant per case.
func forwardingDeps(t *testing.T) *Deps {
	t.Helper()
	store := memstore.New()
	for id, key := range map[string]keyseal.KeyRef{
		"aws":   {Provider: keyseal.ProviderAWS, KeyID: testKeyARN},
		"gcp":   {Provider: keyseal.ProviderGCP, KeyID: testKeyName},
		"azure": {Provider: keyseal.ProviderAzure, KeyID: testKeyURL},
		"local": {Provider: keyseal.ProviderLocal, KeyID: "local-0011223344556677"},
		"plat":  {Provider: keyseal.ProviderAWS, KeyID: "arn:aws:kms:us-east-1:999999999999:key/platform"},
	} {
		tn := &keyseal.Tenant{ID: id, Key: key, BYOK: id != "plat", Status: keyseal.StatusActive, ActiveVersion: 1}
		v := keyseal.TMKVersion{TenantID: id, Version: 1, Wrapped: []byte("w"), Key: key, CreatedAt: time.Unix(0, 0)}
		if err := store.CreateTenant(t.Context(), tn, v, keyseal.AuditRecord{At: time.Unix(0, 0), Action: keyseal.ActionTenantProvision, Actor: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	svc := tenantkms.New(store, keyseal.Providers{}, tenantkms.Options{KMSTimeout: time.Second,
		PlatformKey: keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: "arn:aws:kms:us-east-1:999999999999:key/platform"}})
	return &Deps{Tenants: svc, EventBusARN: testBusARN}
}

func getForwarding(t *testing.T, d *Deps, tenant string) (EventForwarding, error) {
	t.Helper()
	resp, err := d.eventForwarding(context.Background(), &Request{Admin: &auth.Admin{Subject: "alice", TenantID: tenant}})
	if err != nil {
		return EventForwarding{}, err
	}
	if resp.Status != 200 {
		t.Fatalf("status %d", resp.Status)
	}
	return resp.Body.(EventForwarding), nil
}

// TestEventForwardingAWS: an aws-kms tenant gets its key's rule, role and
// template aimed at the configured bus, and how the bus admits it.
func TestEventForwardingAWS(t *testing.T) {
	d := forwardingDeps(t)
	f, err := getForwarding(t, d, "aws")
	if err != nil {
		t.Fatal(err)
	}
	if f.Provider != keyseal.ProviderAWS || f.KeyARN != testKeyARN || f.EventBusARN != testBusARN || f.Account != "111122223333" ||
		f.Region != "eu-west-1" || f.Rule.TargetARN != testBusARN || !strings.Contains(f.CloudFormation, testKeyARN) {
		t.Fatalf("answer %+v", f)
	}
	if f.Admission != (Admission{Mode: AdmissionAccount, StatementID: "keyseal-account-111122223333"}) {
		t.Fatalf("admission %+v", f.Admission)
	}
	b, _ := json.Marshal(f)
	for _, member := range []string{`"event_bus_arn"`, `"rule"`, `"role"`, `"cloudformation"`, `"admission"`, `"event_pattern"`, `"trust_policy"`} {
		if !strings.Contains(string(b), member) {
			t.Errorf("answer lacks %s: %s", member, b)
		}
	}

	// The bus policy, where the server may read it.
	d.BusPolicy = func(context.Context) (string, error) {
		return `{"Version":"2012-10-17","Statement":[{"Sid":"keyseal-account-111122223333"}]}`, nil
	}
	if f, _ = getForwarding(t, d, "aws"); f.Admission.Admitted == nil || !*f.Admission.Admitted {
		t.Fatalf("admitted %+v", f.Admission)
	}
	d.BusPolicy = func(context.Context) (string, error) { return "", errors.New("no access") }
	if f, err = getForwarding(t, d, "aws"); err != nil || f.Admission.Admitted != nil {
		t.Fatalf("a failed policy read: %v %+v", err, f.Admission)
	}

	// Organization mode: one statement for the organization.
	d.EventOrgID = "o-a1b2c3d4e5"
	if f, _ = getForwarding(t, d, "aws"); f.Admission != (Admission{Mode: AdmissionOrganization, OrganizationID: "o-a1b2c3d4e5"}) {
		t.Fatalf("organization admission %+v", f.Admission)
	}
}

// TestEventForwardingRefused: a tenant whose key has no AWS KMS events
// gets 409 not_forwardable saying why; an unknown tenant 404.
func TestEventForwardingRefused(t *testing.T) {
	d := forwardingDeps(t)
	for tenant, want := range map[string]string{
		"gcp":   "the tenant's key is gcp-kms",
		"azure": "the tenant's key is azure-kv",
		"local": "the tenant's key is local",
		"plat":  "no customer key",
	} {
		_, err := getForwarding(t, d, tenant)
		if keyseal.ErrorCode(err) != keyseal.ENOTFORWARDABLE || StatusOf(keyseal.ErrorCode(err)) != 409 || !strings.Contains(keyseal.ErrorMessage(err), want) {
			t.Errorf("%s: %v, want 409 not_forwardable saying %q", tenant, err, want)
		}
	}
	if _, err := getForwarding(t, d, "nobody"); StatusOf(keyseal.ErrorCode(err)) != 404 {
		t.Errorf("unknown tenant: %v, want 404", err)
	}
	// A key in keyseal's own account needs no statement.
	d.EventBusARN = "arn:aws:events:us-east-1:111122223333:event-bus/keyseal-dev-events"
	if f, err := getForwarding(t, d, "aws"); err != nil || f.Admission.Mode != AdmissionOwnAccount || f.Admission.Admitted == nil || !*f.Admission.Admitted {
		t.Fatalf("own account: %v %+v", err, f.Admission)
	}
	d.EventBusARN = testBusARN
	// A server mapping local keys (dev mode) forwards them.
	d.ForwardKeyARN = func(k keyseal.KeyRef) (string, bool) {
		return "arn:aws:kms:local:000000000000:key/" + k.KeyID, k.Provider == keyseal.ProviderLocal
	}
	if f, err := getForwarding(t, d, "local"); err != nil || f.Account != "000000000000" {
		t.Fatalf("mapped local key: %v %+v", err, f)
	}
}
