package gcpkms

import (
	"github.com/keyseal/keyseal/shared/gcpkms/gcpcli"
	"github.com/keyseal/keyseal/shared/keyseal"
)

var _ keyseal.Advisor = (*Provider)(nil)

// WithIdentity names keyseal's own service account (the identity of
// Application Default Credentials), the member the advice names. Without
// it the commands carry gcpcli.PlaceholderServiceAccount.
func WithIdentity(serviceAccount string) Option {
	return func(p *Provider) { p.self = serviceAccount }
}

// Advise implements keyseal.Advisor with gcpcli's gcloud commands for the
// tenant's CryptoKey.
func (p *Provider) Advise(key keyseal.KeyRef, f keyseal.Finding) []keyseal.Remedy {
	return gcpcli.Advise(p.self, key, f)
}
