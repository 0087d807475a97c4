package api

import (
	"context"
	"time"

	"github.com/keyseal/keyseal/shared/agents"
	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// Deps are the services the handlers call. Each Lambda fills what its routes
// use.
type Deps struct {
	Store      keyseal.Store
	Tenants    *tenantkms.Service
	Agents     *agents.Service
	Admins     *auth.AdminVerifier
	StepUp     *auth.StepUp
	SessionTTL time.Duration
	Now        func() time.Time
}

// AdminHandlerFunc serves a route for a verified admin.
type AdminHandlerFunc func(ctx context.Context, r *Request, a *auth.Admin) (Response, error)

// admin verifies the admin JWT before h runs: 401 unauthorized or 403
// forbidden otherwise.
func (d *Deps) admin(h AdminHandlerFunc) HandlerFunc {
	return func(ctx context.Context, r *Request) (Response, error) {
		a, err := d.Admins.Verify(ctx, r.Header("Authorization"))
		if err != nil {
			return Response{}, err
		}
		return h(ctx, r, a)
	}
}

// StepUpHeader carries the step-up token on privileged calls.
const StepUpHeader = "X-Keyseal-StepUp"

// stepUp consumes the request's step-up token. Privileged handlers call it
// after validating their input, so a typo in a body never burns a token.
func (d *Deps) stepUp(ctx context.Context, r *Request, a *auth.Admin) error {
	return d.StepUp.Consume(ctx, a, r.Header(StepUpHeader))
}

func actor(a *auth.Admin) string { return "admin:" + a.Subject }
