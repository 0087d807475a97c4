package azurekv

import (
	"context"

	"github.com/keyseal/keyseal/shared/azurekv/azcli"
	"github.com/keyseal/keyseal/shared/keyseal"
)

var (
	_ keyseal.Advisor   = (*Provider)(nil)
	_ keyseal.KeyStater = (*Provider)(nil)
)

// Option configures a Provider.
type Option func(*Provider)

// WithIdentity names keyseal's app registration (its application or
// client id), the assignee the advice names. Without it the commands
// carry azcli.PlaceholderClientID.
func WithIdentity(clientID string) Option {
	return func(p *Provider) { p.clientID = clientID }
}

// Advise implements keyseal.Advisor with azcli's az commands for the
// tenant's key (vault or Managed HSM).
func (p *Provider) Advise(key keyseal.KeyRef, f keyseal.Finding) []keyseal.Remedy {
	return azcli.Advise(p.clientID, key, f)
}

// KeyState implements keyseal.KeyStater with GetKey: the enabled
// attribute of the key (of the version the key URL pins, else the
// current one) as Enabled or Disabled. A deleted key answers 404: Key
// Vault tells a recoverable key apart only to a caller with keys/recover,
// so there is no PendingDeletion here. Failures are classified; the state
// is then Unknown.
func (p *Provider) KeyState(ctx context.Context, key keyseal.KeyRef) (string, error) {
	k, c, err := p.open(key)
	if err != nil {
		return keyseal.KeyStateUnknown, err
	}
	got, err := c.GetKey(ctx, k.Name, k.Version, nil)
	if err != nil {
		return keyseal.KeyStateUnknown, Classify(err)
	}
	if a := got.Attributes; a != nil && a.Enabled != nil && !*a.Enabled {
		return keyseal.KeyStateDisabled, nil
	}
	return keyseal.KeyStateEnabled, nil
}
