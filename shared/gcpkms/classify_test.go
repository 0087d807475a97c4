package gcpkms

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"testing"

	"golang.org/x/oauth2"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// answer is Cloud KMS's error body for status, as its REST API sends it.
func answer(httpStatus int, status, message string, details ...string) error {
	d := ""
	for i, s := range details {
		if i > 0 {
			d += ","
		}
		d += s
	}
	return parseAPIError(httpStatus, fmt.Appendf(nil, `{"error":{"code":%d,"message":%q,"status":%q,"details":[%s]}}`, httpStatus, message, status, d))
}

func precondition(violation string) error {
	return answer(400, "FAILED_PRECONDITION", "The request cannot be fulfilled. Resource projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1 is not enabled, current state is: DISABLED.",
		`{"@type":"type.googleapis.com/google.rpc.PreconditionFailure","violations":[{"type":"`+violation+`","subject":"projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1"}]}`)
}

// viaClient is err as http.Client.Do returns a transport's failure.
func viaClient(err error) error {
	return &url.Error{Op: "Post", URL: "https://cloudkms.googleapis.com/v1/projects/p/locations/l/keyRings/r/cryptoKeys/k:decrypt", Err: err}
}

func TestClassify(t *testing.T) {
	serviceDisabled := answer(400, "FAILED_PRECONDITION", "Cloud Key Management Service (KMS) API has not been used in project p before or it is disabled.",
		`{"@type":"type.googleapis.com/google.rpc.ErrorInfo","reason":"SERVICE_DISABLED","domain":"googleapis.com"}`)
	stsRefused := &oauth2.RetrieveError{Response: &http.Response{StatusCode: 400}, ErrorCode: "invalid_grant"}
	for _, c := range []struct {
		name     string
		err      error
		terminal bool
		reason   string
		code     string
	}{
		{"permission denied", answer(403, "PERMISSION_DENIED", "Permission 'cloudkms.cryptoKeyVersions.useToDecrypt' denied on resource 'projects/p/...' (or it may not exist)."), true, keyseal.ReasonAccessDenied, "PermissionDenied"},
		// keyseal's own credentials refused: the operator's to fix, never a seal.
		{"token refused by Cloud KMS", answer(401, "UNAUTHENTICATED", "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."), false, keyseal.ReasonUnreachable, keyseal.CodeOwnCredentialsRejected},
		{"own token refused by the OAuth endpoint", viaClient(&TokenError{Own: true, Err: stsRefused}), false, keyseal.ReasonUnreachable, keyseal.CodeOwnCredentialsRejected},
		{"federation refused by STS", viaClient(&TokenError{Own: true, Err: errors.New(`oauth2/google: status code 400: {"error":"invalid_grant","error_description":"The audience in ID Token [...] does not match the expected audience."}`)}), false, keyseal.ReasonUnreachable, keyseal.CodeOwnCredentialsRejected},
		{"own token refused by IAM Credentials", viaClient(&TokenError{Own: true, HTTPStatus: 401, Err: answer(401, "UNAUTHENTICATED", "Request had invalid authentication credentials.")}), false, keyseal.ReasonUnreachable, keyseal.CodeOwnCredentialsRejected},
		{"token endpoint unreachable", viaClient(&TokenError{Own: true, Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}), false, keyseal.ReasonUnreachable, "Unauthenticated"},
		{"impersonation refused", viaClient(&TokenError{HTTPStatus: 403, Err: answer(403, "PERMISSION_DENIED", "Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).")}), true, keyseal.ReasonAccessDenied, "PermissionDenied"},
		{"impersonated account deleted", viaClient(&TokenError{HTTPStatus: 404, Err: answer(404, "NOT_FOUND", "Not found; Gaia id not found for email x@p.iam.gserviceaccount.com")}), true, keyseal.ReasonAccessDenied, "PermissionDenied"},
		{"IAM Credentials down", viaClient(&TokenError{HTTPStatus: 503, Err: answer(503, "UNAVAILABLE", "The service is currently unavailable.")}), false, keyseal.ReasonUnreachable, "Unavailable"},
		{"IAM Credentials unreachable", viaClient(&TokenError{Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}}), false, keyseal.ReasonUnreachable, "Unavailable"},
		{"not found", answer(404, "NOT_FOUND", "CryptoKey projects/p/... not found."), true, keyseal.ReasonKeyNotFound, "NotFound"},
		{"wrong key on decrypt", answer(400, "INVALID_ARGUMENT", "Decryption failed: verify that 'name' refers to the correct CryptoKey."), true, keyseal.ReasonInvalidBlob, "InvalidArgument"},
		{"request checksum", answer(400, "INVALID_ARGUMENT", "The checksum in field ciphertext_crc32c did not match the data in field ciphertext."), false, keyseal.ReasonUnreachable, "ChecksumMismatch"},
		{"version disabled", precondition(ViolationKeyDisabled), true, keyseal.ReasonKeyDisabled, "KEY_DISABLED"},
		{"version disabled, wrapped", fmt.Errorf("decrypt: %w", precondition(ViolationKeyDisabled)), true, keyseal.ReasonKeyDisabled, "KEY_DISABLED"},
		{"destroy scheduled", precondition(ViolationKeyDestroyScheduled), true, keyseal.ReasonPendingDeletion, "KEY_DESTROY_SCHEDULED"},
		{"destroyed", precondition(ViolationKeyDestroyed), true, keyseal.ReasonPendingDeletion, "KEY_DESTROYED"},
		{"API disabled", serviceDisabled, false, keyseal.ReasonUnreachable, "FailedPrecondition"},
		{"other precondition", precondition("SOMETHING_ELSE"), false, keyseal.ReasonUnreachable, "FailedPrecondition"},
		{"precondition without details", answer(400, "FAILED_PRECONDITION", "x"), false, keyseal.ReasonUnreachable, "FailedPrecondition"},
		{"unavailable", answer(503, "UNAVAILABLE", "The service is currently unavailable."), false, keyseal.ReasonUnreachable, "Unavailable"},
		{"deadline exceeded", answer(504, "DEADLINE_EXCEEDED", "Deadline Exceeded"), false, keyseal.ReasonUnreachable, "DeadlineExceeded"},
		{"resource exhausted", answer(429, "RESOURCE_EXHAUSTED", "Quota exceeded for quota metric 'Cryptographic requests'."), false, keyseal.ReasonUnreachable, "ResourceExhausted"},
		{"internal", answer(500, "INTERNAL", "Internal error encountered."), false, keyseal.ReasonUnreachable, "Internal"},
		// Only Google's own error body can seal: a proxy's 403 page cannot.
		{"a 403 that is not Google's", parseAPIError(403, []byte("<html>Forbidden</html>")), false, keyseal.ReasonUnreachable, "HTTP403"},
		{"a 404 that is not Google's", parseAPIError(404, []byte(`{"message":"no route"}`)), false, keyseal.ReasonUnreachable, "HTTP404"},
		{"context deadline", viaClient(context.DeadlineExceeded), false, keyseal.ReasonUnreachable, "Timeout"},
		{"dial", viaClient(&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}), false, keyseal.ReasonUnreachable, "NetworkError"},
		{"not an answer", errors.New("something else"), false, keyseal.ReasonUnreachable, "Unclassified"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ke := Classify(c.err)
			if ke.Terminal != c.terminal || ke.Reason != c.reason || ke.Code != c.code || ke.Err != c.err {
				t.Fatalf("Classify(%v) = terminal=%v reason=%s code=%s, want terminal=%v reason=%s code=%s", c.err, ke.Terminal, ke.Reason, ke.Code, c.terminal, c.reason, c.code)
			}
		})
	}
}

// Encrypt sends no ciphertext: its InvalidArgument is keyseal's request,
// never a reason to seal.
func TestClassifyEncryptInvalidArgument(t *testing.T) {
	ke := classifyEncrypt(answer(400, "INVALID_ARGUMENT", "Plaintext too large."))
	if ke.Terminal || ke.Reason != keyseal.ReasonUnreachable {
		t.Fatalf("classifyEncrypt(InvalidArgument) = %+v, want transient", ke)
	}
	if ke := classifyEncrypt(precondition(ViolationKeyDisabled)); !ke.Terminal || ke.Reason != keyseal.ReasonKeyDisabled {
		t.Fatalf("classifyEncrypt(KEY_DISABLED) = %+v, want terminal key_disabled", ke)
	}
}

// TestInt64JSON: the CRC32C fields are sent as protobuf JSON sends an
// int64 (a string), and read in either form.
func TestInt64JSON(t *testing.T) {
	b, err := Int64(4294967295).MarshalJSON()
	if err != nil || string(b) != `"4294967295"` {
		t.Fatalf("MarshalJSON = %s, %v", b, err)
	}
	for _, in := range []string{`"4294967295"`, `4294967295`} {
		var n Int64
		if err := n.UnmarshalJSON([]byte(in)); err != nil || n != 4294967295 {
			t.Fatalf("UnmarshalJSON(%s) = %d, %v", in, n, err)
		}
	}
	var n Int64
	if err := n.UnmarshalJSON([]byte(`"12x"`)); err == nil {
		t.Fatal("UnmarshalJSON took a non-number")
	}
}
