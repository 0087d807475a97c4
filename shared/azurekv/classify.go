package azurekv

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// CodeKeyDisabled is the innererror code Key Vault sends when an
// operation is refused on a disabled key.
const CodeKeyDisabled = "KeyDisabled"

// errorBody is Key Vault's error response. ResponseError.ErrorCode holds
// only error.code ("Forbidden" for both a disabled key and a missing role
// assignment); the innererror telling them apart is only in the body.
type errorBody struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError *struct {
			Code string `json:"code"`
		} `json:"innererror"`
	} `json:"error"`
}

// Classify turns an azkeys failure into a *keyseal.KMSError:
//   - 403 with innererror KeyDisabled: key_disabled, terminal;
//   - other 401 and 403: access_denied, terminal (no role assignment, a
//     wrong tenant, a firewall refusing keyseal);
//   - 404: key_not_found, terminal (a deleted key answers so, soft-deleted
//     or not: Key Vault does not tell a recoverable key apart to a caller
//     without keys/recover permission);
//   - 400: invalid_ciphertext, terminal (Key Vault could not unwrap it);
//   - 429 and 5xx: transient, with Retry-After in the error when sent;
//   - a token Entra would not issue: see classifyEntra (keyseal's own
//     secret refused is transient CodeOwnCredentialsRejected; keyseal's
//     app removed from the customer's tenant is access_denied);
//   - no answer at all: keyseal.TransportCode, transient.
//
// Code is the innermost code the body names, else error.code, else the
// HTTP status.
func Classify(err error) *keyseal.KMSError {
	var ke *keyseal.KMSError
	if errors.As(err, &ke) {
		return ke
	}
	if ke, ok := classifyEntra(err); ok {
		return ke
	}
	var re *azcore.ResponseError
	if !errors.As(err, &re) {
		code, _ := keyseal.TransportCode(err)
		return &keyseal.KMSError{Reason: keyseal.ReasonUnreachable, Code: code, Err: err}
	}
	var body errorBody
	if re.RawResponse != nil {
		if b, perr := runtime.Payload(re.RawResponse); perr == nil {
			_ = json.Unmarshal(b, &body) // a body that is not JSON leaves only the status
		}
	}
	inner := ""
	if body.Error.InnerError != nil {
		inner = body.Error.InnerError.Code
	}
	code := firstOf(inner, body.Error.Code, re.ErrorCode, http.StatusText(re.StatusCode))
	e := &keyseal.KMSError{Code: code, Err: fmt.Errorf("azure-kv: %d %s: %s", re.StatusCode, code, body.Error.Message)}
	switch s := re.StatusCode; {
	case s == http.StatusForbidden && inner == CodeKeyDisabled:
		e.Terminal, e.Reason = true, keyseal.ReasonKeyDisabled
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		e.Terminal, e.Reason = true, keyseal.ReasonAccessDenied
	case s == http.StatusNotFound:
		e.Terminal, e.Reason = true, keyseal.ReasonKeyNotFound
	case s == http.StatusBadRequest:
		e.Terminal, e.Reason = true, keyseal.ReasonInvalidBlob
	case s == http.StatusTooManyRequests:
		e.Reason = keyseal.ReasonUnreachable
		if ra := re.RawResponse.Header.Get("Retry-After"); ra != "" {
			e.Err = fmt.Errorf("%w (Retry-After: %s)", e.Err, ra)
		}
	default:
		// 5xx and anything unforeseen: keep serving from cache.
		e.Reason = keyseal.ReasonUnreachable
	}
	return e
}

func firstOf(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return "Unclassified"
}
