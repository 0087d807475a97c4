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
	return JSON(http.StatusOK, StepUpResponse{StepUpToken: token, ExpiresIn: int(time.Until(exp).Round(time.Second) / time.Second), ExpiresAt: exp}), nil
}
