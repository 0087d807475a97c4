package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/session"
)

// issueSession mints a session bundle for the authenticated agent. The
// sealed check is the tenant row plus the unwrap itself: a sealed tenant
// cannot sign even if its row were wrong, because the signing key is
// derived from the TMK (and cached only beside it).
func (d *Deps) issueSession(ctx context.Context, r *Request) (Response, error) {
	// The body is empty or {} (agents send one or the other): decoding
	// {} into struct{} is a no-op, so it skips the decoder's allocations.
	if r.IsBase64Encoded || strings.Trim(r.Body, " \t\r\n") != "{}" {
		var in struct{}
		if err := Decode(r, &in, true); err != nil {
			return Response{}, err
		}
	}
	signer, err := d.Tenants.SessionSigner(ctx, r.Agent.TenantID)
	if err != nil {
		return Response{}, err
	}
	b, err := signer.Mint(r.Agent.ID, d.Now(), d.SessionTTL)
	if err != nil {
		return Response{}, err
	}
	return JSON(http.StatusCreated, b), nil
}

func (d *Deps) jwks(ctx context.Context, r *Request) (Response, error) {
	tenantID := r.Params["tenant_id"]
	if !keyseal.ValidTenantID(tenantID) {
		return Response{}, keyseal.Errorf(keyseal.EINVALID, "invalid tenant id")
	}
	_, versions, err := d.Tenants.Tenant(ctx, tenantID)
	if err != nil {
		return Response{}, err
	}
	resp := JSON(http.StatusOK, session.JWKS(tenantID, versions))
	// Short: a revoked version must drop out of verifiers' caches quickly.
	resp.Headers = map[string]string{"Cache-Control": "public, max-age=30"}
	return resp, nil
}
