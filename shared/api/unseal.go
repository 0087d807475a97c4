package api

import (
	"context"
	"net/http"

	"github.com/keyseal/keyseal/shared/auth"
)

// UnsealRoutes are the routes of the unseal Lambda.
func UnsealRoutes(d *Deps) []Route {
	return []Route{{Method: http.MethodPost, Path: "/admin/tenant-kms/unseal", Handler: d.admin(d.unseal)}}
}

func (d *Deps) unseal(ctx context.Context, r *Request, a *auth.Admin) (Response, error) {
	var in struct{}
	if err := Decode(r, &in, true); err != nil {
		return Response{}, err
	}
	if err := d.stepUp(ctx, r, a); err != nil {
		return Response{}, err
	}
	if err := d.Tenants.Unseal(ctx, a.TenantID, actor(a)); err != nil {
		return Response{}, err
	}
	return JSON(http.StatusOK, map[string]bool{"unsealed": true}), nil
}
