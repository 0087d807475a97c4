package gcpkms

import (
	"errors"
	"net/http"
	"strings"

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
// reading INVALID_ARGUMENT as Decrypt means it: the ciphertext or AAD is
// not this key's (terminal invalid_ciphertext). Code is the canonical
// code in gRPC spelling (PermissionDenied), or the violation type for a
// key state. Only Google's own error body can seal: an answer that is not
// one, and a call that got no answer, are transient.
func Classify(err error) *keyseal.KMSError {
	return classify(err)
}

// classifyEncrypt is Classify for calls that send no ciphertext: an
// InvalidArgument there is a request keyseal built, never the customer's
// kill switch, so it does not seal.
func classifyEncrypt(err error) *keyseal.KMSError {
	ke := classify(err)
	if ke.Code == "InvalidArgument" {
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
	// A token that could not be had comes first: the HTTP client reports
	// it as a *url.Error, which is a net.Error too.
	var te *TokenError
	if errors.As(err, &te) {
		switch {
		case te.Own && te.refused():
			return transient(keyseal.CodeOwnCredentialsRejected)
		case te.Own:
			return transient("Unauthenticated")
		case te.HTTPStatus == http.StatusForbidden, te.HTTPStatus == http.StatusNotFound:
			return terminal(keyseal.ReasonAccessDenied, "PermissionDenied")
		}
		return transient("Unavailable")
	}
	if code, ok := keyseal.TransportCode(err); ok {
		return transient(code)
	}
	var ae *APIError
	if !errors.As(err, &ae) {
		return transient("Unclassified")
	}
	name := ae.Code()
	switch ae.Status {
	case "PERMISSION_DENIED":
		return terminal(keyseal.ReasonAccessDenied, name)
	case "NOT_FOUND":
		return terminal(keyseal.ReasonKeyNotFound, name)
	case "INVALID_ARGUMENT":
		// Cloud KMS checks the request checksums it is sent: a mismatch is
		// damage in transit, not a wrong key.
		if strings.Contains(strings.ToLower(ae.Message), "crc32c") {
			return transient("ChecksumMismatch")
		}
		return terminal(keyseal.ReasonInvalidBlob, name)
	case "FAILED_PRECONDITION":
		switch violation(ae) {
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
	case "UNAUTHENTICATED":
		// Cloud KMS refusing the token keyseal sent: keyseal's own
		// credentials, never the customer's kill switch.
		if OwnCredentialsRefused(ae.Message) {
			return transient(keyseal.CodeOwnCredentialsRejected)
		}
	}
	return transient(name)
}

// ownRefusals are what Google's answers say when it refuses keyseal's own
// credentials: the OAuth error codes of the token and STS endpoints, the
// "status code 4xx" golang.org/x/oauth2's STS exchange and own-account
// impersonation report, and Cloud KMS refusing the token it was sent.
var ownRefusals = []string{`invalid_grant`, `invalid_client`, `unauthorized_client`, `invalid_scope`,
	"status code 4", "invalid authentication credentials"}

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
// FAILED_PRECONDITION, "" when there is none.
func violation(ae *APIError) string {
	for _, v := range ae.Violations {
		switch v {
		case ViolationKeyDisabled, ViolationKeyDestroyScheduled, ViolationKeyDestroyed:
			return v
		}
	}
	return ""
}
