package gcpkms

import (
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// PreconditionFailure violation types Cloud KMS puts on a
// FailedPrecondition about the key version's state.
const (
	ViolationKeyDisabled         = "KEY_DISABLED"
	ViolationKeyDestroyScheduled = "KEY_DESTROY_SCHEDULED"
	ViolationKeyDestroyed        = "KEY_DESTROYED"
)

// Classify turns an error of a Cloud KMS call into a *keyseal.KMSError,
// reading InvalidArgument as Decrypt means it: the ciphertext or AAD is not
// this key's (terminal invalid_ciphertext). Code is the gRPC code name, or
// the violation type for a key state.
func Classify(err error) *keyseal.KMSError {
	return classify(err)
}

// classifyEncrypt is Classify for calls that send no ciphertext: an
// InvalidArgument there is a request keyseal built, never the customer's
// kill switch, so it does not seal.
func classifyEncrypt(err error) *keyseal.KMSError {
	ke := classify(err)
	if ke.Code == codes.InvalidArgument.String() {
		return &keyseal.KMSError{Reason: keyseal.ReasonUnreachable, Code: ke.Code, Err: err}
	}
	return ke
}

func classify(err error) *keyseal.KMSError {
	terminal := func(reason, code string) *keyseal.KMSError {
		return &keyseal.KMSError{Terminal: true, Reason: reason, Code: code, Err: err}
	}
	transient := func(code string) *keyseal.KMSError {
		return &keyseal.KMSError{Reason: keyseal.ReasonUnreachable, Code: code, Err: err}
	}
	if code, ok := keyseal.TransportCode(err); ok {
		return transient(code)
	}
	st, ok := status.FromError(err)
	if !ok {
		return transient("Unclassified")
	}
	name := st.Code().String()
	switch st.Code() {
	case codes.PermissionDenied:
		return terminal(keyseal.ReasonAccessDenied, name)
	case codes.NotFound:
		return terminal(keyseal.ReasonKeyNotFound, name)
	case codes.InvalidArgument:
		// Cloud KMS checks the request checksums it is sent: a mismatch is
		// damage in transit, not a wrong key.
		if strings.Contains(strings.ToLower(st.Message()), "crc32c") {
			return transient("ChecksumMismatch")
		}
		return terminal(keyseal.ReasonInvalidBlob, name)
	case codes.FailedPrecondition:
		switch violation(st) {
		case ViolationKeyDisabled:
			return terminal(keyseal.ReasonKeyDisabled, ViolationKeyDisabled)
		case ViolationKeyDestroyScheduled:
			return terminal(keyseal.ReasonPendingDeletion, ViolationKeyDestroyScheduled)
		case ViolationKeyDestroyed:
			return terminal(keyseal.ReasonPendingDeletion, ViolationKeyDestroyed)
		}
		// The Cloud KMS API disabled in the project, or another
		// precondition that is not the key's state: the operator's to fix,
		// not a reason to seal.
		return transient(name)
	}
	// Unauthenticated is keyseal's own credentials failing (gRPC also
	// reports a token that could not be fetched this way): never the
	// customer's kill switch, so it does not seal. When Google refused
	// them (STS invalid_grant on the federation config, a token Cloud KMS
	// will not take) the code says it is the operator's to fix; a token
	// endpoint that could not be reached stays plain Unauthenticated.
	if st.Code() == codes.Unauthenticated && OwnCredentialsRefused(st.Message()) {
		return transient(keyseal.CodeOwnCredentialsRejected)
	}
	return transient(name)
}

// ownRefusals are what Google's answers say when it refuses keyseal's own
// credentials: the OAuth error codes of the token and STS endpoints, the
// "credentials: status code 4xx" of cloud.google.com/go/auth's STS
// exchange and own-account impersonation, and Cloud KMS refusing the
// token it was sent.
var ownRefusals = []string{`invalid_grant`, `invalid_client`, `unauthorized_client`, `invalid_scope`,
	"credentials: status code 4", "invalid authentication credentials"}

// OwnCredentialsRefused reports whether msg (an error's text) is Google
// refusing keyseal's own credentials, as opposed to failing to answer.
func OwnCredentialsRefused(msg string) bool {
	for _, r := range ownRefusals {
		if strings.Contains(msg, r) {
			return true
		}
	}
	return false
}

// violation returns the first key-state violation type of a
// FailedPrecondition, "" when there is none.
func violation(st *status.Status) string {
	for _, d := range st.Details() {
		pf, ok := d.(*errdetails.PreconditionFailure)
		if !ok {
			continue
		}
		for _, v := range pf.GetViolations() {
			switch v.GetType() {
			case ViolationKeyDisabled, ViolationKeyDestroyScheduled, ViolationKeyDestroyed:
				return v.GetType()
			}
		}
	}
	return ""
}
