package api

import (
	"context"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/internal/testclock"
	"github.com/keyseal/keyseal/shared/memstore"
)

// TestStepUpExpiresIn: expires_in is the token's 120 s lifetime and agrees
// with expires_at (the issue second plus expires_in), whatever fraction
// of a second the clock stands at.
func TestStepUpExpiresIn(t *testing.T) {
	t0 := time.Date(2030, 1, 2, 12, 0, 0, 0, time.UTC)
	for _, frac := range []time.Duration{0, 200 * time.Millisecond, 500 * time.Millisecond, 999 * time.Millisecond} {
		store := memstore.New()
		clk := testclock.New(t0.Add(frac))
		d := &Deps{Now: clk.Now, StepUp: &auth.StepUp{Tokens: store, Audit: store, TTL: 120 * time.Second, Now: clk.Now}}
		r := &Request{Admin: &auth.Admin{Subject: "alice", TenantID: "acme", AuthTime: clk.Now(), ACR: "mfa"}}
		resp, err := d.issueStepUp(context.Background(), r)
		if err != nil {
			t.Fatal(err)
		}
		body := resp.Body.(StepUpResponse)
		issued := clk.Now().Truncate(time.Second)
		if body.ExpiresIn != 120 || !body.ExpiresAt.Equal(issued.Add(time.Duration(body.ExpiresIn)*time.Second)) {
			t.Fatalf("clock at +%v: expires_in %d, expires_at %v; want 120 and %v", frac, body.ExpiresIn, body.ExpiresAt, issued.Add(120*time.Second))
		}
	}
}
