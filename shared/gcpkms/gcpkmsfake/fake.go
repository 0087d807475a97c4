// Package gcpkmsfake is an in-process Cloud KMS for tests: a gRPC server of
// kmspb.KeyManagementServiceServer on loopback, with real AES-256-GCM per
// key version and the error answers real Cloud KMS gives (status codes,
// messages and PreconditionFailure details), so the real client and
// keyseal's classifier see what GCP sends. Faults are injected per key:
// version states, an IAM deny, an outage, corrupted checksums; latency is
// for the whole server.
package gcpkmsfake

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/api/option"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

// Server is the fake. Its exported methods drive it; the gRPC methods are
// what the client calls.
type Server struct {
	kmspb.UnimplementedKeyManagementServiceServer

	// Addr is the loopback address the client connects to.
	Addr string

	srv *grpc.Server
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
	state kmspb.CryptoKeyVersion_CryptoKeyVersionState
	raw   []byte // the AES-256 key, for Snapshot
	aead  cipher.AEAD
}

// Start serves a fake on 127.0.0.1 until Stop.
func Start() (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: l.Addr().String(), srv: grpc.NewServer(), keys: map[string]*cryptoKey{}}
	kmspb.RegisterKeyManagementServiceServer(s.srv, s)
	go func() { _ = s.srv.Serve(l) }()
	return s, nil
}

// ClientOptions are the options that point the real Cloud KMS client
// (kms.NewKeyManagementClient) at the fake: its loopback address, plain
// gRPC, no Google credentials.
func (s *Server) ClientOptions() []option.ClientOption {
	return []option.ClientOption{option.WithEndpoint(s.Addr), option.WithoutAuthentication(),
		option.WithGRPCDialOption(grpc.WithTransportCredentials(insecure.NewCredentials()))}
}

// Stop ends the server and every open call.
func (s *Server) Stop() { s.srv.Stop() }

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
	v, err := newVersion(raw, kmspb.CryptoKeyVersion_ENABLED)
	if err != nil {
		return err
	}
	k.versions = append(k.versions, v)
	return nil
}

func newVersion(raw []byte, state kmspb.CryptoKeyVersion_CryptoKeyVersionState) (*version, error) {
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
	// State, when set, becomes the state of every version of the key.
	State kmspb.CryptoKeyVersion_CryptoKeyVersionState
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
	if f.State != kmspb.CryptoKeyVersion_CRYPTO_KEY_VERSION_STATE_UNSPECIFIED {
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
func checkCRC(field string, data []byte, sum *wrapperspb.Int64Value) error {
	if sum != nil && sum.GetValue() != checksum(data) {
		return status.Errorf(codes.InvalidArgument, "The checksum in field %s_crc32c did not match the data in field %s.", field, field)
	}
	return nil
}

// begin waits out the latency and returns the key after the checks every
// call makes (API enabled, key exists, caller allowed, no outage). It
// returns with s.mu held when err is nil.
func (s *Server) begin(ctx context.Context, name, permission string) (*cryptoKey, error) {
	s.mu.Lock()
	s.calls++
	s.lastAuth = ""
	if md, ok := metadata.FromIncomingContext(ctx); ok && len(md.Get("authorization")) > 0 {
		s.lastAuth = md.Get("authorization")[0]
	}
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
			return nil, status.FromContextError(ctx.Err()).Err()
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
		err = status.Error(codes.Unavailable, "The service is currently unavailable.")
	case !ok || k.denied:
		// Without access a missing key looks the same as a denied one.
		if ok || !strings.HasPrefix(keyName, "projects/") {
			err = status.Errorf(codes.PermissionDenied, "Permission '%s' denied on resource '%s' (or it may not exist).", permission, keyName)
		} else {
			err = status.Errorf(codes.NotFound, "CryptoKey %s not found.", keyName)
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
	st := status.New(codes.FailedPrecondition, "Cloud Key Management Service (KMS) API has not been used in project "+project+" before or it is disabled. Enable it by visiting https://console.developers.google.com/apis/api/cloudkms.googleapis.com/overview?project="+project+" then retry.")
	st, _ = st.WithDetails(&errdetails.ErrorInfo{Reason: "SERVICE_DISABLED", Domain: "googleapis.com",
		Metadata: map[string]string{"service": "cloudkms.googleapis.com", "consumer": "projects/" + project}})
	return st.Err()
}

// notEnabled is Cloud KMS's answer for a version that is not ENABLED.
func notEnabled(name string, state kmspb.CryptoKeyVersion_CryptoKeyVersionState) error {
	vt := "KEY_DISABLED"
	if state == kmspb.CryptoKeyVersion_DESTROY_SCHEDULED || state == kmspb.CryptoKeyVersion_DESTROYED {
		vt = "KEY_DESTROY_SCHEDULED"
		if state == kmspb.CryptoKeyVersion_DESTROYED {
			vt = "KEY_DESTROYED"
		}
	}
	msg := fmt.Sprintf("%s is not enabled, current state is: %s.", name, state)
	st := status.New(codes.FailedPrecondition, "The request cannot be fulfilled. Resource "+msg)
	st, _ = st.WithDetails(&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{
		{Type: vt, Subject: name, Description: "Resource " + msg},
	}})
	return st.Err()
}

// The ciphertext is the version number (4 bytes), the nonce, and the
// AES-GCM sealed plaintext, AAD bound.
func (s *Server) Encrypt(ctx context.Context, req *kmspb.EncryptRequest) (*kmspb.EncryptResponse, error) {
	k, err := s.begin(ctx, req.GetName(), "cloudkms.cryptoKeyVersions.useToEncrypt")
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if err := checkCRC("plaintext", req.GetPlaintext(), req.GetPlaintextCrc32C()); err != nil {
		return nil, err
	}
	if err := checkCRC("additional_authenticated_data", req.GetAdditionalAuthenticatedData(), req.GetAdditionalAuthenticatedDataCrc32C()); err != nil {
		return nil, err
	}
	keyName, vi := req.GetName(), k.primary
	if i := strings.Index(keyName, "/cryptoKeyVersions/"); i >= 0 {
		n, err := strconv.Atoi(keyName[i+len("/cryptoKeyVersions/"):])
		if err != nil || n < 1 || n > len(k.versions) {
			return nil, status.Errorf(codes.NotFound, "CryptoKeyVersion %s not found.", keyName)
		}
		keyName, vi = keyName[:i], n-1
	}
	v := k.versions[vi]
	if v.state != kmspb.CryptoKeyVersion_ENABLED {
		return nil, notEnabled(versionName(keyName, vi), v.state)
	}
	ct := make([]byte, 4, 4+v.aead.NonceSize()+len(req.GetPlaintext())+v.aead.Overhead())
	ct[0], ct[1], ct[2], ct[3] = byte(vi>>24), byte(vi>>16), byte(vi>>8), byte(vi)
	nonce := make([]byte, v.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, status.Error(codes.Internal, "internal error")
	}
	ct = append(ct, nonce...)
	ct = v.aead.Seal(ct, nonce, req.GetPlaintext(), req.GetAdditionalAuthenticatedData())
	sum := checksum(ct)
	if k.corrupt {
		sum ^= 1
	}
	return &kmspb.EncryptResponse{
		Name:                    versionName(keyName, vi),
		Ciphertext:              ct,
		CiphertextCrc32C:        wrapperspb.Int64(sum),
		VerifiedPlaintextCrc32C: req.GetPlaintextCrc32C() != nil && !k.unverify,
		VerifiedAdditionalAuthenticatedDataCrc32C: req.GetAdditionalAuthenticatedDataCrc32C() != nil && !k.unverify,
		ProtectionLevel: kmspb.ProtectionLevel_SOFTWARE,
	}, nil
}

// Decrypt takes the CryptoKey name and finds the version in the
// ciphertext, as Cloud KMS does.
func (s *Server) Decrypt(ctx context.Context, req *kmspb.DecryptRequest) (*kmspb.DecryptResponse, error) {
	k, err := s.begin(ctx, req.GetName(), "cloudkms.cryptoKeyVersions.useToDecrypt")
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	if err := checkCRC("ciphertext", req.GetCiphertext(), req.GetCiphertextCrc32C()); err != nil {
		return nil, err
	}
	if err := checkCRC("additional_authenticated_data", req.GetAdditionalAuthenticatedData(), req.GetAdditionalAuthenticatedDataCrc32C()); err != nil {
		return nil, err
	}
	wrong := status.Error(codes.InvalidArgument, "Decryption failed: verify that 'name' refers to the correct CryptoKey.")
	ct := req.GetCiphertext()
	if strings.Contains(req.GetName(), "/cryptoKeyVersions/") {
		return nil, status.Errorf(codes.InvalidArgument, "The resource name %s is not a CryptoKey.", req.GetName())
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
	pt, openErr := v.aead.Open(nil, ct[4:4+ns], ct[4+ns:], req.GetAdditionalAuthenticatedData())
	if openErr != nil {
		return nil, wrong
	}
	if v.state != kmspb.CryptoKeyVersion_ENABLED {
		return nil, notEnabled(versionName(req.GetName(), vi), v.state)
	}
	sum := checksum(pt)
	if k.corrupt {
		sum ^= 1
	}
	return &kmspb.DecryptResponse{Plaintext: pt, PlaintextCrc32C: wrapperspb.Int64(sum), UsedPrimary: vi == k.primary, ProtectionLevel: kmspb.ProtectionLevel_SOFTWARE}, nil
}

// GetCryptoKey answers the key with its primary version's state.
func (s *Server) GetCryptoKey(ctx context.Context, req *kmspb.GetCryptoKeyRequest) (*kmspb.CryptoKey, error) {
	k, err := s.begin(ctx, req.GetName(), "cloudkms.cryptoKeys.get")
	if err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	return &kmspb.CryptoKey{
		Name:    req.GetName(),
		Purpose: kmspb.CryptoKey_ENCRYPT_DECRYPT,
		Primary: &kmspb.CryptoKeyVersion{Name: versionName(req.GetName(), k.primary), State: k.versions[k.primary].state},
	}, nil
}

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
			sk.Versions = append(sk.Versions, snapshotVersion{State: v.state.String(), Key: v.raw})
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
			st, ok := kmspb.CryptoKeyVersion_CryptoKeyVersionState_value[sv.State]
			if !ok {
				return fmt.Errorf("gcpkmsfake: snapshot: %s version %d: unknown state %q", name, i+1, sv.State)
			}
			v, err := newVersion(sv.Key, kmspb.CryptoKeyVersion_CryptoKeyVersionState(st))
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
