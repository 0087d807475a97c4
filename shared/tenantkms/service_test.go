package tenantkms_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/boltstore"
	"github.com/keyseal/keyseal/shared/internal/testclock"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/localkms"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// recorder reads the events the service wrote to the store's outbox: what
// a publisher would deliver.
type recorder struct{ store keyseal.OutboxStore }

func (r *recorder) count(typ string) int {
	es, err := r.store.ListOutbox(context.Background(), 0)
	if err != nil {
		panic(err)
	}
	n := 0
	for _, e := range es {
		if e.Type == typ {
			n++
		}
	}
	return n
}

type env struct {
	svc    *tenantkms.Service
	store  keyseal.Store
	kms    *localkms.Provider
	clock  *testclock.Clock
	events *recorder
	cmk    keyseal.KeyRef
	// platform is the platform key's id.
	platform string
}

const cacheTTL = 5 * time.Minute

func newEnv(t *testing.T) *env { return newEnvWith(t, nil, nil) }

// newEnvWith builds an env whose service sees the store and KMS through the
// given wrappers (fault injection); nil means unwrapped.
func newEnvWith(t *testing.T, wrapStore func(keyseal.Store) keyseal.Store, wrapKMS func(keyseal.KMS) keyseal.KMS) *env {
	t.Helper()
	return newEnvFull(t, wrapStore, wrapKMS, tenantkms.Options{})
}

// newEnvOpts builds an env with extra service options (the waiver gate).
func newEnvOpts(t *testing.T, opt tenantkms.Options) *env {
	t.Helper()
	return newEnvFull(t, nil, nil, opt)
}

func newEnvFull(t *testing.T, wrapStore func(keyseal.Store) keyseal.Store, wrapKMS func(keyseal.KMS) keyseal.KMS, opt tenantkms.Options) *env {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "keyseal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	lk, err := localkms.Open("")
	if err != nil {
		t.Fatal(err)
	}
	platform, err := lk.CreateKey()
	if err != nil {
		t.Fatal(err)
	}
	cmk, err := lk.CreateKey()
	if err != nil {
		t.Fatal(err)
	}
	c := testclock.New(time.Date(2026, 11, 23, 12, 0, 0, 0, time.UTC))
	ev := &recorder{store: store}
	var st keyseal.Store = store
	if wrapStore != nil {
		st = wrapStore(store)
	}
	var k keyseal.KMS = keyseal.Providers{keyseal.ProviderLocal: lk}
	if wrapKMS != nil {
		k = wrapKMS(k)
	}
	opt.CacheTTL, opt.KMSTimeout, opt.Now = cacheTTL, time.Second, c.Now
	opt.PlatformKey = keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: platform}
	svc := tenantkms.New(st, k, opt)
	return &env{svc: svc, store: store, kms: lk, clock: c, events: ev, cmk: keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: cmk}, platform: platform}
}

// byokTenant provisions a tenant and registers the env's CMK for it.
func (e *env) byokTenant(t *testing.T, id string) {
	t.Helper()
	if _, err := e.svc.Register(context.Background(), id, e.cmk, "admin:test"); err != nil {
		t.Fatal(err)
	}
}

func (e *env) tenant(t *testing.T, id string) *keyseal.Tenant {
	t.Helper()
	tn, err := e.store.GetTenant(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

func (e *env) setState(t *testing.T, state string) {
	t.Helper()
	if err := e.kms.SetState(e.cmk.KeyID, state); err != nil {
		t.Fatal(err)
	}
}

func (e *env) auditActions(t *testing.T, id, action string) []keyseal.AuditEntry {
	t.Helper()
	entries, err := e.store.ListAudit(context.Background(), id, keyseal.AuditQuery{Limit: 1000, Action: action})
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func code(err error) string { return keyseal.ErrorCode(err) }

func TestRegisterRewrapsUnderCMK(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	before, _, err := e.svc.SessionTMK(ctx, mustProvision(t, e, "t1"))
	if err != nil {
		t.Fatal(err)
	}
	e.byokTenant(t, "t1")
	tn := e.tenant(t, "t1")
	if !tn.BYOK || !tn.Key.Equal(e.cmk) {
		t.Fatalf("tenant key = %+v byok=%v, want the CMK", tn.Key, tn.BYOK)
	}
	versions, _ := e.store.Versions(ctx, "t1")
	if len(versions) != 1 || !versions[0].Key.Equal(e.cmk) {
		t.Fatalf("versions = %+v, want v1 wrapped under the CMK", versions)
	}
	// The TMK itself is unchanged: only its wrapping moved.
	if got, _, err := e.svc.SessionTMK(ctx, "t1"); err != nil || string(got) != string(before) {
		t.Fatalf("TMK changed by registration (err %v)", err)
	}
	if n := len(e.auditActions(t, "t1", keyseal.ActionRegister)); n != 1 {
		t.Fatalf("%d register audit entries, want 1", n)
	}
	_, err = e.svc.Register(ctx, "t1", e.cmk, "admin:test")
	if code(err) != keyseal.EKEYEXISTS {
		t.Fatalf("second register: %v, want %s", err, keyseal.EKEYEXISTS)
	}
}

func mustProvision(t *testing.T, e *env, id string) string {
	t.Helper()
	if _, err := e.svc.Provision(context.Background(), id, "admin:test"); err != nil {
		t.Fatal(err)
	}
	return id
}

func TestRegisterRejectsUnusableKey(t *testing.T) {
	e := newEnv(t)
	e.setState(t, "access_denied")
	_, err := e.svc.Register(context.Background(), "t1", e.cmk, "admin:test")
	var ke *keyseal.Error
	if !errors.As(err, &ke) || ke.Code != keyseal.ECMKACCESS || ke.Extra["reason"] != keyseal.ReasonAccessDenied {
		t.Fatalf("register with denied key: %v, want %s reason access_denied", err, keyseal.ECMKACCESS)
	}
	if e.tenant(t, "t1").BYOK {
		t.Fatal("tenant switched to a key that failed the test")
	}
}

func TestTerminalFailureSealsAtOnce(t *testing.T) {
	for _, tc := range []struct{ state, reason string }{
		{"disabled", keyseal.ReasonKeyDisabled},
		{"pending_deletion", keyseal.ReasonPendingDeletion},
		{"access_denied", keyseal.ReasonAccessDenied},
	} {
		t.Run(tc.state, func(t *testing.T) {
			e := newEnv(t)
			ctx := context.Background()
			e.byokTenant(t, "t1")
			if _, _, err := e.svc.SessionTMK(ctx, "t1"); err != nil {
				t.Fatal(err)
			}
			e.setState(t, tc.state)
			out, err := e.svc.Check(ctx, "t1")
			if err != nil || out != tenantkms.OutcomeSealed {
				t.Fatalf("Check = %s, %v; want sealed", out, err)
			}
			tn := e.tenant(t, "t1")
			if tn.Status != keyseal.StatusSealed || tn.SealReason != tc.reason || tn.SealedSince == nil || tn.LastVerifyError == "" {
				t.Fatalf("tenant = %+v, want sealed with reason %s", tn, tc.reason)
			}
			// The cached TMK was dropped: no new session even inside the TTL.
			if _, _, err := e.svc.SessionTMK(ctx, "t1"); code(err) != keyseal.ESEALED {
				t.Fatalf("session after seal: %v, want %s", err, keyseal.ESEALED)
			}
			if n := len(e.auditActions(t, "t1", keyseal.ActionSeal)); n != 1 {
				t.Fatalf("%d seal audit entries, want 1", n)
			}
			if e.events.count(keyseal.EventSealed) != 1 {
				t.Fatalf("sealed events = %d, want 1", e.events.count(keyseal.EventSealed))
			}
		})
	}
}

func TestSessionPathSealsOnTerminalMiss(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.byokTenant(t, "t1")
	e.setState(t, "disabled")
	e.clock.Advance(cacheTTL) // the registration's cache entry expired
	if _, _, err := e.svc.SessionTMK(ctx, "t1"); code(err) != keyseal.ESEALED {
		t.Fatalf("SessionTMK = %v, want %s", err, keyseal.ESEALED)
	}
	if tn := e.tenant(t, "t1"); tn.Status != keyseal.StatusSealed || tn.SealReason != keyseal.ReasonKeyDisabled {
		t.Fatalf("tenant = %s/%s, want sealed/key_disabled", tn.Status, tn.SealReason)
	}
}

func TestTransientFailureServesCacheThenSeals(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.byokTenant(t, "t1")
	tmk, _, err := e.svc.SessionTMK(ctx, "t1")
	if err != nil {
		t.Fatal(err)
	}
	e.setState(t, "unreachable")

	// Inside the TTL: the poller records the error, sessions still work.
	e.clock.Advance(cacheTTL / 2)
	if out, err := e.svc.Check(ctx, "t1"); err != nil || out != tenantkms.OutcomeDegraded {
		t.Fatalf("Check = %s, %v; want degraded", out, err)
	}
	if got, _, err := e.svc.SessionTMK(ctx, "t1"); err != nil || string(got) != string(tmk) {
		t.Fatalf("SessionTMK inside TTL: %v", err)
	}
	if tn := e.tenant(t, "t1"); tn.Status != keyseal.StatusActive || tn.LastVerifyError == "" {
		t.Fatalf("tenant = %s, error %q; want active with last_verify_error", tn.Status, tn.LastVerifyError)
	}

	// Past the TTL since the last successful verification: sealed, unreachable.
	e.clock.Advance(cacheTTL / 2)
	if _, _, err := e.svc.SessionTMK(ctx, "t1"); code(err) != keyseal.ESEALED {
		t.Fatalf("SessionTMK after TTL: %v, want %s", err, keyseal.ESEALED)
	}
	if tn := e.tenant(t, "t1"); tn.Status != keyseal.StatusSealed || tn.SealReason != keyseal.ReasonUnreachable {
		t.Fatalf("tenant = %s/%s, want sealed/unreachable", tn.Status, tn.SealReason)
	}
}

func TestTransientMissInsideTTLIsRetryable(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.byokTenant(t, "t1")
	// A fresh process: nothing cached, but the tenant verified recently.
	svc2 := tenantkms.New(e.store, keyseal.Providers{keyseal.ProviderLocal: e.kms}, tenantkms.Options{CacheTTL: cacheTTL, Now: e.clock.Now})
	e.setState(t, "unreachable")
	if _, _, err := svc2.SessionTMK(ctx, "t1"); code(err) != keyseal.EKMSUNAVAILABLE {
		t.Fatalf("SessionTMK = %v, want %s", err, keyseal.EKMSUNAVAILABLE)
	}
	if tn := e.tenant(t, "t1"); tn.Status != keyseal.StatusActive {
		t.Fatalf("tenant sealed by a blip inside the TTL")
	}
}

func TestCacheTTLIsAHardBound(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.byokTenant(t, "t1")
	if _, _, err := e.svc.SessionTMK(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	_, unwraps := e.kms.Calls()
	for range 100 {
		if _, _, err := e.svc.SessionTMK(ctx, "t1"); err != nil {
			t.Fatal(err)
		}
	}
	if _, u := e.kms.Calls(); u != unwraps {
		t.Fatalf("%d unwraps for 100 warm sessions, want 0", u-unwraps)
	}
	e.clock.Advance(cacheTTL)
	if _, _, err := e.svc.SessionTMK(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	if _, u := e.kms.Calls(); u != unwraps+1 {
		t.Fatalf("%d unwraps after the TTL, want 1", u-unwraps)
	}
}

func TestCacheMissIsSingleFlight(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.byokTenant(t, "t1")
	e.clock.Advance(cacheTTL)
	e.kms.SetLatency(50 * time.Millisecond)
	_, before := e.kms.Calls()
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, _, err := e.svc.SessionTMK(ctx, "t1"); err != nil {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if _, after := e.kms.Calls(); after-before != 1 || failed.Load() != 0 {
		t.Fatalf("50 concurrent misses made %d unwraps (%d failed), want 1", after-before, failed.Load())
	}
}

func TestAutoUnseal(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.byokTenant(t, "t1")
	e.setState(t, "disabled")
	if out, _ := e.svc.Check(ctx, "t1"); out != tenantkms.OutcomeSealed {
		t.Fatalf("Check = %s, want sealed", out)
	}
	sealedSince := *e.tenant(t, "t1").SealedSince
	e.clock.Advance(30 * time.Second)
	if out, _ := e.svc.Check(ctx, "t1"); out != tenantkms.OutcomeSealed {
		t.Fatalf("second Check = %s, want sealed", out)
	}
	if got := *e.tenant(t, "t1").SealedSince; !got.Equal(sealedSince) {
		t.Fatalf("sealed_since moved on a re-seal attempt: %v -> %v", sealedSince, got)
	}
	if n := len(e.auditActions(t, "t1", keyseal.ActionSeal)); n != 1 {
		t.Fatalf("%d seal entries after two failed polls, want 1", n)
	}
	e.setState(t, "enabled")
	if out, err := e.svc.Check(ctx, "t1"); out != tenantkms.OutcomeUnsealed || err != nil {
		t.Fatalf("Check after re-enable = %s, %v; want unsealed", out, err)
	}
	tn := e.tenant(t, "t1")
	if tn.Status != keyseal.StatusActive || tn.SealedSince != nil || tn.SealReason != "" {
		t.Fatalf("tenant after unseal = %+v", tn)
	}
	unseals := e.auditActions(t, "t1", keyseal.ActionUnseal)
	if len(unseals) != 1 || unseals[0].Severity != keyseal.SeverityCritical || unseals[0].Actor != tenantkms.ActorPoller {
		t.Fatalf("unseal entries = %+v, want one critical by the poller", unseals)
	}
	if e.events.count(keyseal.EventUnsealed) != 1 {
		t.Fatal("no tenant.kms.unsealed event")
	}
	if _, _, err := e.svc.SessionTMK(ctx, "t1"); err != nil {
		t.Fatalf("session after unseal: %v", err)
	}
}

func TestForcedUnseal(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.byokTenant(t, "t1")
	if err := e.svc.Unseal(ctx, "t1", "admin:a"); code(err) != keyseal.ENOTSEALED {
		t.Fatalf("unseal of an active tenant: %v, want %s", err, keyseal.ENOTSEALED)
	}
	for _, tc := range []struct{ state, reason string }{{"access_denied", "access_denied"}, {"unreachable", "unreachable"}, {"disabled", "access_denied"}} {
		e.setState(t, "disabled")
		e.svc.Check(ctx, "t1")
		e.setState(t, tc.state)
		err := e.svc.Unseal(ctx, "t1", "admin:a")
		var ke *keyseal.Error
		if !errors.As(err, &ke) || ke.Code != keyseal.EUNSEALFAILED || ke.Extra["reason"] != tc.reason {
			t.Fatalf("unseal with key %s: %v, want %s reason %s", tc.state, err, keyseal.EUNSEALFAILED, tc.reason)
		}
	}
	e.setState(t, "enabled")
	if err := e.svc.Unseal(ctx, "t1", "admin:a"); err != nil {
		t.Fatalf("unseal: %v", err)
	}
	if e.tenant(t, "t1").Status != keyseal.StatusActive {
		t.Fatal("still sealed after a successful unseal")
	}
}

func TestConcurrentForcedUnsealRecordsOne(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.byokTenant(t, "t1")
	e.setState(t, "disabled")
	e.svc.Check(ctx, "t1")
	e.setState(t, "enabled")
	var wg sync.WaitGroup
	var ok, notSealed atomic.Int32
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch err := e.svc.Unseal(ctx, "t1", fmt.Sprintf("admin:%d", i)); code(err) {
			case "":
				ok.Add(1)
			case keyseal.ENOTSEALED:
				notSealed.Add(1)
			default:
				t.Errorf("unseal: %v", err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || notSealed.Load() != 9 {
		t.Fatalf("%d unsealed, %d not_sealed; want 1 and 9", ok.Load(), notSealed.Load())
	}
	if n := len(e.auditActions(t, "t1", keyseal.ActionUnseal)); n != 1 {
		t.Fatalf("%d unseal audit entries, want 1", n)
	}
	if res, err := audit.VerifyChain(ctx, e.store, "t1"); err != nil || !res.Valid {
		t.Fatalf("chain after the race: %+v, %v", res, err)
	}
}

func TestSweepChecksEveryTenantAndSurvivesFailures(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 30 {
		mustProvision(t, e, fmt.Sprintf("p%02d", i))
	}
	for i := range 5 {
		e.byokTenant(t, fmt.Sprintf("b%d", i))
	}
	e.setState(t, "disabled") // the five BYOK tenants fail, the others do not
	stats, err := e.svc.Sweep(ctx, tenantkms.AllShards())
	if err != nil {
		t.Fatal(err)
	}
	if stats.Tenants != 35 || stats.Outcomes[tenantkms.OutcomeHealthy] != 30 || stats.Outcomes[tenantkms.OutcomeSealed] != 5 {
		t.Fatalf("sweep stats = %+v, want 35 tenants: 30 healthy, 5 sealed", stats)
	}
}

// TestReachabilityShowsTheCacheWindow: while a transient outage lasts the
// row says the KMS is unreachable and until when the tenant serves from
// its cached TMK (the last verify plus the cache TTL); a successful check
// clears it; a sealed tenant is unreachable with no window.
func TestReachabilityShowsTheCacheWindow(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.byokTenant(t, "t1")
	if _, err := e.svc.Check(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	verified := *e.tenant(t, "t1").LastVerifiedAt
	if r := e.svc.Reachability(e.tenant(t, "t1")); !r.Reachable || r.ServingFromCacheUntil != nil {
		t.Fatalf("healthy tenant: %+v", r)
	}

	e.setState(t, "unreachable")
	e.clock.Advance(time.Minute)
	if out, _ := e.svc.Check(ctx, "t1"); out != tenantkms.OutcomeDegraded {
		t.Fatalf("Check = %s, want degraded", out)
	}
	r := e.svc.Reachability(e.tenant(t, "t1"))
	if r.Reachable || r.ServingFromCacheUntil == nil || !r.ServingFromCacheUntil.Equal(verified.Add(cacheTTL)) {
		t.Fatalf("degraded tenant: %+v, want unreachable until %v", r, verified.Add(cacheTTL))
	}

	e.setState(t, "enabled")
	if _, err := e.svc.Check(ctx, "t1"); err != nil {
		t.Fatal(err)
	}
	if r := e.svc.Reachability(e.tenant(t, "t1")); !r.Reachable || r.ServingFromCacheUntil != nil {
		t.Fatalf("recovered tenant: %+v", r)
	}

	e.setState(t, "disabled")
	if out, _ := e.svc.Check(ctx, "t1"); out != tenantkms.OutcomeSealed {
		t.Fatalf("Check = %s, want sealed", out)
	}
	if r := e.svc.Reachability(e.tenant(t, "t1")); r.Reachable || r.ServingFromCacheUntil != nil {
		t.Fatalf("sealed tenant: %+v", r)
	}
}

// TestUnconfiguredProviderNeverSeals: a tenant whose key names a provider
// this process does not run (a deployment fault, not the customer's kill
// switch) is reported as an error by the poller and by the session path,
// and stays active.
func TestUnconfiguredProviderNeverSeals(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.byokTenant(t, "t1")
	// A process over the same store that does not run the tenant's
	// provider (local), as after a deployment lost a provider's settings.
	svc := tenantkms.New(e.store, keyseal.Providers{}, tenantkms.Options{CacheTTL: cacheTTL, Now: e.clock.Now})
	e.clock.Advance(2 * cacheTTL) // past any cache window: a KMS error would seal now
	if out, err := svc.Check(ctx, "t1"); out != tenantkms.OutcomeError || err == nil {
		t.Fatalf("Check = %s, %v; want an error outcome", out, err)
	}
	if _, _, err := svc.SessionTMK(ctx, "t1"); code(err) != keyseal.EINTERNAL {
		t.Fatalf("SessionTMK = %v, want an internal error", err)
	}
	if got := e.tenant(t, "t1"); got.Status != keyseal.StatusActive || len(e.auditActions(t, "t1", keyseal.ActionSeal)) != 0 || e.events.count(keyseal.EventSealed) != 0 {
		t.Fatalf("tenant sealed over a missing provider: %+v", got)
	}
}
