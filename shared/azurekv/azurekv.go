// Package azurekv is the Azure Key Vault provider: TMKs are wrapped with
// wrapKey (RSA-OAEP-256) under the customer's key, in an envelope that
// binds the encryption context, and unwrapped with unwrapKey under the key
// version that wrapped them. Every failure comes back classified per
// docs/contract.md §4, from the response body Key Vault sends.
package azurekv

import (
	"context"
	"fmt"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// API is the slice of the azkeys client the provider uses.
type API interface {
	WrapKey(ctx context.Context, name, version string, params azkeys.KeyOperationParameters, opts *azkeys.WrapKeyOptions) (azkeys.WrapKeyResponse, error)
	UnwrapKey(ctx context.Context, name, version string, params azkeys.KeyOperationParameters, opts *azkeys.UnwrapKeyOptions) (azkeys.UnwrapKeyResponse, error)
	GetKey(ctx context.Context, name, version string, opts *azkeys.GetKeyOptions) (azkeys.GetKeyResponse, error)
}

var _ API = (*azkeys.Client)(nil)

// NewClientFunc returns the client for one vault ("https://HOST"),
// authenticating in the given Entra tenant ("" for keyseal's own).
type NewClientFunc func(vaultURL, tenantID string) (API, error)

// Provider implements keyseal.Provider on Azure Key Vault. It is safe for
// concurrent use.
type Provider struct {
	newClient NewClientFunc

	// clientID is keyseal's app registration, named in advice.
	clientID string

	mu      sync.Mutex
	clients map[[2]string]API
}

var _ keyseal.Provider = (*Provider)(nil)

// New returns a provider that builds clients with newClient, one per vault
// and tenant, kept for the life of the process (a verify sweep then reuses
// each client's cached token).
func New(newClient NewClientFunc, opts ...Option) *Provider {
	p := &Provider{newClient: newClient, clients: map[[2]string]API{}}
	for _, o := range opts {
		o(p)
	}
	return p
}

// SDKClients returns a NewClientFunc building real azkeys clients: cred
// gives the credential for a tenant, opts (may be nil) the pipeline
// options, copied per client.
func SDKClients(cred func(tenantID string) (azcore.TokenCredential, error), opts *azkeys.ClientOptions) NewClientFunc {
	return func(vaultURL, tenantID string) (API, error) {
		c, err := cred(tenantID)
		if err != nil {
			return nil, err
		}
		var o azkeys.ClientOptions
		if opts != nil {
			o = *opts
		}
		return azkeys.NewClient(vaultURL, c, &o)
	}
}

// client returns the cached client of key's vault and tenant. A failure
// to build one is a deployment fault (no credential, say), not the
// customer's kill switch: it is deliberately not a *KMSError.
func (p *Provider) client(k keyURL, key keyseal.KeyRef) (API, error) {
	id := [2]string{k.Vault, key.Access[AccessTenantID]}
	p.mu.Lock()
	defer p.mu.Unlock()
	if c, ok := p.clients[id]; ok {
		return c, nil
	}
	c, err := p.newClient(id[0], id[1])
	if err != nil {
		return nil, fmt.Errorf("azure-kv: client for %s: %w", id[0], err)
	}
	p.clients[id] = c
	return c, nil
}

func (p *Provider) open(key keyseal.KeyRef) (keyURL, API, error) {
	k, err := parseKeyURL(key.KeyID)
	if err != nil {
		// Stored keys were parsed at registration; this is a corrupt row.
		return keyURL{}, nil, fmt.Errorf("azure-kv: stored key_url %q: %w", key.KeyID, err)
	}
	c, err := p.client(k, key)
	return k, c, err
}

var alg = azkeys.EncryptionAlgorithmRSAOAEP256

// Wrap implements keyseal.KMS with wrapKey (RSA-OAEP-256) on the envelope
// of plaintext and ec. Wrapped.KeyVersion is the version Key Vault used
// (the version in the response's kid), which Unwrap names again.
//
// Key Vault lets a disabled key wrap (only unwrap refuses), so Wrap reads
// the key first and refuses a disabled one with key_disabled: keyseal
// never makes a TMK version that nobody can unwrap, and "disabled" means
// the same on every provider.
func (p *Provider) Wrap(ctx context.Context, key keyseal.KeyRef, plaintext []byte, ec map[string]string) (keyseal.Wrapped, error) {
	k, c, err := p.open(key)
	if err != nil {
		return keyseal.Wrapped{}, err
	}
	got, err := c.GetKey(ctx, k.Name, k.Version, nil)
	if err != nil {
		return keyseal.Wrapped{}, Classify(err)
	}
	if a := got.Attributes; a != nil && a.Enabled != nil && !*a.Enabled {
		return keyseal.Wrapped{}, &keyseal.KMSError{Terminal: true, Reason: keyseal.ReasonKeyDisabled, Code: CodeKeyDisabled,
			Err: fmt.Errorf("azure-kv: key %s is disabled", k)}
	}
	env, err := seal(ec, plaintext)
	if err != nil {
		return keyseal.Wrapped{}, err
	}
	out, err := c.WrapKey(ctx, k.Name, k.Version, azkeys.KeyOperationParameters{Algorithm: &alg, Value: env}, nil)
	if err != nil {
		return keyseal.Wrapped{}, Classify(err)
	}
	if out.KID == nil || out.KID.Version() == "" || len(out.Result) == 0 {
		return keyseal.Wrapped{}, &keyseal.KMSError{Reason: keyseal.ReasonUnreachable, Code: "MalformedResponse",
			Err: fmt.Errorf("azure-kv: wrapKey answered without a key version or value")}
	}
	return keyseal.Wrapped{Blob: out.Result, KeyVersion: out.KID.Version()}, nil
}

// Unwrap implements keyseal.KMS with unwrapKey under the version that
// wrapped w (the key URL's own version for a blob that names none), then
// checks the envelope's context against ec. A version the key does not
// have means the blob is another key's: invalid_ciphertext.
func (p *Provider) Unwrap(ctx context.Context, key keyseal.KeyRef, w keyseal.Wrapped, ec map[string]string) ([]byte, error) {
	k, c, err := p.open(key)
	if err != nil {
		return nil, err
	}
	version := w.KeyVersion
	switch {
	case version == "":
		version = k.Version
	case k.Version != "" && version != k.Version:
		return nil, &keyseal.KMSError{Terminal: true, Reason: keyseal.ReasonInvalidBlob, Code: "KeyVersionMismatch",
			Err: fmt.Errorf("azure-kv: blob wrapped by version %s, the key URL pins %s", version, k.Version)}
	}
	out, err := c.UnwrapKey(ctx, k.Name, version, azkeys.KeyOperationParameters{Algorithm: &alg, Value: w.Blob}, nil)
	if err != nil {
		ke := Classify(err)
		if ke.Reason == keyseal.ReasonKeyNotFound && version != "" {
			// The version is missing: is the key? Azure never deletes a
			// single version, so a live key means the blob is not its.
			if _, gerr := c.GetKey(ctx, k.Name, "", nil); gerr == nil {
				return nil, &keyseal.KMSError{Terminal: true, Reason: keyseal.ReasonInvalidBlob, Code: "KeyVersionMismatch",
					Err: fmt.Errorf("azure-kv: key %s has no version %s: %w", k, version, err)}
			}
		}
		return nil, ke
	}
	return unseal(ec, out.Result)
}
