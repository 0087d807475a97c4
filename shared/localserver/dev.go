package localserver

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/localkms"
	"github.com/keyseal/keyseal/shared/waiver"
)

// devRoutes exist only in the local server: a fresh admin token (there is
// no identity provider locally) and, in dev mode or with the cloud
// stand-ins, the key states that rehearse every seal trigger. {key_id} is
// URL-escaped: a GCP key name and an Azure key URL hold slashes, sent as
// %2F.
func (s *Server) devRoutes() []api.Route {
	routes := []api.Route{{Method: http.MethodPost, Path: "/dev/admin-token", Handler: s.devAdminToken},
		{Method: http.MethodPost, Path: "/dev/legal-waiver", Handler: s.devPublishWaiver}}
	if s.Local.LocalKMS != nil || s.Local.Clouds != nil {
		routes = append(routes,
			api.Route{Method: http.MethodPost, Path: "/dev/kms/keys", Handler: s.devCreateKey},
			api.Route{Method: http.MethodPost, Path: "/dev/kms/keys/{key_id}/state", Handler: s.devKeyState},
			api.Route{Method: http.MethodPost, Path: "/dev/kms/keys/{key_id}/latency", Handler: s.devKeyLatency})
	}
	// The document of these routes (devopenapi.go).
	return append(routes, api.Route{Method: http.MethodGet, Path: "/dev/openapi.json", Handler: s.devOpenAPI})
}

// DevAdminTokenRequest is the body of POST /dev/admin-token (optional:
// the demo tenant's dev-admin).
type DevAdminTokenRequest struct {
	TenantID string `json:"tenant_id,omitempty"`
	Subject  string `json:"subject,omitempty" jsonschema:"minLength=1"`
}

// DevAdminToken is the answer of POST /dev/admin-token: an admin JWT (one
// hour) fit for step-up.
type DevAdminToken struct {
	AdminToken string `json:"admin_token"`
}

func (s *Server) devAdminToken(_ context.Context, r *api.Request) (api.Response, error) {
	in := DevAdminTokenRequest{TenantID: DemoTenant, Subject: "dev-admin"}
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
	return api.JSON(http.StatusOK, DevAdminToken{AdminToken: tok}), nil
}

// keyParam is the {key_id} of a /dev/kms/keys route, unescaped, and
// whether the cloud stand-ins hold it; ENOTFOUND when no KMS of this
// server could.
func (s *Server) keyParam(r *api.Request) (id string, cloud bool, err error) {
	id, err = url.PathUnescape(r.Params["key_id"])
	if err != nil {
		return "", false, keyseal.Errorf(keyseal.EINVALID, "key_id must be URL-escaped (a slash as %%2F): %s", err.Error())
	}
	if s.Local.Clouds != nil && s.Local.Clouds.ProviderOf(id) != "" {
		return id, true, nil
	}
	if s.Local.LocalKMS == nil {
		return "", false, keyseal.Errorf(keyseal.ENOTFOUND, "no stand-in key %q", id)
	}
	return id, false, nil
}

// DevKeyStateRequest is the body of POST /dev/kms/keys/{key_id}/state, and
// DevKeyState its answer.
type DevKeyStateRequest struct {
	State string `json:"state" jsonschema:"enum=enabled,enum=disabled,enum=pending_deletion,enum=access_denied,enum=unreachable"`
}

// DevKeyState is the answer of POST /dev/kms/keys/{key_id}/state.
type DevKeyState struct {
	KeyID string `json:"key_id"`
	State string `json:"state"`
}

// devKeyState puts a key in one of the localkms.States, {"state": s}: a
// local key, or a cloud stand-in key as that cloud answers the state (see
// Clouds.SetState). A local key's change also emits the CloudTrail record
// AWS would write for it into the in-process key-events handler, unless
// KEYSEAL_DEV_PUSH=0 (push.go).
func (s *Server) devKeyState(_ context.Context, r *api.Request) (api.Response, error) {
	var in DevKeyStateRequest
	if err := api.Decode(r, &in, false); err != nil {
		return api.Response{}, err
	}
	id, cloud, err := s.keyParam(r)
	if err != nil {
		return api.Response{}, err
	}
	if cloud {
		err = s.Local.Clouds.SetState(id, in.State)
	} else {
		prev, _ := s.Local.LocalKMS.State(id) // unknown: SetState says so
		if err = s.Local.LocalKMS.SetState(id, in.State); err == nil {
			s.pushKeyState(id, prev, in.State)
		}
	}
	if err != nil {
		return api.Response{}, err
	}
	return api.JSON(http.StatusOK, DevKeyState{KeyID: id, State: in.State}), nil
}

// DevWaiverRequest is the body of POST /dev/legal-waiver: a new waiver
// version and its text.
type DevWaiverRequest struct {
	Version string `json:"version"`
	Text    string `json:"text"`
}

// devPublishWaiver publishes a new legal waiver version, {"version",
// "text"}, in this process only (a restart serves the configured one
// again): running tenants keep working, register and migrate need a new
// acknowledgment.
func (s *Server) devPublishWaiver(_ context.Context, r *api.Request) (api.Response, error) {
	var in DevWaiverRequest
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

// DevCreateKeyRequest is the body of POST /dev/kms/keys (optional: a
// local key), and DevKey its answer.
type DevCreateKeyRequest struct {
	Provider string `json:"provider,omitempty" jsonschema:"enum=local,enum=gcp-kms,enum=azure-kv"`
}

// DevKey is the answer of POST /dev/kms/keys: the key to register.
type DevKey struct {
	Provider string `json:"provider"`
	KeyID    string `json:"key_id"`
}

// devCreateKey makes a new enabled key to register or migrate to,
// {"provider": p}: local (the default), or gcp-kms / azure-kv in the cloud
// stand-ins, whose key_id is the key name / key URL to register.
func (s *Server) devCreateKey(_ context.Context, r *api.Request) (api.Response, error) {
	in := DevCreateKeyRequest{Provider: keyseal.ProviderLocal}
	if err := api.Decode(r, &in, true); err != nil {
		return api.Response{}, err
	}
	var id string
	var err error
	switch in.Provider {
	case keyseal.ProviderLocal:
		if s.Local.LocalKMS == nil {
			return api.Response{}, keyseal.Errorf(keyseal.EPROVIDER, "this server has no local KMS (LocalStack mode): create the key in LocalStack, or pass provider gcp-kms or azure-kv")
		}
		id, err = s.Local.LocalKMS.CreateKey()
	case keyseal.ProviderGCP, keyseal.ProviderAzure:
		if s.Local.Clouds == nil {
			return api.Response{}, keyseal.Errorf(keyseal.EPROVIDER, "this server runs no cloud stand-ins: start it with -clouds (make run-clouds)")
		}
		id, err = s.Local.Clouds.CreateKey(in.Provider)
	default:
		return api.Response{}, keyseal.Errorf(keyseal.EINVALID, "provider must be %s, %s or %s", keyseal.ProviderLocal, keyseal.ProviderGCP, keyseal.ProviderAzure)
	}
	if err != nil {
		return api.Response{}, err
	}
	return api.JSON(http.StatusCreated, DevKey{Provider: in.Provider, KeyID: id}), nil
}

// DevKeyLatencyRequest is the body of POST /dev/kms/keys/{key_id}/latency
// (MS a pointer: missing is told from 0), and DevKeyLatency its answer.
type DevKeyLatencyRequest struct {
	MS *int64 `json:"ms" jsonschema:"minimum=0,maximum=120000"`
}

// DevKeyLatency is the answer of POST /dev/kms/keys/{key_id}/latency.
type DevKeyLatency struct {
	KeyID string `json:"key_id"`
	MS    int64  `json:"ms"`
}

// devKeyLatency sets how long a key's KMS calls take (a cloud key's: every
// answer of its fake), {"ms":
// n}, to rehearse each latency class of the BYOK health check.
func (s *Server) devKeyLatency(_ context.Context, r *api.Request) (api.Response, error) {
	var in DevKeyLatencyRequest
	if err := api.Decode(r, &in, false); err != nil {
		return api.Response{}, err
	}
	if in.MS == nil {
		return api.Response{}, keyseal.Errorf(keyseal.EINVALID, "ms is required: the latency in whole milliseconds (0 removes it)")
	}
	if *in.MS < 0 || *in.MS > localkms.MaxKeyLatency.Milliseconds() {
		return api.Response{}, keyseal.Errorf(keyseal.EINVALID, "ms must be between 0 and %d", localkms.MaxKeyLatency.Milliseconds())
	}
	id, cloud, err := s.keyParam(r)
	if err != nil {
		return api.Response{}, err
	}
	d := time.Duration(*in.MS) * time.Millisecond
	if cloud {
		err = s.Local.Clouds.SetLatency(id, d)
	} else {
		err = s.Local.LocalKMS.SetKeyLatency(id, d)
	}
	if err != nil {
		return api.Response{}, err
	}
	return api.JSON(http.StatusOK, DevKeyLatency{KeyID: id, MS: *in.MS}), nil
}
