//go:build integration

package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keyseal/keyseal/localstack/standin"
	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/storetest"
)

// These tests run against DynamoDB Local (or LocalStack) named by
// AWS_ENDPOINT_URL_DYNAMODB. Without it they fail rather than skip, so an
// integration run can never pass by testing nothing.

// newClient builds a DynamoDB client for DynamoDB Local.
func newClient(t *testing.T) *dynamodb.Client {
	t.Helper()
	return standin.DynamoDB(t)
}

// newTable creates a table with a random name and deletes it when the test
// ends.
func newTable(t *testing.T, client *dynamodb.Client) string {
	t.Helper()
	table := standin.Name("keyseal-test-")
	if err := CreateTable(t.Context(), client, table); err != nil {
		t.Fatalf("CreateTable: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := client.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: &table}); err != nil {
			t.Logf("delete table %s: %v", table, err)
		}
	})
	return table
}

func newStore(t *testing.T) (*Store, *dynamodb.Client, string) {
	t.Helper()
	client := newClient(t)
	table := newTable(t, client)
	return New(client, table), client, table
}

// TestPollStatsConformance runs the keyseal.PollStats suite.
func TestPollStatsConformance(t *testing.T) {
	storetest.RunPollStats(t, func(t *testing.T) keyseal.PollStats {
		s, _, _ := newStore(t)
		return s
	})
}

// TestConformance runs the shared keyseal.Store suite.
func TestConformance(t *testing.T) {
	client := newClient(t)
	tables := map[keyseal.Store]string{}
	var mu sync.Mutex
	tableOf := func(t *testing.T, s keyseal.Store) string {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		table, ok := tables[s]
		if !ok {
			t.Fatal("store was not made by this harness")
		}
		return table
	}
	storetest.Run(t, storetest.Harness{
		New: func(t *testing.T) keyseal.Store {
			table := newTable(t, client)
			s := New(client, table)
			mu.Lock()
			tables[s] = table
			mu.Unlock()
			return s
		},
		Tamper: func(t *testing.T, s keyseal.Store, tenantID string, seq int64, edit func(*keyseal.AuditEntry)) {
			t.Helper()
			table := tableOf(t, s)
			k := key(tenantPK(tenantID), auditSK(seq))
			out, err := client.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: &table, Key: k, ConsistentRead: aws.Bool(true)})
			if err != nil || len(out.Item) == 0 {
				t.Fatalf("tamper: read entry %d: item %v, error %v", seq, out, err)
			}
			e, err := decodeEntry(out.Item)
			if err != nil {
				t.Fatalf("tamper: %v", err)
			}
			edit(&e)
			item, err := encodeEntry(e)
			if err != nil {
				t.Fatalf("tamper: %v", err)
			}
			// Overwrite in place, bypassing the chain: exactly what the
			// store itself never does.
			_, err = client.PutItem(t.Context(), &dynamodb.PutItemInput{
				TableName: &table, Item: item, ConditionExpression: aws.String("attribute_exists(pk)"),
			})
			if err != nil {
				t.Fatalf("tamper: rewrite entry %d: %v", seq, err)
			}
		},
		DeleteAudit: func(t *testing.T, s keyseal.Store, tenantID string, seq int64) {
			t.Helper()
			table := tableOf(t, s)
			_, err := client.DeleteItem(t.Context(), &dynamodb.DeleteItemInput{
				TableName:           &table,
				Key:                 key(tenantPK(tenantID), auditSK(seq)),
				ConditionExpression: aws.String("attribute_exists(pk)"),
			})
			if err != nil {
				t.Fatalf("delete audit entry %d: %v", seq, err)
			}
		},
		// Corrupt, Anchored and SetHead edit items directly too: a seq of
		// the wrong type, a rewound or forged head item.
		Corrupt: func(t *testing.T, s keyseal.Store, tenantID string, seq int64) {
			t.Helper()
			table := tableOf(t, s)
			item := key(tenantPK(tenantID), auditSK(seq))
			item["seq"] = str("three")
			item["ts"] = &types.AttributeValueMemberN{Value: "7"}
			if _, err := client.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: &table, Item: item,
				ConditionExpression: aws.String("attribute_exists(pk)")}); err != nil {
				t.Fatalf("corrupt audit entry %d: %v", seq, err)
			}
		},
		Anchored: func(t *testing.T, a *audit.Anchor) keyseal.Store {
			table := newTable(t, client)
			s := New(client, table, WithAnchor(a))
			mu.Lock()
			tables[s] = table
			mu.Unlock()
			return s
		},
		SetHead: func(t *testing.T, s keyseal.Store, tenantID string, head keyseal.AuditHead) {
			t.Helper()
			table := tableOf(t, s)
			if head == (keyseal.AuditHead{}) {
				if _, err := client.DeleteItem(t.Context(), &dynamodb.DeleteItemInput{TableName: &table,
					Key: key(tenantPK(tenantID), skAuditHead)}); err != nil {
					t.Fatalf("delete head: %v", err)
				}
				return
			}
			item, err := encodeHead(tenantID, head)
			if err == nil {
				_, err = client.PutItem(t.Context(), &dynamodb.PutItemInput{TableName: &table, Item: item})
			}
			if err != nil {
				t.Fatalf("set head: %v", err)
			}
		},
	})
}

// TestCreateTableSchema checks the table CreateTable makes is the one the
// package documentation promises the CDK stack, and that repeating or
// racing the call is harmless.
func TestCreateTableSchema(t *testing.T) {
	client := newClient(t)
	table := newTable(t, client)

	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		wg.Go(func() { errs[i] = CreateTable(t.Context(), client, table) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("repeated CreateTable #%d: %v", i, err)
		}
	}

	out, err := client.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: &table})
	if err != nil {
		t.Fatalf("DescribeTable: %v", err)
	}
	d := out.Table
	if d.TableStatus != types.TableStatusActive {
		t.Errorf("table status %s, want ACTIVE", d.TableStatus)
	}
	if got := keySchema(d.KeySchema); got != "pk:HASH sk:RANGE" {
		t.Errorf("table key schema %q, want %q", got, "pk:HASH sk:RANGE")
	}
	attrs := map[string]types.ScalarAttributeType{}
	for _, a := range d.AttributeDefinitions {
		attrs[aws.ToString(a.AttributeName)] = a.AttributeType
	}
	for _, name := range []string{"pk", "sk", "poll_shard", "tenant_id", "key_ref"} {
		if attrs[name] != types.ScalarAttributeTypeS {
			t.Errorf("attribute %s has type %q, want S", name, attrs[name])
		}
	}
	if d.BillingModeSummary == nil || d.BillingModeSummary.BillingMode != types.BillingModePayPerRequest {
		t.Errorf("billing mode %+v, want PAY_PER_REQUEST", d.BillingModeSummary)
	}
	if len(d.GlobalSecondaryIndexes) != 2 {
		t.Fatalf("table has %d GSIs, want 2", len(d.GlobalSecondaryIndexes))
	}
	want := map[string]string{"poll-shard": "poll_shard:HASH tenant_id:RANGE", "key-ref": "key_ref:HASH tenant_id:RANGE"}
	for _, gsi := range d.GlobalSecondaryIndexes {
		name := aws.ToString(gsi.IndexName)
		if keySchema(gsi.KeySchema) != want[name] || gsi.Projection == nil || gsi.Projection.ProjectionType != types.ProjectionTypeKeysOnly {
			t.Errorf("GSI %s keys %q projection %+v, want %q, KEYS_ONLY", name, keySchema(gsi.KeySchema), gsi.Projection, want[name])
		}
	}
	ttl, err := client.DescribeTimeToLive(t.Context(), &dynamodb.DescribeTimeToLiveInput{TableName: &table})
	if err != nil {
		t.Fatalf("DescribeTimeToLive: %v", err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || aws.ToString(d.AttributeName) != "ttl" ||
		(d.TimeToLiveStatus != types.TimeToLiveStatusEnabled && d.TimeToLiveStatus != types.TimeToLiveStatusEnabling) {
		t.Errorf("TTL %+v, want enabled on attribute ttl", d)
	}
}

func keySchema(ks []types.KeySchemaElement) string {
	var s string
	for i, k := range ks {
		if i > 0 {
			s += " "
		}
		s += aws.ToString(k.AttributeName) + ":" + string(k.KeyType)
	}
	return s
}

// TestItemLayout pins the stored keys and the attributes other tools rely
// on (the GSI, the TTL), by reading the raw items.
func TestItemLayout(t *testing.T) {
	s, client, table := newStore(t)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	access := map[string]string{"role_arn": "arn:aws:iam::111122223333:role/keyseal", "external_id": "ext-1"}
	tn := &keyseal.Tenant{ID: "acme", Key: keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: "k1", Access: access}, Status: keyseal.StatusActive, ActiveVersion: 1, CreatedAt: now, UpdatedAt: now}
	v := keyseal.TMKVersion{TenantID: "acme", Version: 1, Wrapped: []byte{1, 2, 3}, KeyVersion: "kv-1", Key: tn.Key, SigningPublicKey: []byte{4, 5}, CreatedAt: now}
	// The record's time is the service's, deliberately not "now", so an
	// entry stamped by the store's clock shows.
	recAt := now.Add(-time.Hour).Add(789 * time.Nanosecond)
	if err := s.CreateTenant(ctx, tn, v, keyseal.AuditRecord{At: recAt, Action: keyseal.ActionTenantProvision, Severity: keyseal.SeverityInfo, Actor: "system"}); err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	a := &keyseal.Agent{ID: "ag1", TenantID: "acme", Name: "n", KeyHash: "abc", CreatedAt: now, CreatedBy: "admin"}
	if err := s.CreateAgent(ctx, a, keyseal.AuditRecord{At: now, Action: keyseal.ActionAgentCreate, Severity: keyseal.SeverityInfo, Actor: "admin"}); err != nil {
		t.Fatalf("CreateAgent: %v", err)
	}
	exp := now.Add(2 * time.Minute)
	if err := s.PutStepUp(ctx, keyseal.StepUpToken{Hash: "h1", Subject: "admin", TenantID: "acme", ExpiresAt: exp}); err != nil {
		t.Fatalf("PutStepUp: %v", err)
	}

	raw := func(pk, sk string) map[string]types.AttributeValue {
		t.Helper()
		out, err := client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: key(pk, sk), ConsistentRead: aws.Bool(true)})
		if err != nil {
			t.Fatalf("GetItem(%s, %s): %v", pk, sk, err)
		}
		if len(out.Item) == 0 {
			t.Fatalf("no item at pk %q sk %q", pk, sk)
		}
		return out.Item
	}
	requireS := func(item map[string]types.AttributeValue, attr, want string) {
		t.Helper()
		got, ok := item[attr].(*types.AttributeValueMemberS)
		if !ok || got.Value != want {
			t.Errorf("attribute %s = %#v, want S %q", attr, item[attr], want)
		}
	}
	requireN := func(item map[string]types.AttributeValue, attr, want string) {
		t.Helper()
		got, ok := item[attr].(*types.AttributeValueMemberN)
		if !ok || got.Value != want {
			t.Errorf("attribute %s = %#v, want N %s", attr, item[attr], want)
		}
	}

	row := raw("tenant#acme", "config")
	requireS(row, "poll_shard", fmt.Sprintf("%02d", keyseal.ShardOf("acme")))
	requireS(row, "tenant_id", "acme")
	requireS(row, "created_at", now.Format(time.RFC3339Nano))
	requireN(row, "revision", "1")
	if _, ok := row["ttl"]; ok {
		t.Error("tenant row has a ttl attribute")
	}
	if _, ok := row["key_ref"]; ok {
		t.Error("a platform-key tenant row has key_ref; only BYOK rows may")
	}
	requireS(row, "key_provider", keyseal.ProviderAWS)
	requireAccess(t, row, access)
	ver := raw("tenant#acme", "tmk#00000001")
	if b, ok := ver["wrapped"].(*types.AttributeValueMemberB); !ok || !slices.Equal(b.Value, []byte{1, 2, 3}) {
		t.Errorf("version wrapped = %#v, want B 010203", ver["wrapped"])
	}
	requireS(ver, "key_version", "kv-1")
	requireAccess(t, ver, access)
	head := raw("tenant#acme", "audit#head")
	requireN(head, "seq", "2")
	entry := raw("tenant#acme", "audit#00000000000000000001")
	requireN(entry, "seq", "1")
	requireS(entry, "action", keyseal.ActionTenantProvision)
	requireS(entry, "ts", recAt.Truncate(time.Microsecond).Format(time.RFC3339Nano))
	for _, item := range []map[string]types.AttributeValue{ver, head, entry} {
		if _, ok := item["poll_shard"]; ok {
			t.Errorf("item %v carries poll_shard; only tenant rows may", item["sk"])
		}
		if _, ok := item["ttl"]; ok {
			t.Errorf("item %v carries ttl; audit and tenant data must never expire", item["sk"])
		}
	}
	raw("tenant#acme", "audit#00000000000000000002")
	requireS(raw("tenant#acme", "agent#ag1"), "key_hash", "abc")
	ref := raw("agentkey#abc", "agentkey")
	requireS(ref, "tenant_id", "acme")
	requireS(ref, "agent_id", "ag1")
	tok := raw("stepup#h1", "stepup")
	requireN(tok, "ttl", fmt.Sprint(exp.Add(time.Hour).Unix()))
	requireS(tok, "expires_at", exp.Format(time.RFC3339Nano))
}

// partition returns every raw sort key of a tenant's partition.
func partition(t *testing.T, client *dynamodb.Client, table, tenantID string) []string {
	t.Helper()
	out, err := client.Query(t.Context(), &dynamodb.QueryInput{
		TableName:                 &table,
		ConsistentRead:            aws.Bool(true),
		KeyConditionExpression:    aws.String("pk = :pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":pk": str(tenantPK(tenantID))},
	})
	if err != nil {
		t.Fatalf("Query partition: %v", err)
	}
	var sks []string
	for _, item := range out.Items {
		sks = append(sks, item["sk"].(*types.AttributeValueMemberS).Value)
	}
	return sks
}

// TestFailedConditionWritesNothing checks all-or-nothing on the raw table:
// a write whose tenant condition fails leaves no version, head or entry
// behind, even though those items' own conditions would have passed.
func TestFailedConditionWritesNothing(t *testing.T) {
	s, client, table := newStore(t)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	rec := keyseal.AuditRecord{At: now, Action: keyseal.ActionSeal, Severity: keyseal.SeverityWarning, Actor: "poller"}
	version := func(n int) keyseal.TMKVersion {
		return keyseal.TMKVersion{TenantID: "acme", Version: n, Wrapped: []byte{byte(n)}, CreatedAt: now}
	}

	// Unknown tenant: ENOTFOUND, and the partition stays empty.
	ghost := &keyseal.Tenant{ID: "acme", Status: keyseal.StatusSealed, Revision: 1, CreatedAt: now, UpdatedAt: now}
	err := s.UpdateTenant(ctx, ghost, keyseal.Change{NewVersions: []keyseal.TMKVersion{version(2)}, Audit: &rec})
	if keyseal.ErrorCode(err) != keyseal.ENOTFOUND {
		t.Fatalf("UpdateTenant(unknown) = %v, want %s", err, keyseal.ENOTFOUND)
	}
	if sks := partition(t, client, table, "acme"); len(sks) != 0 {
		t.Fatalf("failed update of an unknown tenant left items %v", sks)
	}

	tn := &keyseal.Tenant{ID: "acme", Status: keyseal.StatusActive, ActiveVersion: 1, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateTenant(ctx, tn, version(1), rec); err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}
	before := partition(t, client, table, "acme")
	want := []string{"audit#00000000000000000001", "audit#head", "config", "tmk#00000001"}
	if !slices.Equal(before, want) {
		t.Fatalf("after CreateTenant the partition holds %v, want %v", before, want)
	}

	stale := tn.Clone()
	stale.Revision = 7
	stale.Status = keyseal.StatusRevoked
	err = s.UpdateTenant(ctx, stale, keyseal.Change{NewVersions: []keyseal.TMKVersion{version(2), version(3)}, Audit: &rec})
	if keyseal.ErrorCode(err) != keyseal.ECONFLICT {
		t.Fatalf("UpdateTenant(stale) = %v, want %s", err, keyseal.ECONFLICT)
	}
	if after := partition(t, client, table, "acme"); !slices.Equal(after, before) {
		t.Fatalf("failed update changed the partition from %v to %v", before, after)
	}
	if got, err := s.GetTenant(ctx, "acme"); err != nil || got.Status != keyseal.StatusActive || got.Revision != 1 {
		t.Fatalf("tenant after failed update = %+v, %v; want the created row", got, err)
	}

	// A duplicate create is refused as a whole too: its version 2 and its
	// audit entry are not written.
	dup := &keyseal.Tenant{ID: "acme", Status: keyseal.StatusActive, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateTenant(ctx, dup, version(2), rec); keyseal.ErrorCode(err) != keyseal.ECONFLICT {
		t.Fatalf("duplicate CreateTenant = %v, want %s", err, keyseal.ECONFLICT)
	}
	if after := partition(t, client, table, "acme"); !slices.Equal(after, before) {
		t.Fatalf("refused create changed the partition from %v to %v", before, after)
	}
}

// TestConcurrentAppendsAcrossStores races appends from two Store values on
// one table, as two Lambda instances would, mixed with tenant updates that
// also append: the chain must come out gap-free, each seq once, and verify.
func TestConcurrentAppendsAcrossStores(t *testing.T) {
	client := newClient(t)
	table := newTable(t, client)
	stores := []*Store{New(client, table), New(client, table)}
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	tn := &keyseal.Tenant{ID: "acme", Status: keyseal.StatusActive, ActiveVersion: 1, CreatedAt: now, UpdatedAt: now}
	if err := stores[0].CreateTenant(ctx, tn, keyseal.TMKVersion{TenantID: "acme", Version: 1, CreatedAt: now}, keyseal.AuditRecord{At: now, Action: keyseal.ActionTenantProvision}); err != nil {
		t.Fatalf("CreateTenant: %v", err)
	}

	const appenders, perAppender = 8, 4
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		seqs    []int64
		updates int
		errs    []error
	)
	for i := range appenders {
		wg.Go(func() {
			for j := range perAppender {
				e, err := stores[i%2].AppendAudit(ctx, "acme", keyseal.AuditRecord{At: now, Action: keyseal.ActionStepUp, Actor: fmt.Sprintf("w%d/%d", i, j)})
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					seqs = append(seqs, e.Seq)
				}
				mu.Unlock()
			}
		})
	}
	// Updaters re-read and retry on ECONFLICT, the way the services do, so
	// every one of them lands eventually.
	const updaters = 3
	for i := range updaters {
		wg.Go(func() {
			for {
				cur, err := stores[i%2].GetTenant(ctx, "acme")
				if err == nil {
					cur.LastLatencyMS = int64(i)
					rec := keyseal.AuditRecord{At: now, Action: keyseal.ActionSeal, Actor: fmt.Sprintf("u%d", i)}
					err = stores[i%2].UpdateTenant(ctx, cur, keyseal.Change{Audit: &rec})
				}
				if keyseal.ErrorCode(err) == keyseal.ECONFLICT {
					continue
				}
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					updates++
				}
				mu.Unlock()
				return
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("concurrent writes failed: %v", errs)
	}

	total := 1 + appenders*perAppender + updaters
	var scanned []int64
	head, err := stores[1].ScanAudit(ctx, "acme", func(e keyseal.AuditEntry) error {
		scanned = append(scanned, e.Seq)
		return nil
	})
	if err != nil {
		t.Fatalf("ScanAudit: %v", err)
	}
	if len(scanned) != total || head.Seq != int64(total) {
		t.Fatalf("chain has %d entries, head %d; want %d", len(scanned), head.Seq, total)
	}
	for i, seq := range scanned {
		if seq != int64(i+1) {
			t.Fatalf("chain seqs %v are not 1..%d", scanned, total)
		}
	}
	slices.Sort(seqs)
	if len(slices.Compact(seqs)) != appenders*perAppender {
		t.Fatalf("appends reported duplicate seqs: %v", seqs)
	}
	res, err := audit.VerifyChain(ctx, stores[0], "acme")
	if err != nil || !res.Valid {
		t.Fatalf("VerifyChain = %+v, %v; want valid", res, err)
	}
	if got, err := stores[0].GetTenant(ctx, "acme"); err != nil || got.Revision != int64(1+updates) {
		t.Fatalf("tenant revision %v (%v), want %d", got, err, 1+updates)
	}
}

// TestListTenantsWholeShard checks paging with a limit of zero (one call
// lists the shard) and that a cursor from a page resumes after it.
func TestListTenantsWholeShard(t *testing.T) {
	s, _, _ := newStore(t)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	byShard := map[int][]string{}
	for i := range 50 {
		id := fmt.Sprintf("t%03d", i)
		tn := &keyseal.Tenant{ID: id, Status: keyseal.StatusActive, CreatedAt: now, UpdatedAt: now}
		if err := s.CreateTenant(ctx, tn, keyseal.TMKVersion{TenantID: id, Version: 1, CreatedAt: now}, keyseal.AuditRecord{At: now, Action: keyseal.ActionTenantProvision}); err != nil {
			t.Fatalf("CreateTenant(%s): %v", id, err)
		}
		byShard[keyseal.ShardOf(id)] = append(byShard[keyseal.ShardOf(id)], id)
	}
	for shard := range keyseal.PollShards {
		ids, next, err := s.ListTenants(ctx, shard, "", 0)
		if err != nil {
			t.Fatalf("ListTenants(%d, unlimited): %v", shard, err)
		}
		if next != "" || !slices.Equal(ids, byShard[shard]) {
			t.Fatalf("ListTenants(%d, unlimited) = %v, %q; want %v, \"\"", shard, ids, next, byShard[shard])
		}
		if len(ids) < 2 {
			continue
		}
		rest, _, err := s.ListTenants(ctx, shard, ids[0], 0)
		if err != nil {
			t.Fatalf("ListTenants(%d, after %s): %v", shard, ids[0], err)
		}
		if !slices.Equal(rest, ids[1:]) {
			t.Fatalf("ListTenants(%d, after %s) = %v, want %v", shard, ids[0], rest, ids[1:])
		}
	}
	if _, _, err := s.ListTenants(ctx, keyseal.PollShards, "", 1); keyseal.ErrorCode(err) != keyseal.EINVALID {
		t.Fatalf("ListTenants(shard out of range) = %v, want %s", err, keyseal.EINVALID)
	}
}

// TestMissingTable checks infrastructure failures surface as plain wrapped
// errors (callers map them to 5xx), never as domain codes.
func TestMissingTable(t *testing.T) {
	s := New(newClient(t), "keyseal-test-no-such-table")
	if err := s.Ping(t.Context()); err == nil {
		t.Fatal("Ping on a missing table succeeded")
	}
	_, err := s.GetTenant(t.Context(), "acme")
	if keyseal.ErrorCode(err) != keyseal.EINTERNAL || !strings.HasPrefix(err.Error(), "dynamostore: ") {
		t.Fatalf("GetTenant on a missing table = %v (code %s), want a wrapped internal error", err, keyseal.ErrorCode(err))
	}
	if _, ok := errors.AsType[*types.ResourceNotFoundException](err); !ok {
		t.Fatalf("GetTenant on a missing table = %v, want it to wrap ResourceNotFoundException", err)
	}
}
