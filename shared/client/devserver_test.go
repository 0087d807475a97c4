package client_test

import (
	"context"
	"errors"
	"net/http"
	"syscall"
	"testing"

	"github.com/keyseal/keyseal/shared/client"
	"github.com/keyseal/keyseal/shared/localserver"
	"github.com/keyseal/keyseal/shared/localserver/devtest"
	"github.com/keyseal/keyseal/shared/session"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

func sweep(t *testing.T, s *localserver.Server) {
	t.Helper()
	if _, err := s.App.Tenants.Sweep(context.Background(), tenantkms.AllShards()); err != nil {
		t.Fatal(err)
	}
}

func wantCode(t *testing.T, err error, status int, code string) *client.Error {
	t.Helper()
	e, ok := errors.AsType[*client.Error](err)
	if !ok || e.Status != status || e.Code != code || e.Message == "" {
		t.Fatalf("want %d %s with a message, got %v", status, code, err)
	}
	return e
}

// TestAgainstDevServer drives the seal cycle, agents, sessions and the
// audit filter through the client against a real dev-mode server.
func TestAgainstDevServer(t *testing.T) {
	s := devtest.Start(t, nil)
	ctx := context.Background()
	anon := client.MustNew(s.URL, "")
	tok, err := anon.DevAdminToken(ctx, "", "")
	if err != nil || tok == "" {
		t.Fatalf("dev admin token: %q %v", tok, err)
	}
	admin := anon.WithToken(tok)

	if h, err := anon.Health(ctx); err != nil || h.Status != "ok" {
		t.Fatalf("health: %+v %v", h, err)
	}
	// No step-up token: the API refuses, the client does not fetch one.
	wantCode(t, func() error { _, err := admin.Unseal(ctx, ""); return err }(), http.StatusUnauthorized, "step_up_required")
	// Not sealed: 409 not_sealed.
	su, err := admin.StepUp(ctx)
	if err != nil || su.StepUpToken == "" {
		t.Fatalf("step-up: %+v %v", su, err)
	}
	_, err = admin.Unseal(ctx, su.StepUpToken)
	wantCode(t, err, http.StatusConflict, "not_sealed")

	v, err := admin.TenantKMS(ctx)
	if err != nil || v.Status != "active" {
		t.Fatalf("tenant-kms: %+v %v", v, err)
	}
	if err := anon.DevSetKeyState(ctx, v.KeyID, "disabled"); err != nil {
		t.Fatal(err)
	}
	sweep(t, s)
	if v, err = admin.TenantKMS(ctx); err != nil || v.Status != "sealed" || v.SealReason == nil || *v.SealReason != "key_disabled" {
		t.Fatalf("after disabling: %+v %v", v, err)
	}
	su, _ = admin.StepUp(ctx)
	_, err = admin.Unseal(ctx, su.StepUpToken)
	if e := wantCode(t, err, http.StatusBadGateway, "unseal_failed"); e.ExtraString("reason") == "" {
		t.Fatalf("unseal_failed without a reason: %+v", e)
	}
	if err := anon.DevSetKeyState(ctx, v.KeyID, "enabled"); err != nil {
		t.Fatal(err)
	}
	su, _ = admin.StepUp(ctx)
	if r, err := admin.Unseal(ctx, su.StepUpToken); err != nil || !r.Unsealed {
		t.Fatalf("unseal: %+v %v", r, err)
	}

	page, err := admin.Audit(ctx, client.AuditQuery{Action: "byok.kms.unseal", Limit: 10})
	if err != nil || len(page.Entries) != 1 || page.Entries[0].Action != "byok.kms.unseal" {
		t.Fatalf("audit filtered by byok.kms.unseal: %+v %v", page, err)
	}
	if res, err := admin.VerifyAudit(ctx); err != nil || !res.Valid {
		t.Fatalf("verify: %+v %v", res, err)
	}

	created, err := admin.CreateAgent(ctx, "worker")
	if err != nil || created.Key == "" {
		t.Fatalf("create agent: %v", err)
	}
	b, err := anon.WithToken(created.Key).Session(ctx)
	if err != nil {
		t.Fatal(err)
	}
	set, err := anon.JWKS(ctx, b.TenantID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := session.Verify(b.Token, set, b.ExpiresAt.Add(-1)); err != nil {
		t.Fatalf("session does not verify with the JWKS: %v", err)
	}
	if _, err := admin.RevokeAgent(ctx, created.ID); err != nil {
		t.Fatal(err)
	}
	_, err = anon.WithToken(created.Key).Session(ctx)
	wantCode(t, err, http.StatusUnauthorized, "unauthorized")

	// The dev routes that rehearse latency and a new waiver version.
	if err := anon.DevSetKeyLatency(ctx, v.KeyID, 150); err != nil {
		t.Fatal(err)
	}
	if h, err := admin.TenantHealth(ctx); err != nil || h.LatencyClass != "elevated" || h.LatencyMS < 150 {
		t.Fatalf("health at 150 ms: %+v %v", h, err)
	}
	if err := anon.DevSetKeyLatency(ctx, v.KeyID, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := anon.DevPublishWaiver(ctx, "2099-01", "A new waiver text."); err != nil {
		t.Fatal(err)
	}
	if st, err := admin.WaiverStatus(ctx); err != nil || st.Version != "2099-01" || !st.RequiresReacknowledgment {
		t.Fatalf("waiver status after a new version: %+v %v", st, err)
	}
	if w, err := admin.Waiver(ctx); err != nil || w.Version != "2099-01" {
		t.Fatalf("waiver: %+v %v", w, err)
	}
	if st, err := admin.AcknowledgeWaiver(ctx, client.WaiverAck{AcknowledgedBy: "legal@example.com"}); err != nil || !st.Acknowledged {
		t.Fatalf("acknowledge: %+v %v", st, err)
	}

	// Bad input gets the API's own error.
	_, err = admin.Rotate(ctx, client.RotateRequest{RotationType: "sideways"})
	wantCode(t, err, http.StatusBadRequest, "invalid_request")
	_, err = admin.Audit(ctx, client.AuditQuery{Limit: -1})
	wantCode(t, err, http.StatusBadRequest, "invalid_request")
}

// TestConnectionRefused: a server that is not there is a transport error
// callers can recognise, not an *Error.
func TestConnectionRefused(t *testing.T) {
	s := devtest.Start(t, nil)
	url := s.URL
	s.Close()
	_, err := client.MustNew(url, "").Health(context.Background())
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("want connection refused, got %v", err)
	}
	if _, ok := errors.AsType[*client.Error](err); ok {
		t.Fatal("a transport failure came back as an API error")
	}
}
