package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/keyseal/keyseal/shared/auth"
)

// Auth is who may call a route.
type Auth string

// Route auth kinds.
const (
	AuthNone  Auth = "none"
	AuthAgent Auth = "agent" // Authorization: Bearer <agent key>
	AuthAdmin Auth = "admin" // Authorization: Bearer <admin JWT>
)

// The Lambdas that serve HTTP, named after their folders under functions/.
const (
	FnSession = "session-issue"
	FnAdmin   = "admin-tenant-kms"
	FnUnseal  = "unseal"
	FnHealth  = "health"
)

// Alias is another method and path served by the same handler, with the
// same auth (seed 004's /api/v1/byok/... routes).
type Alias struct {
	Method string `json:"method"`
	Path   string `json:"path"`
}

// RouteSpec is one row of the route table.
type RouteSpec struct {
	Method   string `json:"method"`
	Path     string `json:"path"`
	Function string `json:"function"`
	Auth     Auth   `json:"auth"`
	// StepUp routes also need a step-up token (auth.StepUpHeader); the
	// handler consumes it after validating its input.
	StepUp  bool    `json:"step_up"`
	Aliases []Alias `json:"aliases"`
}

// Table is every route keyseal serves: the one source of truth. The local
// server serves all of it; each Lambda the rows naming it; the CDK API
// wires the golden copy in infra/stack/routes.json (a test fails when the
// two differ: go test ./shared/api -run Golden -update rewrites it).
var Table = []RouteSpec{
	{Method: http.MethodPost, Path: "/agent/v1/session", Function: FnSession, Auth: AuthAgent},
	{Method: http.MethodGet, Path: "/agent/v1/jwks/{tenant_id}", Function: FnSession, Auth: AuthNone},
	{Method: http.MethodGet, Path: "/health", Function: FnHealth, Auth: AuthNone},
	{Method: http.MethodGet, Path: "/admin/tenant-kms", Function: FnAdmin, Auth: AuthAdmin,
		Aliases: []Alias{{Method: http.MethodGet, Path: "/api/v1/byok/keys"}}},
	{Method: http.MethodPut, Path: "/admin/tenant-kms", Function: FnAdmin, Auth: AuthAdmin, StepUp: true,
		Aliases: []Alias{{Method: http.MethodPost, Path: "/api/v1/byok/keys"}}},
	{Method: http.MethodDelete, Path: "/admin/tenant-kms", Function: FnAdmin, Auth: AuthAdmin, StepUp: true,
		Aliases: []Alias{{Method: http.MethodDelete, Path: "/api/v1/byok/keys"}}},
	// The live BYOK probe is the health Lambda's (docs/contract.md §3): read-only
	// table access and the KMS calls, no writes, no audit signing.
	{Method: http.MethodGet, Path: "/admin/tenant-kms/health", Function: FnHealth, Auth: AuthAdmin,
		Aliases: []Alias{{Method: http.MethodGet, Path: "/api/v1/byok/health"}}},
	{Method: http.MethodPost, Path: "/admin/tenant-kms/unseal", Function: FnUnseal, Auth: AuthAdmin, StepUp: true},
	{Method: http.MethodPost, Path: "/admin/tenant-kms/rotate", Function: FnAdmin, Auth: AuthAdmin,
		Aliases: []Alias{{Method: http.MethodPost, Path: "/api/v1/byok/keys/rotate"}}},
	{Method: http.MethodPost, Path: "/admin/tenant-kms/versions/{v}/revoke", Function: FnAdmin, Auth: AuthAdmin, StepUp: true},
	// Migration, the key policy and the legal waiver (docs/contract.md §6).
	{Method: http.MethodPost, Path: "/admin/tenant-kms/migrate", Function: FnAdmin, Auth: AuthAdmin, StepUp: true},
	{Method: http.MethodGet, Path: "/admin/tenant-kms/key-policy", Function: FnAdmin, Auth: AuthAdmin},
	// Push sealing: what the customer deploys to forward their KMS events.
	{Method: http.MethodGet, Path: "/admin/tenant-kms/event-forwarding", Function: FnAdmin, Auth: AuthAdmin},
	{Method: http.MethodGet, Path: "/admin/tenant-kms/legal-waiver", Function: FnAdmin, Auth: AuthAdmin,
		Aliases: []Alias{{Method: http.MethodGet, Path: "/api/v1/byok/legal-waiver"}}},
	{Method: http.MethodPost, Path: "/admin/tenant-kms/legal-waiver", Function: FnAdmin, Auth: AuthAdmin,
		Aliases: []Alias{{Method: http.MethodPost, Path: "/api/v1/byok/legal-waiver"}}},
	{Method: http.MethodGet, Path: "/admin/tenant-kms/legal-waiver/status", Function: FnAdmin, Auth: AuthAdmin,
		Aliases: []Alias{{Method: http.MethodGet, Path: "/api/v1/byok/legal-waiver/status"}}},
	{Method: http.MethodPost, Path: "/admin/auth/step-up", Function: FnAdmin, Auth: AuthAdmin},
	{Method: http.MethodPost, Path: "/admin/agents", Function: FnAdmin, Auth: AuthAdmin},
	{Method: http.MethodGet, Path: "/admin/agents", Function: FnAdmin, Auth: AuthAdmin},
	{Method: http.MethodDelete, Path: "/admin/agents/{id}", Function: FnAdmin, Auth: AuthAdmin},
	{Method: http.MethodGet, Path: "/admin/audit", Function: FnAdmin, Auth: AuthAdmin,
		Aliases: []Alias{{Method: http.MethodGet, Path: "/api/v1/byok/audit"}}},
	{Method: http.MethodGet, Path: "/admin/audit/verify", Function: FnAdmin, Auth: AuthAdmin},
	{Method: http.MethodPost, Path: "/admin/audit/verify", Function: FnAdmin, Auth: AuthAdmin},
	{Method: http.MethodGet, Path: "/admin/audit/checkpoint", Function: FnAdmin, Auth: AuthAdmin},
	{Method: http.MethodGet, Path: "/admin/audit/checkpoint-key", Function: FnAdmin, Auth: AuthAdmin},
	// Webhook subscriptions (docs/contract.md §3).
	{Method: http.MethodPost, Path: "/admin/webhooks", Function: FnAdmin, Auth: AuthAdmin},
	{Method: http.MethodGet, Path: "/admin/webhooks", Function: FnAdmin, Auth: AuthAdmin},
	{Method: http.MethodDelete, Path: "/admin/webhooks/{id}", Function: FnAdmin, Auth: AuthAdmin},
	{Method: http.MethodPost, Path: "/admin/webhooks/{id}/rotate-secret", Function: FnAdmin, Auth: AuthAdmin},
	{Method: http.MethodPost, Path: "/admin/webhooks/{id}/test", Function: FnAdmin, Auth: AuthAdmin},
	{Method: http.MethodGet, Path: "/admin/webhooks/{id}/deliveries", Function: FnAdmin, Auth: AuthAdmin},
	// The admin console (shared/console): static files, no auth; the page
	// calls the admin routes above with the admin's token. API Gateway
	// routes /console/ to /console's resource (keeping the slash in the
	// event's path), so the alias needs no resource of its own.
	{Method: http.MethodGet, Path: "/console", Function: FnAdmin, Auth: AuthNone,
		Aliases: []Alias{{Method: http.MethodGet, Path: "/console/"}}},
	{Method: http.MethodGet, Path: "/console/{asset}", Function: FnAdmin, Auth: AuthNone},
	// The OpenAPI document of this table (openapi.go), without auth.
	{Method: http.MethodGet, Path: "/openapi.json", Function: FnAdmin, Auth: AuthNone},
}

// GoldenRoutes is Table as the CDK app embeds it (infra/stack/routes.json).
func GoldenRoutes() []byte {
	rows := make([]RouteSpec, len(Table))
	for i, r := range Table {
		rows[i] = r
		if rows[i].Aliases == nil {
			rows[i].Aliases = []Alias{}
		}
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rows); err != nil {
		panic(err) // unreachable: strings and bools only
	}
	return b.Bytes()
}

func routeKey(method, path string) string { return method + " " + path }

// The handler sets, one per Lambda: each Lambda binds only its own, so its
// binary links only the handlers (and services) it serves.

// SessionRoutes are the session-issue Lambda's rows of Table.
func (d *Deps) SessionRoutes() []Route {
	return d.bind(FnSession, map[string]HandlerFunc{
		routeKey(http.MethodPost, "/agent/v1/session"):         d.issueSession,
		routeKey(http.MethodGet, "/agent/v1/jwks/{tenant_id}"): d.jwks,
	})
}

// HealthRoutes are the health Lambda's rows of Table.
func (d *Deps) HealthRoutes() []Route {
	return d.bind(FnHealth, map[string]HandlerFunc{
		routeKey(http.MethodGet, "/health"):                  d.health,
		routeKey(http.MethodGet, "/admin/tenant-kms/health"): d.tenantHealth,
	})
}

// AdminRoutes are the admin-tenant-kms Lambda's rows of Table.
func (d *Deps) AdminRoutes() []Route {
	return d.bind(FnAdmin, map[string]HandlerFunc{
		routeKey(http.MethodGet, "/admin/tenant-kms"):     d.getTenantKMS,
		routeKey(http.MethodPut, "/admin/tenant-kms"):     d.registerKey,
		routeKey(http.MethodDelete, "/admin/tenant-kms"):  d.deregisterKey,
		routeKey(http.MethodPost, "/admin/auth/step-up"):  d.issueStepUp,
		routeKey(http.MethodPost, "/admin/agents"):        d.createAgent,
		routeKey(http.MethodGet, "/admin/agents"):         d.listAgents,
		routeKey(http.MethodDelete, "/admin/agents/{id}"): d.revokeAgent,
		routeKey(http.MethodGet, "/admin/audit"):          d.listAudit,
		routeKey(http.MethodGet, "/admin/audit/verify"):   d.verifyAudit,
		// Audit checkpoints (docs/contract.md §7).
		routeKey(http.MethodPost, "/admin/audit/verify"):        d.verifyCheckpoint,
		routeKey(http.MethodGet, "/admin/audit/checkpoint"):     d.getCheckpoint,
		routeKey(http.MethodGet, "/admin/audit/checkpoint-key"): d.getCheckpointKey,

		// Rotation and crypto-erasure (docs/contract.md §6).
		routeKey(http.MethodPost, "/admin/tenant-kms/rotate"):              d.rotate,
		routeKey(http.MethodPost, "/admin/tenant-kms/versions/{v}/revoke"): d.revokeVersion,
		// Migration, the key policy and the legal waiver.
		routeKey(http.MethodPost, "/admin/tenant-kms/migrate"):            d.migrateKey,
		routeKey(http.MethodGet, "/admin/tenant-kms/key-policy"):          d.keyPolicy,
		routeKey(http.MethodGet, "/admin/tenant-kms/event-forwarding"):    d.eventForwarding,
		routeKey(http.MethodGet, "/admin/tenant-kms/legal-waiver"):        d.getWaiver,
		routeKey(http.MethodPost, "/admin/tenant-kms/legal-waiver"):       d.ackWaiver,
		routeKey(http.MethodGet, "/admin/tenant-kms/legal-waiver/status"): d.waiverStatus,
		// Webhook subscriptions.
		routeKey(http.MethodPost, "/admin/webhooks"):                    d.createWebhook,
		routeKey(http.MethodGet, "/admin/webhooks"):                     d.listWebhooks,
		routeKey(http.MethodDelete, "/admin/webhooks/{id}"):             d.deleteWebhook,
		routeKey(http.MethodPost, "/admin/webhooks/{id}/rotate-secret"): d.rotateWebhookSecret,
		routeKey(http.MethodPost, "/admin/webhooks/{id}/test"):          d.testWebhook,
		routeKey(http.MethodGet, "/admin/webhooks/{id}/deliveries"):     d.listDeliveries,
		// The admin console.
		routeKey(http.MethodGet, "/console"):         d.consolePage,
		routeKey(http.MethodGet, "/console/{asset}"): d.consoleAsset,
		routeKey(http.MethodGet, "/openapi.json"):    d.openAPI,
	})
}

// UnsealRoutes are the unseal Lambda's rows of Table.
func (d *Deps) UnsealRoutes() []Route {
	return d.bind(FnUnseal, map[string]HandlerFunc{
		routeKey(http.MethodPost, "/admin/tenant-kms/unseal"): d.unseal,
	})
}

// AllRoutes is every row of Table: what the local server serves.
func (d *Deps) AllRoutes() []Route {
	return slices.Concat(d.SessionRoutes(), d.HealthRoutes(), d.AdminRoutes(), d.UnsealRoutes())
}

// bind returns function's rows of Table, each bound to its handler in hs
// behind the auth and step-up the row names, aliases included. A row
// without a handler, or a handler without a row, is a programming error
// (TestTableHandlers catches both).
func (d *Deps) bind(function string, hs map[string]HandlerFunc) []Route {
	var out []Route
	for _, spec := range Table {
		if spec.Function != function {
			continue
		}
		h, ok := hs[routeKey(spec.Method, spec.Path)]
		if !ok {
			panic(fmt.Sprintf("api: route %s %s has no handler", spec.Method, spec.Path))
		}
		delete(hs, routeKey(spec.Method, spec.Path))
		h = d.guard(spec, h)
		out = append(out, Route{Method: spec.Method, Path: spec.Path, Handler: h})
		for _, a := range spec.Aliases {
			out = append(out, Route{Method: a.Method, Path: a.Path, Handler: h})
		}
	}
	for k := range hs {
		panic(fmt.Sprintf("api: handler %s of %s has no row in Table", k, function))
	}
	return out
}

// errStepUpSkipped: a step-up route's handler answered success without
// spending the token, which would make the table lie.
var errStepUpSkipped = errors.New("api: step-up route answered without consuming a step-up token")

// guard puts a row's auth and step-up in front of its handler.
func (d *Deps) guard(spec RouteSpec, h HandlerFunc) HandlerFunc {
	return func(ctx context.Context, r *Request) (Response, error) {
		switch spec.Auth {
		case AuthAdmin:
			a, err := d.Admins.Verify(ctx, r.Header("Authorization"))
			if err != nil {
				return Response{}, err
			}
			r.Admin = a
		case AuthAgent:
			a, err := d.Agents.Authenticate(ctx, r.Header("Authorization"))
			if err != nil {
				return Response{}, err
			}
			r.Agent = a
		}
		if spec.StepUp {
			r.stepUp = func(ctx context.Context) error {
				return d.StepUp.Consume(ctx, r.Admin, r.Header(auth.StepUpHeader))
			}
		}
		resp, err := h(ctx, r)
		if err == nil && spec.StepUp && !r.stepUpUsed {
			return Response{}, errStepUpSkipped
		}
		return resp, err
	}
}
