// Package gcpkmsfake is an in-process Cloud KMS for tests: an HTTP server
// of the REST calls keyseal makes (cryptoKeys.encrypt, decrypt, get) on
// loopback, with real AES-256-GCM per key version and the error answers
// real Cloud KMS gives (status codes, messages and PreconditionFailure
// details, as google.rpc.Status JSON), so keyseal's client and classifier
// see what GCP sends. Faults are injected per key: version states, an IAM
// deny, an outage, corrupted checksums; latency is for the whole server.
package gcpkmsfake

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyseal/keyseal/shared/gcpkms"
)

// Server is the fake. Its exported methods drive it; its HTTP handler is
// Cloud KMS.
type Server struct {
	// URL is the base URL the client is pointed at (http://127.0.0.1:port/).
	URL string

	srv *http.Server
	mu  sync.Mutex
	// keys by CryptoKey name.
	keys     map[string]*cryptoKey
	latency  time.Duration
	apiOff   bool
	calls    int
	lastAuth string
}

type cryptoKey struct {
	versions []*version // versions[i] is cryptoKeyVersions/i+1
	primary  int        // index into versions
	denied   bool
	outage   bool
	corrupt  bool
	unverify bool
	latency  time.Duration // added to the server's for this key
}

type version struct {
	state string // gcpkms.StateEnabled, ...
	raw   []byte // the AES-256 key, for Snapshot
	aead  cipher.AEAD
}

// Start serves a fake on 127.0.0.1 until Stop.
func Start() (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{URL: "http://" + l.Addr().String() + "/", keys: map[string]*cryptoKey{}}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

// Endpoints point keyseal's gcp-kms provider at the fake.
func (s *Server) Endpoints() gcpkms.Endpoints { return gcpkms.Endpoints{KMS: s.URL} }

// Client is keyseal's Cloud KMS client on the fake, without credentials.
func (s *Server) Client() *gcpkms.Client { return gcpkms.NewClient(s.URL, http.DefaultClient) }

// Stop ends the server and every open call.
func (s *Server) Stop() { _ = s.srv.Close() }

// ServeHTTP answers POST v1/{name}:encrypt, POST v1/{name}:decrypt and
// GET v1/{name}, as Cloud KMS's REST API does.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ctx := context.WithValue(r.Context(), authorization{}, r.Header.Get("Authorization"))
	name, verb, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/v1/"), ":")
	var out any
	var err error
	switch {
	case !strings.HasPrefix(r.URL.Path, "/v1/"):
		err = &failure{http.StatusNotFound, "NOT_FOUND", "Not found: " + r.URL.Path, nil}
	case r.Method == http.MethodPost && verb == "encrypt":
		in := &encryptRequest{name: name}
		if err = decode(r, in); err == nil {
			out, err = s.encrypt(ctx, in)
		}
	case r.Method == http.MethodPost && verb == "decrypt":
		in := &decryptRequest{name: name}
		if err = decode(r, in); err == nil {
			out, err = s.decrypt(ctx, in)
		}
	case r.Method == http.MethodGet && verb == "":
		out, err = s.getCryptoKey(ctx, name)
	default:
		err = &failure{http.StatusNotFound, "NOT_FOUND", "Method not found: " + r.Method + " " + r.URL.Path, nil}
	}
	if err != nil {
		writeError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_ = json.NewEncoder(w).Encode(out)
}

// The fake's wire messages, spelled as Cloud KMS's REST reference spells
// them and independent of keyseal's client types, so a misspelled field on
// either side is an error here. int64 fields are JSON strings.
type (
	encryptRequest struct {
		name                              string
		Plaintext                         []byte `json:"plaintext"`
		AdditionalAuthenticatedData       []byte `json:"additionalAuthenticatedData"`
		PlaintextCrc32c                   *int64 `json:"plaintextCrc32c,string"`
		AdditionalAuthenticatedDataCrc32c *int64 `json:"additionalAuthenticatedDataCrc32c,string"`
	}
	encryptResponse struct {
		Name                                      string `json:"name"`
		Ciphertext                                []byte `json:"ciphertext"`
		CiphertextCrc32c                          int64  `json:"ciphertextCrc32c,string"`
		VerifiedPlaintextCrc32c                   bool   `json:"verifiedPlaintextCrc32c"`
		VerifiedAdditionalAuthenticatedDataCrc32c bool   `json:"verifiedAdditionalAuthenticatedDataCrc32c"`
		ProtectionLevel                           string `json:"protectionLevel"`
	}
	decryptRequest struct {
		name                              string
		Ciphertext                        []byte `json:"ciphertext"`
		AdditionalAuthenticatedData       []byte `json:"additionalAuthenticatedData"`
		CiphertextCrc32c                  *int64 `json:"ciphertextCrc32c,string"`
		AdditionalAuthenticatedDataCrc32c *int64 `json:"additionalAuthenticatedDataCrc32c,string"`
	}
	decryptResponse struct {
		Plaintext       []byte `json:"plaintext"`
		PlaintextCrc32c int64  `json:"plaintextCrc32c,string"`
		UsedPrimary     bool   `json:"usedPrimary"`
		ProtectionLevel string `json:"protectionLevel"`
	}
	cryptoKeyVersion struct {
		Name  string `json:"name"`
		State string `json:"state"`
	}
	cryptoKeyAnswer struct {
		Name    string           `json:"name"`
		Purpose string           `json:"purpose"`
		Primary cryptoKeyVersion `json:"primary"`
	}
)

// authorization is the context key of the request's Authorization header.
type authorization struct{}

// decode reads a JSON request body as Cloud KMS does: a name that is
// not exactly one of the message's fields (Go's decoder alone would match
// it whatever its case) is an INVALID_ARGUMENT.
func decode(r *http.Request, v any) error {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return fail("INVALID_ARGUMENT", "Invalid JSON payload received. %v", err)
	}
	var names map[string]json.RawMessage
	if err := json.Unmarshal(body, &names); err != nil {
		return fail("INVALID_ARGUMENT", "Invalid JSON payload received. %v", err)
	}
	fields := jsonNames(v)
	for n := range names {
		if !slices.Contains(fields, n) {
			return fail("INVALID_ARGUMENT", "Invalid JSON payload received. Unknown name %q: Cannot find field.", n)
		}
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fail("INVALID_ARGUMENT", "Invalid JSON payload received. %v", err)
	}
	return nil
}

// jsonNames are the JSON names of the fields of the struct v points to.
func jsonNames(v any) []string {
	t := reflect.TypeOf(v).Elem()
	var names []string
	for i := range t.NumField() {
		if n, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); n != "" && n != "-" {
			names = append(names, n)
		}
	}
	return names
}

// failure is an error answer: a google.rpc.Status in JSON, with its HTTP
// status.
type failure struct {
	http    int
	status  string
	message string
	details []any
}

func (f *failure) Error() string { return f.status + ": " + f.message }

// httpOf is the HTTP status Google's REST APIs answer each code with.
var httpOf = map[string]int{"INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "UNAUTHENTICATED": 401,
	"PERMISSION_DENIED": 403, "NOT_FOUND": 404, "DEADLINE_EXCEEDED": 504, "CANCELLED": 499,
	"UNAVAILABLE": 503, "INTERNAL": 500}

func fail(status, format string, args ...any) *failure {
	return &failure{httpOf[status], status, fmt.Sprintf(format, args...), nil}
}

func writeError(w http.ResponseWriter, err error) {
	f, ok := err.(*failure)
	if !ok {
		f = fail("INTERNAL", "Internal error encountered.")
	}
	body := map[string]any{"code": f.http, "message": f.message, "status": f.status}
	if f.details != nil {
		body["details"] = f.details
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(f.http)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": body})
}

// CreateKey makes an ENABLED CryptoKey with one version, its primary.
func (s *Server) CreateKey(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.keys[name]; ok {
		return fmt.Errorf("gcpkmsfake: %s exists", name)
	}
	k := &cryptoKey{}
	if err := k.addVersion(); err != nil {
		return err
	}
	s.keys[name] = k
	return nil
}

// RotateKey adds a version and makes it the primary (gcloud kms keys
// versions create --primary); it returns the new version's name.
func (s *Server) RotateKey(name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[name]
	if !ok {
		return "", fmt.Errorf("gcpkmsfake: no key %s", name)
	}
	if err := k.addVersion(); err != nil {
		return "", err
	}
	k.primary = len(k.versions) - 1
	return versionName(name, k.primary), nil
}

func (k *cryptoKey) addVersion() error {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return err
	}
	v, err := newVersion(raw, gcpkms.StateEnabled)
	if err != nil {
		return err
	}
	k.versions = append(k.versions, v)
	return nil
}

func newVersion(raw []byte, state string) (*version, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &version{state: state, raw: raw, aead: aead}, nil
}

// Fault is what can be set on a key.
type Fault struct {
	// State, when set (gcpkms.StateEnabled, ...), becomes the state of
	// every version of the key.
	State string
	// Denied answers PermissionDenied, as when the caller lost
	// roles/cloudkms.cryptoKeyEncrypterDecrypter.
	Denied bool
	// Outage answers Unavailable.
	Outage bool
	// CorruptChecksums answers with checksums that do not match the bytes.
	CorruptChecksums bool
	// Unverified answers Encrypt without confirming the request checksums.
	Unverified bool
}

// SetFault replaces the faults of key name.
func (s *Server) SetFault(name string, f Fault) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[name]
	if !ok {
		return fmt.Errorf("gcpkmsfake: no key %s", name)
	}
	if f.State != "" {
		for _, v := range k.versions {
			v.state = f.State
		}
	}
	k.denied, k.outage, k.corrupt, k.unverify = f.Denied, f.Outage, f.CorruptChecksums, f.Unverified
	return nil
}

// SetKeyLatency delays every answer about key name by d, on top of
// SetLatency's (0 removes it).
func (s *Server) SetKeyLatency(name string, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k, ok := s.keys[name]
	if !ok {
		return fmt.Errorf("gcpkmsfake: no key %s", name)
	}
	k.latency = d
	return nil
}

// HasKey reports whether the fake holds CryptoKey name.
func (s *Server) HasKey(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.keys[name]
	return ok
}

// SetAPIDisabled makes every call answer as Cloud KMS does in a project
// where the API is disabled.
func (s *Server) SetAPIDisabled(off bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apiOff = off
}

// SetLatency delays every answer by d (a call whose deadline ends first
// gets DeadlineExceeded from the client).
func (s *Server) SetLatency(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.latency = d
}

// Calls is the number of Encrypt, Decrypt and GetCryptoKey calls served.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// LastAuthorization is the authorization header of the last call, "" when
// it had none.
func (s *Server) LastAuthorization() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastAuth
}

func versionName(key string, i int) string {
	return key + "/cryptoKeyVersions/" + strconv.Itoa(i+1)
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func checksum(b []byte) int64 { return int64(crc32.Checksum(b, castagnoli)) }

// checkCRC answers as Cloud KMS does when a request checksum does not match.
func checkCRC(field string, data []byte, sum *int64) error {
	if sum != nil && *sum != checksum(data) {
		return fail("INVALID_ARGUMENT", "The checksum in field %s_crc32c did not match the data in field %s.", field, field)
	}
	return nil
}

// begin waits out the latency and returns the key after the checks every
// call makes (API enabled, key exists, caller allowed, no outage). It
// returns with s.mu held when err is nil.
func (s *Server) begin(ctx context.Context, name, permission string) (*cryptoKey, error) {
	s.mu.Lock()
	s.calls++
	s.lastAuth, _ = ctx.Value(authorization{}).(string)
	d := s.latency
	keyName := name
	if i := strings.Index(name, "/cryptoKeyVersions/"); i >= 0 {
		keyName = name[:i]
	}
	if k, ok := s.keys[keyName]; ok {
		d += k.latency
	}
	s.mu.Unlock()
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-ctx.Done():
			return nil, fail("CANCELLED", "The operation was cancelled.")
		case <-t.C:
		}
	}
	s.mu.Lock()
	k, ok := s.keys[keyName]
	var err error
	switch {
	case s.apiOff:
		err = apiDisabled(keyName)
	case ok && k.outage:
		err = fail("UNAVAILABLE", "The service is currently unavailable.")
	case !ok || k.denied:
		// Without access a missing key looks the same as a denied one.
		if ok || !strings.HasPrefix(keyName, "projects/") {
			err = fail("PERMISSION_DENIED", "Permission '%s' denied on resource '%s' (or it may not exist).", permission, keyName)
		} else {
			err = fail("NOT_FOUND", "CryptoKey %s not found.", keyName)
		}
	}
	if err != nil {
		s.mu.Unlock()
		return nil, err
	}
	return k, nil
}

func apiDisabled(key string) error {
	project := strings.SplitN(strings.TrimPrefix(key, "projects/"), "/", 2)[0]
	f := fail("FAILED_PRECONDITION", "Cloud Key Management Service (KMS) API has not been used in project %s before or it is disabled. Enable it by visiting https://console.developers.google.com/apis/api/cloudkms.googleapis.com/overview?project=%s then retry.", project, project)
	f.details = []any{map[string]any{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "SERVICE_DISABLED", "domain": "googleapis.com",
		"metadata": map[string]string{"service": "cloudkms.googleapis.com", "consumer": "projects/" + project}}}
	return f
}

// notEnabled is Cloud KMS's answer for a version that is not ENABLED.
func notEnabled(name, state string) error {
	vt := map[string]string{gcpkms.StateDestroyScheduled: "KEY_DESTROY_SCHEDULED", gcpkms.StateDestroyed: "KEY_DESTROYED"}[state]
	if vt == "" {
		vt = "KEY_DISABLED"
	}
	msg := fmt.Sprintf("%s is not enabled, current state is: %s.", name, state)
	f := fail("FAILED_PRECONDITION", "The request cannot be fulfilled. Resource %s", msg)
	f.details = []any{map[string]any{"@type": "type.googleapis.com/google.rpc.PreconditionFailure",
		"violations": []map[string]string{{"type": vt, "subject": name, "description": "Resource " + msg}}}}
	return f
}

// The ciphertext is the version number (4 bytes), the nonce, and the
// AES-GCM sealed plaintext, AAD bound.
func (s *Server) encrypt(ctx context.Context, req *encryptRequest) (*encryptResponse, error) {
	k, err := s.begin(ctx, req.name, "cloudkms.cryptoKeyVersions.useToEncrypt")
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if err := checkCRC("plaintext", req.Plaintext, req.PlaintextCrc32c); err != nil {
		return nil, err
	}
	if err := checkCRC("additional_authenticated_data", req.AdditionalAuthenticatedData, req.AdditionalAuthenticatedDataCrc32c); err != nil {
		return nil, err
	}
	keyName, vi := req.name, k.primary
	if i := strings.Index(keyName, "/cryptoKeyVersions/"); i >= 0 {
		n, err := strconv.Atoi(keyName[i+len("/cryptoKeyVersions/"):])
		if err != nil || n < 1 || n > len(k.versions) {
			return nil, fail("NOT_FOUND", "CryptoKeyVersion %s not found.", keyName)
		}
		keyName, vi = keyName[:i], n-1
	}
	v := k.versions[vi]
	if v.state != gcpkms.StateEnabled {
		return nil, notEnabled(versionName(keyName, vi), v.state)
	}
	ct := make([]byte, 4, 4+v.aead.NonceSize()+len(req.Plaintext)+v.aead.Overhead())
	ct[0], ct[1], ct[2], ct[3] = byte(vi>>24), byte(vi>>16), byte(vi>>8), byte(vi)
	nonce := make([]byte, v.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, fail("INTERNAL", "Internal error encountered.")
	}
	ct = append(ct, nonce...)
	ct = v.aead.Seal(ct, nonce, req.Plaintext, req.AdditionalAuthenticatedData)
	sum := checksum(ct)
	if k.corrupt {
		sum ^= 1
	}
	return &encryptResponse{
		Name:                    versionName(keyName, vi),
		Ciphertext:              ct,
		CiphertextCrc32c:        sum,
		VerifiedPlaintextCrc32c: req.PlaintextCrc32c != nil && !k.unverify,
		VerifiedAdditionalAuthenticatedDataCrc32c: req.AdditionalAuthenticatedDataCrc32c != nil && !k.unverify,
		ProtectionLevel: "SOFTWARE",
	}, nil
}

// Decrypt takes the CryptoKey name and finds the version in the
// ciphertext, as Cloud KMS does.
func (s *Server) decrypt(ctx context.Context, req *decryptRequest) (*decryptResponse, error) {
	k, err := s.begin(ctx, req.name, "cloudkms.cryptoKeyVersions.useToDecrypt")
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if err := checkCRC("ciphertext", req.Ciphertext, req.CiphertextCrc32c); err != nil {
		return nil, err
	}
	if err := checkCRC("additional_authenticated_data", req.AdditionalAuthenticatedData, req.AdditionalAuthenticatedDataCrc32c); err != nil {
		return nil, err
	}
	wrong := fail("INVALID_ARGUMENT", "Decryption failed: verify that 'name' refers to the correct CryptoKey.")
	ct := req.Ciphertext
	if strings.Contains(req.name, "/cryptoKeyVersions/") {
		return nil, fail("INVALID_ARGUMENT", "The resource name %s is not a CryptoKey.", req.name)
	}
	if len(ct) < 4 {
		return nil, wrong
	}
	vi := int(ct[0])<<24 | int(ct[1])<<16 | int(ct[2])<<8 | int(ct[3])
	if vi >= len(k.versions) {
		return nil, wrong
	}
	v := k.versions[vi]
	ns := v.aead.NonceSize()
	if len(ct) < 4+ns {
		return nil, wrong
	}
	// The version's state is checked only for ciphertext of this key.
	pt, openErr := v.aead.Open(nil, ct[4:4+ns], ct[4+ns:], req.AdditionalAuthenticatedData)
	if openErr != nil {
		return nil, wrong
	}
	if v.state != gcpkms.StateEnabled {
		return nil, notEnabled(versionName(req.name, vi), v.state)
	}
	sum := checksum(pt)
	if k.corrupt {
		sum ^= 1
	}
	return &decryptResponse{Plaintext: pt, PlaintextCrc32c: sum, UsedPrimary: vi == k.primary, ProtectionLevel: "SOFTWARE"}, nil
}

// GetCryptoKey answers the key with its primary version's state.
func (s *Server) getCryptoKey(ctx context.Context, name string) (*cryptoKeyAnswer, error) {
	k, err := s.begin(ctx, name, "cloudkms.cryptoKeys.get")
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return &cryptoKeyAnswer{
		Name:    name,
		Purpose: "ENCRYPT_DECRYPT",
		Primary: cryptoKeyVersion{Name: versionName(name, k.primary), State: k.versions[k.primary].state},
	}, nil
}

// states are the version states the fake keeps.
var states = []string{gcpkms.StateEnabled, gcpkms.StateDisabled, gcpkms.StateDestroyScheduled, gcpkms.StateDestroyed}

// snapshot is the JSON form of the fake's keys (Snapshot, Restore).
type snapshot struct {
	Keys map[string]snapshotKey `json:"keys"`
}

type snapshotKey struct {
	Versions []snapshotVersion `json:"versions"`
	Primary  int               `json:"primary"`
	Denied   bool              `json:"denied,omitempty"`
	Outage   bool              `json:"outage,omitempty"`
}

type snapshotVersion struct {
	State string `json:"state"`
	Key   []byte `json:"key"`
}

// Snapshot returns every key's material, version states, IAM deny and
// outage as JSON (secret: key material), for Restore in a later process.
func (s *Server) Snapshot() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := snapshot{Keys: map[string]snapshotKey{}}
	for name, k := range s.keys {
		sk := snapshotKey{Primary: k.primary, Denied: k.denied, Outage: k.outage}
		for _, v := range k.versions {
			sk.Versions = append(sk.Versions, snapshotVersion{State: v.state, Key: v.raw})
		}
		out.Keys[name] = sk
	}
	return json.Marshal(out)
}

// Restore adds the keys of a Snapshot, replacing keys of the same name.
func (s *Server) Restore(b []byte) error {
	var in snapshot
	if err := json.Unmarshal(b, &in); err != nil {
		return fmt.Errorf("gcpkmsfake: snapshot: %w", err)
	}
	keys := map[string]*cryptoKey{}
	for name, sk := range in.Keys {
		k := &cryptoKey{primary: sk.Primary, denied: sk.Denied, outage: sk.Outage}
		for i, sv := range sk.Versions {
			if !slices.Contains(states, sv.State) {
				return fmt.Errorf("gcpkmsfake: snapshot: %s version %d: unknown state %q", name, i+1, sv.State)
			}
			v, err := newVersion(sv.Key, sv.State)
			if err != nil {
				return fmt.Errorf("gcpkmsfake: snapshot: %s version %d: %w", name, i+1, err)
			}
			k.versions = append(k.versions, v)
		}
		if k.primary < 0 || k.primary >= len(k.versions) {
			return fmt.Errorf("gcpkmsfake: snapshot: %s has no primary version %d", name, k.primary+1)
		}
		keys[name] = k
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for name, k := range keys {
		s.keys[name] = k
	}
	return nil
}
