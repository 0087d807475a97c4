//go:build integration

package suite

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keyseal/keyseal/shared/client"
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
	ctx := context.Background()
	admin := e.admin(tn.ID)
	if ev := e.awaitEvent(keyseal.EventCheckpoint, tn.ID); ev.Source != "keyseal" {
		t.Fatalf("checkpoint event %+v", ev)
	}

	first := must(admin.Checkpoint(ctx))(t)
	size := first.Size
	oldHead := e.rawItem(tn.ID, "audit#head")
	for i := range 2 {
		must(admin.CreateAgent(ctx, fmt.Sprintf("later-%d", i)))(t)
	}
	saved := must(admin.Checkpoint(ctx))(t).Checkpoint
	if r := must(admin.VerifyCheckpoint(ctx, first.Checkpoint))(t); !r.Valid {
		t.Fatalf("POST verify of an older checkpoint on the grown chain: %+v", r)
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
	if r := must(admin.VerifyAudit(ctx))(t); !r.Valid {
		t.Fatalf("GET verify of the rolled-back chain: %+v (alone it is a genuine, shorter chain)", r)
	}
	if r := must(admin.VerifyCheckpoint(ctx, saved))(t); r.Valid || r.Reason != "truncated" {
		t.Fatalf("POST verify of the rolled-back chain: %+v, want reason truncated", r)
	}
}

// TestCorruptAuditEntryOnDynamoDB: an entry whose seq is stored as a
// string is reported by verify (200, reason corrupt) and marked in the
// listing, where it used to be a 500.
func TestCorruptAuditEntryOnDynamoDB(t *testing.T) {
	e := newEnv(t, nil)
	tn := e.newTenant()
	ctx := context.Background()
	admin := e.admin(tn.ID)
	e.editAuditDetail(tn.ID, 2, "seq", "two")

	r := must(admin.VerifyAudit(ctx))(t)
	if r.Valid || r.FirstBadSeq == nil || *r.FirstBadSeq != 2 || r.Reason != "corrupt" {
		t.Fatalf("GET verify with a corrupt entry: %+v", r)
	}
	entries := must(admin.Audit(ctx, client.AuditQuery{Limit: 100}))(t).Entries
	corrupt := 0
	for _, x := range entries {
		if x.Corrupt && x.Seq == 2 {
			corrupt++
		}
	}
	if corrupt != 1 || len(entries) < 3 {
		t.Fatalf("listing with a corrupt entry: %+v, want every entry and seq 2 marked corrupt", entries)
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
