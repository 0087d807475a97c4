// Package tenantkms is the tenant KMS service: it provisions TMKs, registers
// BYOK keys, serves unwrapped TMKs from a hard-TTL cache, and runs the seal
// state machine (active <-> sealed, -> revoked) that the session API, the
// unseal API and the poller drive.
package tenantkms

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/metrics"
	"github.com/keyseal/keyseal/shared/session"
)

// Actors recorded in audit entries written by keyseal itself.
const (
	ActorPoller = "system:poller"
	ActorSystem = "system"
)

// Options tune the service. Zero values take the documented defaults.
type Options struct {
	// CacheTTL bounds how long an unwrapped TMK is served without a fresh
	// successful unwrap (default 5m).
	CacheTTL time.Duration
	// KMSTimeout bounds each KMS call (default 5s).
	KMSTimeout time.Duration
	// PlatformKey wraps the TMKs of tenants without BYOK.
	PlatformKey keyseal.KeyRef
	// Concurrency bounds the tenants a sweep checks at once (default 64).
	Concurrency int
	// ListBudget bounds the store time a sweep spends listing each shard
	// (the shards are listed at once), retrying failed pages (default one
	// KMS timeout). A shard not listed by then is skipped for the rest of
	// this sweep and logged; the next sweep lists it again. Time spent
	// waiting for the checks to take the listed ids does not count.
	ListBudget time.Duration
	// ListAttemptTimeout bounds one page request of a shard listing
	// (default ListBudget / 4), so a request the store never answers costs
	// one attempt.
	ListAttemptTimeout time.Duration
	// Metrics receives the CloudWatch metrics of sweeps and of failed
	// session unwraps; nil emits none.
	Metrics Metrics
	// Waiver gates register and migrate on the legal waiver; nil: no gate.
	Waiver WaiverGate
	Now    func() time.Time
	Log    *slog.Logger
}

// Metrics is where the service reports the metrics the alarms watch
// (metrics.SealedTenants, KMSLatency, KMSFailures, KeyRotationAgeDays).
// *metrics.Emitter implements it; tests record the calls instead.
type Metrics interface {
	// Emit reports values that belong to one moment (one sweep, one
	// failure). It must not block for long: the sweep calls it while
	// tenants are still being checked.
	Emit(values ...metrics.Value)
}

// WaiverGate says whether a tenant may register or migrate a customer key
// (*waiver.Service implements it): nil, or EWAIVER / EWAIVERREACK.
type WaiverGate interface {
	Require(ctx context.Context, tenantID string) error
}

// Service is the tenant KMS service. It is safe for concurrent use.
type Service struct {
	store    keyseal.TenantStore
	kms      keyseal.KMS
	opt      Options
	cache    *cache
	sweeping sync.Mutex
	// healthLimit rate-limits the live probes of Health.
	healthLimit healthLimiter
}

// New returns a Service. kms is usually keyseal.Providers. The service
// publishes nothing itself: its transitions write their events to the
// store's outbox, and shared/outbox publishes what committed.
func New(store keyseal.TenantStore, kms keyseal.KMS, opt Options) *Service {
	if opt.CacheTTL <= 0 {
		opt.CacheTTL = 5 * time.Minute
	}
	if opt.KMSTimeout <= 0 {
		opt.KMSTimeout = 5 * time.Second
	}
	if opt.Concurrency <= 0 {
		opt.Concurrency = 64
	}
	if opt.ListBudget <= 0 {
		opt.ListBudget = opt.KMSTimeout
	}
	if opt.ListAttemptTimeout <= 0 {
		opt.ListAttemptTimeout = opt.ListBudget / 4
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	return &Service{store: store, kms: kms, opt: opt, cache: newCache(opt.CacheTTL, opt.Now)}
}

// tmkContext is the encryption context every wrapped TMK is bound to, so a
// blob cannot be replayed for another tenant or version.
func tmkContext(tenantID string, version int) map[string]string {
	return map[string]string{"keyseal:tenant": tenantID, "keyseal:purpose": "tmk", "keyseal:tmk_version": strconv.Itoa(version)}
}

func probeContext(tenantID string) map[string]string {
	return map[string]string{"keyseal:tenant": tenantID, "keyseal:purpose": "probe"}
}

func (s *Service) now() time.Time { return s.opt.Now().UTC() }

// record is an audit record stamped with the service's clock.
func (s *Service) record(action, severity, actor string, details map[string]string) *keyseal.AuditRecord {
	return &keyseal.AuditRecord{At: s.now(), Action: action, Severity: severity, Actor: actor, Details: details}
}

func (s *Service) emit(values ...metrics.Value) {
	if s.opt.Metrics != nil {
		s.opt.Metrics.Emit(values...)
	}
}

// Tenant returns a tenant and its TMK versions. ETENANT when it has none.
func (s *Service) Tenant(ctx context.Context, tenantID string) (*keyseal.Tenant, []keyseal.TMKVersion, error) {
	t, err := s.getTenant(ctx, tenantID)
	if err != nil {
		return nil, nil, err
	}
	versions, err := s.store.Versions(ctx, tenantID)
	if err != nil {
		return nil, nil, err
	}
	return t, versions, nil
}

func (s *Service) getTenant(ctx context.Context, tenantID string) (*keyseal.Tenant, error) {
	t, err := s.store.GetTenant(ctx, tenantID)
	if keyseal.ErrorCode(err) == keyseal.ENOTFOUND {
		return nil, keyseal.Errorf(keyseal.ETENANT, "tenant %s has no master key yet: register a KMS key (PUT /admin/tenant-kms) or create an agent", tenantID)
	}
	return t, err
}

// Provision returns the tenant, creating it first with TMK v1 wrapped under
// the platform key when it does not exist yet.
func (s *Service) Provision(ctx context.Context, tenantID, actor string) (*keyseal.Tenant, error) {
	t, err := s.store.GetTenant(ctx, tenantID)
	if keyseal.ErrorCode(err) != keyseal.ENOTFOUND {
		return t, err
	}
	tmk := make([]byte, 32)
	if _, err := rand.Read(tmk); err != nil {
		return nil, err
	}
	v, err := s.newVersion(ctx, tenantID, 1, tmk, s.opt.PlatformKey)
	if err != nil {
		return nil, fmt.Errorf("provision tenant %s: wrap TMK under the platform key: %w", tenantID, err)
	}
	now := s.now()
	t = &keyseal.Tenant{ID: tenantID, Key: s.opt.PlatformKey, Status: keyseal.StatusActive, ActiveVersion: 1,
		LastVerifiedAt: &now, CreatedAt: now, UpdatedAt: now}
	err = s.store.CreateTenant(ctx, t, v, *s.record(keyseal.ActionTenantProvision, keyseal.SeverityInfo, actor,
		map[string]string{"tmk_version": "1", "provider": s.opt.PlatformKey.Provider}))
	if keyseal.ErrorCode(err) == keyseal.ECONFLICT { // provisioned concurrently
		return s.store.GetTenant(ctx, tenantID)
	}
	if err != nil {
		return nil, err
	}
	s.cache.put(tenantID, 1, tmk)
	return t, nil
}

// newVersion wraps tmk under key and derives the version's public signing
// key.
func (s *Service) newVersion(ctx context.Context, tenantID string, version int, tmk []byte, key keyseal.KeyRef) (keyseal.TMKVersion, error) {
	wrapped, err := s.wrap(ctx, key, tmk, tmkContext(tenantID, version))
	if err != nil {
		return keyseal.TMKVersion{}, err
	}
	pub, err := session.PublicKey(tmk, tenantID, version)
	if err != nil {
		return keyseal.TMKVersion{}, err
	}
	return keyseal.TMKVersion{TenantID: tenantID, Version: version, Wrapped: wrapped.Blob, KeyVersion: wrapped.KeyVersion, Key: key,
		SigningPublicKey: pub, CreatedAt: s.now()}, nil
}

func (s *Service) wrap(ctx context.Context, key keyseal.KeyRef, plaintext []byte, ec map[string]string) (keyseal.Wrapped, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opt.KMSTimeout)
	defer cancel()
	return s.kms.Wrap(ctx, key, plaintext, ec)
}

func (s *Service) unwrap(ctx context.Context, v keyseal.TMKVersion) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, s.opt.KMSTimeout)
	defer cancel()
	return s.kms.Unwrap(ctx, v.Key, v.Blob(), tmkContext(v.TenantID, v.Version))
}

// activeVersion returns the tenant's active TMK version. A crypto-erased
// (revoked) active version is a terminal failure with reason revoked.
func (s *Service) activeVersion(ctx context.Context, t *keyseal.Tenant) (keyseal.TMKVersion, error) {
	versions, err := s.store.Versions(ctx, t.ID)
	if err != nil {
		return keyseal.TMKVersion{}, err
	}
	for _, v := range versions {
		if v.Version != t.ActiveVersion {
			continue
		}
		if v.RevokedAt != nil || v.Wrapped == nil {
			return keyseal.TMKVersion{}, &keyseal.KMSError{Terminal: true, Reason: keyseal.ReasonRevoked, Code: "TMKVersionRevoked",
				Err: fmt.Errorf("TMK version %d is revoked", v.Version)}
		}
		return v, nil
	}
	return keyseal.TMKVersion{}, fmt.Errorf("tenant %s: active TMK version %d missing", t.ID, t.ActiveVersion)
}

// verification is the outcome of a successful live check.
type verification struct {
	tmk     []byte
	version int
	// created is when the active TMK version was made: its rotation age.
	created time.Time
	latency time.Duration
}

// verify is the live check of docs/contract.md §4: wrap a probe under the tenant's key
// AND unwrap the stored TMK. Both must work: a key that still decrypts but no
// longer encrypts would fail the next rotation.
func (s *Service) verify(ctx context.Context, t *keyseal.Tenant) (verification, error) {
	v, err := s.activeVersion(ctx, t)
	if err != nil {
		return verification{}, err
	}
	probe := make([]byte, 16)
	if _, err := rand.Read(probe); err != nil {
		return verification{}, err
	}
	start := time.Now()
	if _, err := s.wrap(ctx, t.Key, probe, probeContext(t.ID)); err != nil {
		return verification{}, err
	}
	tmk, err := s.unwrap(ctx, v)
	if err != nil {
		return verification{}, err
	}
	return verification{tmk: tmk, version: v.Version, created: v.CreatedAt, latency: time.Since(start)}, nil
}

// SessionTMK returns the unwrapped active TMK for minting a session.
//
// It returns ESEALED for a sealed or revoked tenant, and seals the tenant
// when the unwrap fails terminally (or transiently for longer than the cache
// TTL); EKMSUNAVAILABLE for a transient failure inside that window; ETENANT
// for an unknown tenant.
func (s *Service) SessionTMK(ctx context.Context, tenantID string) ([]byte, int, error) {
	var tmk []byte
	version, err := s.sessionLoad(ctx, tenantID, func(t *keyseal.Tenant, load func(context.Context) ([]byte, error)) (err error) {
		tmk, err = s.cache.get(ctx, t.ID, t.ActiveVersion, load)
		return err
	})
	if err != nil {
		return nil, 0, err
	}
	return tmk, version, nil
}

// SessionSigner returns the session signer of the tenant's active TMK
// version, cached beside the TMK (same TTL, dropped with it). Its errors
// are SessionTMK's.
func (s *Service) SessionSigner(ctx context.Context, tenantID string) (*session.Signer, error) {
	var sg *session.Signer
	_, err := s.sessionLoad(ctx, tenantID, func(t *keyseal.Tenant, load func(context.Context) ([]byte, error)) (err error) {
		sg, err = s.cache.signer(ctx, t.ID, t.ActiveVersion, load)
		return err
	})
	if err != nil {
		return nil, err
	}
	return sg, nil
}

// sessionLoad reads the tenant, refuses a sealed one, and calls fetch
// with the loader of its active TMK (the unwrap behind the cache); a KMS
// failure of that loader is applied to the tenant (SessionTMK's errors).
// It returns the active version.
func (s *Service) sessionLoad(ctx context.Context, tenantID string, fetch func(t *keyseal.Tenant, load func(context.Context) ([]byte, error)) error) (int, error) {
	t, err := s.getTenant(ctx, tenantID)
	if err != nil {
		return 0, err
	}
	if err := sealedError(t); err != nil {
		return 0, err
	}
	err = fetch(t, func(ctx context.Context) ([]byte, error) {
		v, err := s.activeVersion(ctx, t)
		if err != nil {
			return nil, err
		}
		tmk, err := s.unwrap(ctx, v)
		if err != nil {
			// Counted here, inside the single flight, so the concurrent
			// callers sharing one failed KMS call count it once.
			s.emit(metrics.Value{Name: metrics.KMSFailures, Unit: metrics.Count, Values: []float64{1}})
		}
		return tmk, err
	})
	if err == nil {
		return t.ActiveVersion, nil
	}
	var kerr *keyseal.KMSError
	if !errors.As(err, &kerr) {
		return 0, err
	}
	sealed, err := s.fail(ctx, t, kerr, false)
	if err != nil {
		return 0, err
	}
	if sealed != nil {
		return 0, sealedError(sealed)
	}
	return 0, keyseal.Errorf(keyseal.EKMSUNAVAILABLE, "the tenant's KMS is temporarily unreachable; retry shortly")
}

// sealedError is the agent-facing error for a tenant that must not get a
// session, nil for an active one.
func sealedError(t *keyseal.Tenant) error {
	switch t.Status {
	case keyseal.StatusSealed:
		since := ""
		if t.SealedSince != nil {
			since = " since " + t.SealedSince.Format(time.RFC3339)
		}
		return keyseal.Errorf(keyseal.ESEALED, "tenant is sealed%s (%s): keyseal cannot unwrap its master key; restore access to the KMS key", since, t.SealReason)
	case keyseal.StatusRevoked:
		return keyseal.Errorf(keyseal.ESEALED, "tenant is sealed: its active master key version was revoked")
	}
	return nil
}

// fail applies a classified KMS failure to the tenant: terminal failures
// seal at once; transient ones seal only when the stored last_verified_at
// is older than the cache TTL (the cached TMKs are running out). That
// value lags the last success by less than VerifiedEvery, so the seal
// comes at most that much before one TTL after the last success, and never
// later than one TTL plus one poll after it. record asks to store
// last_verify_error when it changed, even when not sealing (the poller
// does; the session path does not, to keep writes off the hot path). It
// returns the sealed tenant, or nil when not sealed.
func (s *Service) fail(ctx context.Context, t *keyseal.Tenant, kerr *keyseal.KMSError, record bool) (*keyseal.Tenant, error) {
	if kerr.Terminal {
		s.cache.drop(t.ID)
	}
	stale := t.LastVerifiedAt == nil || !s.now().Before(t.LastVerifiedAt.Add(s.opt.CacheTTL))
	if kerr.Terminal || stale {
		return s.seal(ctx, t.ID, kerr)
	}
	if msg := verifyError(kerr); record && msg != t.LastVerifyError {
		if err := s.note(ctx, t, func(next *keyseal.Tenant) { next.LastVerifyError = msg }); err != nil {
			return nil, err
		}
	}
	return nil, nil
}

func verifyError(kerr *keyseal.KMSError) string {
	msg := kerr.Error()
	if len(msg) > 512 {
		msg = msg[:512]
	}
	return msg
}

// note records what a check observed (verify time, latency, last error) on
// the tenant row without a state change. One attempt: if a concurrent
// writer moved the row, its newer view wins and the next poll records
// again.
func (s *Service) note(ctx context.Context, t *keyseal.Tenant, edit func(next *keyseal.Tenant)) error {
	next := t.Clone()
	edit(next)
	next.UpdatedAt = s.now()
	if err := s.store.UpdateTenant(ctx, next, keyseal.Change{}); err != nil && keyseal.ErrorCode(err) != keyseal.ECONFLICT {
		return err
	}
	return nil
}

// errNoChange tells mutate that fn found nothing to write.
var errNoChange = errors.New("no change")

// mutate re-reads the tenant, applies fn to a copy and writes it
// conditionally on the revision read, retrying on a concurrent change. fn
// sees the fresh row each attempt, so decisions never rest on stale state.
func (s *Service) mutate(ctx context.Context, tenantID string, fn func(t *keyseal.Tenant) (keyseal.Change, error)) (*keyseal.Tenant, error) {
	const attempts = 8
	for i := 0; ; i++ {
		t, err := s.getTenant(ctx, tenantID)
		if err != nil {
			return nil, err
		}
		next := t.Clone()
		c, err := fn(next)
		if err != nil {
			return t, err
		}
		next.UpdatedAt = s.now()
		err = s.store.UpdateTenant(ctx, next, c)
		if err == nil {
			return next, nil
		}
		if keyseal.ErrorCode(err) != keyseal.ECONFLICT || i == attempts-1 {
			return nil, err
		}
	}
}

// seal moves the tenant to sealed (or revoked) with kerr as the reason,
// writing a byok.kms.seal audit entry and a tenant.kms.sealed outbox event
// in the same transaction. An already sealed tenant keeps its
// sealed_since; only last_verify_error is refreshed. It returns the tenant
// as stored.
func (s *Service) seal(ctx context.Context, tenantID string, kerr *keyseal.KMSError) (*keyseal.Tenant, error) {
	s.cache.drop(tenantID)
	now := s.now()
	// transitioned describes the attempt that committed, not any attempt:
	// mutate calls fn again on the fresh row after losing a revision race,
	// and a loser that finds the row sealed only refreshes
	// last_verify_error. Deciding it anew each attempt is what makes one
	// event (and one seal entry) per transition.
	transitioned := false
	t, err := s.mutate(ctx, tenantID, func(t *keyseal.Tenant) (keyseal.Change, error) {
		transitioned = t.Status == keyseal.StatusActive
		msg := verifyError(kerr)
		if !transitioned {
			if t.LastVerifyError == msg {
				return keyseal.Change{}, errNoChange
			}
			t.LastVerifyError = msg
			return keyseal.Change{}, nil
		}
		t.Status = keyseal.StatusSealed
		if kerr.Reason == keyseal.ReasonRevoked {
			t.Status = keyseal.StatusRevoked
		}
		t.SealedSince = &now
		t.SealReason = kerr.Reason
		t.LastVerifyError = msg
		ev, err := s.event(keyseal.EventSealed, tenantID, keyseal.SealedData{Reason: kerr.Reason, SealedSince: now, LastError: kerr.Code})
		if err != nil {
			return keyseal.Change{}, err
		}
		return keyseal.Change{Audit: s.record(keyseal.ActionSeal, keyseal.SeverityCritical, ActorSystem,
			map[string]string{"reason": kerr.Reason, "kms_error": kerr.Code, "key_id": t.Key.KeyID}),
			Events: []keyseal.Event{ev}}, nil
	})
	if errors.Is(err, errNoChange) {
		return t, nil
	}
	if keyseal.ErrorCode(err) == keyseal.ECONFLICT {
		// Out of attempts against other sealers refreshing
		// last_verify_error: the tenant is sealed, which is what the caller
		// needs; the error another sealer recorded is as current as ours.
		if cur, gerr := s.getTenant(ctx, tenantID); gerr == nil && cur.Status != keyseal.StatusActive {
			return cur, nil
		}
	}
	if err != nil {
		return nil, err
	}
	if transitioned {
		s.opt.Log.Warn("tenant sealed", "tenant_id", tenantID, "reason", kerr.Reason, "kms_error", kerr.Code)
	}
	return t, nil
}

// event returns a transition's event with a fresh id, for the Change that
// records the transition: the store commits it with the state change or
// not at all, so exactly one event exists per committed transition, and
// the publisher delivers it even when this request never learns that its
// write committed. Each mutate attempt builds its own, so an attempt that
// lost the revision race leaves no event behind.
func (s *Service) event(typ, tenantID string, data any) (keyseal.Event, error) {
	return keyseal.NewEvent(typ, tenantID, s.now(), data)
}

// Unseal forces an immediate unseal attempt (seed 000). It returns
// ENOTSEALED when the tenant is not sealed, EREVOKED when its active version
// is revoked, EUNSEALFAILED (with a reason) when the live check still fails.
func (s *Service) Unseal(ctx context.Context, tenantID, actor string) error {
	t, err := s.getTenant(ctx, tenantID)
	if err != nil {
		return err
	}
	switch t.Status {
	case keyseal.StatusActive:
		return keyseal.Errorf(keyseal.ENOTSEALED, "tenant is not sealed; no action needed")
	case keyseal.StatusRevoked:
		return keyseal.Errorf(keyseal.EREVOKED, "the active TMK version is revoked (crypto-erased); it can never be unsealed: create a new TMK version")
	}
	res, err := s.verify(ctx, t)
	if err != nil {
		var kerr *keyseal.KMSError
		if !errors.As(err, &kerr) {
			return err
		}
		if _, err := s.fail(ctx, t, kerr, true); err != nil {
			return err
		}
		return keyseal.Errorf(keyseal.EUNSEALFAILED, "KMS check failed: %s", kerr.Code).With("reason", kerr.UnsealReason())
	}
	return s.unseal(ctx, tenantID, actor, "forced", res)
}

// unseal moves a sealed tenant back to active after a successful verify,
// with a critical byok.kms.unseal audit entry in the same transaction.
// Racing callers are serialised by the conditional write: exactly one
// records the unseal, the others get ENOTSEALED.
func (s *Service) unseal(ctx context.Context, tenantID, actor, trigger string, res verification) error {
	now := s.now()
	_, err := s.mutate(ctx, tenantID, func(t *keyseal.Tenant) (keyseal.Change, error) {
		if t.Status != keyseal.StatusSealed {
			return keyseal.Change{}, keyseal.Errorf(keyseal.ENOTSEALED, "tenant is not sealed; no action needed")
		}
		if t.ActiveVersion != res.version {
			return keyseal.Change{}, keyseal.Errorf(keyseal.ECONFLICT, "the active TMK version changed during the unseal; retry")
		}
		details := map[string]string{"trigger": trigger, "seal_reason": t.SealReason, "latency_ms": strconv.FormatInt(res.latency.Milliseconds(), 10)}
		if t.SealedSince != nil {
			details["sealed_since"] = t.SealedSince.Format(time.RFC3339Nano)
		}
		t.Status = keyseal.StatusActive
		t.SealedSince = nil
		t.SealReason = ""
		t.LastVerifyError = ""
		t.LatencyClass = PolledLatencyClass(RecordedLatencyClass(t), res.latency.Milliseconds())
		t.LastVerifiedAt = &now
		t.LastLatencyMS = res.latency.Milliseconds()
		ev, err := s.event(keyseal.EventUnsealed, tenantID, keyseal.UnsealedData{Trigger: eventTrigger(trigger)})
		if err != nil {
			return keyseal.Change{}, err
		}
		return keyseal.Change{Audit: s.record(keyseal.ActionUnseal, keyseal.SeverityCritical, actor, details),
			Events: []keyseal.Event{ev}}, nil
	})
	if err != nil {
		return err
	}
	if actor != ActorPoller { // the poller serves no session: it fills no cache
		s.cache.put(tenantID, res.version, res.tmk)
	}
	s.opt.Log.Info("tenant unsealed", "tenant_id", tenantID, "trigger", trigger, "actor", actor)
	return nil
}

// eventTrigger is tenant.kms.unsealed's trigger for an unseal's audit
// trigger: the poller's "auto", or an admin's.
func eventTrigger(trigger string) string {
	if trigger == "auto" {
		return keyseal.TriggerPoller
	}
	return keyseal.TriggerAdmin
}

// Reachability is what a tenant row says about its KMS between polls.
type Reachability struct {
	// Reachable is false when the last check failed or the tenant is not
	// active.
	Reachable bool
	// ServingFromCacheUntil is set while an active tenant's last check
	// failed transiently: the moment its cached TMK runs out, after which
	// the tenant seals (reason unreachable) unless the KMS answers again.
	ServingFromCacheUntil *time.Time
}

// Reachability reports t's KMS reachability as its row records it.
func (s *Service) Reachability(t *keyseal.Tenant) Reachability {
	if t.Status != keyseal.StatusActive {
		return Reachability{}
	}
	if t.LastVerifyError == "" {
		return Reachability{Reachable: true}
	}
	r := Reachability{}
	if t.LastVerifiedAt != nil {
		until := t.LastVerifiedAt.Add(s.opt.CacheTTL)
		r.ServingFromCacheUntil = &until
	}
	return r
}
