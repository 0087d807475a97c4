package keyseal

import (
	"context"
	"errors"
	"fmt"
)

// KMS is the port every key provider implements (AWS KMS, local). Errors
// it returns are *KMSError, already classified by the provider.
type KMS interface {
	// Wrap encrypts plaintext under key, bound to the encryption context ec.
	Wrap(ctx context.Context, key KeyRef, plaintext []byte, ec map[string]string) ([]byte, error)
	// Unwrap decrypts blob, pinned to key and bound to ec.
	Unwrap(ctx context.Context, key KeyRef, blob []byte, ec map[string]string) ([]byte, error)
}

// KMSError is a provider failure classified per SPEC §4: Terminal failures
// seal at once; transient ones are retried until the TMK cache TTL ends.
type KMSError struct {
	Terminal bool
	// Reason is one of the Reason* constants.
	Reason string
	// Code is the provider's own error code (for last_verify_error).
	Code string
	Err  error
}

func (e *KMSError) Error() string {
	kind := "transient"
	if e.Terminal {
		kind = "terminal"
	}
	if e.Err == nil {
		return fmt.Sprintf("kms %s (%s): %s", kind, e.Reason, e.Code)
	}
	return fmt.Sprintf("kms %s (%s): %v", kind, e.Reason, e.Err)
}

func (e *KMSError) Unwrap() error { return e.Err }

// ClassifyKMS returns err as a *KMSError. Errors a provider did not classify
// (context deadlines, dial errors that escaped) are transient: when in doubt
// keyseal keeps serving from cache rather than sealing on a blip.
func ClassifyKMS(err error) *KMSError {
	var ke *KMSError
	if errors.As(err, &ke) {
		return ke
	}
	return &KMSError{Reason: ReasonUnreachable, Code: "Unclassified", Err: err}
}

// UnsealReason maps a classified failure to the two reasons the unseal API
// reports: access_denied for terminal failures, unreachable otherwise.
func (e *KMSError) UnsealReason() string {
	if e.Terminal {
		return ReasonAccessDenied
	}
	return ReasonUnreachable
}

// Providers dispatches to a KMS by KeyRef.Provider.
type Providers map[string]KMS

func (p Providers) get(key KeyRef) (KMS, error) {
	k, ok := p[key.Provider]
	if !ok {
		return nil, &KMSError{Terminal: true, Reason: ReasonKeyNotFound, Code: "UnknownProvider",
			Err: fmt.Errorf("no KMS provider %q configured", key.Provider)}
	}
	return k, nil
}

// Wrap implements KMS.
func (p Providers) Wrap(ctx context.Context, key KeyRef, plaintext []byte, ec map[string]string) ([]byte, error) {
	k, err := p.get(key)
	if err != nil {
		return nil, err
	}
	return k.Wrap(ctx, key, plaintext, ec)
}

// Unwrap implements KMS.
func (p Providers) Unwrap(ctx context.Context, key KeyRef, blob []byte, ec map[string]string) ([]byte, error) {
	k, err := p.get(key)
	if err != nil {
		return nil, err
	}
	return k.Unwrap(ctx, key, blob, ec)
}

// Events is the port for publishing tenant.kms.* events.
type Events interface {
	Publish(ctx context.Context, e Event) error
}

// Event detail types.
const (
	EventSealed   = "tenant.kms.sealed"
	EventUnsealed = "tenant.kms.unsealed"
)

// Event is one tenant.kms.* event.
type Event struct {
	Type     string            `json:"type"`
	TenantID string            `json:"tenant_id"`
	Reason   string            `json:"reason,omitempty"`
	Details  map[string]string `json:"details,omitempty"`
	Time     string            `json:"time"`
}
