//go:build integration

package suite

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// TestAuditCheckpointsOnDynamoDB is the auditor's routine against the
// DynamoDB store, with the table edited behind keyseal's back: a rolled
// back chain (later entries deleted, the old signed head item put back)
// passes verify alone and fails against the checkpoint saved before, as
// truncated. The first append of a tenant publishes its checkpoint.
func TestAuditCheckpointsOnDynamoDB(t *testing.T) {
	e := newEnv(t, nil)
	tn := e.newTenant()
	admin := e.adminToken(tn.ID, "alice")
	if ev := e.awaitEvent(keyseal.EventCheckpoint, tn.ID); ev.Source != "keyseal" {
		t.Fatalf("checkpoint event %+v", ev)
	}

	first := e.call(http.MethodGet, "/admin/audit/checkpoint", admin, "", nil).want(http.StatusOK)
	size := int64(first.body["size"].(float64))
	oldHead := e.rawItem(tn.ID, "audit#head")
	for i := range 2 {
		e.call(http.MethodPost, "/admin/agents", admin, "", map[string]any{"name": fmt.Sprintf("later-%d", i)}).want(http.StatusCreated)
	}
	saved := e.call(http.MethodGet, "/admin/audit/checkpoint", admin, "", nil).want(http.StatusOK).str("checkpoint")
	r := e.call(http.MethodPost, "/admin/audit/verify", admin, "", map[string]any{"checkpoint": first.str("checkpoint")}).want(http.StatusOK)
	if r.body["valid"] != true {
		t.Fatalf("POST verify of an older checkpoint on the grown chain: %s", r.raw)
	}

	// The rollback, item by item.
	for seq := size + 1; seq <= size+2; seq++ {
		if _, err := e.ddb.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{TableName: aws.String(e.table),
			Key: itemKey(tn.ID, fmt.Sprintf("audit#%020d", seq))}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.ddb.PutItem(context.Background(), &dynamodb.PutItemInput{TableName: aws.String(e.table), Item: oldHead}); err != nil {
		t.Fatal(err)
	}
	if r := e.call(http.MethodGet, "/admin/audit/verify", admin, "", nil).want(http.StatusOK); r.body["valid"] != true {
		t.Fatalf("GET verify of the rolled-back chain: %s (alone it is a genuine, shorter chain)", r.raw)
	}
	r = e.call(http.MethodPost, "/admin/audit/verify", admin, "", map[string]any{"checkpoint": saved}).want(http.StatusOK)
	if r.body["valid"] != false || r.body["reason"] != "truncated" {
		t.Fatalf("POST verify of the rolled-back chain: %s, want reason truncated", r.raw)
	}
}

// TestCorruptAuditEntryOnDynamoDB: an entry whose seq is stored as a
// string is reported by verify (200, reason corrupt) and marked in the
// listing, where it used to be a 500.
func TestCorruptAuditEntryOnDynamoDB(t *testing.T) {
	e := newEnv(t, nil)
	tn := e.newTenant()
	admin := e.adminToken(tn.ID, "alice")
	e.editAuditDetail(tn.ID, 2, "seq", "two")

	r := e.call(http.MethodGet, "/admin/audit/verify", admin, "", nil).want(http.StatusOK)
	if r.body["valid"] != false || r.body["first_bad_seq"] != float64(2) || r.body["reason"] != "corrupt" {
		t.Fatalf("GET verify with a corrupt entry: %s", r.raw)
	}
	r = e.call(http.MethodGet, "/admin/audit?limit=100", admin, "", nil).want(http.StatusOK)
	entries := r.body["entries"].([]any)
	corrupt := 0
	for _, x := range entries {
		if m := x.(map[string]any); m["corrupt"] == true && m["seq"] == float64(2) {
			corrupt++
		}
	}
	if corrupt != 1 || len(entries) < 3 {
		t.Fatalf("listing with a corrupt entry: %s, want every entry and seq 2 marked corrupt", r.raw)
	}
}

// rawItem reads one item of a tenant's partition as stored.
func (e *env) rawItem(tenantID, sk string) map[string]ddbtypes.AttributeValue {
	e.tb.Helper()
	out, err := e.ddb.GetItem(context.Background(), &dynamodb.GetItemInput{TableName: aws.String(e.table),
		Key: itemKey(tenantID, sk), ConsistentRead: aws.Bool(true)})
	if err != nil || len(out.Item) == 0 {
		e.tb.Fatalf("read %s of %s: %v", sk, tenantID, err)
	}
	return out.Item
}

func itemKey(tenantID, sk string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{
		"pk": &ddbtypes.AttributeValueMemberS{Value: "tenant#" + tenantID},
		"sk": &ddbtypes.AttributeValueMemberS{Value: sk},
	}
}
