// Package awskms is the AWS KMS provider: TMKs are wrapped with Encrypt
// under the customer's CMK, bound to an encryption context naming the
// tenant, and unwrapped with Decrypt pinned to that key. Keys may name a
// role in the customer's account that keyseal assumes (with an ExternalId)
// to reach them. Every failure comes back classified per docs/contract.md §4.
package awskms

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// API is the slice of the KMS client the provider uses.
type API interface {
	Encrypt(ctx context.Context, in *kms.EncryptInput, optFns ...func(*kms.Options)) (*kms.EncryptOutput, error)
	Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
	DescribeKey(ctx context.Context, in *kms.DescribeKeyInput, optFns ...func(*kms.Options)) (*kms.DescribeKeyOutput, error)
}

var _ API = (*kms.Client)(nil)

// Provider implements keyseal.KMS on AWS KMS. It is safe for concurrent
// use.
type Provider struct {
	client    API
	clientFor func(roleARN, externalID string) API
}

var _ keyseal.Provider = (*Provider)(nil)

// Option configures a Provider.
type Option func(*Provider)

// WithAssumeRole makes keys that name a RoleARN go through the client
// clientFor returns for that role and external ID, so KMS sees the
// customer's role, which their key policy trusts, rather than keyseal's own
// identity. Without it every key uses the base client.
func WithAssumeRole(clientFor func(roleARN, externalID string) API) Option {
	return func(p *Provider) { p.clientFor = clientFor }
}

// New returns a provider calling KMS with client, keyseal's own identity.
func New(client API, opts ...Option) *Provider {
	p := &Provider{client: client}
	for _, o := range opts {
		o(p)
	}
	return p
}

func (p *Provider) clientOf(key keyseal.KeyRef) API {
	if role := key.Access[AccessRoleARN]; role != "" && p.clientFor != nil {
		return p.clientFor(role, key.Access[AccessExternalID])
	}
	return p.client
}

// inKeyRegion sends a call to the region a key ARN names: a customer's key
// lives in the customer's region, which need not be keyseal's. A bare key id
// or alias keeps the client's region.
func inKeyRegion(keyID string) []func(*kms.Options) {
	parts := strings.SplitN(keyID, ":", 5)
	if len(parts) < 5 || parts[0] != "arn" || parts[3] == "" {
		return nil
	}
	region := parts[3]
	return []func(*kms.Options){func(o *kms.Options) { o.Region = region }}
}

// Wrap implements keyseal.KMS with kms:Encrypt.
// The blob carries the key version inside it, so Wrapped.KeyVersion stays
// empty.
func (p *Provider) Wrap(ctx context.Context, key keyseal.KeyRef, plaintext []byte, ec map[string]string) (keyseal.Wrapped, error) {
	c := p.clientOf(key)
	out, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(key.KeyID), Plaintext: plaintext, EncryptionContext: ec}, inKeyRegion(key.KeyID)...)
	if err != nil {
		return keyseal.Wrapped{}, Classify(ctx, c, key.KeyID, err)
	}
	return keyseal.Wrapped{Blob: out.CiphertextBlob}, nil
}

// Unwrap implements keyseal.KMS with kms:Decrypt, pinned to key: KMS
// refuses a blob made under any other key (IncorrectKeyException).
func (p *Provider) Unwrap(ctx context.Context, key keyseal.KeyRef, w keyseal.Wrapped, ec map[string]string) ([]byte, error) {
	c := p.clientOf(key)
	out, err := c.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(key.KeyID), CiphertextBlob: w.Blob, EncryptionContext: ec}, inKeyRegion(key.KeyID)...)
	if err != nil {
		return nil, Classify(ctx, c, key.KeyID, err)
	}
	return out.Plaintext, nil
}

var _ keyseal.KeyStater = (*Provider)(nil)

// KeyState implements keyseal.KeyStater with kms:DescribeKey: the key's
// KeyState (Enabled, Disabled, PendingDeletion, ...), through the key's
// role when it names one.
func (p *Provider) KeyState(ctx context.Context, key keyseal.KeyRef) (string, error) {
	out, err := p.clientOf(key).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(key.KeyID)}, inKeyRegion(key.KeyID)...)
	if err != nil {
		// By code alone: DescribeKey failing never calls DescribeKey again.
		return keyseal.KeyStateUnknown, classify(err)
	}
	if out.KeyMetadata == nil || out.KeyMetadata.KeyState == "" {
		return keyseal.KeyStateUnknown, nil
	}
	return string(out.KeyMetadata.KeyState), nil
}
