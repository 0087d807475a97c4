package tenantkms

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/session"
)

// Health statuses and latency classes (docs/contract.md §6 "BYOK health").
const (
	HealthHealthy   = "healthy"
	HealthDegraded  = "degraded"
	HealthUnhealthy = "unhealthy"

	LatencyNormal   = "normal"
	LatencyElevated = "elevated"
	LatencyHigh     = "high"
	LatencyCritical = "critical"
)

// HealthProbeInterval is the least time between two live probes of one
// tenant in one process; a caller inside it gets the last result, marked
// cached. It keeps a dashboard refreshing in a loop from spending the
// customer's KMS quota.
const HealthProbeInterval = time.Second

// Health is the answer of GET /admin/tenant-kms/health.
type Health struct {
	Status string `json:"status"`
	// LatencyMS is the slower of the wrap and the unwrap, whole ms.
	LatencyMS    int64        `json:"latency_ms"`
	LatencyClass string       `json:"latency_class"`
	Checks       HealthChecks `json:"checks"`
	// Sealed is true for a sealed or revoked tenant (TenantStatus says
	// which).
	Sealed       bool      `json:"sealed"`
	TenantStatus string    `json:"tenant_status"`
	Provider     string    `json:"provider"`
	KeyID        string    `json:"key_id"`
	CheckedAt    time.Time `json:"checked_at"`
	Cached       bool      `json:"cached"`
	// Reason and KMSError name the failure (the seal taxonomy of §4 and
	// the provider's code); absent when both calls worked.
	Reason   string `json:"reason,omitempty"`
	KMSError string `json:"kms_error,omitempty"`
	// Diagnosis and Remediation are set whenever Status is not healthy.
	Diagnosis   string   `json:"diagnosis,omitempty"`
	Remediation []Remedy `json:"remediation,omitempty"`
}

// HealthChecks are the three checks of a probe.
type HealthChecks struct {
	// CMKAccessible: a fresh probe wrapped under the key.
	CMKAccessible bool `json:"cmk_accessible"`
	// TMKValid: the stored active TMK unwrapped, and derives the signing
	// key recorded for its version (so the blob is the TMK it claims).
	TMKValid bool `json:"tmk_valid"`
	// KeyState is the provider's key state (keyseal.KeyState*).
	KeyState string `json:"key_state"`
}

// Remedy is one step of a remediation: a provider-neutral action and the
// command that does it for the tenant's key.
type Remedy struct {
	Action  string `json:"action"`
	Command string `json:"command"`
}

// ClassifyLatency maps a probe's latency to its class: normal under
// 100 ms, elevated to 200, high to 500, critical beyond (seed 004's bands;
// 200 itself is still elevated, as the > 200 ms alarm has it).
func ClassifyLatency(ms int64) string {
	switch {
	case ms < 100:
		return LatencyNormal
	case ms <= 200:
		return LatencyElevated
	case ms <= 500:
		return LatencyHigh
	}
	return LatencyCritical
}

// healthStatus is the verdict of §6: unhealthy when the CMK is not usable
// (terminal failure, a TMK that does not check out, sealed or revoked),
// degraded on a transient failure or a high or critical latency.
func healthStatus(sealed bool, fail *keyseal.KMSError, tmkValid bool, class string) string {
	switch {
	case sealed, fail != nil && fail.Terminal, fail == nil && !tmkValid:
		return HealthUnhealthy
	case fail != nil, class == LatencyHigh, class == LatencyCritical:
		return HealthDegraded
	}
	return HealthHealthy
}

// healthLimiter keeps each tenant's last probe, and serialises a tenant's
// probes in this process: a caller that waited for a probe in flight gets
// its result (cached) instead of starting another.
type healthLimiter struct {
	mu      sync.Mutex
	entries map[string]*healthEntry
}

type healthEntry struct {
	mu   sync.Mutex
	last *Health
}

// healthEntries bounds the limiter's map: past it, entries whose last probe
// is over an interval old (and that no probe holds) are dropped.
const healthEntries = 4096

func (l *healthLimiter) entry(tenantID string, now time.Time) *healthEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.entries == nil {
		l.entries = map[string]*healthEntry{}
	}
	if e, ok := l.entries[tenantID]; ok {
		return e
	}
	if len(l.entries) >= healthEntries {
		for id, e := range l.entries {
			if e.mu.TryLock() {
				if e.last == nil || now.Sub(e.last.CheckedAt) >= HealthProbeInterval {
					delete(l.entries, id)
				}
				e.mu.Unlock()
			}
		}
	}
	e := &healthEntry{}
	l.entries[tenantID] = e
	return e
}

// Health probes the tenant's key live (docs/contract.md §6): wrap a fresh
// probe, unwrap the stored active TMK and check it, read the key's state.
// At most one probe per tenant per HealthProbeInterval in this process;
// faster callers get the last result with Cached set.
//
// The probe is read-only: it never seals, unseals, records on the tenant
// row or fills the TMK cache. Sealing stays the poller's and the session
// path's decision, so a health check (served by the health Lambda, which
// may not write) cannot race them or double the seal entries; what it saw
// the poller sees within one interval. It returns ETENANT for an unknown
// tenant and store errors as they are.
func (s *Service) Health(ctx context.Context, tenantID string) (Health, error) {
	e := s.healthLimit.entry(tenantID, s.now())
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.last != nil && s.now().Sub(e.last.CheckedAt) < HealthProbeInterval {
		h := *e.last
		h.Cached = true
		return h, nil
	}
	t, err := s.getTenant(ctx, tenantID)
	if err != nil {
		return Health{}, err
	}
	h, err := s.probe(ctx, t)
	if err != nil {
		return Health{}, err
	}
	e.last = &h
	return h, nil
}

// probe runs the checks of Health on t.
func (s *Service) probe(ctx context.Context, t *keyseal.Tenant) (Health, error) {
	h := Health{Sealed: t.Status != keyseal.StatusActive, TenantStatus: t.Status, Provider: t.Key.Provider, KeyID: t.Key.KeyID,
		CheckedAt: s.now()}
	var fails []*keyseal.KMSError
	failed := func(err error) error {
		var kerr *keyseal.KMSError
		if !errors.As(err, &kerr) {
			return err
		}
		fails = append(fails, kerr)
		return nil
	}

	probe := make([]byte, 16)
	if _, err := rand.Read(probe); err != nil {
		return Health{}, err
	}
	start := time.Now()
	_, err := s.wrap(ctx, t.Key, probe, probeContext(t.ID))
	slowest := time.Since(start)
	if err != nil {
		if err := failed(err); err != nil {
			return Health{}, err
		}
	} else {
		h.Checks.CMKAccessible = true
	}

	v, err := s.activeVersion(ctx, t)
	if err == nil {
		start = time.Now()
		var tmk []byte
		tmk, err = s.unwrap(ctx, v)
		slowest = max(slowest, time.Since(start))
		if err == nil {
			pub, perr := session.PublicKey(tmk, t.ID, v.Version)
			clear(tmk)
			if perr != nil {
				return Health{}, perr
			}
			h.Checks.TMKValid = bytes.Equal(pub, v.SigningPublicKey)
		}
	}
	if err != nil {
		if err := failed(err); err != nil {
			return Health{}, err
		}
	}

	h.Checks.KeyState = keyseal.KeyStateUnknown
	if ks, ok := s.kms.(keyseal.KeyStater); ok {
		kctx, cancel := context.WithTimeout(ctx, s.opt.KMSTimeout)
		state, err := ks.KeyState(kctx, t.Key)
		cancel()
		if err == nil && state != "" {
			h.Checks.KeyState = state
		}
		// A failing describe adds nothing the wrap and unwrap did not
		// already say; its state stays Unknown.
	}

	h.LatencyMS = slowest.Milliseconds()
	h.LatencyClass = ClassifyLatency(h.LatencyMS)
	fail := worst(fails)
	if fail != nil {
		h.Reason, h.KMSError = fail.Reason, fail.Code
	}
	h.Status = healthStatus(h.Sealed, fail, h.Checks.TMKValid, h.LatencyClass)
	if h.Status != HealthHealthy {
		h.Diagnosis, h.Remediation = diagnose(t, fail, h)
	}
	return h, nil
}

// worst is the first terminal failure, else the first one.
func worst(fails []*keyseal.KMSError) *keyseal.KMSError {
	for _, f := range fails {
		if f.Terminal {
			return f
		}
	}
	if len(fails) > 0 {
		return fails[0]
	}
	return nil
}

// diagnose names the likely cause of an unhealthy or degraded probe and the
// steps that fix it, filled in with the tenant's key (seed 004's
// troubleshooting commands for AWS KMS; the dev routes for the local KMS).
func diagnose(t *keyseal.Tenant, fail *keyseal.KMSError, h Health) (string, []Remedy) {
	c := commandsFor(t.Key)
	reason := ""
	if fail != nil {
		reason = fail.Reason
	}
	// The key's own state is the better witness of why a call failed: a
	// key pending deletion is also disabled, and KMS may say either.
	if fail != nil && fail.Terminal {
		switch h.Checks.KeyState {
		case keyseal.KeyStatePendingDeletion:
			reason = keyseal.ReasonPendingDeletion
		case keyseal.KeyStateDisabled:
			reason = keyseal.ReasonKeyDisabled
		}
	}
	if t.Status == keyseal.StatusRevoked || reason == keyseal.ReasonRevoked {
		return "the active TMK version was revoked (crypto-erased): no key can bring it back",
			[]Remedy{{"rotate", `POST /admin/tenant-kms/rotate {"rotation_type": "tmk", "reason": "replace the revoked version"}`}}
	}
	if !t.BYOK && fail != nil {
		return fmt.Sprintf("keyseal's own platform key failed (%s): this is the operator's to fix, not yours", fail.Code),
			[]Remedy{{"contact-operator", "report this health output to keyseal's operator"}}
	}
	switch reason {
	case keyseal.ReasonKeyDisabled:
		return "CMK inaccessible: the key is disabled, so keyseal cannot wrap or unwrap the tenant's master key",
			[]Remedy{c.enable(), c.verify()}
	case keyseal.ReasonPendingDeletion:
		return "CMK inaccessible: the key is scheduled for deletion; once deleted, everything wrapped by it is lost for good",
			[]Remedy{c.cancelDeletion(), c.enable(), c.verify()}
	case keyseal.ReasonAccessDenied:
		return "CMK inaccessible: keyseal is denied access (the key policy, a grant or the role keyseal assumes no longer allows it)",
			c.keyPolicy()
	case keyseal.ReasonKeyNotFound:
		return "CMK not found: the key was deleted, or its ARN names another account or region",
			[]Remedy{c.describe()}
	case keyseal.ReasonInvalidBlob:
		return "the stored TMK does not decrypt under this key (IncorrectKeyException or invalid ciphertext): the key was changed or the blob damaged",
			[]Remedy{c.describe(), {"contact-operator", "report this health output to keyseal's operator before changing keys"}}
	case keyseal.ReasonUnreachable:
		return fmt.Sprintf("the KMS did not answer (%s): network, throttling or a KMS outage; the tenant keeps serving from its cached TMK for up to the cache TTL", fail.Code),
			[]Remedy{c.quota(), c.verify()}
	}
	switch {
	case h.Sealed:
		return "the key answers again, but the tenant is still sealed: the next poll (within 30 s) unseals it, or force it now",
			[]Remedy{{"unseal", "POST /admin/tenant-kms/unseal (with a step-up token in X-Keyseal-StepUp)"}}
	case !h.Checks.TMKValid:
		return "the stored TMK unwrapped but does not match its version's signing key (DEK invalid)",
			[]Remedy{{"rotate", `POST /admin/tenant-kms/rotate {"rotation_type": "dek", "reason": "DEK recovery"}`}}
	}
	return fmt.Sprintf("KMS latency %d ms is %s (normal is under 100 ms): network distance to the key's region or KMS throttling", h.LatencyMS, h.LatencyClass),
		[]Remedy{c.quota(), {"regional-key", "consider a key (or a multi-region replica) in the region keyseal runs in"}}
}

// commands renders remedies for one key.
type commands struct {
	key keyseal.KeyRef
	aws bool
	// cli is the AWS CLI's key arguments: the key ARN and its region, so
	// a cross-region key is reached where it lives.
	cli string
}

func commandsFor(key keyseal.KeyRef) commands {
	c := commands{key: key, aws: key.Provider == keyseal.ProviderAWS}
	c.cli = "--key-id " + key.KeyID
	if parts := strings.SplitN(key.KeyID, ":", 5); len(parts) == 5 && parts[0] == "arn" && parts[3] != "" {
		c.cli += " --region " + parts[3]
	}
	return c
}

// devState is the dev-mode route that moves a local key to state.
func (c commands) devState(state string) string {
	return fmt.Sprintf(`POST /dev/kms/keys/%s/state {"state": "%s"}`, c.key.KeyID, state)
}

func (c commands) enable() Remedy {
	if c.aws {
		return Remedy{"enable-key", "aws kms enable-key " + c.cli}
	}
	if c.key.Provider == keyseal.ProviderLocal {
		return Remedy{"enable-key", c.devState("enabled")}
	}
	return Remedy{"enable-key", "enable key " + c.key.KeyID + " in its key manager"}
}

func (c commands) cancelDeletion() Remedy {
	if c.aws {
		return Remedy{"cancel-key-deletion", "aws kms cancel-key-deletion " + c.cli}
	}
	if c.key.Provider == keyseal.ProviderLocal {
		return Remedy{"cancel-key-deletion", c.devState("disabled")}
	}
	return Remedy{"cancel-key-deletion", "cancel the scheduled destruction of key " + c.key.KeyID}
}

func (c commands) describe() Remedy {
	if c.aws {
		return Remedy{"describe-key", "aws kms describe-key " + c.cli}
	}
	return Remedy{"describe-key", "look up key " + c.key.KeyID + " in its key manager"}
}

func (c commands) verify() Remedy {
	if c.aws {
		return Remedy{"verify", "aws kms describe-key " + c.cli + " --query KeyMetadata.KeyState --output text"}
	}
	return Remedy{"verify", "GET /admin/tenant-kms/health"}
}

func (c commands) quota() Remedy {
	if c.aws {
		region := ""
		if i := strings.Index(c.cli, " --region "); i >= 0 {
			region = c.cli[i:]
		}
		return Remedy{"check-kms-quota", "aws service-quotas get-service-quota --service-code kms --quota-code L-6E65D7BB" + region}
	}
	if c.key.Provider == keyseal.ProviderLocal {
		// The dev key's outage is a state it was put in.
		return Remedy{"check-kms-health", c.devState("enabled")}
	}
	return Remedy{"check-kms-health", "check the key manager's service health and request quotas"}
}

// keyPolicy is the re-apply of seed 004: the statement keyseal needs
// (GET /admin/tenant-kms/key-policy) merged into the key's policy.
func (c commands) keyPolicy() []Remedy {
	if !c.aws {
		if c.key.Provider == keyseal.ProviderLocal {
			return []Remedy{{"restore-access", c.devState("enabled")}}
		}
		return []Remedy{{"restore-access", "grant keyseal's identity wrap and unwrap on key " + c.key.KeyID + " again"}}
	}
	r := []Remedy{
		{"get-key-policy", "aws kms get-key-policy " + c.cli + " --policy-name default --output text > key-policy.json"},
		{"re-apply-key-policy", "add the statement of GET /admin/tenant-kms/key-policy to key-policy.json, then: aws kms put-key-policy " + c.cli +
			" --policy-name default --policy file://key-policy.json"},
	}
	if role := c.key.Access["role_arn"]; role != "" {
		name := role[strings.LastIndex(role, "/")+1:]
		r = append(r, Remedy{"check-role", "aws iam get-role --role-name " + name +
			" --query Role.AssumeRolePolicyDocument (keyseal assumes " + role + " with its external id)"})
	}
	return r
}
