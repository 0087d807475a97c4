//go:build integration

package suite

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keyseal/keyseal/shared/devissuer"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// TestStepUpRequired checks every way a privileged call can lack a valid
// step-up token: each is 401 step_up_required with a message saying which.
func TestStepUpRequired(t *testing.T) {
	e := newEnv(t, nil)
	tn := e.newTenant()
	admin := e.adminToken(tn.ID, "alice")
	unseal := func(bearer, stepUp string) error {
		_, err := e.api(bearer).Unseal(context.Background(), stepUp)
		return err
	}
	wantStepUp := func(err error, says string) {
		t.Helper()
		if ae := wantAPIError(t, err, http.StatusUnauthorized, "step_up_required"); !strings.Contains(ae.Message, says) {
			t.Fatalf("message %q does not say %q", ae.Message, says)
		}
	}

	wantStepUp(unseal(admin, ""), "X-Keyseal-StepUp")
	wantStepUp(unseal(admin, "kst_not-a-token-we-issued"), "unknown")

	tok := e.stepUp(admin)
	wantAPIError(t, unseal(admin, tok), http.StatusConflict, "not_sealed") // consumes it
	wantStepUp(unseal(admin, tok), "used")

	// A token bound to another admin of the tenant, and one bound to
	// another tenant's admin: both foreign, and trying them burns nothing.
	bobs := e.stepUp(e.adminToken(tn.ID, "bob"))
	wantStepUp(unseal(admin, bobs), "another")
	other := e.newTenant()
	otherAdmin := e.adminToken(other.ID, "alice")
	theirs := e.stepUp(otherAdmin)
	wantStepUp(unseal(admin, theirs), "another")
	wantAPIError(t, unseal(otherAdmin, theirs), http.StatusConflict, "not_sealed")

	// Expired: step-up tokens live 120 s; store one whose life is over.
	expired := "kst_expired-token-for-the-integration-suite"
	sum := sha256.Sum256([]byte(expired))
	if err := e.srv.App.Store.PutStepUp(context.Background(), keyseal.StepUpToken{Hash: hex.EncodeToString(sum[:]), Subject: "alice",
		TenantID: tn.ID, ExpiresAt: time.Now().Add(-time.Second).UTC().Truncate(time.Microsecond)}); err != nil {
		t.Fatal(err)
	}
	wantStepUp(unseal(admin, expired), "expired")
}

// TestInsufficientAuthentication checks the RFC 9470 challenge when the admin
// JWT does not show fresh MFA.
func TestInsufficientAuthentication(t *testing.T) {
	e := newEnv(t, nil)
	tn := e.newTenant()
	cases := map[string]devissuer.Claims{
		"stale auth_time": {AuthTime: time.Now().Add(-time.Hour), ACR: "mfa", AMR: []string{"mfa"}},
		"no auth_time":    {ACR: "mfa", AMR: []string{"mfa"}},
		"password only":   {AuthTime: time.Now(), ACR: "pwd", AMR: []string{"pwd"}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			c.Subject, c.TenantID, c.TTL, c.Roles = "alice", tn.ID, time.Hour, []string{"keyseal:admin"}
			_, err := e.api(e.mint(c)).StepUp(context.Background())
			h := wantAPIError(t, err, http.StatusUnauthorized, "insufficient_user_authentication").WWWAuthenticate
			for _, want := range []string{`Bearer error="insufficient_user_authentication"`, `acr_values="mfa"`, `max_age=300`} {
				if !strings.Contains(h, want) {
					t.Fatalf("WWW-Authenticate %q lacks %s", h, want)
				}
			}
		})
	}
}

// TestEditedAuditEntryIsCaught edits one stored audit entry behind keyseal's
// back, in DynamoDB itself, and checks verify names it.
func TestEditedAuditEntryIsCaught(t *testing.T) {
	e := newEnv(t, nil)
	tn := e.newTenant()
	admin := e.admin(tn.ID)
	if r := must(admin.VerifyAudit(context.Background()))(t); !r.Valid || r.Entries < 3 || r.FirstBadSeq != nil {
		t.Fatalf("untouched chain: %+v", r)
	}

	e.editAuditDetail(tn.ID, 2, "actor", "admin:mallory")

	if r := must(admin.VerifyAudit(context.Background()))(t); r.Valid || r.FirstBadSeq == nil || *r.FirstBadSeq != 2 {
		t.Fatalf("after editing entry 2: %+v", r)
	}
}

// editAuditDetail rewrites one attribute of a stored audit entry directly in
// DynamoDB (item layout: shared/dynamostore/doc.go), as an attacker with
// table access would.
func (e *env) editAuditDetail(tenantID string, seq int64, attr, value string) {
	e.tb.Helper()
	_, err := e.ddb.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{
		TableName: aws.String(e.table),
		Key: map[string]ddbtypes.AttributeValue{
			"pk": &ddbtypes.AttributeValueMemberS{Value: "tenant#" + tenantID},
			"sk": &ddbtypes.AttributeValueMemberS{Value: fmt.Sprintf("audit#%020d", seq)},
		},
		UpdateExpression:          aws.String("SET #a = :v"),
		ConditionExpression:       aws.String("attribute_exists(pk)"),
		ExpressionAttributeNames:  map[string]string{"#a": attr},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":v": &ddbtypes.AttributeValueMemberS{Value: value}},
	})
	if err != nil {
		e.tb.Fatalf("edit audit entry %d: %v", seq, err)
	}
}
