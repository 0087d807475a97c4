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
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
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
	denied   bool          // RBAC: keyseal's identity has no role on the key
	down     bool          // connections for this key are dropped
	outage   bool          // requests for this key answer 503
	latency  time.Duration // added to the server's for this key
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

// Start serves a fake on a loopback address (httptest's) until Close.
func Start() (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("azurekvfake: listen: %w", err)
	}
	s := &Server{keys: map[string]*key{}}
	s.srv = &httptest.Server{Listener: l, Config: &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}}
	s.srv.StartTLS()
	return s, nil
}

// Close ends the server and every open connection.
func (s *Server) Close() { s.srv.Close() }

// New starts a server for a test, closed when t ends.
func New(t testing.TB) *Server {
	t.Helper()
	s, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// MustCreateKey is CreateKey for a test: a failure ends the test.
func (s *Server) MustCreateKey(t testing.TB, vault, name string) string {
	t.Helper()
	url, err := s.CreateKey(vault, name)
	if err != nil {
		t.Fatal(err)
	}
	return url
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

func (s *Server) with(keyURL string, f func(*key)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, err := s.lookup(keyURL)
	if err != nil {
		return err
	}
	f(k)
	return nil
}

func newVersion() (*version, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("azurekvfake: RSA key: %w", err)
	}
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("azurekvfake: version id: %w", err)
	}
	return &version{id: hex.EncodeToString(id), priv: priv, enabled: true}, nil
}

// CreateKey makes an enabled RSA key named name in vault
// ("https://VAULT.vault.azure.net") and returns its URL, without version.
// An existing key of that name is an error.
func (s *Server) CreateKey(vault, name string) (string, error) {
	u, err := url.Parse(vault)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("azurekvfake: vault %q is no URL", vault)
	}
	if name == "" || strings.Contains(name, "/") {
		return "", fmt.Errorf("azurekvfake: key name %q is not one path segment", name)
	}
	v, err := newVersion()
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	id := strings.ToLower(u.Host + "/" + name)
	if _, ok := s.keys[id]; ok {
		return "", fmt.Errorf("azurekvfake: key %s exists", id)
	}
	s.keys[id] = &key{versions: []*version{v}}
	return "https://" + strings.ToLower(u.Host) + "/keys/" + name, nil
}

// AddVersion gives the key a new current version (az keyvault key
// rotate) and returns its id; older versions keep unwrapping.
func (s *Server) AddVersion(keyURL string) (string, error) {
	v, err := newVersion()
	if err != nil {
		return "", err
	}
	return v.id, s.with(keyURL, func(k *key) { k.versions = append(k.versions, v) })
}

// SetEnabled enables or disables every version of the key, what
// `az keyvault key set-attributes --enabled` does per version.
func (s *Server) SetEnabled(keyURL string, enabled bool) error {
	return s.with(keyURL, func(k *key) {
		for _, v := range k.versions {
			v.enabled = enabled
		}
	})
}

// SetDeleted deletes (soft-deletes) or recovers the key: deleted, every
// call answers 404 KeyNotFound, as Key Vault does.
func (s *Server) SetDeleted(keyURL string, deleted bool) error {
	return s.with(keyURL, func(k *key) { k.deleted = deleted })
}

// SetDenied removes (true) or restores keyseal's role assignment on the
// key: denied, every call answers 403 Forbidden (ForbiddenByRbac).
func (s *Server) SetDenied(keyURL string, denied bool) error {
	return s.with(keyURL, func(k *key) { k.denied = denied })
}

// SetDown drops every connection that asks about the key (a network
// partition) until called with false.
func (s *Server) SetDown(keyURL string, down bool) error {
	return s.with(keyURL, func(k *key) { k.down = down })
}

// SetKeyOutage makes every request about the key answer 503, as
// SetOutage does for the whole server, until called with false.
func (s *Server) SetKeyOutage(keyURL string, on bool) error {
	return s.with(keyURL, func(k *key) { k.outage = on })
}

// HasKey reports whether the fake holds the key of keyURL (any version).
func (s *Server) HasKey(keyURL string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.lookup(keyURL)
	return err == nil
}

// SetKeyLatency delays every answer about the key by d, on top of
// SetLatency's (0 removes it).
func (s *Server) SetKeyLatency(keyURL string, d time.Duration) error {
	return s.with(keyURL, func(k *key) { k.latency = d })
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
	if k != nil {
		delay += k.latency
	}
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
	case s.outage || k != nil && k.outage:
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

// snapshot is the JSON form of the fake's keys (Snapshot, Restore).
type snapshot struct {
	Keys map[string]snapshotKey `json:"keys"` // by "host/name"
}

type snapshotKey struct {
	Versions []snapshotVersion `json:"versions"`
	Deleted  bool              `json:"deleted,omitempty"`
	Denied   bool              `json:"denied,omitempty"`
	Down     bool              `json:"down,omitempty"`
	Outage   bool              `json:"outage,omitempty"`
}

type snapshotVersion struct {
	ID      string `json:"id"`
	Enabled bool   `json:"enabled"`
	PKCS8   []byte `json:"pkcs8"`
}

// Snapshot returns every key's versions (RSA private keys), enabled
// attributes and faults as JSON (secret: key material), for Restore in a
// later process.
func (s *Server) Snapshot() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := snapshot{Keys: map[string]snapshotKey{}}
	for id, k := range s.keys {
		sk := snapshotKey{Deleted: k.deleted, Denied: k.denied, Down: k.down, Outage: k.outage}
		for _, v := range k.versions {
			der, err := x509.MarshalPKCS8PrivateKey(v.priv)
			if err != nil {
				return nil, fmt.Errorf("azurekvfake: %s: %w", id, err)
			}
			sk.Versions = append(sk.Versions, snapshotVersion{ID: v.id, Enabled: v.enabled, PKCS8: der})
		}
		out.Keys[id] = sk
	}
	return json.Marshal(out)
}

// Restore adds the keys of a Snapshot, replacing keys of the same name.
func (s *Server) Restore(b []byte) error {
	var in snapshot
	if err := json.Unmarshal(b, &in); err != nil {
		return fmt.Errorf("azurekvfake: snapshot: %w", err)
	}
	keys := map[string]*key{}
	for id, sk := range in.Keys {
		if len(sk.Versions) == 0 {
			return fmt.Errorf("azurekvfake: snapshot: %s has no version", id)
		}
		k := &key{deleted: sk.Deleted, denied: sk.Denied, down: sk.Down, outage: sk.Outage}
		for _, sv := range sk.Versions {
			p, err := x509.ParsePKCS8PrivateKey(sv.PKCS8)
			if err != nil {
				return fmt.Errorf("azurekvfake: snapshot: %s/%s: %w", id, sv.ID, err)
			}
			priv, ok := p.(*rsa.PrivateKey)
			if !ok {
				return fmt.Errorf("azurekvfake: snapshot: %s/%s is no RSA key", id, sv.ID)
			}
			k.versions = append(k.versions, &version{id: sv.ID, priv: priv, enabled: sv.Enabled})
		}
		keys[strings.ToLower(id)] = k
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, k := range keys {
		s.keys[id] = k
	}
	return nil
}
