//go:build integration

package suite

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/keyseal/keyseal/localstack/standin"
	"github.com/keyseal/keyseal/shared/buspolicy"
	"github.com/keyseal/keyseal/shared/keyevents"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// The key of the shared/keyevents testdata events.
const testdataKey = "arn:aws:kms:eu-west-1:210987654321:key/4f7c2a9e-1b3d-4e8f-a6c5-0d9e8b7a6f51"

// TestForwardingPatternMatchesItsKeysEvents runs the customer rule's
// pattern through EventBridge's own matcher (LocalStack's
// TestEventPattern) on every testdata event: it matches exactly the
// events keyevents.Parse finds the key in, and none of them for another
// key of the same account, nor for the same key id in another account.
func TestForwardingPatternMatchesItsKeysEvents(t *testing.T) {
	standin.LocalStack(t)
	eb := standin.EventBridge(t)
	files, err := filepath.Glob("../../shared/keyevents/testdata/*.json")
	if err != nil || len(files) < 10 {
		t.Fatalf("testdata: %v %v", files, err)
	}
	matches := func(keyARN string, event []byte) bool {
		t.Helper()
		pattern, err := json.Marshal(keyevents.EventPattern(keyARN))
		if err != nil {
			t.Fatal(err)
		}
		out, err := eb.TestEventPattern(context.Background(), &eventbridge.TestEventPatternInput{
			EventPattern: aws.String(string(pattern)), Event: aws.String(string(event))})
		if err != nil {
			t.Fatalf("TestEventPattern: %v", err)
		}
		return out.Result
	}
	positives := 0
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n, ok, err := keyevents.Parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		want := ok && slices.Contains(n.KeyARNs, testdataKey)
		if want {
			positives++
		}
		if got := matches(testdataKey, raw); got != want {
			t.Errorf("%s: pattern matches=%v, want %v (Parse: %v %+v)", filepath.Base(f), got, want, ok, n)
		}
		for _, other := range []string{
			"arn:aws:kms:eu-west-1:210987654321:key/0b5e1c2d-3f4a-4b6c-8d7e-9f0a1b2c3d4e",
			"arn:aws:kms:eu-west-1:111122223333:key/4f7c2a9e-1b3d-4e8f-a6c5-0d9e8b7a6f51",
		} {
			if matches(other, raw) && !(ok && slices.Contains(n.KeyARNs, other)) {
				t.Errorf("%s: the pattern of %s matches it", filepath.Base(f), other)
			}
		}
	}
	// Every key-naming event kind is among them (calls, bare id, natives).
	if positives < 10 {
		t.Fatalf("only %d testdata events name the key: the check is too weak", positives)
	}
}

// TestBusPolicyReconcile runs the reconcile against LocalStack's bus
// policy and a DynamoDB Local table: it admits the accounts of the keys
// in use, moves the statement with a migration, removes it with the last
// tenant, leaves other statements alone, and concurrent runs converge.
func TestBusPolicyReconcile(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	eb := standin.EventBridge(t)
	store := e.srv.App.Store
	if _, err := eb.PutPermission(ctx, &eventbridge.PutPermissionInput{EventBusName: aws.String(e.table), Action: aws.String("events:PutEvents"),
		Principal: aws.String("555555555555"), StatementId: aws.String("operator-own")}); err != nil {
		t.Fatal(err)
	}
	r := &buspolicy.Reconciler{Index: store, Client: eb, Bus: e.table}
	sids := func() []string {
		t.Helper()
		out, err := eb.DescribeEventBus(ctx, &eventbridge.DescribeEventBusInput{Name: aws.String(e.table)})
		if err != nil {
			t.Fatal(err)
		}
		var doc struct{ Statement []struct{ Sid string } }
		if p := aws.ToString(out.Policy); p != "" {
			if err := json.Unmarshal([]byte(p), &doc); err != nil {
				t.Fatal(err)
			}
		}
		var ids []string
		for _, s := range doc.Statement {
			if !slices.Contains(ids, s.Sid) {
				ids = append(ids, s.Sid)
			}
		}
		slices.Sort(ids)
		return ids
	}
	byok := func(id, keyARN string) *keyseal.Tenant {
		t.Helper()
		tn := &keyseal.Tenant{ID: id, Key: keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: keyARN}, BYOK: true, Status: keyseal.StatusActive, ActiveVersion: 1}
		v := keyseal.TMKVersion{TenantID: id, Version: 1, Wrapped: []byte("wrapped"), Key: tn.Key, CreatedAt: time.Now().UTC()}
		if err := store.CreateTenant(ctx, tn, v, keyseal.AuditRecord{At: time.Now().UTC(), Action: keyseal.ActionTenantProvision, Actor: "test"}); err != nil {
			t.Fatal(err)
		}
		return tn
	}
	a := byok(standin.Name("a-"), "arn:aws:kms:eu-west-1:111122223333:key/a")
	b := byok(standin.Name("b-"), "arn:aws:kms:eu-west-1:111122223333:key/b")
	byok(standin.Name("c-"), "arn:aws:kms:us-east-1:444455556666:key/c")
	byok(standin.Name("own-"), "arn:aws:kms:us-east-1:000000000000:key/own")

	// Concurrent runs converge on one statement per account (the index
	// is eventually consistent: retry until it shows the new rows).
	want := []string{"keyseal-account-111122223333", "keyseal-account-444455556666", "operator-own"}
	converge := func(want []string) {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			var wg sync.WaitGroup
			errs := make([]error, 4)
			for i := range errs {
				wg.Add(1)
				go func() { defer wg.Done(); _, errs[i] = r.Reconcile(ctx) }()
			}
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					t.Fatal(err)
				}
			}
			if got := sids(); slices.Equal(got, want) {
				return
			} else if time.Now().After(deadline) {
				t.Fatalf("statements %v, want %v", got, want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	converge(want)

	// Migrate a away: 111122223333 stays for b; then b leaves too.
	a.Key.KeyID = "arn:aws:kms:eu-west-1:777788889999:key/a2"
	if err := store.UpdateTenant(ctx, a, keyseal.Change{}); err != nil {
		t.Fatal(err)
	}
	converge([]string{"keyseal-account-111122223333", "keyseal-account-444455556666", "keyseal-account-777788889999", "operator-own"})
	b.BYOK = false
	b.Key = keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: "arn:aws:kms:us-east-1:000000000000:key/platform"}
	if err := store.UpdateTenant(ctx, b, keyseal.Change{}); err != nil {
		t.Fatal(err)
	}
	converge([]string{"keyseal-account-444455556666", "keyseal-account-777788889999", "operator-own"})
	res, err := r.Reconcile(ctx)
	if err != nil || len(res.Added)+len(res.Removed) != 0 {
		t.Fatalf("a settled policy changed: %+v %v", res, err)
	}
}

// TestEventForwardingOverHTTP: the route in LocalStack mode names
// LocalStack's bus by its ARN, says whether its policy admits the
// account, and a registration (its tenant.kms.registered event) has the
// local server reconcile the policy, as the bus-policy Lambda would.
func TestEventForwardingOverHTTP(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	eb := standin.EventBridge(t)
	bus, err := eb.DescribeEventBus(ctx, &eventbridge.DescribeEventBusInput{Name: aws.String(e.table)})
	if err != nil {
		t.Fatal(err)
	}

	// What the server's start published is drained (and reconciled).
	e.awaitOutboxEmpty()
	// A tenant on a key of another account, written straight to the
	// store (LocalStack's KMS has keys of its own account only), so no
	// event announces it yet.
	foreign := standin.Name("f-")
	fk := keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: "arn:aws:kms:eu-west-1:210987654321:key/4f7c2a9e-1b3d-4e8f-a6c5-0d9e8b7a6f51"}
	if err := e.srv.App.Store.CreateTenant(ctx, &keyseal.Tenant{ID: foreign, Key: fk, BYOK: true, Status: keyseal.StatusActive, ActiveVersion: 1},
		keyseal.TMKVersion{TenantID: foreign, Version: 1, Wrapped: []byte("w"), Key: fk, CreatedAt: time.Now().UTC()},
		keyseal.AuditRecord{At: time.Now().UTC(), Action: keyseal.ActionTenantProvision, Actor: "test"}); err != nil {
		t.Fatal(err)
	}
	admin := e.adminToken(foreign, "alice")
	r := e.call(http.MethodGet, "/admin/tenant-kms/event-forwarding", admin, "", nil).want(http.StatusOK)
	if r.str("event_bus_arn") != aws.ToString(bus.Arn) || r.str("key_arn") != fk.KeyID || r.str("account") != "210987654321" {
		t.Fatalf("forwarding %s", r.raw)
	}
	adm := r.body["admission"].(map[string]any)
	if adm["mode"] != "account" || adm["statement_id"] != "keyseal-account-210987654321" || adm["admitted"] != false {
		t.Fatalf("admission before any reconcile: %v", adm)
	}

	// Another tenant registers through the API: its registered event
	// runs the reconcile, which admits every account in use.
	own := e.newTenant()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r = e.call(http.MethodGet, "/admin/tenant-kms/event-forwarding", admin, "", nil).want(http.StatusOK)
		if r.body["admission"].(map[string]any)["admitted"] == true {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the account was never admitted after a registration: %s", r.raw)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// The registered tenant's own key is in LocalStack's account, the
	// bus's: no statement needed.
	r = e.call(http.MethodGet, "/admin/tenant-kms/event-forwarding", e.adminToken(own.ID, "alice"), "", nil).want(http.StatusOK)
	if adm := r.body["admission"].(map[string]any); adm["mode"] != "own_account" || r.str("key_arn") != own.KeyARN {
		t.Fatalf("own-account key: %s", r.raw)
	}
	var tpl map[string]any
	if err := json.Unmarshal([]byte(r.str("cloudformation")), &tpl); err != nil {
		t.Fatalf("template: %v", err)
	}
}
