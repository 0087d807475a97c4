package gcpkms

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// keyseal speaks Cloud KMS's REST API (v1) over net/http rather than
// linking cloud.google.com/go/kms: that client's package init (gRPC, the
// protobuf registries of every KMS message, its auth and transport
// stack) costs each Lambda that serves gcp-kms about 3 ms of cold start
// and 13 MB (arm64), for the three calls below, each a small JSON request.
// Credentials still come from Google's own library (golang.org/x/oauth2).

// DefaultEndpoint is Cloud KMS's REST endpoint.
const DefaultEndpoint = "https://cloudkms.googleapis.com/"

// maxAnswer bounds what is read of one answer: Cloud KMS's are well under
// a KiB (a ciphertext is the plaintext plus about 60 bytes).
const maxAnswer = 1 << 20

// Version states of a CryptoKeyVersion, as Cloud KMS names them.
const (
	StateEnabled          = "ENABLED"
	StateDisabled         = "DISABLED"
	StateDestroyScheduled = "DESTROY_SCHEDULED"
	StateDestroyed        = "DESTROYED"
)

// Int64 is a protobuf int64 in its JSON form: a decimal string (a number
// is accepted too). The CRC32C fields are Int64Value wrappers, so a
// missing one is a nil *Int64.
type Int64 int64

// MarshalJSON implements json.Marshaler.
func (n Int64) MarshalJSON() ([]byte, error) {
	return []byte(`"` + strconv.FormatInt(int64(n), 10) + `"`), nil
}

// UnmarshalJSON implements json.Unmarshaler.
func (n *Int64) UnmarshalJSON(b []byte) error {
	v, err := strconv.ParseInt(strings.Trim(string(b), `"`), 10, 64)
	if err != nil {
		return fmt.Errorf("gcp-kms: %s is not an int64", b)
	}
	*n = Int64(v)
	return nil
}

// EncryptRequest is the body of cryptoKeys.encrypt; Name is its path.
type EncryptRequest struct {
	Name                              string `json:"-"`
	Plaintext                         []byte `json:"plaintext"`
	AdditionalAuthenticatedData       []byte `json:"additionalAuthenticatedData,omitempty"`
	PlaintextCRC32C                   *Int64 `json:"plaintextCrc32c,omitempty"`
	AdditionalAuthenticatedDataCRC32C *Int64 `json:"additionalAuthenticatedDataCrc32c,omitempty"`
}

// EncryptResponse is the answer of cryptoKeys.encrypt; Name is the
// CryptoKeyVersion that encrypted.
type EncryptResponse struct {
	Name                                      string `json:"name"`
	Ciphertext                                []byte `json:"ciphertext"`
	CiphertextCRC32C                          *Int64 `json:"ciphertextCrc32c,omitempty"`
	VerifiedPlaintextCRC32C                   bool   `json:"verifiedPlaintextCrc32c,omitempty"`
	VerifiedAdditionalAuthenticatedDataCRC32C bool   `json:"verifiedAdditionalAuthenticatedDataCrc32c,omitempty"`
	ProtectionLevel                           string `json:"protectionLevel,omitempty"`
}

// DecryptRequest is the body of cryptoKeys.decrypt; Name (the CryptoKey)
// is its path.
type DecryptRequest struct {
	Name                              string `json:"-"`
	Ciphertext                        []byte `json:"ciphertext"`
	AdditionalAuthenticatedData       []byte `json:"additionalAuthenticatedData,omitempty"`
	CiphertextCRC32C                  *Int64 `json:"ciphertextCrc32c,omitempty"`
	AdditionalAuthenticatedDataCRC32C *Int64 `json:"additionalAuthenticatedDataCrc32c,omitempty"`
}

// DecryptResponse is the answer of cryptoKeys.decrypt.
type DecryptResponse struct {
	Plaintext       []byte `json:"plaintext"`
	PlaintextCRC32C *Int64 `json:"plaintextCrc32c,omitempty"`
	UsedPrimary     bool   `json:"usedPrimary,omitempty"`
	ProtectionLevel string `json:"protectionLevel,omitempty"`
}

// CryptoKey is the part of cryptoKeys.get's answer keyseal reads.
type CryptoKey struct {
	Name    string            `json:"name"`
	Purpose string            `json:"purpose,omitempty"`
	Primary *CryptoKeyVersion `json:"primary,omitempty"`
}

// CryptoKeyVersion is a version's name and state (StateEnabled, ...).
type CryptoKeyVersion struct {
	Name  string `json:"name"`
	State string `json:"state"`
}

// Client calls Cloud KMS's REST API. Its http.Client carries the
// credentials (an oauth2.Transport); it never retries, so the caller's
// context deadline (KEYSEAL_KMS_TIMEOUT) bounds every call.
type Client struct {
	endpoint string
	http     *http.Client
}

// NewClient returns a client of the API at endpoint (DefaultEndpoint, or
// a stand-in's base URL), sending through hc.
func NewClient(endpoint string, hc *http.Client) *Client {
	if !strings.HasSuffix(endpoint, "/") {
		endpoint += "/"
	}
	return &Client{endpoint: endpoint, http: hc}
}

var _ API = (*Client)(nil)

// Encrypt calls cryptoKeys.encrypt on req.Name.
func (c *Client) Encrypt(ctx context.Context, req *EncryptRequest) (*EncryptResponse, error) {
	out := new(EncryptResponse)
	return out, c.call(ctx, http.MethodPost, req.Name, ":encrypt", req, out)
}

// Decrypt calls cryptoKeys.decrypt on req.Name.
func (c *Client) Decrypt(ctx context.Context, req *DecryptRequest) (*DecryptResponse, error) {
	out := new(DecryptResponse)
	return out, c.call(ctx, http.MethodPost, req.Name, ":decrypt", req, out)
}

// GetCryptoKey calls cryptoKeys.get on name.
func (c *Client) GetCryptoKey(ctx context.Context, name string) (*CryptoKey, error) {
	out := new(CryptoKey)
	return out, c.call(ctx, http.MethodGet, name, "", nil, out)
}

// call sends one request to v1/{name}{verb} and decodes a 200 into out;
// any other answer is an *APIError.
func (c *Client) call(ctx context.Context, method, name, verb string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.endpoint+"v1/"+escapePath(name)+verb, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return parseAPIError(resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("gcp-kms: %s answer: %w", strings.TrimPrefix(verb, ":"), err)
	}
	return nil
}

// escapePath escapes each segment of a resource name, keeping its
// slashes: the REST path is v1/projects/P/locations/L/....
func escapePath(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

// APIError is a Google API's error answer (google.rpc.Status in JSON):
// the canonical code name (Status, e.g. "FAILED_PRECONDITION"), the
// message and the details keyseal reads. An answer that is not such a
// body (a proxy's page, a truncated answer) has an empty Status.
type APIError struct {
	HTTPStatus int
	Status     string
	Message    string
	// Violations are the types of a PreconditionFailure detail's
	// violations (KEY_DISABLED, ...).
	Violations []string
	// Reason is an ErrorInfo detail's reason (SERVICE_DISABLED, ...).
	Reason string
}

func (e *APIError) Error() string {
	if e.Status == "" {
		return fmt.Sprintf("gcp-kms: HTTP %d: %s", e.HTTPStatus, e.Message)
	}
	return fmt.Sprintf("gcp-kms: %s (HTTP %d): %s", e.Status, e.HTTPStatus, e.Message)
}

// Code is the canonical code in the gRPC spelling keyseal has always
// reported (FAILED_PRECONDITION is FailedPrecondition), or HTTP<status>
// for an answer that is not Google's.
func (e *APIError) Code() string {
	if e.Status == "" {
		return "HTTP" + strconv.Itoa(e.HTTPStatus)
	}
	var b strings.Builder
	for _, w := range strings.Split(strings.ToLower(e.Status), "_") {
		if w != "" {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return b.String()
}

// The details' type URLs keyseal reads.
const (
	typePreconditionFailure = "type.googleapis.com/google.rpc.PreconditionFailure"
	typeErrorInfo           = "type.googleapis.com/google.rpc.ErrorInfo"
)

// parseAPIError reads a Google error body; what is not one keeps its first
// bytes as the message.
func parseAPIError(status int, body []byte) *APIError {
	var in struct {
		Error struct {
			Message string `json:"message"`
			Status  string `json:"status"`
			Details []struct {
				Type       string `json:"@type"`
				Reason     string `json:"reason"`
				Violations []struct {
					Type string `json:"type"`
				} `json:"violations"`
			} `json:"details"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &in); err != nil || in.Error.Status == "" {
		msg := string(body)
		if len(msg) > 200 {
			msg = msg[:200] + "..."
		}
		return &APIError{HTTPStatus: status, Message: msg}
	}
	e := &APIError{HTTPStatus: status, Status: in.Error.Status, Message: in.Error.Message}
	for _, d := range in.Error.Details {
		switch d.Type {
		case typePreconditionFailure:
			for _, v := range d.Violations {
				e.Violations = append(e.Violations, v.Type)
			}
		case typeErrorInfo:
			e.Reason = d.Reason
		}
	}
	return e
}
