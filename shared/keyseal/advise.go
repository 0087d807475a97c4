package keyseal

// Remedy is one step of a remediation: a provider-neutral action name and
// the command that does it for one key.
type Remedy struct {
	Action  string `json:"action"`
	Command string `json:"command"`
}

// ProblemSlow is the Finding.Problem of a key that answered, but slowly
// (latency high or critical); the other problems are the Reason*
// constants of a failed call.
const ProblemSlow = "slow"

// Finding is what an Advisor is asked about.
type Finding struct {
	// Problem is a Reason* constant (access_denied, key_disabled,
	// key_pending_deletion, key_not_found, invalid_ciphertext,
	// unreachable) or ProblemSlow.
	Problem string
	// KeyVersion is the provider's key version that wrapped the tenant's
	// active TMK (TMKVersion.KeyVersion), "" when unknown or when the
	// provider names none.
	KeyVersion string
}

// Advisor is an optional Provider capability: the commands that fix a
// finding about one of its keys, filled in with the key (and the identity
// keyseal calls it as), in the order to run them. The BYOK health check
// asks it for its remediation; it keeps the provider-neutral diagnosis
// itself. Advise returns nil for a problem it has nothing specific for,
// and the caller falls back to generic advice. It makes no call.
type Advisor interface {
	Advise(key KeyRef, f Finding) []Remedy
}

// Advise asks key's provider for the remedies of f: nil when the provider
// is not configured here or has no Advisor capability.
func (p Providers) Advise(key KeyRef, f Finding) []Remedy {
	a, ok := p[key.Provider].(Advisor)
	if !ok {
		return nil
	}
	return a.Advise(key, f)
}
