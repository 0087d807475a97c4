package localserver

import (
	"context"
	"net/http"
	"time"

	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/localkms"
	"github.com/keyseal/keyseal/shared/waiver"
)

// devRoutes exist only in the local server: a fresh admin token (there is
// no identity provider locally) and, in dev mode, the local KMS key states
// that rehearse every seal trigger.
func (s *Server) devRoutes() []api.Route {
	routes := []api.Route{{Method: http.MethodPost, Path: "/dev/admin-token", Handler: s.devAdminToken},
		{Method: http.MethodPost, Path: "/dev/legal-waiver", Handler: s.devPublishWaiver}}
	if s.Local.LocalKMS != nil {
		routes = append(routes,
			api.Route{Method: http.MethodPost, Path: "/dev/kms/keys", Handler: s.devCreateKey},
			api.Route{Method: http.MethodPost, Path: "/dev/kms/keys/{key_id}/state", Handler: s.devKeyState},
			api.Route{Method: http.MethodPost, Path: "/dev/kms/keys/{key_id}/latency", Handler: s.devKeyLatency})
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

// devCreateKey makes a new enabled local key, to register or migrate to.
func (s *Server) devCreateKey(_ context.Context, r *api.Request) (api.Response, error) {
	var in struct{}
	if err := api.Decode(r, &in, true); err != nil {
		return api.Response{}, err
	}
	id, err := s.Local.LocalKMS.CreateKey()
	if err != nil {
		return api.Response{}, err
	}
	return api.JSON(http.StatusCreated, map[string]string{"key_id": id}), nil
}

// devKeyLatency sets how long a local key's wraps and unwraps take, {"ms":
// n}, to rehearse each latency class of the BYOK health check.
func (s *Server) devKeyLatency(_ context.Context, r *api.Request) (api.Response, error) {
	var in struct {
		MS *int64 `json:"ms"`
	}
	if err := api.Decode(r, &in, false); err != nil {
		return api.Response{}, err
	}
	if in.MS == nil {
		return api.Response{}, keyseal.Errorf(keyseal.EINVALID, "ms is required: the latency in whole milliseconds (0 removes it)")
	}
	if *in.MS < 0 || *in.MS > localkms.MaxKeyLatency.Milliseconds() {
		return api.Response{}, keyseal.Errorf(keyseal.EINVALID, "ms must be between 0 and %d", localkms.MaxKeyLatency.Milliseconds())
	}
	if err := s.Local.LocalKMS.SetKeyLatency(r.Params["key_id"], time.Duration(*in.MS)*time.Millisecond); err != nil {
		return api.Response{}, err
	}
	return api.JSON(http.StatusOK, map[string]any{"key_id": r.Params["key_id"], "ms": *in.MS}), nil
}
