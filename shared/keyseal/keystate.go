package keyseal

import "context"

// Key states a KeyStater reports: AWS KMS's KeyState names, which the other
// providers map onto, so a health check reads the same on every provider.
const (
	KeyStateEnabled         = "Enabled"
	KeyStateDisabled        = "Disabled"
	KeyStatePendingDeletion = "PendingDeletion"
	// KeyStateUnknown: the provider cannot say (it has no such call, or
	// the call failed, as it does when access is denied).
	KeyStateUnknown = "Unknown"
)

// KeyStater is an optional Provider capability: the key's lifecycle state
// as the provider reports it (AWS: DescribeKey's KeyMetadata.KeyState).
// The BYOK health check uses it to tell a disabled key from one pending
// deletion in its diagnosis. Errors are *KMSError.
type KeyStater interface {
	KeyState(ctx context.Context, key KeyRef) (string, error)
}

// KeyState asks key's provider for the key's state. A provider without the
// capability answers KeyStateUnknown and no error.
func (p Providers) KeyState(ctx context.Context, key KeyRef) (string, error) {
	k, err := p.get(key)
	if err != nil {
		return KeyStateUnknown, err
	}
	ks, ok := k.(KeyStater)
	if !ok {
		return KeyStateUnknown, nil
	}
	return ks.KeyState(ctx, key)
}
