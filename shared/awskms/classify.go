package awskms

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// terminal maps the AWS error codes that mean "keyseal cannot use this key
// until the customer acts" to a seal reason. Every other code, and every
// error that is not an AWS API error (timeouts, resets, DNS), is transient:
// when in doubt keyseal keeps serving from the cached TMK rather than seal
// on a blip, and a failure that outlives the cache TTL seals anyway.
var terminal = map[string]string{
	// The key policy, a grant or IAM refuses keyseal: the kill switch.
	"AccessDeniedException": keyseal.ReasonAccessDenied,
	// The same, seen through an assumed customer role whose trust policy or
	// credentials were revoked (STS and SigV4 codes).
	"AccessDenied":                keyseal.ReasonAccessDenied,
	"UnrecognizedClientException": keyseal.ReasonAccessDenied,
	"InvalidClientTokenId":        keyseal.ReasonAccessDenied,
	"InvalidSignatureException":   keyseal.ReasonAccessDenied,
	"SignatureDoesNotMatch":       keyseal.ReasonAccessDenied,
	"ExpiredToken":                keyseal.ReasonAccessDenied,
	"ExpiredTokenException":       keyseal.ReasonAccessDenied,
	"MissingAuthenticationToken":  keyseal.ReasonAccessDenied,
	// A grant keyseal relied on was retired or revoked: access is gone.
	"InvalidGrantTokenException": keyseal.ReasonAccessDenied,
	"InvalidGrantIdException":    keyseal.ReasonAccessDenied,
	// The key was changed to a usage that cannot encrypt (or an asymmetric
	// key was registered): no retry will help.
	"InvalidKeyUsageException": keyseal.ReasonAccessDenied,

	"DisabledException":       keyseal.ReasonKeyDisabled,
	"NotFoundException":       keyseal.ReasonKeyNotFound,
	"InvalidArnException":     keyseal.ReasonKeyNotFound,
	"XksKeyNotFoundException": keyseal.ReasonKeyNotFound,
	// The blob is not this key's, or was tampered with.
	"InvalidCiphertextException": keyseal.ReasonInvalidBlob,
	"IncorrectKeyException":      keyseal.ReasonInvalidBlob,
}

// invalidState is KMSInvalidStateException's code: the key is in a state
// that refuses the call, which is either terminal (pending deletion) or
// transient (an external key store that is disconnected), so DescribeKey
// decides.
const invalidState = "KMSInvalidStateException"

// Classify maps an error from a KMS call on keyID to a *keyseal.KMSError.
// client is used once, for DescribeKey, when the error is
// KMSInvalidStateException.
func Classify(ctx context.Context, client API, keyID string, err error) *keyseal.KMSError {
	return classify(ctx, client, keyID, err, true)
}

func classify(ctx context.Context, client API, keyID string, err error, describe bool) *keyseal.KMSError {
	var api smithy.APIError
	if !errors.As(err, &api) {
		return &keyseal.KMSError{Reason: keyseal.ReasonUnreachable, Code: networkCode(err), Err: err}
	}
	code := api.ErrorCode()
	if reason, ok := terminal[code]; ok {
		return &keyseal.KMSError{Terminal: true, Reason: reason, Code: code, Err: err}
	}
	if code == invalidState && describe && client != nil {
		return resolveState(ctx, client, keyID, err)
	}
	return &keyseal.KMSError{Reason: keyseal.ReasonUnreachable, Code: code, Err: err}
}

// resolveState asks DescribeKey what KMSInvalidStateException meant.
func resolveState(ctx context.Context, client API, keyID string, cause error) *keyseal.KMSError {
	out, err := client.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	if err != nil {
		// The describe failed in its own right (access gone, network down):
		// that failure is the answer, classified without another describe.
		return classify(ctx, nil, keyID, err, false)
	}
	state := types.KeyState("")
	if out.KeyMetadata != nil {
		state = out.KeyMetadata.KeyState
	}
	e := &keyseal.KMSError{Code: invalidState + "/" + string(state), Err: cause}
	switch state {
	case types.KeyStatePendingDeletion, types.KeyStatePendingReplicaDeletion:
		e.Terminal, e.Reason = true, keyseal.ReasonPendingDeletion
	case types.KeyStateDisabled:
		e.Terminal, e.Reason = true, keyseal.ReasonKeyDisabled
	default:
		// Unavailable (an external or CloudHSM key store is disconnected),
		// Creating, Updating, PendingImport, or the key became Enabled since:
		// all can clear without the customer revoking anything.
		e.Reason = keyseal.ReasonUnreachable
	}
	return e
}

// networkCode names a failure that never reached a KMS answer.
func networkCode(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "Timeout"
	case errors.Is(err, context.Canceled):
		return "Canceled"
	}
	return "NetworkError"
}
