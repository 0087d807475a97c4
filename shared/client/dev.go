package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/keyseal/keyseal/shared/waiver"
)

// The local server's dev routes (shared/localserver/dev.go): they exist
// only there, unauthenticated and on loopback, to rehearse what a real
// identity provider and KMS would do.

// DevKey is a key made by POST /dev/kms/keys.
type DevKey struct {
	Provider string `json:"provider"`
	KeyID    string `json:"key_id"`
}

// DevAdminToken is POST /dev/admin-token: a fresh MFA admin JWT for
// tenantID as subject ("" takes the server's defaults: demo, dev-admin).
func (c *Client) DevAdminToken(ctx context.Context, tenantID, subject string) (string, error) {
	body := map[string]string{}
	if tenantID != "" {
		body["tenant_id"] = tenantID
	}
	if subject != "" {
		body["subject"] = subject
	}
	var out struct {
		AdminToken string `json:"admin_token"`
	}
	err := c.call(ctx, http.MethodPost, "/dev/admin-token", nil, "", body, &out)
	return out.AdminToken, err
}

// DevPublishWaiver is POST /dev/legal-waiver: publish a new waiver version
// in the running server.
func (c *Client) DevPublishWaiver(ctx context.Context, version, text string) (waiver.Waiver, error) {
	var out waiver.Waiver
	err := c.call(ctx, http.MethodPost, "/dev/legal-waiver", nil, "", map[string]string{"version": version, "text": text}, &out)
	return out, err
}

// DevCreateKey is POST /dev/kms/keys: a new enabled key of provider
// ("" is local; gcp-kms and azure-kv need the cloud stand-ins).
func (c *Client) DevCreateKey(ctx context.Context, provider string) (DevKey, error) {
	body := map[string]string{}
	if provider != "" {
		body["provider"] = provider
	}
	var out DevKey
	err := c.call(ctx, http.MethodPost, "/dev/kms/keys", nil, "", body, &out)
	return out, err
}

// DevSetKeyState is POST /dev/kms/keys/{key_id}/state: enabled, disabled,
// pending_deletion, access_denied or unreachable.
func (c *Client) DevSetKeyState(ctx context.Context, keyID, state string) error {
	return c.call(ctx, http.MethodPost, "/dev/kms/keys/"+url.PathEscape(keyID)+"/state", nil, "",
		map[string]string{"state": state}, nil)
}

// DevSetKeyLatency is POST /dev/kms/keys/{key_id}/latency: how long the
// key's KMS calls take, in whole milliseconds (0 removes it).
func (c *Client) DevSetKeyLatency(ctx context.Context, keyID string, ms int64) error {
	return c.call(ctx, http.MethodPost, "/dev/kms/keys/"+url.PathEscape(keyID)+"/latency", nil, "",
		map[string]int64{"ms": ms}, nil)
}
