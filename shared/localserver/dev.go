package localserver

import (
	"context"
	"net/http"
	"time"

	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/waiver"
)

// devRoutes exist only in the local server: a fresh admin token (there is
// no identity provider locally) and, in dev mode, the local KMS key states
// that rehearse every seal trigger.
func (s *Server) devRoutes() []api.Route {
	routes := []api.Route{{Method: http.MethodPost, Path: "/dev/admin-token", Handler: s.devAdminToken},
		{Method: http.MethodPost, Path: "/dev/legal-waiver", Handler: s.devPublishWaiver}}
	if s.Local.LocalKMS != nil {
		routes = append(routes, api.Route{Method: http.MethodPost, Path: "/dev/kms/keys/{key_id}/state", Handler: s.devKeyState})
	}
	return routes
}

func (s *Server) devAdminToken(_ context.Context, r *api.Request) (api.Response, error) {
	in := struct {
		TenantID string `json:"tenant_id"`
		Subject  string `json:"subject"`
	}{TenantID: DemoTenant, Subject: "dev-admin"}
	if err := api.Decode(r, &in, true); err != nil {
		return api.Response{}, err
	}
	if !keyseal.ValidTenantID(in.TenantID) || in.Subject == "" {
		return api.Response{}, keyseal.Errorf(keyseal.EINVALID, "tenant_id must be a valid tenant id and subject non-empty")
	}
	tok, err := s.adminToken(in.TenantID, in.Subject, time.Hour)
	if err != nil {
		return api.Response{}, err
	}
	return api.JSON(http.StatusOK, map[string]string{"admin_token": tok}), nil
}

func (s *Server) devKeyState(_ context.Context, r *api.Request) (api.Response, error) {
	var in struct {
		State string `json:"state"`
	}
	if err := api.Decode(r, &in, false); err != nil {
		return api.Response{}, err
	}
	if err := s.Local.LocalKMS.SetState(r.Params["key_id"], in.State); err != nil {
		return api.Response{}, err
	}
	return api.JSON(http.StatusOK, map[string]string{"key_id": r.Params["key_id"], "state": in.State}), nil
}

// devPublishWaiver publishes a new legal waiver version, {"version",
// "text"}, in this process only (a restart serves the configured one
// again): running tenants keep working, register and migrate need a new
// acknowledgment.
func (s *Server) devPublishWaiver(_ context.Context, r *api.Request) (api.Response, error) {
	var in struct {
		Version string `json:"version"`
		Text    string `json:"text"`
	}
	if err := api.Decode(r, &in, false); err != nil {
		return api.Response{}, err
	}
	w, err := waiver.New(in.Version, in.Text)
	if err != nil {
		return api.Response{}, keyseal.Errorf(keyseal.EINVALID, "%s", err.Error())
	}
	s.App.Deps.Waiver.Publish(w)
	return api.JSON(http.StatusOK, w), nil
}
