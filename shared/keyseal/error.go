// Package keyseal holds the domain of the service: tenants and their TMK
// versions, the audit chain, agents and step-up tokens, the ports (narrow
// interfaces) that adapters implement, and the application error type.
package keyseal

import (
	"errors"
	"fmt"
)

// Error codes. The HTTP layer (shared/api) maps each to exactly one status;
// the code is what clients see in the "error"/"type" field.
const (
	EINVALID        = "invalid_request"
	EUNAUTHORIZED   = "unauthorized"
	EFORBIDDEN      = "forbidden"
	ENOTFOUND       = "not_found"
	EMETHOD         = "method_not_allowed"
	ECONFLICT       = "conflict"
	EINTERNAL       = "internal"
	ESEALED         = "tenant_sealed"
	EKMSUNAVAILABLE = "kms_unavailable"
	// EUNAVAILABLE: the store is throttling, failing or not answering. It is
	// retryable (503 with Retry-After), never an internal error: the request
	// was fine and nothing keyseal decided was wrong.
	EUNAVAILABLE  = "store_unavailable"
	ESTEPUP       = "step_up_required"
	EINSUFFICIENT = "insufficient_user_authentication"
	ENOTSEALED    = "not_sealed"
	EUNSEALFAILED = "unseal_failed"
	EREVOKED      = "tenant_revoked"
	EKEYARN       = "invalid_key_arn"
	EKEYURL       = "invalid_key_url" // a malformed Azure Key Vault key URL
	// EKEYNAME: a gcp-kms key_name that is not a CryptoKey name.
	EKEYNAME   = "invalid_key_name"
	ECMKACCESS = "cannot_access_cmk"
	EKEYEXISTS = "byok_key_exists"
	ETENANT    = "tenant_not_found"
	// EREVOKEDVERSION: the TMK version named was already revoked.
	EREVOKEDVERSION = "already_revoked"
	// EPROVIDER: the provider is one keyseal knows but this deployment has
	// not configured (gcp-kms on a server built with AWS KMS only, say).
	EPROVIDER = "provider_not_configured"
	// EWAIVER: the current legal waiver was never acknowledged; EWAIVERREACK:
	// only an older version was. Both block register and migrate.
	EWAIVER      = "waiver_not_acknowledged"
	EWAIVERREACK = "waiver_reacknowledgment_required"
	// ENOTFORWARDABLE: the tenant's key has no KMS events to forward to
	// keyseal (gcp-kms, azure-kv, or no customer key at all).
	ENOTFORWARDABLE = "not_forwardable"
)

// Error is the application error: a code from the table above, a message safe
// to show to clients, and optional extra fields for the admin error body
// (for example "reason" on unseal_failed). Cause, when set, is the failure
// behind it, for logs and errors.As; clients never see it.
type Error struct {
	Code    string
	Message string
	Extra   map[string]any
	Cause   error
}

func (e *Error) Error() string {
	if e.Cause != nil {
		return fmt.Sprintf("keyseal %s: %s: %v", e.Code, e.Message, e.Cause)
	}
	return fmt.Sprintf("keyseal %s: %s", e.Code, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Cause }

// Unavailable wraps a store failure that a retry may cure (throttling, a
// 5xx, a timeout, a lost connection) as EUNAVAILABLE.
func Unavailable(cause error) *Error {
	return &Error{Code: EUNAVAILABLE, Message: "the data store is temporarily unavailable; retry shortly", Cause: cause}
}

// Errorf builds an *Error with a formatted client-safe message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// With returns a copy of e with an extra body field set.
func (e *Error) With(key string, value any) *Error {
	c := *e
	c.Extra = make(map[string]any, len(e.Extra)+1)
	for k, v := range e.Extra {
		c.Extra[k] = v
	}
	c.Extra[key] = value
	return &c
}

// ErrorCode returns the code of an application error, EINTERNAL for any other
// non-nil error and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return "" // before e exists: e escapes, so declaring it allocates
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EINTERNAL
}

// ErrorMessage returns the client-safe message of err; internal errors never
// expose their text.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != EINTERNAL {
		return e.Message
	}
	return "internal error"
}
