package tenantkms

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
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
type Remedy = keyseal.Remedy

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

// latencyRank orders the classes, normal lowest.
var latencyRank = map[string]int{LatencyNormal: 0, LatencyElevated: 1, LatencyHigh: 2, LatencyCritical: 3}

// LatencyHysteresis is how far below a class's lower threshold a verify
// must be before the poller records a lower class: down only under 0.8 of
// it (elevated falls back to normal under 80 ms, high to elevated at 160
// ms or less, critical to high at 400 ms or less), while a verify at or
// over a threshold moves the class up at once.
const LatencyHysteresis = 0.8

// PolledLatencyClass is the class a verify of ms records on a tenant whose
// recorded class is prev ("" for none): up as soon as ms reaches a higher
// class (ClassifyLatency), down only to the class ms would have with every
// threshold scaled by LatencyHysteresis. A verify latency that wanders
// across a threshold (80 ms of KMS round trips plus a busy CPU around
// 100 ms) then keeps its class, so it costs no row write per poll, while
// a real change (a drop from 150 ms to 40, a rise to 210) is recorded by
// the first verify that sees it. The live probe of GET
// /admin/tenant-kms/health has no history and classifies ms as it is.
func PolledLatencyClass(prev string, ms int64) string {
	raw := ClassifyLatency(ms)
	rank, ok := latencyRank[prev]
	if !ok || latencyRank[raw] >= rank {
		return raw
	}
	// Scaling the thresholds by 0.8 is classifying ms / 0.8.
	lowered := ClassifyLatency(int64(float64(ms) / LatencyHysteresis))
	if latencyRank[lowered] < rank {
		return lowered
	}
	return prev
}

// RecordedLatencyClass is the latency class t's row holds: the one the
// poller recorded, or for a row written before classes were recorded the
// class of its last latency ("" when nothing was ever verified).
func RecordedLatencyClass(t *keyseal.Tenant) string {
	if t.LatencyClass != "" || t.LastVerifiedAt == nil {
		return t.LatencyClass
	}
	return ClassifyLatency(t.LastLatencyMS)
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
		adv, _ := s.kms.(keyseal.Advisor)
		h.Diagnosis, h.Remediation = diagnose(adv, t, fail, h, v.KeyVersion)
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
// steps that fix it. The diagnosis is provider-neutral; the commands come
// from the key's provider (keyseal.Advisor: the AWS CLI, gcloud, az, the
// dev routes), filled in with the tenant's key and keyVersion (the version
// that wrapped the active TMK), with generic steps where it has none.
func diagnose(adv keyseal.Advisor, t *keyseal.Tenant, fail *keyseal.KMSError, h Health, keyVersion string) (string, []Remedy) {
	c := advice{adv: adv, key: t.Key, version: keyVersion}
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
			[]Remedy{{Action: "rotate", Command: `POST /admin/tenant-kms/rotate {"rotation_type": "tmk", "reason": "replace the revoked version"}`}}
	}
	operator := Remedy{Action: "contact-operator", Command: "report this health output to keyseal's operator"}
	if fail != nil && fail.Code == keyseal.CodeOwnCredentialsRejected {
		return fmt.Sprintf("keyseal's own %s credentials were refused (an expired or rotated secret, a broken federation config): this is the operator's to fix, not yours; your key and its grants are not in question", t.Key.Provider),
			[]Remedy{operator}
	}
	if !t.BYOK && fail != nil {
		return fmt.Sprintf("keyseal's own platform key failed (%s): this is the operator's to fix, not yours", fail.Code),
			[]Remedy{operator}
	}
	switch reason {
	case keyseal.ReasonKeyDisabled:
		return "CMK inaccessible: the key is disabled, so keyseal cannot wrap or unwrap the tenant's master key",
			c.remedies(reason)
	case keyseal.ReasonPendingDeletion:
		return "CMK inaccessible: the key is scheduled for deletion; once deleted, everything wrapped by it is lost for good",
			c.remedies(reason)
	case keyseal.ReasonAccessDenied:
		return "CMK inaccessible: keyseal is denied access (the key's policy, a grant or role binding, or the identity keyseal assumes or impersonates no longer allows it)",
			c.remedies(reason)
	case keyseal.ReasonKeyNotFound:
		return "CMK not found: the key was deleted, or its name points at another account, project, region or vault",
			c.remedies(reason)
	case keyseal.ReasonInvalidBlob:
		return "the stored TMK does not decrypt under this key (another key's ciphertext, or damaged): the key was changed or the blob damaged",
			append(c.remedies(reason), Remedy{Action: "contact-operator", Command: "report this health output to keyseal's operator before changing keys"})
	case keyseal.ReasonUnreachable:
		return fmt.Sprintf("the KMS did not answer (%s): network, throttling or a KMS outage; the tenant keeps serving from its cached TMK for up to the cache TTL", fail.Code),
			c.remedies(reason)
	}
	switch {
	case h.Sealed:
		return "the key answers again, but the tenant is still sealed: the next poll (within 30 s) unseals it, or force it now",
			[]Remedy{{Action: "unseal", Command: "POST /admin/tenant-kms/unseal (with a step-up token in X-Keyseal-StepUp)"}}
	case !h.Checks.TMKValid:
		return "the stored TMK unwrapped but does not match its version's signing key (DEK invalid)",
			[]Remedy{{Action: "rotate", Command: `POST /admin/tenant-kms/rotate {"rotation_type": "dek", "reason": "DEK recovery"}`}}
	}
	return fmt.Sprintf("KMS latency %d ms is %s (normal is under 100 ms): network distance to the key's region or KMS throttling", h.LatencyMS, h.LatencyClass),
		append(c.remedies(keyseal.ProblemSlow), Remedy{Action: "regional-key", Command: "consider a key (or a multi-region replica) in the region keyseal runs in"})
}

// advice asks the key's provider for the commands of a problem, and falls
// back to generic steps for a provider without any.
type advice struct {
	adv     keyseal.Advisor
	key     keyseal.KeyRef
	version string
}

func (c advice) remedies(problem string) []Remedy {
	if c.adv != nil {
		if r := c.adv.Advise(c.key, keyseal.Finding{Problem: problem, KeyVersion: c.version}); len(r) > 0 {
			return r
		}
	}
	return genericRemedies(c.key.KeyID, problem)
}

// genericRemedies are the provider-neutral steps of problem on keyID.
func genericRemedies(keyID, problem string) []Remedy {
	enable := Remedy{Action: "enable-key", Command: "enable key " + keyID + " in its key manager"}
	verify := Remedy{Action: "verify", Command: "GET /admin/tenant-kms/health"}
	health := Remedy{Action: "check-kms-health", Command: "check the key manager's service health and request quotas"}
	describe := Remedy{Action: "describe-key", Command: "look up key " + keyID + " in its key manager"}
	switch problem {
	case keyseal.ReasonKeyDisabled:
		return []Remedy{enable, verify}
	case keyseal.ReasonPendingDeletion:
		return []Remedy{{Action: "cancel-key-deletion", Command: "cancel the scheduled destruction of key " + keyID}, enable, verify}
	case keyseal.ReasonAccessDenied:
		return []Remedy{{Action: "restore-access", Command: "grant keyseal's identity wrap and unwrap on key " + keyID + " again"}}
	case keyseal.ReasonKeyNotFound, keyseal.ReasonInvalidBlob:
		return []Remedy{describe}
	case keyseal.ReasonUnreachable:
		return []Remedy{health, verify}
	}
	return []Remedy{health}
}
