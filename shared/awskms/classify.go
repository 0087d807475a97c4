package awskms

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// terminal maps the AWS error codes that mean "keyseal cannot use this key
// until the customer acts" to a seal reason. Every other code, and every
// error that is not an AWS API error (timeouts, resets, DNS), is transient:
// when in doubt keyseal keeps serving from the cached TMK rather than seal
// on a blip, and a failure that outlives the cache TTL seals anyway (with
// reason unreachable). Sealing a healthy tenant at once on an error nobody
// anticipated would be the worse mistake.
var terminal = map[string]string{
	// The key policy, a grant or IAM refuses keyseal: the kill switch.
	"AccessDeniedException": keyseal.ReasonAccessDenied,
	// The same, seen through an assumed customer role whose trust policy or
	// credentials were revoked. stscreds returns STS's error unchanged and
	// the credentials cache and the KMS client wrap it with %w, so the STS
	// code (query protocol: AccessDenied, ExpiredToken, ...) reaches this
	// table. The SigV4 codes are what KMS answers when the role's session
	// credentials themselves are refused.
	"AccessDenied":                        keyseal.ReasonAccessDenied,
	"UnrecognizedClientException":         keyseal.ReasonAccessDenied,
	"InvalidClientTokenId":                keyseal.ReasonAccessDenied,
	"InvalidSignatureException":           keyseal.ReasonAccessDenied,
	"SignatureDoesNotMatch":               keyseal.ReasonAccessDenied,
	"IncompleteSignature":                 keyseal.ReasonAccessDenied,
	"IncompleteSignatureException":        keyseal.ReasonAccessDenied,
	"ExpiredToken":                        keyseal.ReasonAccessDenied,
	"ExpiredTokenException":               keyseal.ReasonAccessDenied,
	"MissingAuthenticationToken":          keyseal.ReasonAccessDenied,
	"MissingAuthenticationTokenException": keyseal.ReasonAccessDenied,
	// Grant failures are authorization failures: keyseal sends no grant
	// tokens of its own, so KMS raising one means the grant its access
	// rested on was retired or revoked. Access is gone until the customer
	// restores it, exactly like a key policy edit.
	"InvalidGrantTokenException": keyseal.ReasonAccessDenied,
	"InvalidGrantIdException":    keyseal.ReasonAccessDenied,
	// The key no longer permits ENCRYPT_DECRYPT (an alias repointed to a
	// signing key, say): keyseal may not use it for wrapping, and no retry
	// changes that, so it counts as access denied.
	"InvalidKeyUsageException": keyseal.ReasonAccessDenied,

	"DisabledException": keyseal.ReasonKeyDisabled,
	"NotFoundException": keyseal.ReasonKeyNotFound,
	// A key ARN KMS cannot parse will never name a key.
	"InvalidArnException": keyseal.ReasonKeyNotFound,
	// The external key behind an XKS key is gone from the customer's
	// external key manager.
	"XksKeyNotFoundException": keyseal.ReasonKeyNotFound,
	// The blob is not this key's, was made with another encryption context,
	// or was tampered with: retrying cannot make it decrypt.
	"InvalidCiphertextException": keyseal.ReasonInvalidBlob,
	"IncorrectKeyException":      keyseal.ReasonInvalidBlob,
}

// invalidState is KMSInvalidStateException's code: the key is in a state
// that refuses the call, which is either terminal (pending deletion) or
// transient (an external key store that is disconnected), so DescribeKey
// decides.
const invalidState = "KMSInvalidStateException"

// Classify maps an error from a KMS call on keyID to a *keyseal.KMSError:
// Code is the AWS error code (or a name for a failure that never reached
// KMS) and Err the original error. KMSInvalidStateException is resolved
// with one DescribeKey call on client; client may be nil to skip that, and
// the answer is then transient. An error that is already a KMSError is
// returned as it is, and a nil error gives nil.
func Classify(ctx context.Context, client API, keyID string, err error) *keyseal.KMSError {
	if err == nil {
		return nil
	}
	var ke *keyseal.KMSError
	if errors.As(err, &ke) {
		return ke
	}
	c := classify(err)
	if c.Code == invalidState && client != nil {
		return resolveState(ctx, client, keyID, err)
	}
	return c
}

// classify maps err by its code alone. It never calls KMS, which is what
// bounds the DescribeKey resolution to one call.
func classify(err error) *keyseal.KMSError {
	var api smithy.APIError
	if errors.As(err, &api) {
		code := api.ErrorCode()
		if reason, ok := terminal[code]; ok {
			return &keyseal.KMSError{Terminal: true, Reason: reason, Code: code, Err: err}
		}
		var status interface{ HTTPStatusCode() int }
		if (code == "" || code == "UnknownError") && errors.As(err, &status) {
			// A 5xx (or other) answer without a code KMS would send: a
			// load balancer or proxy in between failed.
			code = fmt.Sprintf("HTTP%d", status.HTTPStatusCode())
		}
		// Throttling, KMSInternalException, DependencyTimeoutException,
		// KeyUnavailableException, the custom key store and XKS proxy
		// failures, 5xx answers, and codes KMS may add later.
		return &keyseal.KMSError{Reason: keyseal.ReasonUnreachable, Code: code, Err: err}
	}
	return &keyseal.KMSError{Reason: keyseal.ReasonUnreachable, Code: localCode(err), Err: err}
}

// resolveState asks DescribeKey what KMSInvalidStateException meant.
func resolveState(ctx context.Context, client API, keyID string, cause error) *keyseal.KMSError {
	out, err := client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)}, inKeyRegion(keyID)...)
	if err != nil {
		// The describe failed in its own right (access gone, key deleted,
		// network down): that failure is the answer, classified by code
		// alone so that it cannot lead to another describe. The documented
		// key policy grants kms:DescribeKey, so a denial here is a denial.
		d := classify(err)
		d.Err = fmt.Errorf("%w (DescribeKey, to resolve it: %w)", cause, err)
		return d
	}
	state := types.KeyState("")
	if out.KeyMetadata != nil {
		state = out.KeyMetadata.KeyState
	}
	e := &keyseal.KMSError{Code: invalidState, Err: fmt.Errorf("%w (key state %s)", cause, state)}
	switch state {
	case types.KeyStatePendingDeletion, types.KeyStatePendingReplicaDeletion:
		e.Terminal, e.Reason = true, keyseal.ReasonPendingDeletion
	case types.KeyStateDisabled:
		e.Terminal, e.Reason = true, keyseal.ReasonKeyDisabled
	case types.KeyStatePendingImport:
		// Imported key material was deleted or expired: the customer pulled
		// it, and only the customer re-importing it brings the key back.
		e.Terminal, e.Reason = true, keyseal.ReasonKeyDisabled
	default:
		// Unavailable (an external or CloudHSM key store is disconnected),
		// Creating, Updating, a state added later, or the key
		// became Enabled since: all can clear without the customer revoking
		// anything.
		e.Reason = keyseal.ReasonUnreachable
	}
	return e
}

// localCode names a failure that never got a KMS answer: the transport
// failures every provider shares, plus the SDK's own wrapper of a request
// that could not be sent.
func localCode(err error) string {
	if code, ok := keyseal.TransportCode(err); ok {
		return code
	}
	if _, ok := errors.AsType[*smithyhttp.RequestSendError](err); ok {
		return "NetworkError"
	}
	// Anything else (missing credentials, a serialization failure) is
	// transient too, for the reason on terminal; the code says it was not
	// recognised.
	return "Unclassified"
}
