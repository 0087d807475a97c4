// Package gcpkms is the GCP Cloud KMS provider: TMKs are wrapped with
// Encrypt on the customer's CryptoKey (its primary version), bound to the
// tenant's encryption context as additional authenticated data, and
// unwrapped with Decrypt on the same CryptoKey. Every request and answer
// carries CRC32C checksums that are checked both ways, so bytes damaged in
// transit are never used. Every failure comes back classified per
// docs/contract.md §4.
package gcpkms

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"sort"
	"strings"
	"sync"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// API is the slice of Cloud KMS the provider uses (*Client).
type API interface {
	Encrypt(ctx context.Context, req *EncryptRequest) (*EncryptResponse, error)
	Decrypt(ctx context.Context, req *DecryptRequest) (*DecryptResponse, error)
	GetCryptoKey(ctx context.Context, name string) (*CryptoKey, error)
}

// Provider implements keyseal.Provider on GCP Cloud KMS. It is safe for
// concurrent use.
type Provider struct {
	client    API
	clientFor func(serviceAccount string) (API, error)
	// self is keyseal's own service account, named in advice.
	self string
}

var (
	_ keyseal.Provider  = (*Provider)(nil)
	_ keyseal.KeyStater = (*Provider)(nil)
)

// Option configures a Provider.
type Option func(*Provider)

// WithServiceAccounts makes keys that name a service_account go through
// the client clientFor returns for it (one impersonating that account).
// Without it the provider refuses to register such keys, and never calls
// KMS for one with keyseal's own identity instead.
func WithServiceAccounts(clientFor func(serviceAccount string) (API, error)) Option {
	return func(p *Provider) { p.clientFor = clientFor }
}

// New returns a provider calling Cloud KMS with client, keyseal's own
// identity.
func New(client API, opts ...Option) *Provider {
	p := &Provider{client: client}
	for _, o := range opts {
		o(p)
	}
	return p
}

// errNoImpersonation is a deployment fault, deliberately not a *KMSError:
// it must never seal a tenant.
var errNoImpersonation = errors.New("gcp-kms: the key names a service_account but this process has no impersonation configured")

func (p *Provider) clientOf(key keyseal.KeyRef) (API, error) {
	sa := key.Access[AccessServiceAccount]
	if sa == "" {
		return p.client, nil
	}
	if p.clientFor == nil {
		return nil, errNoImpersonation
	}
	return p.clientFor(sa)
}

// castagnoli is the CRC32C table, made on first use (MakeTable builds
// it, about 8 KiB, which a Lambda never using Cloud KMS need not pay for
// at init).
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

func crc(b []byte) *Int64 {
	n := Int64(crc32.Checksum(b, castagnoli()))
	return &n
}

// integrity is the transient failure of a checksum that did not match:
// the bytes were damaged on the way, a retry may succeed.
func integrity(what string) *keyseal.KMSError {
	return &keyseal.KMSError{Reason: keyseal.ReasonUnreachable, Code: "ChecksumMismatch", Err: errors.New("gcp-kms: " + what)}
}

// Wrap implements keyseal.KMS with Encrypt on the CryptoKey. KeyVersion is
// the CryptoKeyVersion that Cloud KMS says encrypted.
func (p *Provider) Wrap(ctx context.Context, key keyseal.KeyRef, plaintext []byte, ec map[string]string) (keyseal.Wrapped, error) {
	c, err := p.clientOf(key)
	if err != nil {
		return keyseal.Wrapped{}, err
	}
	aad := AAD(ec)
	out, err := c.Encrypt(ctx, &EncryptRequest{
		Name:                              key.KeyID,
		Plaintext:                         plaintext,
		PlaintextCRC32C:                   crc(plaintext),
		AdditionalAuthenticatedData:       aad,
		AdditionalAuthenticatedDataCRC32C: crc(aad),
	})
	if err != nil {
		return keyseal.Wrapped{}, classifyEncrypt(err)
	}
	switch {
	case !out.VerifiedPlaintextCRC32C:
		return keyseal.Wrapped{}, integrity("Encrypt did not verify the plaintext checksum")
	case !out.VerifiedAdditionalAuthenticatedDataCRC32C:
		return keyseal.Wrapped{}, integrity("Encrypt did not verify the AAD checksum")
	case !matches(out.CiphertextCRC32C, out.Ciphertext):
		return keyseal.Wrapped{}, integrity("the ciphertext does not match its checksum")
	case !underKey(out.Name, key.KeyID):
		return keyseal.Wrapped{}, integrity("Encrypt answered for another key: " + out.Name)
	}
	return keyseal.Wrapped{Blob: out.Ciphertext, KeyVersion: out.Name}, nil
}

// Unwrap implements keyseal.KMS with Decrypt on the CryptoKey, which finds
// the version in the ciphertext itself and refuses a blob of another key
// (InvalidArgument). w.KeyVersion is not needed for that: it is the record
// of which version wrapped, for health and rotation.
func (p *Provider) Unwrap(ctx context.Context, key keyseal.KeyRef, w keyseal.Wrapped, ec map[string]string) ([]byte, error) {
	c, err := p.clientOf(key)
	if err != nil {
		return nil, err
	}
	aad := AAD(ec)
	out, err := c.Decrypt(ctx, &DecryptRequest{
		Name:                              key.KeyID,
		Ciphertext:                        w.Blob,
		CiphertextCRC32C:                  crc(w.Blob),
		AdditionalAuthenticatedData:       aad,
		AdditionalAuthenticatedDataCRC32C: crc(aad),
	})
	if err != nil {
		return nil, Classify(err)
	}
	if !matches(out.PlaintextCRC32C, out.Plaintext) {
		return nil, integrity("the plaintext does not match its checksum")
	}
	return out.Plaintext, nil
}

// KeyState implements keyseal.KeyStater with GetCryptoKey: the state of
// the primary version, in AWS's names.
func (p *Provider) KeyState(ctx context.Context, key keyseal.KeyRef) (string, error) {
	c, err := p.clientOf(key)
	if err != nil {
		return keyseal.KeyStateUnknown, err
	}
	out, err := c.GetCryptoKey(ctx, key.KeyID)
	if err != nil {
		return keyseal.KeyStateUnknown, classifyEncrypt(err)
	}
	if out.Primary == nil {
		return keyseal.KeyStateUnknown, nil
	}
	switch out.Primary.State {
	case StateEnabled:
		return keyseal.KeyStateEnabled, nil
	case StateDisabled:
		return keyseal.KeyStateDisabled, nil
	case StateDestroyScheduled, StateDestroyed:
		return keyseal.KeyStatePendingDeletion, nil
	}
	return keyseal.KeyStateUnknown, nil
}

// matches reports whether sum is present and is b's CRC32C.
func matches(sum *Int64, b []byte) bool {
	return sum != nil && *sum == *crc(b)
}

// underKey reports whether version names a CryptoKeyVersion of cryptoKey.
func underKey(version, cryptoKey string) bool {
	rest, ok := strings.CutPrefix(version, cryptoKey+"/cryptoKeyVersions/")
	return ok && rest != "" && !strings.Contains(rest, "/")
}

// AAD is the canonical byte form of an encryption context: the number of
// pairs, then each pair sorted by name, every string prefixed by its
// length (all big-endian uint32). Distinct contexts never share bytes, and
// a nil or empty context is four zero bytes.
func AAD(ec map[string]string) []byte {
	names := make([]string, 0, len(ec))
	for n := range ec {
		names = append(names, n)
	}
	sort.Strings(names)
	b := binary.BigEndian.AppendUint32(nil, uint32(len(names)))
	for _, n := range names {
		for _, s := range []string{n, ec[n]} {
			b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
			b = append(b, s...)
		}
	}
	return b
}
