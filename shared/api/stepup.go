package api

import (
	"context"
	"net/http"
	"time"
)

// StepUpResponse is the body of POST /admin/auth/step-up.
type StepUpResponse struct {
	StepUpToken string    `json:"step_up_token"`
	ExpiresIn   int       `json:"expires_in"`
	ExpiresAt   time.Time `json:"expires_at"`
}

func (d *Deps) issueStepUp(ctx context.Context, r *Request) (Response, error) {
	var in struct{}
	if err := Decode(r, &in, true); err != nil {
		return Response{}, err
	}
	token, exp, err := d.StepUp.Issue(ctx, r.Admin)
	if err != nil {
		return Response{}, err
	}
	// expires_at is a whole second (issue second + lifetime); expires_in is
	// the lifetime, not a remainder measured on another clock and rounded,
	// which said 119 about half the time.
	return JSON(http.StatusOK, StepUpResponse{StepUpToken: token, ExpiresIn: int(d.StepUp.Lifetime() / time.Second), ExpiresAt: exp}), nil
}
