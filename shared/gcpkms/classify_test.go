package gcpkms

import (
	"context"
	"fmt"
	"net"
	"testing"

	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyseal/keyseal/shared/keyseal"
)

func precondition(violation string) error {
	st := status.New(codes.FailedPrecondition, "The request cannot be fulfilled. Resource projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1 is not enabled, current state is: DISABLED.")
	st, err := st.WithDetails(&errdetails.PreconditionFailure{Violations: []*errdetails.PreconditionFailure_Violation{
		{Type: violation, Subject: "projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1"},
	}})
	if err != nil {
		panic(err)
	}
	return st.Err()
}

func TestClassify(t *testing.T) {
	serviceDisabled, _ := status.New(codes.FailedPrecondition, "Cloud Key Management Service (KMS) API has not been used in project p before or it is disabled.").
		WithDetails(&errdetails.ErrorInfo{Reason: "SERVICE_DISABLED", Domain: "googleapis.com"})
	wrapped, _ := apierror.FromError(precondition(ViolationKeyDisabled))
	for _, c := range []struct {
		name     string
		err      error
		terminal bool
		reason   string
		code     string
	}{
		{"permission denied", status.Error(codes.PermissionDenied, "Permission 'cloudkms.cryptoKeyVersions.useToDecrypt' denied on resource 'projects/p/...' (or it may not exist)."), true, keyseal.ReasonAccessDenied, "PermissionDenied"},
		// keyseal's own credentials refused: the operator's to fix, never a seal.
		{"token refused by Cloud KMS", status.Error(codes.Unauthenticated, "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential."), false, keyseal.ReasonUnreachable, keyseal.CodeOwnCredentialsRejected},
		{"federation refused by STS", status.Error(codes.Unauthenticated, `transport: per-RPC creds failed due to error: credentials: status code 400: {"error":"invalid_grant","error_description":"The audience in ID Token [...] does not match the expected audience."}`), false, keyseal.ReasonUnreachable, keyseal.CodeOwnCredentialsRejected},
		{"own service account impersonation refused", status.Error(codes.Unauthenticated, `transport: per-RPC creds failed due to error: credentials: status code 403: {"error":{"code":403,"message":"Permission 'iam.serviceAccounts.getAccessToken' denied on resource (or it may not exist).","status":"PERMISSION_DENIED"}}`), false, keyseal.ReasonUnreachable, keyseal.CodeOwnCredentialsRejected},
		{"token endpoint unreachable", status.Error(codes.Unauthenticated, `transport: per-RPC creds failed due to error: Post "https://sts.googleapis.com/v1/token": dial tcp: connection refused`), false, keyseal.ReasonUnreachable, "Unauthenticated"},
		{"not found", status.Error(codes.NotFound, "CryptoKey projects/p/... not found."), true, keyseal.ReasonKeyNotFound, "NotFound"},
		{"wrong key on decrypt", status.Error(codes.InvalidArgument, "Decryption failed: verify that 'name' refers to the correct CryptoKey."), true, keyseal.ReasonInvalidBlob, "InvalidArgument"},
		{"request checksum", status.Error(codes.InvalidArgument, "The checksum in field ciphertext_crc32c did not match the data in field ciphertext."), false, keyseal.ReasonUnreachable, "ChecksumMismatch"},
		{"version disabled", precondition(ViolationKeyDisabled), true, keyseal.ReasonKeyDisabled, "KEY_DISABLED"},
		{"version disabled, wrapped by gax", wrapped, true, keyseal.ReasonKeyDisabled, "KEY_DISABLED"},
		{"destroy scheduled", precondition(ViolationKeyDestroyScheduled), true, keyseal.ReasonPendingDeletion, "KEY_DESTROY_SCHEDULED"},
		{"destroyed", precondition(ViolationKeyDestroyed), true, keyseal.ReasonPendingDeletion, "KEY_DESTROYED"},
		{"API disabled", serviceDisabled.Err(), false, keyseal.ReasonUnreachable, "FailedPrecondition"},
		{"other precondition", precondition("SOMETHING_ELSE"), false, keyseal.ReasonUnreachable, "FailedPrecondition"},
		{"precondition without details", status.Error(codes.FailedPrecondition, "x"), false, keyseal.ReasonUnreachable, "FailedPrecondition"},
		{"unavailable", status.Error(codes.Unavailable, "The service is currently unavailable."), false, keyseal.ReasonUnreachable, "Unavailable"},
		{"deadline exceeded", status.Error(codes.DeadlineExceeded, "Deadline Exceeded"), false, keyseal.ReasonUnreachable, "DeadlineExceeded"},
		{"resource exhausted", status.Error(codes.ResourceExhausted, "Quota exceeded for quota metric 'Cryptographic requests'."), false, keyseal.ReasonUnreachable, "ResourceExhausted"},
		{"internal", status.Error(codes.Internal, "Internal error encountered."), false, keyseal.ReasonUnreachable, "Internal"},
		{"context deadline", fmt.Errorf("rpc: %w", context.DeadlineExceeded), false, keyseal.ReasonUnreachable, "Timeout"},
		{"dial", &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("connection refused")}, false, keyseal.ReasonUnreachable, "NetworkError"},
		{"not a status", fmt.Errorf("something else"), false, keyseal.ReasonUnreachable, "Unclassified"},
	} {
		t.Run(c.name, func(t *testing.T) {
			ke := Classify(c.err)
			if ke.Terminal != c.terminal || ke.Reason != c.reason || ke.Code != c.code || ke.Err != c.err {
				t.Fatalf("Classify = terminal=%v reason=%s code=%s, want terminal=%v reason=%s code=%s", ke.Terminal, ke.Reason, ke.Code, c.terminal, c.reason, c.code)
			}
		})
	}
}

// Encrypt sends no ciphertext: its InvalidArgument is keyseal's request,
// never a reason to seal.
func TestClassifyEncryptInvalidArgument(t *testing.T) {
	ke := classifyEncrypt(status.Error(codes.InvalidArgument, "Plaintext too large."))
	if ke.Terminal || ke.Reason != keyseal.ReasonUnreachable {
		t.Fatalf("classifyEncrypt(InvalidArgument) = %+v, want transient", ke)
	}
	if ke := classifyEncrypt(precondition(ViolationKeyDisabled)); !ke.Terminal || ke.Reason != keyseal.ReasonKeyDisabled {
		t.Fatalf("classifyEncrypt(KEY_DISABLED) = %+v, want terminal key_disabled", ke)
	}
}
