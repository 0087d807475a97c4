// Package azurekvfake is an httptest TLS stand-in for the Azure Key Vault
// REST calls keyseal makes (get key, PATCH key attributes, wrapkey,
// unwrapkey), for tests of the real azkeys client: real RSA-OAEP-256 with
// one RSA key per key version, the challenge-based bearer authentication
// the SDK expects, and Key Vault's own error bodies for a disabled key, a
// missing role assignment, a deleted key, throttling and an outage (see
// shared/TESTING.md "GCP and Azure"). No Azure emulator can be installed on
// these machines, hence this.
package azurekvfake

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
)

// Token is the bearer token Credential hands out and the fake accepts.
const Token = "keyseal-fake-token"

// Credential is an azcore.TokenCredential returning Token.
type Credential struct{}

// GetToken implements azcore.TokenCredential.
func (Credential) GetToken(_ context.Context, _ policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: Token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

type version struct {
	id      string
	priv    *rsa.PrivateKey
	enabled bool
}

type key struct {
	versions []*version // oldest first; the last is current
	deleted  bool
	denied   bool // RBAC: keyseal's identity has no role on the key
	down     bool // connections for this key are dropped
}

// Server is the fake. Keys live per vault host, taken from the request's
// Host header, so one server plays any number of vaults.
type Server struct {
	srv *httptest.Server

	mu         sync.Mutex
	keys       map[string]*key // "host/name", lower-case
	latency    time.Duration
	throttle   int    // the next throttle requests answer 429
	retryAfter string // Retry-After of those answers
	outage     bool   // every request answers 503
}

// New starts a server, closed when t ends.
func New(t testing.TB) *Server {
	s := &Server{keys: map[string]*key{}}
	s.srv = httptest.NewTLSServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

// ClientOptions returns azkeys options reaching the fake whatever vault
// host a client names: the transport sends every request to the test
// server (keeping the Host header), trusting its certificate; retries are
// off so each failure surfaces as Key Vault answered it.
func (s *Server) ClientOptions() *azkeys.ClientOptions {
	o := &azkeys.ClientOptions{DisableChallengeResourceVerification: true}
	o.Transport = transport{client: s.srv.Client(), addr: s.srv.Listener.Addr().String()}
	o.Retry.MaxRetries = -1
	return o
}

type transport struct {
	client *http.Client
	addr   string
}

func (t transport) Do(req *http.Request) (*http.Response, error) {
	r := req.Clone(req.Context())
	r.Host = req.URL.Host
	r.URL.Host = t.addr
	return t.client.Do(r)
}

func (s *Server) lookup(keyURL string) (*key, error) {
	u, err := url.Parse(keyURL)
	if err != nil {
		return nil, err
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) < 2 || parts[0] != "keys" {
		return nil, fmt.Errorf("azurekvfake: %s is no key URL", keyURL)
	}
	k := s.keys[strings.ToLower(u.Host+"/"+parts[1])]
	if k == nil {
		return nil, fmt.Errorf("azurekvfake: no key %s", keyURL)
	}
	return k, nil
}

func (s *Server) with(t testing.TB, keyURL string, f func(*key)) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	k, err := s.lookup(keyURL)
	if err != nil {
		t.Fatal(err)
	}
	f(k)
}

func newVersion(t testing.TB) *version {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		t.Fatal(err)
	}
	return &version{id: hex.EncodeToString(id), priv: priv, enabled: true}
}

// CreateKey makes an enabled RSA key named name in vault
// ("https://VAULT.vault.azure.net") and returns its URL, without version.
func (s *Server) CreateKey(t testing.TB, vault, name string) string {
	t.Helper()
	u, err := url.Parse(vault)
	if err != nil || u.Host == "" {
		t.Fatalf("azurekvfake: vault %q is no URL", vault)
	}
	v := newVersion(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.keys[strings.ToLower(u.Host+"/"+name)] = &key{versions: []*version{v}}
	return "https://" + strings.ToLower(u.Host) + "/keys/" + name
}

// AddVersion gives the key a new current version (az keyvault key
// rotate) and returns its id; older versions keep unwrapping.
func (s *Server) AddVersion(t testing.TB, keyURL string) string {
	t.Helper()
	v := newVersion(t)
	s.with(t, keyURL, func(k *key) { k.versions = append(k.versions, v) })
	return v.id
}

// SetEnabled enables or disables every version of the key, what
// `az keyvault key set-attributes --enabled` does per version.
func (s *Server) SetEnabled(t testing.TB, keyURL string, enabled bool) {
	t.Helper()
	s.with(t, keyURL, func(k *key) {
		for _, v := range k.versions {
			v.enabled = enabled
		}
	})
}

// SetDeleted deletes (soft-deletes) or recovers the key: deleted, every
// call answers 404 KeyNotFound, as Key Vault does.
func (s *Server) SetDeleted(t testing.TB, keyURL string, deleted bool) {
	t.Helper()
	s.with(t, keyURL, func(k *key) { k.deleted = deleted })
}

// SetDenied removes (true) or restores keyseal's role assignment on the
// key: denied, every call answers 403 Forbidden (ForbiddenByRbac).
func (s *Server) SetDenied(t testing.TB, keyURL string, denied bool) {
	t.Helper()
	s.with(t, keyURL, func(k *key) { k.denied = denied })
}

// SetDown drops every connection that asks about the key (a network
// partition) until called with false.
func (s *Server) SetDown(t testing.TB, keyURL string, down bool) {
	t.Helper()
	s.with(t, keyURL, func(k *key) { k.down = down })
}

// Throttle answers the next n requests 429 with Retry-After retryAfter.
func (s *Server) Throttle(n int, retryAfter string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.throttle, s.retryAfter = n, retryAfter
}

// SetOutage makes every request answer 503 until called with false.
func (s *Server) SetOutage(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outage = on
}

// SetLatency delays every answer by d (the request's context still ends
// it early).
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Key Vault's error bodies (shared/TESTING.md). The 400 message of a
// failed unwrap is not among the recorded ones and is approximated.
func errBody(code, message, inner string) map[string]any {
	e := map[string]any{"code": code, "message": message}
	if inner != "" {
		e["innererror"] = map[string]any{"code": inner}
	}
	return map[string]any{"error": e}
}

func notFound(name string) map[string]any {
	return errBody("KeyNotFound", fmt.Sprintf("A key with (name/id) %s was not found in this key vault. If you recently deleted this key you may be able to recover it using the correct recovery command. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125182", name), "")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

var b64 = base64.RawURLEncoding

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	// The SDK first sends each request unauthenticated to learn the
	// tenant and resource from the challenge, then again with a token.
	if auth := r.Header.Get("Authorization"); auth != "Bearer "+Token {
		w.Header().Set("WWW-Authenticate", `Bearer authorization="https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000", resource="https://vault.azure.net"`)
		writeJSON(w, http.StatusUnauthorized, errBody("Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.", ""))
		return
	}
	// /keys/NAME[/VERSION][/OP]; no VERSION means the current one.
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/"), "/")
	if len(parts) < 2 || parts[0] != "keys" || len(parts) > 4 {
		writeJSON(w, http.StatusBadRequest, errBody("BadParameter", "The request URI is invalid.", ""))
		return
	}
	name, ver, op := parts[1], "", ""
	if len(parts) > 2 {
		ver = parts[2]
	}
	if len(parts) > 3 {
		op = parts[3]
	}
	if len(parts) == 3 && (ver == "wrapkey" || ver == "unwrapkey") {
		// The SDK joins an empty version away: /keys/NAME/wrapkey.
		ver, op = "", ver
	}

	// Read the body before any delay: only then does the server notice a
	// client that gave up (and cancel r.Context()).
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	s.mu.Lock()
	delay := s.latency
	k := s.keys[strings.ToLower(r.Host+"/"+name)]
	down := k != nil && k.down
	s.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-r.Context().Done():
			return
		}
	}
	if down {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
				return
			}
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.outage:
		writeJSON(w, http.StatusServiceUnavailable, errBody("ServiceUnavailable", "The service is currently unavailable. Please retry the request.", ""))
		return
	case s.throttle > 0:
		s.throttle--
		w.Header().Set("Retry-After", s.retryAfter)
		writeJSON(w, http.StatusTooManyRequests, errBody("Throttled", "Request was not allowed because the vault has exceeded the maximum allowed number of requests. Please retry after the time given in the Retry-After header.", ""))
		return
	case k != nil && k.denied:
		action := map[string]string{"wrapkey": "wrap", "unwrapkey": "unwrap", "": "read"}[op]
		writeJSON(w, http.StatusForbidden, errBody("Forbidden", fmt.Sprintf("Caller is not authorized to perform action on resource.\r\nIf role assignments, deny assignments or role definitions were changed recently, please observe propagation time.\r\nCaller: appid=00000000-0000-0000-0000-000000000001;oid=00000000-0000-0000-0000-000000000002;iss=https://sts.windows.net/00000000-0000-0000-0000-000000000000/\r\nAction: 'Microsoft.KeyVault/vaults/keys/%s/action'\r\nResource: '/keys/%s'\r\nAssignment: (not found)\r\nDecisionReason: null\r\n", action, name), "ForbiddenByRbac"))
		return
	case k == nil || k.deleted:
		writeJSON(w, http.StatusNotFound, notFound(name))
		return
	}
	v := k.versions[len(k.versions)-1]
	if ver != "" {
		v = nil
		for _, c := range k.versions {
			if strings.EqualFold(c.id, ver) {
				v = c
			}
		}
		if v == nil {
			writeJSON(w, http.StatusNotFound, notFound(name+"/"+ver))
			return
		}
	}
	kid := "https://" + r.Host + "/keys/" + name + "/" + v.id

	switch {
	case op == "" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, bundle(kid, v))
	case op == "" && r.Method == http.MethodPatch:
		var in struct {
			Attributes struct {
				Enabled *bool `json:"enabled"`
			} `json:"attributes"`
		}
		if err := json.Unmarshal(body, &in); err != nil {
			writeJSON(w, http.StatusBadRequest, errBody("BadParameter", "The request body is invalid.", ""))
			return
		}
		if in.Attributes.Enabled != nil {
			v.enabled = *in.Attributes.Enabled
		}
		writeJSON(w, http.StatusOK, bundle(kid, v))
	case (op == "wrapkey" || op == "unwrapkey") && r.Method == http.MethodPost:
		s.crypt(w, body, op, kid, v)
	default:
		writeJSON(w, http.StatusMethodNotAllowed, errBody("BadParameter", "The requested operation is not supported.", ""))
	}
}

func (s *Server) crypt(w http.ResponseWriter, body []byte, op, kid string, v *version) {
	var in struct {
		Alg   string `json:"alg"`
		Value string `json:"value"`
	}
	if err := json.Unmarshal(body, &in); err != nil {
		writeJSON(w, http.StatusBadRequest, errBody("BadParameter", "The request body is invalid.", ""))
		return
	}
	value, err := b64.DecodeString(in.Value)
	if err != nil || in.Alg != "RSA-OAEP-256" {
		writeJSON(w, http.StatusBadRequest, errBody("BadParameter", "Invalid value or algorithm; this fake supports RSA-OAEP-256.", ""))
		return
	}
	var out []byte
	if op == "wrapkey" {
		// A disabled key still wraps: Key Vault refuses only unwrap.
		out, err = rsa.EncryptOAEP(sha256.New(), rand.Reader, &v.priv.PublicKey, value, nil)
	} else {
		if !v.enabled {
			writeJSON(w, http.StatusForbidden, errBody("Forbidden", "Operation unwrapKey is not allowed on a disabled key.", "KeyDisabled"))
			return
		}
		out, err = rsa.DecryptOAEP(sha256.New(), nil, v.priv, value, nil)
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errBody("BadParameter", "Failed to "+strings.TrimSuffix(op, "key")+" the key: the value is not valid for this key.", ""))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"kid": kid, "value": b64.EncodeToString(out)})
}

func bundle(kid string, v *version) map[string]any {
	now := time.Now().Unix()
	return map[string]any{
		"key": map[string]any{
			"kid":     kid,
			"kty":     "RSA",
			"key_ops": []string{"encrypt", "decrypt", "wrapKey", "unwrapKey"},
			"n":       b64.EncodeToString(v.priv.N.Bytes()),
			"e":       b64.EncodeToString([]byte{1, 0, 1}),
		},
		"attributes": map[string]any{
			"enabled":         v.enabled,
			"created":         now,
			"updated":         now,
			"recoveryLevel":   "Recoverable",
			"recoverableDays": 90,
		},
	}
}
