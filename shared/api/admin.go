package api

import (
	"context"
	"net/http"
	"strconv"
	"time"

	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// AdminRoutes are the routes of the admin tenant-kms Lambda.
func AdminRoutes(d *Deps) []Route {
	return []Route{
		{Method: http.MethodGet, Path: "/admin/tenant-kms", Handler: d.admin(d.getTenantKMS)},
		{Method: http.MethodPut, Path: "/admin/tenant-kms", Handler: d.admin(d.registerKey)},
		{Method: http.MethodDelete, Path: "/admin/tenant-kms", Handler: d.admin(d.deregisterKey)},
		{Method: http.MethodPost, Path: "/admin/auth/step-up", Handler: d.admin(d.issueStepUp)},
		{Method: http.MethodPost, Path: "/admin/agents", Handler: d.admin(d.createAgent)},
		{Method: http.MethodGet, Path: "/admin/agents", Handler: d.admin(d.listAgents)},
		{Method: http.MethodDelete, Path: "/admin/agents/{id}", Handler: d.admin(d.revokeAgent)},
		{Method: http.MethodGet, Path: "/admin/audit", Handler: d.admin(d.listAudit)},
		{Method: http.MethodGet, Path: "/admin/audit/verify", Handler: d.admin(d.verifyAudit)},
	}
}

// rotationFlagAge is seed 004's threshold for flagging an old TMK version.
const rotationFlagAge = 90 * 24 * time.Hour

type versionView struct {
	Version         int        `json:"version"`
	Provider        string     `json:"provider"`
	KeyID           string     `json:"key_id"`
	CreatedAt       time.Time  `json:"created_at"`
	RevokedAt       *time.Time `json:"revoked_at"`
	Active          bool       `json:"active"`
	AgeDays         int        `json:"age_days"`
	RotationOverdue bool       `json:"rotation_overdue"`
}

type tenantView struct {
	TenantID        string        `json:"tenant_id"`
	Provider        string        `json:"provider"`
	KeyID           string        `json:"key_id"`
	RoleARN         string        `json:"role_arn,omitempty"`
	BYOK            bool          `json:"byok"`
	Status          string        `json:"status"`
	SealedSince     *time.Time    `json:"sealed_since"`
	SealReason      *string       `json:"seal_reason"`
	LastVerifyError *string       `json:"last_verify_error"`
	LastVerifiedAt  *time.Time    `json:"last_verified_at"`
	LastLatencyMS   int64         `json:"last_latency_ms"`
	ActiveVersion   int           `json:"active_version"`
	Versions        []versionView `json:"versions"`
	CreatedAt       time.Time     `json:"created_at"`
	UpdatedAt       time.Time     `json:"updated_at"`
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (d *Deps) tenantView(ctx context.Context, tenantID string) (tenantView, error) {
	t, versions, err := d.Tenants.Tenant(ctx, tenantID)
	if err != nil {
		return tenantView{}, err
	}
	now := d.Now()
	v := tenantView{TenantID: t.ID, Provider: t.Key.Provider, KeyID: t.Key.KeyID, RoleARN: t.Key.RoleARN, BYOK: t.BYOK,
		Status: t.Status, SealedSince: t.SealedSince, SealReason: optional(t.SealReason), LastVerifyError: optional(t.LastVerifyError),
		LastVerifiedAt: t.LastVerifiedAt, LastLatencyMS: t.LastLatencyMS, ActiveVersion: t.ActiveVersion,
		Versions: []versionView{}, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
	for _, tv := range versions {
		age := now.Sub(tv.CreatedAt)
		v.Versions = append(v.Versions, versionView{Version: tv.Version, Provider: tv.Key.Provider, KeyID: tv.Key.KeyID,
			CreatedAt: tv.CreatedAt, RevokedAt: tv.RevokedAt, Active: tv.Version == t.ActiveVersion,
			AgeDays: int(age / (24 * time.Hour)), RotationOverdue: tv.Version == t.ActiveVersion && age > rotationFlagAge})
	}
	return v, nil
}

func (d *Deps) getTenantKMS(ctx context.Context, _ *Request, a *auth.Admin) (Response, error) {
	v, err := d.tenantView(ctx, a.TenantID)
	if err != nil {
		return Response{}, err
	}
	return JSON(http.StatusOK, v), nil
}

type registerRequest struct {
	Provider   string `json:"provider"`
	KeyARN     string `json:"key_arn"`
	KeyID      string `json:"key_id"`
	RoleARN    string `json:"role_arn"`
	ExternalID string `json:"external_id"`
}

// keyRef maps the request to a key reference: aws-kms names its key by
// key_arn (seed 004), the local provider by key_id.
func (in registerRequest) keyRef() (keyseal.KeyRef, error) {
	k := keyseal.KeyRef{Provider: in.Provider, KeyID: in.KeyARN, RoleARN: in.RoleARN, ExternalID: in.ExternalID}
	if in.Provider == keyseal.ProviderLocal {
		if in.KeyARN != "" {
			return k, keyseal.Errorf(keyseal.EINVALID, "provider local takes key_id, not key_arn")
		}
		k.KeyID = in.KeyID
	} else if in.KeyID != "" {
		return k, keyseal.Errorf(keyseal.EINVALID, "provider %s takes key_arn, not key_id", in.Provider)
	}
	return k, nil
}

func (d *Deps) registerKey(ctx context.Context, r *Request, a *auth.Admin) (Response, error) {
	var in registerRequest
	if err := Decode(r, &in, false); err != nil {
		return Response{}, err
	}
	key, err := in.keyRef()
	if err != nil {
		return Response{}, err
	}
	if err := tenantkms.ValidateKey(key); err != nil {
		return Response{}, err
	}
	if err := d.stepUp(ctx, r, a); err != nil {
		return Response{}, err
	}
	if _, err := d.Tenants.Register(ctx, a.TenantID, key, actor(a)); err != nil {
		return Response{}, err
	}
	v, err := d.tenantView(ctx, a.TenantID)
	if err != nil {
		return Response{}, err
	}
	return JSON(http.StatusOK, v), nil
}

func (d *Deps) deregisterKey(ctx context.Context, r *Request, a *auth.Admin) (Response, error) {
	if err := d.stepUp(ctx, r, a); err != nil {
		return Response{}, err
	}
	if _, err := d.Tenants.Deregister(ctx, a.TenantID, actor(a)); err != nil {
		return Response{}, err
	}
	v, err := d.tenantView(ctx, a.TenantID)
	if err != nil {
		return Response{}, err
	}
	return JSON(http.StatusOK, v), nil
}

func (d *Deps) issueStepUp(ctx context.Context, r *Request, a *auth.Admin) (Response, error) {
	var in struct{}
	if err := Decode(r, &in, true); err != nil {
		return Response{}, err
	}
	token, exp, err := d.StepUp.Issue(ctx, a)
	if err != nil {
		return Response{}, err
	}
	return JSON(http.StatusOK, map[string]any{"step_up_token": token, "expires_in": int(time.Until(exp).Round(time.Second) / time.Second), "expires_at": exp}), nil
}

func (d *Deps) createAgent(ctx context.Context, r *Request, a *auth.Admin) (Response, error) {
	var in struct {
		Name string `json:"name"`
	}
	if err := Decode(r, &in, false); err != nil {
		return Response{}, err
	}
	if _, err := d.Tenants.Provision(ctx, a.TenantID, actor(a)); err != nil {
		return Response{}, err
	}
	created, err := d.Agents.Create(ctx, a.TenantID, in.Name, actor(a))
	if err != nil {
		return Response{}, err
	}
	return JSON(http.StatusCreated, created), nil
}

func (d *Deps) listAgents(ctx context.Context, _ *Request, a *auth.Admin) (Response, error) {
	list, err := d.Agents.List(ctx, a.TenantID)
	if err != nil {
		return Response{}, err
	}
	if list == nil {
		list = []keyseal.Agent{}
	}
	return JSON(http.StatusOK, map[string]any{"agents": list}), nil
}

func (d *Deps) revokeAgent(ctx context.Context, r *Request, a *auth.Admin) (Response, error) {
	if err := d.Agents.Revoke(ctx, a.TenantID, r.Params["id"], actor(a)); err != nil {
		return Response{}, err
	}
	return JSON(http.StatusOK, map[string]any{"agent_id": r.Params["id"], "revoked": true}), nil
}

// maxAuditPage bounds one page of GET /admin/audit.
const maxAuditPage = 500

func (d *Deps) listAudit(ctx context.Context, r *Request, a *auth.Admin) (Response, error) {
	q := keyseal.AuditQuery{Limit: 50, Action: r.QueryStringParameters["action"]}
	if s := r.QueryStringParameters["limit"]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > maxAuditPage {
			return Response{}, keyseal.Errorf(keyseal.EINVALID, "limit must be an integer between 1 and %d", maxAuditPage)
		}
		q.Limit = n
	}
	if s := r.QueryStringParameters["cursor"]; s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return Response{}, keyseal.Errorf(keyseal.EINVALID, "cursor must be the next_cursor of a previous page")
		}
		q.Before = n
	}
	entries, err := d.Store.ListAudit(ctx, a.TenantID, q)
	if err != nil {
		return Response{}, err
	}
	if entries == nil {
		entries = []keyseal.AuditEntry{}
	}
	var next *string
	if len(entries) == q.Limit && entries[len(entries)-1].Seq > 1 {
		s := strconv.FormatInt(entries[len(entries)-1].Seq, 10)
		next = &s
	}
	return JSON(http.StatusOK, map[string]any{"entries": entries, "next_cursor": next}), nil
}

func (d *Deps) verifyAudit(ctx context.Context, _ *Request, a *auth.Admin) (Response, error) {
	res, err := audit.VerifyChain(ctx, d.Store, a.TenantID)
	if err != nil {
		return Response{}, err
	}
	return JSON(http.StatusOK, res), nil
}
