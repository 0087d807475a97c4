package dynamostore

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// fakeAPI is a hand-written stand-in for DynamoDB: GetItem reads a map,
// and every TransactWriteItems / UpdateItem call is answered by a script,
// so tests choose exactly which cancellation reasons come back.
type fakeAPI struct {
	mu    sync.Mutex
	items map[[2]string]map[string]types.AttributeValue
	// transact answers call n (0-based) of TransactWriteItems.
	transact func(n int, in *dynamodb.TransactWriteItemsInput) error
	calls    []*dynamodb.TransactWriteItemsInput
	// update answers UpdateItem.
	update func(in *dynamodb.UpdateItemInput) error
}

var _ API = (*fakeAPI)(nil)

func newFake() *fakeAPI {
	return &fakeAPI{items: map[[2]string]map[string]types.AttributeValue{}}
}

func (f *fakeAPI) put(item map[string]types.AttributeValue) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pk := item[attrPK].(*types.AttributeValueMemberS).Value
	sk := item[attrSK].(*types.AttributeValueMemberS).Value
	f.items[[2]string{pk, sk}] = item
}

func (f *fakeAPI) GetItem(ctx context.Context, in *dynamodb.GetItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	pk := in.Key[attrPK].(*types.AttributeValueMemberS).Value
	sk := in.Key[attrSK].(*types.AttributeValueMemberS).Value
	return &dynamodb.GetItemOutput{Item: f.items[[2]string{pk, sk}]}, nil
}

func (f *fakeAPI) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, _ ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f.mu.Lock()
	n := len(f.calls)
	f.calls = append(f.calls, in)
	script := f.transact
	f.mu.Unlock()
	if script != nil {
		if err := script(n, in); err != nil {
			return nil, err
		}
	}
	return &dynamodb.TransactWriteItemsOutput{}, nil
}

func (f *fakeAPI) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, _ ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if f.update != nil {
		if err := f.update(in); err != nil {
			return nil, err
		}
	}
	return &dynamodb.UpdateItemOutput{}, nil
}

func (f *fakeAPI) PutItem(context.Context, *dynamodb.PutItemInput, ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	return nil, errors.New("fakeAPI: PutItem not scripted")
}

func (f *fakeAPI) DeleteItem(context.Context, *dynamodb.DeleteItemInput, ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	return nil, errors.New("fakeAPI: DeleteItem not scripted")
}

func (f *fakeAPI) Query(context.Context, *dynamodb.QueryInput, ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	return nil, errors.New("fakeAPI: Query not scripted")
}

func (f *fakeAPI) Scan(context.Context, *dynamodb.ScanInput, ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	return nil, errors.New("fakeAPI: Scan not scripted")
}

func (f *fakeAPI) DescribeTable(context.Context, *dynamodb.DescribeTableInput, ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	return nil, errors.New("fakeAPI: DescribeTable not scripted")
}

// cancelled builds the error DynamoDB returns for a cancelled transaction,
// one reason code per item.
func cancelled(codes ...string) error {
	reasons := make([]types.CancellationReason, len(codes))
	for i, c := range codes {
		reasons[i] = types.CancellationReason{Code: aws.String(c)}
	}
	return &types.TransactionCanceledException{Message: aws.String("Transaction cancelled"), CancellationReasons: reasons}
}

// newFakeStore returns a store on f that retries without sleeping.
func newFakeStore(f *fakeAPI) *Store {
	s := New(f, "t")
	s.backoff = func(int) time.Duration { return 0 }
	return s
}

var (
	fixedTime = time.Date(2025, 6, 7, 8, 9, 10, 123456000, time.UTC)
	sealRec   = keyseal.AuditRecord{At: fixedTime, Action: keyseal.ActionSeal, Severity: keyseal.SeverityWarning, Actor: "poller"}
)

func testTenant() *keyseal.Tenant {
	return &keyseal.Tenant{ID: "acme", Status: keyseal.StatusActive, ActiveVersion: 1, CreatedAt: fixedTime, UpdatedAt: fixedTime, Revision: 3}
}

// What the tenant row holds when UpdateTenant reads it back (storeRow puts
// it into the fake so reads after a failed condition find it).
const (
	rowMissing = iota
	rowOther   // revision 4 by another writer
	rowOurs    // the update's own row: the fake commits it, then answers
	rowOld     // still revision 3: the write did not land
)

func storeRow(t *testing.T, f *fakeAPI, which int) {
	t.Helper()
	tn, rev := testTenant(), int64(4)
	switch which {
	case rowMissing, rowOurs:
		return
	case rowOther:
		tn.UpdatedAt = tn.UpdatedAt.Add(time.Second)
	case rowOld:
		rev = 3
	}
	row, err := encodeTenant(tn, rev)
	if err != nil {
		t.Fatal(err)
	}
	f.put(row)
}

// errLost is what the SDK returns when every attempt lost its answer.
var errLost = &smithyhttp.RequestSendError{Err: syscall.ECONNRESET}

// UpdateTenant's transaction is [tenant row, audit head, audit entry].
func TestUpdateTenantCancellationMapping(t *testing.T) {
	validation := cancelled("ValidationError", reasonNone, reasonNone)
	tests := []struct {
		name      string
		row       int
		first     error // answer to the first call; later calls succeed
		wantCode  string
		wantCalls int
		wantErr   error // for infrastructure errors: what must stay reachable
	}{
		{"tenant condition, row exists", rowOther, cancelled(reasonCondition, reasonNone, reasonNone), keyseal.ECONFLICT, 1, nil},
		{"tenant condition, row missing", rowMissing, cancelled(reasonCondition, reasonNone, reasonNone), keyseal.ENOTFOUND, 1, nil},
		{"tenant and head conditions", rowOther, cancelled(reasonCondition, reasonCondition, reasonNone), keyseal.ECONFLICT, 1, nil},
		{"head condition only", rowOther, cancelled(reasonNone, reasonCondition, reasonNone), "", 2, nil},
		{"entry condition only", rowOther, cancelled(reasonNone, reasonNone, reasonCondition), "", 2, nil},
		{"transaction conflict", rowOther, cancelled(reasonConflict, reasonNone, reasonNone), "", 2, nil},
		{"throttled", rowOther, cancelled(reasonNone, reasonThrottling, reasonNone), "", 2, nil},
		{"validation error", rowOther, validation, keyseal.EINTERNAL, 1, validation},
		{"reasons missing", rowOther, cancelled(), keyseal.EINTERNAL, 1, nil},
		{"network error", rowOther, errNetwork, keyseal.EINTERNAL, 1, errNetwork},
		// A lost answer is an unknown outcome: the row read back decides.
		{"answer lost, write landed", rowOurs, errLost, "", 1, nil},
		{"answer lost, write did not land", rowOld, errLost, keyseal.EUNAVAILABLE, 1, errLost},
		{"answer lost, another writer won", rowOther, errLost, keyseal.EUNAVAILABLE, 1, errLost},
		// The SDK's own retry of a committed write fails its condition on
		// the revision it wrote itself.
		{"retry finds its own revision", rowOurs, cancelled(reasonCondition, reasonCondition, reasonCondition), "", 1, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			storeRow(t, f, tc.row)
			f.transact = func(n int, in *dynamodb.TransactWriteItemsInput) error {
				if n == 0 {
					if tc.row == rowOurs {
						f.put(in.TransactItems[0].Put.Item)
					}
					return tc.first
				}
				return nil
			}
			tn := testTenant()
			rec := sealRec
			err := newFakeStore(f).UpdateTenant(t.Context(), tn, keyseal.Change{Audit: &rec})
			if got := keyseal.ErrorCode(err); got != tc.wantCode {
				t.Fatalf("UpdateTenant error %v (code %q), want code %q", err, got, tc.wantCode)
			}
			if len(f.calls) != tc.wantCalls {
				t.Fatalf("TransactWriteItems called %d times, want %d", len(f.calls), tc.wantCalls)
			}
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v does not wrap %v", err, tc.wantErr)
			}
			wantRev := int64(3)
			if err == nil {
				wantRev = 4
			}
			if tn.Revision != wantRev {
				t.Fatalf("t.Revision = %d after the call, want %d", tn.Revision, wantRev)
			}
		})
	}
}

var errNetwork = errors.New("connection reset by peer")

// TestAppendAuditRebuildsOnMovedHead checks a retry links the entry to the
// head a concurrent writer left, with the head condition on the new seq,
// instead of resending the stale entry.
func TestAppendAuditRebuildsOnMovedHead(t *testing.T) {
	f := newFake()
	moved := keyseal.AuditHead{Seq: 5, Hash: "00ff"}
	f.transact = func(n int, _ *dynamodb.TransactWriteItemsInput) error {
		if n > 0 {
			return nil
		}
		// Another writer committed seq 1..5 meanwhile.
		f.put(map[string]types.AttributeValue{
			attrPK: str("tenant#acme"), attrSK: str(skAuditHead),
			"seq": number(moved.Seq), "hash": str(moved.Hash),
		})
		return cancelled(reasonCondition, reasonCondition)
	}
	e, err := newFakeStore(f).AppendAudit(t.Context(), "acme", sealRec)
	if err != nil {
		t.Fatalf("AppendAudit: %v", err)
	}
	if e.Seq != 6 || e.PrevHash != moved.Hash || e.Hash != audit.Hash(e) {
		t.Fatalf("entry = seq %d prev %q, want seq 6 linked to %q with a valid hash", e.Seq, e.PrevHash, moved.Hash)
	}
	if len(f.calls) != 2 {
		t.Fatalf("TransactWriteItems called %d times, want 2", len(f.calls))
	}

	first, second := f.calls[0].TransactItems, f.calls[1].TransactItems
	if got := aws.ToString(first[0].Put.ConditionExpression); got != "attribute_not_exists(pk)" {
		t.Errorf("first head write condition %q, want attribute_not_exists(pk)", got)
	}
	if got := aws.ToString(second[0].Put.ConditionExpression); got != "seq = :prev" {
		t.Errorf("retried head write condition %q, want seq = :prev", got)
	}
	if got := second[0].Put.ExpressionAttributeValues[":prev"]; !reflect.DeepEqual(got, number(int64(5))) {
		t.Errorf("retried head condition on %#v, want seq 5", got)
	}
	if got := second[0].Put.Item["seq"]; !reflect.DeepEqual(got, number(int64(6))) {
		t.Errorf("retried head writes seq %#v, want 6", got)
	}
	if got := second[1].Put.Item[attrSK]; !reflect.DeepEqual(got, str(auditSK(6))) {
		t.Errorf("retried entry key %#v, want %s", got, auditSK(6))
	}
	if got := aws.ToString(second[1].Put.ConditionExpression); got != "attribute_not_exists(pk)" {
		t.Errorf("retried entry condition %q, want attribute_not_exists(pk)", got)
	}
}

func TestAppendAuditRetryIsBounded(t *testing.T) {
	f := newFake()
	f.transact = func(int, *dynamodb.TransactWriteItemsInput) error {
		return cancelled(reasonCondition, reasonNone)
	}
	_, err := newFakeStore(f).AppendAudit(t.Context(), "acme", sealRec)
	if keyseal.ErrorCode(err) != keyseal.EINTERNAL {
		t.Fatalf("AppendAudit under endless contention = %v, want an internal error", err)
	}
	if _, ok := errors.AsType[*types.TransactionCanceledException](err); !ok {
		t.Fatalf("error %v does not wrap the last cancellation", err)
	}
	if len(f.calls) != maxChainAttempts {
		t.Fatalf("TransactWriteItems called %d times, want %d", len(f.calls), maxChainAttempts)
	}
}

func TestAppendAuditRetryHonoursContext(t *testing.T) {
	f := newFake()
	ctx, cancel := context.WithCancel(t.Context())
	f.transact = func(int, *dynamodb.TransactWriteItemsInput) error {
		cancel() // the caller gives up while the store backs off
		return cancelled(reasonCondition, reasonNone)
	}
	s := newFakeStore(f)
	s.backoff = func(int) time.Duration { return time.Hour }
	_, err := s.AppendAudit(ctx, "acme", sealRec)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("AppendAudit with a cancelled context = %v, want context.Canceled", err)
	}
	if len(f.calls) != 1 {
		t.Fatalf("TransactWriteItems called %d times after cancel, want 1", len(f.calls))
	}
}

// CreateAgent's transaction is [agent, key index, audit head, audit entry].
func TestCreateAgentCancellationMapping(t *testing.T) {
	tests := []struct {
		name      string
		first     error
		wantCode  string
		wantCalls int
	}{
		{"duplicate agent id", cancelled(reasonCondition, reasonNone, reasonNone, reasonNone), keyseal.ECONFLICT, 1},
		{"duplicate key hash", cancelled(reasonNone, reasonCondition, reasonNone, reasonNone), keyseal.ECONFLICT, 1},
		{"moved head", cancelled(reasonNone, reasonNone, reasonCondition, reasonNone), "", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.transact = func(n int, _ *dynamodb.TransactWriteItemsInput) error {
				if n == 0 {
					return tc.first
				}
				return nil
			}
			a := &keyseal.Agent{ID: "ag1", TenantID: "acme", KeyHash: "abc", CreatedAt: fixedTime}
			err := newFakeStore(f).CreateAgent(t.Context(), a, keyseal.AuditRecord{At: fixedTime, Action: keyseal.ActionAgentCreate})
			if got := keyseal.ErrorCode(err); got != tc.wantCode {
				t.Fatalf("CreateAgent error %v (code %q), want %q", err, got, tc.wantCode)
			}
			if len(f.calls) != tc.wantCalls {
				t.Fatalf("TransactWriteItems called %d times, want %d", len(f.calls), tc.wantCalls)
			}
		})
	}
}

// RevokeAgent's transaction is [agent update, audit head, audit entry].
func TestRevokeAgentCancellationMapping(t *testing.T) {
	for _, exists := range []bool{true, false} {
		f := newFake()
		if exists {
			item, err := encodeAgent(&keyseal.Agent{ID: "ag1", TenantID: "acme", KeyHash: "abc", CreatedAt: fixedTime, RevokedAt: &fixedTime})
			if err != nil {
				t.Fatal(err)
			}
			f.put(item)
		}
		f.transact = func(int, *dynamodb.TransactWriteItemsInput) error {
			return cancelled(reasonCondition, reasonNone, reasonNone)
		}
		err := newFakeStore(f).RevokeAgent(t.Context(), "acme", "ag1", fixedTime, keyseal.AuditRecord{At: fixedTime, Action: keyseal.ActionAgentRevoke})
		want := keyseal.ENOTFOUND
		if exists {
			want = keyseal.ECONFLICT
		}
		if got := keyseal.ErrorCode(err); got != want {
			t.Fatalf("RevokeAgent (agent stored: %t) error %v (code %q), want %q", exists, err, got, want)
		}
	}
}

func TestUseStepUpMapping(t *testing.T) {
	condFailed := &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed")}
	tests := []struct {
		name     string
		stored   bool
		err      error
		wantCode string
	}{
		{"unused", true, nil, ""},
		{"already used", true, condFailed, keyseal.ECONFLICT},
		{"unknown", false, condFailed, keyseal.ENOTFOUND},
		{"network error", true, errNetwork, keyseal.EINTERNAL},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			if tc.stored {
				item, err := encodeStepUp(keyseal.StepUpToken{Hash: "h1", ExpiresAt: fixedTime, Used: true})
				if err != nil {
					t.Fatal(err)
				}
				f.put(item)
			}
			var got *dynamodb.UpdateItemInput
			f.update = func(in *dynamodb.UpdateItemInput) error {
				got = in
				return tc.err
			}
			err := newFakeStore(f).UseStepUp(t.Context(), "h1")
			if code := keyseal.ErrorCode(err); code != tc.wantCode {
				t.Fatalf("UseStepUp error %v (code %q), want %q", err, code, tc.wantCode)
			}
			if got == nil || aws.ToString(got.ConditionExpression) != "attribute_exists(pk) AND #used = :false" {
				t.Fatalf("UseStepUp sent %+v, want an update conditional on the token existing unused", got)
			}
		})
	}
}

// TestItemRoundTrip checks every stored type decodes to what was encoded,
// including nil versus set optional times and nanosecond timestamps.
func TestItemRoundTrip(t *testing.T) {
	later := fixedTime.Add(time.Hour + 7*time.Nanosecond)
	tenants := []*keyseal.Tenant{
		{ID: "acme", Key: keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: "k", Access: map[string]string{"role_arn": "r", "external_id": "x"}}, BYOK: true,
			Status: keyseal.StatusSealed, SealedSince: &later, SealReason: keyseal.ReasonKeyDisabled, LastVerifyError: "e",
			LastVerifiedAt: &fixedTime, LastLatencyMS: 12, ActiveVersion: 3, CreatedAt: fixedTime, UpdatedAt: later, Revision: 9},
		{ID: "plain", Status: keyseal.StatusActive, CreatedAt: fixedTime, UpdatedAt: fixedTime, Revision: 1},
	}
	for _, want := range tenants {
		item, err := encodeTenant(want, want.Revision)
		if err != nil {
			t.Fatal(err)
		}
		requireAccess(t, item, want.Key.Access)
		got, err := decodeTenant(item)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("tenant round trip:\n got %+v\nwant %+v", got, want)
		}
	}

	versions := []keyseal.TMKVersion{
		{TenantID: "acme", Version: 2, Wrapped: []byte{1, 2}, KeyVersion: "7",
			Key:              keyseal.KeyRef{Provider: keyseal.ProviderGCP, KeyID: "k", Access: map[string]string{"service_account": "sa"}},
			SigningPublicKey: []byte{3}, CreatedAt: fixedTime, RevokedAt: &later},
		{TenantID: "acme", Version: 3, Key: keyseal.KeyRef{Provider: "local", KeyID: "k"}, CreatedAt: fixedTime},
	}
	for _, v := range versions {
		item, err := encodeVersion(v)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := item["wrapped"].(*types.AttributeValueMemberB); !ok && v.Wrapped != nil {
			t.Errorf("wrapped stored as %T, want B", item["wrapped"])
		}
		requireAccess(t, item, v.Key.Access)
		if kv, ok := item["key_version"].(*types.AttributeValueMemberS); v.KeyVersion != "" && (!ok || kv.Value != v.KeyVersion) {
			t.Errorf("key_version stored as %#v, want S %q", item["key_version"], v.KeyVersion)
		} else if _, ok := item["key_version"]; v.KeyVersion == "" && ok {
			t.Errorf("empty key_version stored as %#v, want it absent", item["key_version"])
		}
		if gotV, err := decodeVersion(item); err != nil || !reflect.DeepEqual(gotV, v) {
			t.Errorf("version round trip: %+v, %v; want %+v", gotV, err, v)
		}
	}

	e := audit.Next("acme", keyseal.AuditHead{Seq: 4, Hash: "ab"}, sealRec, later)
	item, err := encodeEntry(e)
	if err != nil {
		t.Fatal(err)
	}
	if gotE, err := decodeEntry(item); err != nil || !reflect.DeepEqual(gotE, e) || audit.Hash(gotE) != e.Hash {
		t.Errorf("entry round trip: %+v, %v; want %+v", gotE, err, e)
	}

	a := &keyseal.Agent{ID: "ag", TenantID: "acme", Name: "n", KeyHash: "h", CreatedAt: fixedTime, CreatedBy: "c", RevokedAt: &later}
	item, err = encodeAgent(a)
	if err != nil {
		t.Fatal(err)
	}
	if gotA, err := decodeAgent(item); err != nil || !reflect.DeepEqual(gotA, a) {
		t.Errorf("agent round trip: %+v, %v; want %+v", gotA, err, a)
	}

	tok := keyseal.StepUpToken{Hash: "h", Subject: "s", TenantID: "acme", ExpiresAt: later, Used: true}
	item, err = encodeStepUp(tok)
	if err != nil {
		t.Fatal(err)
	}
	if gotT, err := decodeStepUp(item); err != nil || !reflect.DeepEqual(*gotT, tok) {
		t.Errorf("step-up round trip: %+v, %v; want %+v", gotT, err, tok)
	}
}

// requireAccess checks a KeyRef's access fields are stored as one M of S
// named key_access, absent when there are none, and that none of the
// flattened columns of the old layout is written.
func requireAccess(t *testing.T, item map[string]types.AttributeValue, want map[string]string) {
	t.Helper()
	for _, old := range []string{"key_role_arn", "key_external_id"} {
		if _, ok := item[old]; ok {
			t.Errorf("item carries %s; access fields belong in key_access", old)
		}
	}
	got, ok := item["key_access"]
	if len(want) == 0 {
		if ok {
			t.Errorf("empty access stored as %#v, want key_access absent", got)
		}
		return
	}
	m, ok := got.(*types.AttributeValueMemberM)
	if !ok || len(m.Value) != len(want) {
		t.Fatalf("key_access stored as %#v, want M of %d S", got, len(want))
	}
	for name, v := range want {
		if s, ok := m.Value[name].(*types.AttributeValueMemberS); !ok || s.Value != v {
			t.Errorf("key_access[%s] = %#v, want S %q", name, m.Value[name], v)
		}
	}
}

// TestItemEmptyAccess checks a non-nil but empty access map is not stored
// as an empty M either.
func TestItemEmptyAccess(t *testing.T) {
	tn := testTenant()
	tn.Key = keyseal.KeyRef{Provider: "local", KeyID: "k", Access: map[string]string{}}
	item, err := encodeTenant(tn, 1)
	if err != nil {
		t.Fatal(err)
	}
	requireAccess(t, item, nil)
	item, err = encodeVersion(keyseal.TMKVersion{TenantID: "acme", Version: 1, Key: tn.Key, CreatedAt: fixedTime})
	if err != nil {
		t.Fatal(err)
	}
	requireAccess(t, item, nil)
}

// UpdateTenant with a new and a replaced version sends [tenant row, new
// version, replaced version, audit head, audit entry]; each version write
// carries its own condition, and the entry is stamped with rec.At.
func TestUpdateTenantVersionConditions(t *testing.T) {
	v2 := keyseal.TMKVersion{TenantID: "acme", Version: 2, Wrapped: []byte{2}, CreatedAt: fixedTime}
	v1 := keyseal.TMKVersion{TenantID: "acme", Version: 1, Wrapped: []byte{1}, KeyVersion: "9", CreatedAt: fixedTime}
	change := func() keyseal.Change {
		rec := sealRec
		rec.At = fixedTime.Add(1234 * time.Nanosecond) // truncated to 1 µs in the entry
		return keyseal.Change{NewVersions: []keyseal.TMKVersion{v2}, Replace: []keyseal.TMKVersion{v1}, Audit: &rec}
	}

	f := newFake()
	if err := newFakeStore(f).UpdateTenant(t.Context(), testTenant(), change()); err != nil {
		t.Fatalf("UpdateTenant: %v", err)
	}
	items := f.calls[0].TransactItems
	if len(items) != 5 {
		t.Fatalf("transaction has %d items, want 5", len(items))
	}
	for i, want := range []struct{ sk, cond string }{
		{skConfig, "#rev = :rev"},
		{versionSK(2), "attribute_not_exists(pk)"},
		{versionSK(1), "attribute_exists(pk) AND attribute_not_exists(revoked_at)"},
		{skAuditHead, "attribute_not_exists(pk)"},
		{auditSK(1), "attribute_not_exists(pk)"},
	} {
		put := items[i].Put
		if put == nil || !reflect.DeepEqual(put.Item[attrSK], str(want.sk)) || aws.ToString(put.ConditionExpression) != want.cond {
			t.Errorf("item %d = %+v, want a Put of %s conditional on %q", i, put, want.sk, want.cond)
		}
	}
	wantTS := str(fixedTime.Add(time.Microsecond).Format(time.RFC3339Nano))
	if got := items[4].Put.Item["ts"]; !reflect.DeepEqual(got, wantTS) {
		t.Errorf("entry ts = %#v, want rec.At truncated to the microsecond %#v", got, wantTS)
	}

	for _, tc := range []struct {
		name    string
		reasons []string
		want    string
	}{
		{"new version exists", []string{reasonNone, reasonCondition, reasonNone, reasonNone, reasonNone}, "TMK version 2 already exists"},
		{"replaced version gone", []string{reasonNone, reasonNone, reasonCondition, reasonNone, reasonNone}, "TMK version 1 is missing or revoked"},
		{"replaced version gone, head moved", []string{reasonNone, reasonNone, reasonCondition, reasonCondition, reasonNone}, "TMK version 1 is missing or revoked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFake()
			f.transact = func(int, *dynamodb.TransactWriteItemsInput) error { return cancelled(tc.reasons...) }
			tn := testTenant()
			err := newFakeStore(f).UpdateTenant(t.Context(), tn, change())
			if keyseal.ErrorCode(err) != keyseal.ECONFLICT || keyseal.ErrorMessage(err) != tc.want {
				t.Fatalf("UpdateTenant = %v, want %s %q", err, keyseal.ECONFLICT, tc.want)
			}
			if len(f.calls) != 1 {
				t.Fatalf("TransactWriteItems called %d times, want 1: a failed version condition is final", len(f.calls))
			}
			if tn.Revision != 3 {
				t.Fatalf("t.Revision = %d after a failed update, want 3", tn.Revision)
			}
		})
	}
}

// TestCreateTenantVersionIsNew checks the first version is written only
// where none is.
func TestCreateTenantVersionIsNew(t *testing.T) {
	f := newFake()
	tn := testTenant()
	v1 := keyseal.TMKVersion{TenantID: "acme", Version: 1, CreatedAt: fixedTime}
	if err := newFakeStore(f).CreateTenant(t.Context(), tn, v1, sealRec); err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	if got := aws.ToString(f.calls[0].TransactItems[1].Put.ConditionExpression); got != "attribute_not_exists(pk)" {
		t.Fatalf("first version written on condition %q, want attribute_not_exists(pk)", got)
	}
}

// TestRecordWithoutTime checks every write that takes an audit record
// refuses one without a time before sending anything.
func TestRecordWithoutTime(t *testing.T) {
	noTime := keyseal.AuditRecord{Action: keyseal.ActionSeal}
	f := newFake()
	s := newFakeStore(f)
	ctx := t.Context()
	agent := &keyseal.Agent{ID: "ag1", TenantID: "acme", KeyHash: "abc", CreatedAt: fixedTime}
	_, appendErr := s.AppendAudit(ctx, "acme", noTime)
	for name, err := range map[string]error{
		"CreateTenant": s.CreateTenant(ctx, testTenant(), keyseal.TMKVersion{TenantID: "acme", Version: 1}, noTime),
		"UpdateTenant": s.UpdateTenant(ctx, testTenant(), keyseal.Change{Audit: &noTime}),
		"AppendAudit":  appendErr,
		"CreateAgent":  s.CreateAgent(ctx, agent, noTime),
		"RevokeAgent":  s.RevokeAgent(ctx, "acme", "ag1", fixedTime, noTime),
	} {
		if keyseal.ErrorCode(err) != keyseal.EINVALID {
			t.Errorf("%s with a zero At = %v, want %s", name, err, keyseal.EINVALID)
		}
	}
	if len(f.calls) != 0 {
		t.Fatalf("TransactWriteItems called %d times, want none", len(f.calls))
	}
}

// TestOutboxItemMatchesStreamTestdata: the outbox item the store writes is
// the NewImage the event publisher's testdata feeds its handler, so the
// handler's tests exercise the layout the table really holds.
func TestOutboxItemMatchesStreamTestdata(t *testing.T) {
	b, err := os.ReadFile("../outbox/testdata/stream-seal-batch.json")
	if err != nil {
		t.Fatal(err)
	}
	var batch events.DynamoDBEvent
	if err := json.Unmarshal(b, &batch); err != nil {
		t.Fatal(err)
	}
	var image map[string]events.DynamoDBAttributeValue
	for _, r := range batch.Records {
		if r.Change.SequenceNumber == "4100000000000000000000003" {
			image = r.Change.NewImage
		}
	}
	at := time.Date(2026, 11, 23, 12, 0, 0, 123456789, time.UTC)
	data, err := json.Marshal(keyseal.SealedData{Reason: keyseal.ReasonKeyDisabled, SealedSince: at, LastError: "DisabledException"})
	if err != nil {
		t.Fatal(err)
	}
	e := keyseal.Event{ID: "0b6e7a4c-3f1d-4b2a-9c8e-5d7f6a1b2c3d", Type: keyseal.EventSealed, TenantID: "acme",
		Time: at.Format(time.RFC3339Nano), Data: data}
	s := New(&fakeAPI{}, "t")
	ws, err := s.outboxWrites([]keyseal.Event{e})
	if err != nil {
		t.Fatal(err)
	}
	item := ws[0].item.Put.Item
	if len(item) != len(image) {
		t.Fatalf("store writes %d attributes, the testdata image has %d", len(item), len(image))
	}
	for name, av := range item {
		var got, want string
		switch v := av.(type) {
		case *types.AttributeValueMemberS:
			got, want = "S:"+v.Value, "S:"+image[name].String()
		case *types.AttributeValueMemberN:
			got, want = "N:"+v.Value, "N:"+image[name].Number()
		default:
			t.Fatalf("%s: unexpected type %T", name, av)
		}
		if got != want {
			t.Errorf("%s: store writes %s, testdata has %s", name, got, want)
		}
	}
}
