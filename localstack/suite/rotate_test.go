//go:build integration

package suite

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keyseal/keyseal/shared/client"
	"github.com/keyseal/keyseal/shared/session"
)

// versionItem reads a TMK version's raw DynamoDB item.
func (e *env) versionItem(tenantID string, v int) map[string]ddbtypes.AttributeValue {
	e.tb.Helper()
	return e.rawItem(tenantID, fmt.Sprintf("tmk#%08d", v))
}

func wrappedBlob(item map[string]ddbtypes.AttributeValue) []byte {
	if b, ok := item["wrapped"].(*ddbtypes.AttributeValueMemberB); ok {
		return b.Value
	}
	return nil
}

// TestRotateRevokeRotate is register -> rotate -> revoke -> rotate with the
// real AWS KMS provider on LocalStack and the DynamoDB store: rotation adds
// a version that signs sessions while the old one keeps verifying; a
// revoke removes the blob from the stored item (the attribute is gone, not
// emptied), drops the version from the JWKS and, for the active version,
// revokes the tenant until a tmk rotation; nothing, the poller included,
// brings a revoked tenant back.
func TestRotateRevokeRotate(t *testing.T) {
	e := newEnv(t, nil)
	tn := e.newTenant()
	admin := e.adminToken(tn.ID, "alice")
	ac := e.api(admin)
	ctx := context.Background()
	first := e.session(tn).want(http.StatusCreated)

	// Seed 004's command as written (alias, no step-up).
	r := e.call(http.MethodPost, "/api/v1/byok/keys/rotate", admin, "", `{"rotation_type": "dek", "reason": "DEK recovery"}`).want(http.StatusOK)
	if r.body["active_version"] != float64(2) || r.body["rotation_type"] != "dek" {
		t.Fatalf("rotate: %s", r.raw)
	}
	if n := len(e.jwks(tn.ID).Keys); n != 2 {
		t.Fatalf("JWKS has %d keys after rotation, want 2", n)
	}
	second := e.session(tn).want(http.StatusCreated)
	if second.body["tmk_version"] != float64(2) {
		t.Fatalf("session after rotation: %s", second.raw)
	}
	if _, err := session.Verify(first.str("token"), e.jwks(tn.ID), time.Now()); err != nil {
		t.Fatalf("the old version's token stopped verifying after a rotation: %v", err)
	}
	entries := e.auditEntries(tn, "byok.tmk.rotate")
	if len(entries) != 1 || entries[0].Actor != "admin:alice" || entries[0].Details["reason"] != "DEK recovery" {
		t.Fatalf("rotate entries: %v", entries)
	}

	// Rewrap with LocalStack KMS: new blobs, same TMKs.
	v1 := wrappedBlob(e.versionItem(tn.ID, 1))
	must(ac.Rotate(ctx, client.RotateRequest{RotationType: "rewrap", Reason: "test"}))(t)
	if after := wrappedBlob(e.versionItem(tn.ID, 1)); len(after) == 0 || bytes.Equal(after, v1) {
		t.Fatal("rewrap did not re-encrypt version 1")
	}

	// Revoke version 1: the item loses its wrapped attribute.
	if rev := must(ac.RevokeVersion(ctx, e.stepUpWith(ac), 1, tn.ID))(t); rev.BackupsExpireAt.IsZero() || rev.Version != 1 {
		t.Fatalf("revoke: %+v", rev)
	}
	item := e.versionItem(tn.ID, 1)
	if _, ok := item["wrapped"]; ok {
		t.Fatalf("the revoked version's item still has a wrapped attribute: %v", item)
	}
	if _, ok := item["revoked_at"]; !ok {
		t.Fatal("the revoked version's item has no revoked_at")
	}
	if _, err := session.Verify(first.str("token"), e.jwks(tn.ID), time.Now()); err == nil {
		t.Fatal("the revoked version's token still verifies")
	}
	if _, err := session.Verify(second.str("token"), e.jwks(tn.ID), time.Now()); err != nil {
		t.Fatalf("the live version's token stopped verifying: %v", err)
	}
	_, err := ac.RevokeVersion(ctx, e.stepUpWith(ac), 1, tn.ID)
	wantAPIError(t, err, http.StatusConflict, "already_revoked")
	_, err = ac.RevokeVersion(ctx, e.stepUpWith(ac), 1, "someone-else")
	wantAPIError(t, err, http.StatusBadRequest, "invalid_request")
	e.session(tn).want(http.StatusCreated)

	// Revoke the active version: revoked, and it stays so.
	must(ac.RevokeVersion(ctx, e.stepUpWith(ac), 2, tn.ID))(t)
	if _, ok := e.versionItem(tn.ID, 2)["wrapped"]; ok {
		t.Fatal("the revoked active version's item still has a wrapped attribute")
	}
	e.session(tn).agentError(http.StatusServiceUnavailable, "tenant_sealed")
	if ev := e.awaitEvent("tenant.kms.sealed", tn.ID); ev.Detail.Data.Reason != "revoked" {
		t.Fatalf("sealed event: %+v", ev)
	}
	e.sweep()
	if v := e.tenantKMS(tn); v.Status != "revoked" {
		t.Fatalf("after a poll: %+v", v)
	}
	_, err = ac.Unseal(ctx, e.stepUpWith(ac))
	wantAPIError(t, err, http.StatusConflict, "tenant_revoked")
	if n := len(e.jwks(tn.ID).Keys); n != 0 {
		t.Fatalf("JWKS has %d keys with both versions revoked", n)
	}

	// Only a tmk rotation serves sessions again, on version 3.
	must(ac.Rotate(ctx, client.RotateRequest{RotationType: "tmk", Reason: "after revoke"}))(t)
	if len(wrappedBlob(e.versionItem(tn.ID, 3))) == 0 {
		t.Fatal("version 3 has no blob")
	}
	third := e.session(tn).want(http.StatusCreated)
	if third.body["tmk_version"] != float64(3) {
		t.Fatalf("session after the rotation: %s", third.raw)
	}
	if _, err := session.Verify(third.str("token"), e.jwks(tn.ID), time.Now()); err != nil {
		t.Fatalf("version 3's token does not verify: %v", err)
	}
	e.awaitEvent("tenant.kms.unsealed", tn.ID)
	if v := e.tenantKMS(tn); v.Status != "active" || v.ActiveVersion != 3 || v.RotationDue {
		t.Fatalf("config row after the rotation: %+v", v)
	}
}
