package localkms

import (
	"fmt"

	"github.com/keyseal/keyseal/shared/keyseal"
)

var _ keyseal.Advisor = (*Provider)(nil)

// Advise implements keyseal.Advisor with the dev-mode routes that put a
// local key back (every local failure is a state it was put in); nil for
// key_not_found and invalid_ciphertext, which no route causes.
func (p *Provider) Advise(key keyseal.KeyRef, f keyseal.Finding) []keyseal.Remedy {
	state := func(action, s string) keyseal.Remedy {
		return keyseal.Remedy{Action: action, Command: fmt.Sprintf(`POST /dev/kms/keys/%s/state {"state": "%s"}`, key.KeyID, s)}
	}
	verify := keyseal.Remedy{Action: "verify", Command: "GET /admin/tenant-kms/health"}
	switch f.Problem {
	case keyseal.ReasonKeyDisabled:
		return []keyseal.Remedy{state("enable-key", StateEnabled), verify}
	case keyseal.ReasonPendingDeletion:
		return []keyseal.Remedy{state("cancel-key-deletion", StateDisabled), state("enable-key", StateEnabled), verify}
	case keyseal.ReasonAccessDenied:
		return []keyseal.Remedy{state("restore-access", StateEnabled)}
	case keyseal.ReasonUnreachable:
		return []keyseal.Remedy{state("check-kms-health", StateEnabled), verify}
	case keyseal.ProblemSlow:
		return []keyseal.Remedy{{Action: "remove-latency", Command: fmt.Sprintf(`POST /dev/kms/keys/%s/latency {"ms": 0}`, key.KeyID)}}
	}
	return nil
}
