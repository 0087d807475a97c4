package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strconv"

	"github.com/go-jose/go-jose/v4"

	"github.com/keyseal/keyseal/shared/agents"
	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/session"
	"github.com/keyseal/keyseal/shared/subscription"
	"github.com/keyseal/keyseal/shared/tenantkms"
	"github.com/keyseal/keyseal/shared/waiver"
)

// The request bodies: the API decodes them into unexported structs, so
// their shapes are spelled here, field for field.

// RotateRequest is the body of POST /admin/tenant-kms/rotate.
type RotateRequest struct {
	// RotationType is "tmk", "dek" or "rewrap".
	RotationType string `json:"rotation_type"`
	Reason       string `json:"reason,omitempty"`
}

// WaiverAck is the body of POST /admin/tenant-kms/legal-waiver (Acknowledged
// is always sent true).
type WaiverAck struct {
	AcknowledgedBy string `json:"acknowledged_by"`
}

// WebhookRequest is the body of POST /admin/webhooks.
type WebhookRequest struct {
	URL         string   `json:"url"`
	Events      []string `json:"events,omitempty"`
	Description string   `json:"description,omitempty"`
}

// AuditQuery selects a page of GET /admin/audit: zero values take the
// API's defaults (50 entries, the newest, every action).
type AuditQuery struct {
	Action string
	Limit  int
	// Cursor is a previous page's next_cursor: the page before it.
	Cursor string
}

// Health is GET /health: the service's liveness and whether its store
// answers. A degraded service answers 503 with the same body, returned
// here with the *Error.
func (c *Client) Health(ctx context.Context) (api.HealthResponse, error) {
	var out api.HealthResponse
	err := c.call(ctx, http.MethodGet, "/health", nil, "", nil, &out)
	if e, ok := errors.AsType[*Error](err); ok && e.Status == http.StatusServiceUnavailable && e.Code == "" {
		// The 503 body is a HealthResponse, not an error body.
		_ = json.Unmarshal(e.Body, &out)
		e.Message = "service degraded"
	}
	return out, err
}

// OpenAPI is GET /openapi.json: the API's OpenAPI document (no auth), as
// JSON.
func (c *Client) OpenAPI(ctx context.Context) (json.RawMessage, error) {
	var out json.RawMessage
	err := c.call(ctx, http.MethodGet, "/openapi.json", nil, "", nil, &out)
	return out, err
}

// Session is POST /agent/v1/session: a session bundle for the agent whose
// key the client calls with.
func (c *Client) Session(ctx context.Context) (session.Bundle, error) {
	var out session.Bundle
	err := c.call(ctx, http.MethodPost, "/agent/v1/session", nil, "", struct{}{}, &out)
	return out, err
}

// JWKS is GET /agent/v1/jwks/{tenant_id}: the keys that verify the
// tenant's session tokens (no auth).
func (c *Client) JWKS(ctx context.Context, tenantID string) (jose.JSONWebKeySet, error) {
	var out jose.JSONWebKeySet
	err := c.call(ctx, http.MethodGet, "/agent/v1/jwks/"+url.PathEscape(tenantID), nil, "", nil, &out)
	return out, err
}

// TenantKMS is GET /admin/tenant-kms: the tenant's key, seal state and
// versions.
func (c *Client) TenantKMS(ctx context.Context) (api.TenantView, error) {
	var out api.TenantView
	err := c.call(ctx, http.MethodGet, "/admin/tenant-kms", nil, "", nil, &out)
	return out, err
}

// keyBody is a registration body: provider plus the provider's fields.
func keyBody(provider string, fields map[string]string) map[string]string {
	b := make(map[string]string, len(fields)+1)
	for k, v := range fields {
		b[k] = v
	}
	b["provider"] = provider
	return b
}

// Register is PUT /admin/tenant-kms (step-up): register the tenant's key,
// fields being the provider's (aws-kms: key_arn, role_arn, external_id).
func (c *Client) Register(ctx context.Context, stepUp, provider string, fields map[string]string) (api.TenantView, error) {
	var out api.TenantView
	err := c.call(ctx, http.MethodPut, "/admin/tenant-kms", nil, stepUp, keyBody(provider, fields), &out)
	return out, err
}

// Migrate is POST /admin/tenant-kms/migrate (step-up): move the tenant to
// a new key, body as Register's.
func (c *Client) Migrate(ctx context.Context, stepUp, provider string, fields map[string]string) (api.TenantView, error) {
	var out api.TenantView
	err := c.call(ctx, http.MethodPost, "/admin/tenant-kms/migrate", nil, stepUp, keyBody(provider, fields), &out)
	return out, err
}

// Deregister is DELETE /admin/tenant-kms (step-up).
func (c *Client) Deregister(ctx context.Context, stepUp string) (api.TenantView, error) {
	var out api.TenantView
	err := c.call(ctx, http.MethodDelete, "/admin/tenant-kms", nil, stepUp, nil, &out)
	return out, err
}

// TenantHealth is GET /admin/tenant-kms/health: the live BYOK probe (200
// whatever its verdict: Status says it).
func (c *Client) TenantHealth(ctx context.Context) (tenantkms.Health, error) {
	var out tenantkms.Health
	err := c.call(ctx, http.MethodGet, "/admin/tenant-kms/health", nil, "", nil, &out)
	return out, err
}

// Unseal is POST /admin/tenant-kms/unseal (step-up). not_sealed (409) and
// unseal_failed (502, with a reason in Extra) come back as *Error.
func (c *Client) Unseal(ctx context.Context, stepUp string) (api.UnsealResponse, error) {
	var out api.UnsealResponse
	err := c.call(ctx, http.MethodPost, "/admin/tenant-kms/unseal", nil, stepUp, struct{}{}, &out)
	return out, err
}

// Rotate is POST /admin/tenant-kms/rotate.
func (c *Client) Rotate(ctx context.Context, in RotateRequest) (api.RotateResponse, error) {
	var out api.RotateResponse
	err := c.call(ctx, http.MethodPost, "/admin/tenant-kms/rotate", nil, "", in, &out)
	return out, err
}

// RevokeVersion is POST /admin/tenant-kms/versions/{v}/revoke (step-up):
// crypto-erase TMK version v. confirm must be the tenant id.
func (c *Client) RevokeVersion(ctx context.Context, stepUp string, version int, confirm string) (api.RevokeResponse, error) {
	var out api.RevokeResponse
	err := c.call(ctx, http.MethodPost, "/admin/tenant-kms/versions/"+strconv.Itoa(version)+"/revoke", nil, stepUp,
		map[string]string{"confirm": confirm}, &out)
	return out, err
}

// KeyPolicy is GET /admin/tenant-kms/key-policy: the key policy (aws-kms)
// or grant (gcp-kms, azure-kv) keyseal needs, for the registered key or
// the provider and fields given. Its shape depends on the provider, so it
// is returned as JSON.
func (c *Client) KeyPolicy(ctx context.Context, provider string, fields map[string]string) (json.RawMessage, error) {
	q := url.Values{}
	for k, v := range fields {
		q.Set(k, v)
	}
	if provider != "" {
		q.Set("provider", provider)
	}
	var out json.RawMessage
	err := c.call(ctx, http.MethodGet, "/admin/tenant-kms/key-policy", q, "", nil, &out)
	return out, err
}

// EventForwarding is GET /admin/tenant-kms/event-forwarding: the
// EventBridge rule and IAM role the customer deploys so their KMS events
// reach keyseal's bus (aws-kms keys only: 409 not_forwardable otherwise).
func (c *Client) EventForwarding(ctx context.Context) (api.EventForwarding, error) {
	var out api.EventForwarding
	err := c.call(ctx, http.MethodGet, "/admin/tenant-kms/event-forwarding", nil, "", nil, &out)
	return out, err
}

// Waiver is GET /admin/tenant-kms/legal-waiver: the current waiver text.
func (c *Client) Waiver(ctx context.Context) (waiver.Waiver, error) {
	var out waiver.Waiver
	err := c.call(ctx, http.MethodGet, "/admin/tenant-kms/legal-waiver", nil, "", nil, &out)
	return out, err
}

// AcknowledgeWaiver is POST /admin/tenant-kms/legal-waiver.
func (c *Client) AcknowledgeWaiver(ctx context.Context, in WaiverAck) (waiver.Status, error) {
	var out waiver.Status
	body := struct {
		Acknowledged bool `json:"acknowledged"`
		WaiverAck
	}{true, in}
	err := c.call(ctx, http.MethodPost, "/admin/tenant-kms/legal-waiver", nil, "", body, &out)
	return out, err
}

// WaiverStatus is GET /admin/tenant-kms/legal-waiver/status.
func (c *Client) WaiverStatus(ctx context.Context) (waiver.Status, error) {
	var out waiver.Status
	err := c.call(ctx, http.MethodGet, "/admin/tenant-kms/legal-waiver/status", nil, "", nil, &out)
	return out, err
}

// StepUp is POST /admin/auth/step-up: a single-use token for one step-up
// route. insufficient_user_authentication (401) when the admin's sign-in
// is too old or lacks MFA.
func (c *Client) StepUp(ctx context.Context) (api.StepUpResponse, error) {
	var out api.StepUpResponse
	err := c.call(ctx, http.MethodPost, "/admin/auth/step-up", nil, "", struct{}{}, &out)
	return out, err
}

// CreateAgent is POST /admin/agents: the agent and its key (shown once).
func (c *Client) CreateAgent(ctx context.Context, name string) (agents.Created, error) {
	var out agents.Created
	err := c.call(ctx, http.MethodPost, "/admin/agents", nil, "", map[string]string{"name": name}, &out)
	return out, err
}

// Agents is GET /admin/agents.
func (c *Client) Agents(ctx context.Context) (api.AgentList, error) {
	var out api.AgentList
	err := c.call(ctx, http.MethodGet, "/admin/agents", nil, "", nil, &out)
	return out, err
}

// RevokeAgent is DELETE /admin/agents/{id}.
func (c *Client) RevokeAgent(ctx context.Context, id string) (api.AgentRevoked, error) {
	var out api.AgentRevoked
	err := c.call(ctx, http.MethodDelete, "/admin/agents/"+url.PathEscape(id), nil, "", nil, &out)
	return out, err
}

// Audit is GET /admin/audit: one page, newest first.
func (c *Client) Audit(ctx context.Context, q AuditQuery) (audit.Page, error) {
	v := url.Values{}
	if q.Action != "" {
		v.Set("action", q.Action)
	}
	if q.Limit != 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	var out audit.Page
	err := c.call(ctx, http.MethodGet, "/admin/audit", v, "", nil, &out)
	return out, err
}

// VerifyAudit is GET /admin/audit/verify: the whole chain recomputed.
func (c *Client) VerifyAudit(ctx context.Context) (audit.Result, error) {
	var out audit.Result
	err := c.call(ctx, http.MethodGet, "/admin/audit/verify", nil, "", nil, &out)
	return out, err
}

// VerifyCheckpoint is POST /admin/audit/verify: does the chain extend a
// checkpoint saved earlier?
func (c *Client) VerifyCheckpoint(ctx context.Context, checkpoint string) (audit.Result, error) {
	var out audit.Result
	err := c.call(ctx, http.MethodPost, "/admin/audit/verify", nil, "", map[string]string{"checkpoint": checkpoint}, &out)
	return out, err
}

// Checkpoint is GET /admin/audit/checkpoint: the signed checkpoint of the
// chain's head.
func (c *Client) Checkpoint(ctx context.Context) (audit.Signed, error) {
	var out audit.Signed
	err := c.call(ctx, http.MethodGet, "/admin/audit/checkpoint", nil, "", nil, &out)
	return out, err
}

// CheckpointKey is GET /admin/audit/checkpoint-key: the verifier key of
// the checkpoints.
func (c *Client) CheckpointKey(ctx context.Context) (audit.KeyInfo, error) {
	var out audit.KeyInfo
	err := c.call(ctx, http.MethodGet, "/admin/audit/checkpoint-key", nil, "", nil, &out)
	return out, err
}

// CreateWebhook is POST /admin/webhooks: the subscription and its signing
// secret (shown once).
func (c *Client) CreateWebhook(ctx context.Context, in WebhookRequest) (subscription.Created, error) {
	var out subscription.Created
	err := c.call(ctx, http.MethodPost, "/admin/webhooks", nil, "", in, &out)
	return out, err
}

// Webhooks is GET /admin/webhooks.
func (c *Client) Webhooks(ctx context.Context) (api.WebhookList, error) {
	var out api.WebhookList
	err := c.call(ctx, http.MethodGet, "/admin/webhooks", nil, "", nil, &out)
	return out, err
}

// DeleteWebhook is DELETE /admin/webhooks/{id} (204).
func (c *Client) DeleteWebhook(ctx context.Context, id string) error {
	return c.call(ctx, http.MethodDelete, "/admin/webhooks/"+url.PathEscape(id), nil, "", nil, nil)
}

// RotateWebhookSecret is POST /admin/webhooks/{id}/rotate-secret: the new
// secret (shown once); the previous one signs until PreviousExpiresAt.
func (c *Client) RotateWebhookSecret(ctx context.Context, id string) (subscription.Rotated, error) {
	var out subscription.Rotated
	err := c.call(ctx, http.MethodPost, "/admin/webhooks/"+url.PathEscape(id)+"/rotate-secret", nil, "", struct{}{}, &out)
	return out, err
}

// TestWebhook is POST /admin/webhooks/{id}/test (202): a webhook.test
// event queued for delivery.
func (c *Client) TestWebhook(ctx context.Context, id string) (api.WebhookTestQueued, error) {
	var out api.WebhookTestQueued
	err := c.call(ctx, http.MethodPost, "/admin/webhooks/"+url.PathEscape(id)+"/test", nil, "", struct{}{}, &out)
	return out, err
}

// Deliveries is GET /admin/webhooks/{id}/deliveries: the latest delivery
// attempts (limit 0 takes the API's default).
func (c *Client) Deliveries(ctx context.Context, id string, limit int) (api.DeliveryList, error) {
	q := url.Values{}
	if limit != 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var out api.DeliveryList
	err := c.call(ctx, http.MethodGet, "/admin/webhooks/"+url.PathEscape(id)+"/deliveries", q, "", nil, &out)
	return out, err
}
