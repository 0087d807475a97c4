// Package entrafake is an httptest TLS stand-in for the Microsoft Entra
// token endpoint keyseal's client-secret credential calls (the v2.0
// client-credentials grant), so tests run keyseal's
// real credential over golang.org/x/oauth2, Entra's AADSTS error bodies
// included. It issues
// azurekvfake.Token, the token the Key Vault fake accepts.
package entrafake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/keyseal/keyseal/shared/azurekv"
	"github.com/keyseal/keyseal/shared/azurekv/azurekvfake"
)

// Tenant states a test can set.
const (
	TenantOK        = ""
	TenantAppGone   = "app-removed" // AADSTS700016: keyseal's app not in the directory
	TenantGone      = "tenant-gone" // AADSTS90002: no such tenant
	TenantNoConsent = "no-consent"  // AADSTS65001: consent not granted
	TenantDown      = "down"        // 503, no AADSTS code
)

// Server is the fake.
type Server struct {
	srv *httptest.Server

	mu       sync.Mutex
	valid    map[string]bool // client secret -> false when expired
	tenants  map[string]string
	requests int
}

// New starts a server accepting secret, closed when t ends.
func New(t testing.TB, secret string) *Server {
	s := &Server{valid: map[string]bool{secret: true}, tenants: map[string]string{}}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// Options point keyseal's Entra credential at the fake: its authority
// host and a client trusting its certificate.
func (s *Server) Options() *azurekv.EntraOptions {
	return &azurekv.EntraOptions{AuthorityHost: s.srv.URL + "/", HTTPClient: s.srv.Client()}
}

// Accept makes secret valid (a rotation adds the new one).
func (s *Server) Accept(secret string) { s.mu.Lock(); s.valid[secret] = true; s.mu.Unlock() }

// Revoke makes secret invalid (AADSTS7000215), Expire expired (AADSTS7000222).
func (s *Server) Revoke(secret string) { s.mu.Lock(); delete(s.valid, secret); s.mu.Unlock() }
func (s *Server) Expire(secret string) { s.mu.Lock(); s.valid[secret] = false; s.mu.Unlock() }

// SetTenant sets a tenant's state (one of the Tenant* constants).
func (s *Server) SetTenant(tenant, state string) {
	s.mu.Lock()
	s.tenants[tenant] = state
	s.mu.Unlock()
}

// Requests is the number of token requests served.
func (s *Server) Requests() int { s.mu.Lock(); defer s.mu.Unlock(); return s.requests }

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	tenant, rest, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	s.mu.Lock()
	state := s.tenants[tenant]
	s.mu.Unlock()
	switch {
	case state == TenantDown:
		http.Error(w, "Service Unavailable", http.StatusServiceUnavailable)
	case state == TenantGone:
		refuse(w, 400, "invalid_request", 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant))
	case rest == "oauth2/v2.0/token" && r.Method == http.MethodPost:
		s.token(w, r, tenant, state)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) token(w http.ResponseWriter, r *http.Request, tenant, state string) {
	if err := r.ParseForm(); err != nil {
		refuse(w, 400, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	app := r.PostForm.Get("client_id")
	s.mu.Lock()
	s.requests++
	valid, known := s.valid[r.PostForm.Get("client_secret")]
	s.mu.Unlock()
	switch {
	case state == TenantAppGone:
		refuse(w, 400, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", app, tenant))
	case !known:
		refuse(w, 401, "invalid_client", 7000215, fmt.Sprintf("Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '%s'.", app))
	case !valid:
		refuse(w, 401, "invalid_client", 7000222, fmt.Sprintf("The provided client secret keys for app '%s' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret.", app))
	case state == TenantNoConsent:
		refuse(w, 400, "invalid_grant", 65001, fmt.Sprintf("The user or administrator has not consented to use the application with ID '%s'. Send an interactive authorization request for this user and resource.", app))
	default:
		w.Header().Set("Content-Type", "application/json; charset=utf-8") // as Entra: a form-encoded reader finds no token
		_ = json.NewEncoder(w).Encode(map[string]any{"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
			"access_token": azurekvfake.Token})
	}
}

// refuse writes Entra's OAuth error body.
func refuse(w http.ResponseWriter, status int, oauthErr string, code int, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"error": oauthErr, "error_codes": []int{code},
		"error_description": fmt.Sprintf("AADSTS%d: %s\r\nTrace ID: 0b9f4a2e-1c3d-4e5f-8a7b-6c5d4e3f2a1b\r\nCorrelation ID: 5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9\r\nTimestamp: 2026-12-01 22:00:00Z", code, msg),
		"timestamp":         "2026-12-01 22:00:00Z", "trace_id": "0b9f4a2e-1c3d-4e5f-8a7b-6c5d4e3f2a1b",
		"error_uri": fmt.Sprintf("https://login.microsoftonline.com/error?code=%d", code),
	})
}
