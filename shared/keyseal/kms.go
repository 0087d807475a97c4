package keyseal

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"sort"
	"strings"
	"syscall"
)

// Wrapped is what a provider's Wrap returns: everything its Unwrap needs
// later. KeyVersion names the key version that wrapped Blob when the
// provider reports one (a GCP CryptoKeyVersion, an Azure key version); AWS
// KMS records the version inside the blob and leaves it empty.
type Wrapped struct {
	Blob       []byte
	KeyVersion string
}

// KMS wraps and unwraps key material under a customer's (or keyseal's own)
// key. Errors it returns are *KMSError, already classified by the provider.
type KMS interface {
	// Wrap encrypts plaintext under key, bound to the encryption context ec.
	Wrap(ctx context.Context, key KeyRef, plaintext []byte, ec map[string]string) (Wrapped, error)
	// Unwrap decrypts w, pinned to key and bound to ec.
	Unwrap(ctx context.Context, key KeyRef, w Wrapped, ec map[string]string) ([]byte, error)
}

// Provider is the port every key provider implements (AWS KMS, local, and
// later GCP and Azure): the KMS calls plus the parsing of its own
// registration fields.
type Provider interface {
	KMS
	// ParseKey turns the registration fields of a request body (every
	// member but "provider", as strings) into a KeyRef of this provider.
	// It returns EKEYARN or EINVALID naming the field at fault, and refuses
	// fields the provider does not take.
	ParseKey(fields map[string]string) (KeyRef, error)
}

// KMSError is a provider failure classified per docs/contract.md §4: Terminal failures
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

// CodeOwnCredentialsRejected is the KMSError code of a call refused because
// keyseal's own cloud credentials were (an expired or rotated client
// secret, a broken federation config). It is transient: the fault is the
// operator's, not the customer's kill switch, so it never seals; health
// reports it as the operator's to fix.
const CodeOwnCredentialsRejected = "OwnCredentialsRejected"

// ClassifyKMS returns err as a *KMSError. Errors a provider did not classify
// are transient: when in doubt keyseal keeps serving from cache rather than
// sealing on a blip.
func ClassifyKMS(err error) *KMSError {
	var ke *KMSError
	if errors.As(err, &ke) {
		return ke
	}
	code, _ := TransportCode(err)
	return &KMSError{Reason: ReasonUnreachable, Code: code, Err: err}
}

// TransportCode names a failure that never got an answer from a KMS: a
// deadline, a cancellation, a dial, reset or truncated connection. ok is
// false (and code "Unclassified") for any other error. Every provider's
// classifier starts here, so a timeout means the same on AWS, GCP and
// Azure.
func TransportCode(err error) (code string, ok bool) {
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "Timeout", true
	case errors.Is(err, context.Canceled):
		return "Canceled", true
	case errors.As(err, &netErr), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.ECONNREFUSED):
		return "NetworkError", true
	}
	return "Unclassified", false
}

// UnsealReason maps a classified failure to the two reasons the unseal API
// reports: access_denied for terminal failures, unreachable otherwise.
func (e *KMSError) UnsealReason() string {
	if e.Terminal {
		return ReasonAccessDenied
	}
	return ReasonUnreachable
}

// KnownProviders are the provider names keyseal has (or will have) an
// adapter for; a deployment configures some of them.
var KnownProviders = []string{ProviderAWS, ProviderGCP, ProviderAzure, ProviderLocal}

// Providers dispatches to a Provider by KeyRef.Provider. Build it once at
// startup with the providers the deployment configures.
type Providers map[string]Provider

// Names lists the configured providers, sorted.
func (p Providers) Names() []string {
	names := make([]string, 0, len(p))
	for n := range p {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Require returns an error naming the provider when it is not configured:
// the startup check for the platform key's provider.
func (p Providers) Require(name string) error {
	if _, ok := p[name]; !ok {
		return fmt.Errorf("KMS provider %q is not configured (configured: %s)", name, strings.Join(p.Names(), ", "))
	}
	return nil
}

// ParseKey validates registration fields with the provider they name. An
// unknown provider is EINVALID; a known one this deployment lacks is
// EPROVIDER (422). Both messages list what this server supports.
func (p Providers) ParseKey(provider string, fields map[string]string) (KeyRef, error) {
	k, err := p.Lookup(provider)
	if err != nil {
		return KeyRef{}, err
	}
	return k.ParseKey(fields)
}

// Lookup returns the provider named: EINVALID when the name is empty or
// unknown, EPROVIDER (422) for a known provider this deployment lacks.
// Both messages list what this server supports.
func (p Providers) Lookup(provider string) (Provider, error) {
	supported := strings.Join(p.Names(), ", ")
	k, ok := p[provider]
	switch {
	case ok:
		return k, nil
	case provider == "":
		return nil, Errorf(EINVALID, "provider is required (this server supports: %s)", supported)
	case slices.Contains(KnownProviders, provider):
		return nil, Errorf(EPROVIDER, "provider %s is not configured on this server (it supports: %s)", provider, supported).
			With("supported_providers", p.Names())
	default:
		return nil, Errorf(EINVALID, "unknown provider %q (this server supports: %s)", provider, supported)
	}
}

// get returns the provider of key. A key naming a provider this process
// lacks is a deployment fault, not the customer's kill switch: the error
// is deliberately not a *KMSError, so it never seals a tenant; it surfaces
// as an internal error and in the poller's log.
func (p Providers) get(key KeyRef) (Provider, error) {
	k, ok := p[key.Provider]
	if !ok {
		return nil, fmt.Errorf("no KMS provider %q is configured in this process (configured: %s)", key.Provider, strings.Join(p.Names(), ", "))
	}
	return k, nil
}

// Wrap implements KMS.
func (p Providers) Wrap(ctx context.Context, key KeyRef, plaintext []byte, ec map[string]string) (Wrapped, error) {
	k, err := p.get(key)
	if err != nil {
		return Wrapped{}, err
	}
	return k.Wrap(ctx, key, plaintext, ec)
}

// Unwrap implements KMS.
func (p Providers) Unwrap(ctx context.Context, key KeyRef, w Wrapped, ec map[string]string) ([]byte, error) {
	k, err := p.get(key)
	if err != nil {
		return nil, err
	}
	return k.Unwrap(ctx, key, w, ec)
}

// NewEventID returns a fresh random event id (a UUID version 4), the id
// consumers deduplicate on.
func NewEventID() (string, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return "", err
	}
	id[6] = id[6]&0x0f | 0x40 // UUID version 4
	id[8] = id[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:]), nil
}
