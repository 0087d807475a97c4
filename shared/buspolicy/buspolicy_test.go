package buspolicy_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/keyseal/keyseal/shared/buspolicy"
	"github.com/keyseal/keyseal/shared/keyseal"
)

const busARN = "arn:aws:events:us-east-1:999999999999:event-bus/keyseal-prod-events"

// index is a KeyIndex of fixed keys per provider.
type index map[string][]string

func (ix index) TenantsByKey(context.Context, string, string) ([]string, error) { return nil, nil }
func (ix index) KeysInUse(_ context.Context, provider string) ([]string, error) {
	return append([]string{}, ix[provider]...), nil
}

type statement struct {
	Sid       string            `json:"Sid"`
	Effect    string            `json:"Effect"`
	Principal map[string]string `json:"Principal"`
	Action    string            `json:"Action"`
	Resource  string            `json:"Resource"`
}

// bus is a fake EventBridge bus policy with EventBridge's answers: a
// missing statement's removal is ResourceNotFoundException, and a put past
// maxStatements is PolicyLengthExceededException (the size limit).
type bus struct {
	mu            sync.Mutex
	statements    []statement
	maxStatements int
	puts, removes int
	// removeFails makes RemovePermission answer this error once.
	removeFails error
}

func (b *bus) DescribeEventBus(context.Context, *eventbridge.DescribeEventBusInput, ...func(*eventbridge.Options)) (*eventbridge.DescribeEventBusOutput, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := &eventbridge.DescribeEventBusOutput{Arn: aws.String(busARN), Name: aws.String("keyseal-prod-events")}
	if len(b.statements) > 0 {
		doc, _ := json.Marshal(map[string]any{"Version": "2012-10-17", "Statement": b.statements})
		out.Policy = aws.String(string(doc))
	}
	return out, nil
}

func (b *bus) PutPermission(_ context.Context, in *eventbridge.PutPermissionInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutPermissionOutput, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.puts++
	if b.maxStatements > 0 && len(b.statements) >= b.maxStatements {
		return nil, &types.PolicyLengthExceededException{Message: aws.String("policy too long")}
	}
	b.statements = append(b.statements, statement{Sid: *in.StatementId, Effect: "Allow",
		Principal: map[string]string{"AWS": "arn:aws:iam::" + *in.Principal + ":root"}, Action: *in.Action, Resource: busARN})
	return &eventbridge.PutPermissionOutput{}, nil
}

func (b *bus) RemovePermission(_ context.Context, in *eventbridge.RemovePermissionInput, _ ...func(*eventbridge.Options)) (*eventbridge.RemovePermissionOutput, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.removes++
	if err := b.removeFails; err != nil {
		b.removeFails = nil
		return nil, err
	}
	i := slices.IndexFunc(b.statements, func(s statement) bool { return s.Sid == *in.StatementId })
	if i < 0 {
		return nil, &types.ResourceNotFoundException{Message: aws.String("statement not found")}
	}
	b.statements = slices.Delete(b.statements, i, i+1)
	return &eventbridge.RemovePermissionOutput{}, nil
}

func (b *bus) sids() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []string
	for _, s := range b.statements {
		out = append(out, s.Sid)
	}
	slices.Sort(out)
	return out
}

func key(account, id string) string { return "arn:aws:kms:eu-west-1:" + account + ":key/" + id }

// TestReconcileAdmitsAccountsInUse: one statement per account of an
// aws-kms key in use, however many keys or tenants there; keyseal's own
// account and other providers' keys get none.
func TestReconcileAdmitsAccountsInUse(t *testing.T) {
	b := &bus{}
	ix := index{keyseal.ProviderAWS: {key("111122223333", "a"), key("111122223333", "b"), key("444455556666", "c"), key("999999999999", "own")},
		keyseal.ProviderGCP: {"projects/p/locations/global/keyRings/r/cryptoKeys/k"}}
	r := &buspolicy.Reconciler{Index: ix, Client: b, Bus: "keyseal-prod-events"}
	res, err := r.Reconcile(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"keyseal-account-111122223333", "keyseal-account-444455556666"}
	if got := b.sids(); !slices.Equal(got, want) {
		t.Fatalf("statements %v, want %v", got, want)
	}
	if !slices.Equal(res.Added, []string{"111122223333", "444455556666"}) || len(res.Removed) != 0 {
		t.Fatalf("result %+v", res)
	}
	for _, s := range b.statements {
		if s.Action != "events:PutEvents" {
			t.Fatalf("statement %s allows %s", s.Sid, s.Action)
		}
	}
	// Again: nothing to change, and no call made.
	puts := b.puts
	if res, err := r.Reconcile(t.Context()); err != nil || len(res.Added)+len(res.Removed) != 0 || b.puts != puts || b.removes != 0 {
		t.Fatalf("second run changed something: %+v %v (puts %d, removes %d)", res, err, b.puts-puts, b.removes)
	}
}

// TestReconcileRemovesUnusedAccounts: the statement goes with the last key
// of its account; statements the reconcile does not own stay.
func TestReconcileRemovesUnusedAccounts(t *testing.T) {
	b := &bus{statements: []statement{{Sid: "keyseal-organization"}, {Sid: "operator-own"}, {Sid: "keyseal-account-not-an-account"}}}
	ix := index{keyseal.ProviderAWS: {key("111122223333", "a"), key("444455556666", "c")}}
	r := &buspolicy.Reconciler{Index: ix, Client: b, Bus: "keyseal-prod-events"}
	if _, err := r.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	ix[keyseal.ProviderAWS] = []string{key("444455556666", "c")}
	res, err := r.Reconcile(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.Removed, []string{"111122223333"}) {
		t.Fatalf("removed %v", res.Removed)
	}
	want := []string{"keyseal-account-444455556666", "keyseal-account-not-an-account", "keyseal-organization", "operator-own"}
	if got := b.sids(); !slices.Equal(got, want) {
		t.Fatalf("statements %v, want %v", got, want)
	}
	// A concurrent reconcile removed it first: not an error.
	ix[keyseal.ProviderAWS] = nil
	b.removeFails = &types.ResourceNotFoundException{Message: aws.String("gone")}
	if res, err := r.Reconcile(t.Context()); err != nil || !slices.Equal(res.Removed, []string{"444455556666"}) {
		t.Fatalf("concurrent removal: %+v %v", res, err)
	}
}

// TestReconcileOrganizationMode: with an organization id the stack's
// statement admits everyone; per-account statements are removed, none
// added.
func TestReconcileOrganizationMode(t *testing.T) {
	b := &bus{statements: []statement{{Sid: "keyseal-organization"}, {Sid: "keyseal-account-111122223333"}}}
	ix := index{keyseal.ProviderAWS: {key("111122223333", "a"), key("444455556666", "c")}}
	r := &buspolicy.Reconciler{Index: ix, Client: b, Bus: "keyseal-prod-events", OrgID: "o-abcdefghij"}
	if _, err := r.Reconcile(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := b.sids(); !slices.Equal(got, []string{"keyseal-organization"}) {
		t.Fatalf("statements %v", got)
	}
}

// TestReconcileFullPolicy: past the size limit the account is refused
// with an error naming the way out, while the removals still happen.
func TestReconcileFullPolicy(t *testing.T) {
	b := &bus{maxStatements: 2, statements: []statement{{Sid: "keyseal-account-000011112222"}}}
	ix := index{keyseal.ProviderAWS: {key("111122223333", "a"), key("444455556666", "c"), key("777788889999", "d")}}
	r := &buspolicy.Reconciler{Index: ix, Client: b, Bus: "keyseal-prod-events"}
	res, err := r.Reconcile(t.Context())
	if err == nil || !strings.Contains(err.Error(), "Organization") || !errors.As(err, new(*types.PolicyLengthExceededException)) {
		t.Fatalf("err = %v, want the policy length error naming the organization mode", err)
	}
	if !slices.Equal(res.Removed, []string{"000011112222"}) || !slices.Equal(res.Added, []string{"111122223333", "444455556666"}) {
		t.Fatalf("result %+v", res)
	}
	// Another error on removal leaves the statement and is reported.
	ix[keyseal.ProviderAWS] = nil
	b.removeFails = errors.New("throttled")
	if _, err := r.Reconcile(t.Context()); err == nil || !strings.Contains(err.Error(), "throttled") {
		t.Fatalf("err = %v", err)
	}
}
