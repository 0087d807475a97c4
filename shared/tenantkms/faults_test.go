package tenantkms_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// flakyStore fails UpdateTenant while failing is set, the way a DynamoDB
// throttle or network error would.
type flakyStore struct {
	keyseal.Store
	failing atomic.Bool
}

func (f *flakyStore) UpdateTenant(ctx context.Context, t *keyseal.Tenant, c keyseal.Change) error {
	if f.failing.Load() {
		return errors.New("dynamodb: ProvisionedThroughputExceededException (injected)")
	}
	return f.Store.UpdateTenant(ctx, t, c)
}

// flakyKMS fails the wrap with the given call number (1-based).
type flakyKMS struct {
	keyseal.KMS
	wraps  atomic.Int64
	failAt int64
}

func (f *flakyKMS) Wrap(ctx context.Context, key keyseal.KeyRef, plaintext []byte, ec map[string]string) (keyseal.Wrapped, error) {
	if f.wraps.Add(1) == f.failAt {
		return keyseal.Wrapped{}, &keyseal.KMSError{Reason: keyseal.ReasonUnreachable, Code: "KMSInternalException", Err: errors.New("injected")}
	}
	return f.KMS.Wrap(ctx, key, plaintext, ec)
}

// TestSealStoreFailureLeavesNothingHalfWritten: when the write that seals
// fails, no audit entry, no event and no state change survive; the next
// poll seals cleanly, once.
func TestSealStoreFailureLeavesNothingHalfWritten(t *testing.T) {
	var flaky *flakyStore
	e := newEnvWith(t, func(s keyseal.Store) keyseal.Store { flaky = &flakyStore{Store: s}; return flaky }, nil)
	e.byokTenant(t, "acme")
	ctx := context.Background()

	e.setState(t, "disabled")
	flaky.failing.Store(true)
	if out, err := e.svc.Check(ctx, "acme"); err == nil || out != tenantkms.OutcomeError {
		t.Fatalf("check with a failing store: %v %v", out, err)
	}
	if tn := e.tenant(t, "acme"); tn.Status != keyseal.StatusActive || tn.SealedSince != nil {
		t.Fatalf("tenant changed although the write failed: %+v", tn)
	}
	if n := len(e.auditActions(t, "acme", keyseal.ActionSeal)); n != 0 {
		t.Fatalf("%d seal entries after a failed write, want 0", n)
	}
	if n := e.events.count(keyseal.EventSealed); n != 0 {
		t.Fatalf("%d sealed events after a failed write, want 0", n)
	}

	flaky.failing.Store(false)
	if out, err := e.svc.Check(ctx, "acme"); err != nil || out != tenantkms.OutcomeSealed {
		t.Fatalf("check after the store recovered: %v %v", out, err)
	}
	if n := len(e.auditActions(t, "acme", keyseal.ActionSeal)); n != 1 {
		t.Fatalf("%d seal entries, want 1", n)
	}
	if n := e.events.count(keyseal.EventSealed); n != 1 {
		t.Fatalf("%d sealed events, want 1", n)
	}
}

// TestRegisterKMSFailureMidwayLeavesNothingHalfWritten fails the re-wrap
// under the new CMK after the key test passed: the tenant stays on the
// platform key with its TMK intact, and a retry succeeds.
func TestRegisterKMSFailureMidwayLeavesNothingHalfWritten(t *testing.T) {
	// Wraps: 1 provisions v1 under the platform key, 2 is the CMK's
	// wrap/unwrap test, 3 is the re-wrap of v1 under the CMK.
	e := newEnvWith(t, nil, func(k keyseal.KMS) keyseal.KMS { return &flakyKMS{KMS: k, failAt: 3} })
	ctx := context.Background()
	before, err := e.svc.Provision(ctx, "acme", "admin:test")
	if err != nil {
		t.Fatal(err)
	}
	versionsBefore, err := e.store.Versions(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}

	_, err = e.svc.Register(ctx, "acme", e.cmk, "admin:test")
	if code(err) != keyseal.ECMKACCESS {
		t.Fatalf("register with a failing re-wrap: %v, want %s", err, keyseal.ECMKACCESS)
	}
	after := e.tenant(t, "acme")
	if after.BYOK || !after.Key.Equal(before.Key) || after.Revision != before.Revision {
		t.Fatalf("tenant changed by a failed register: %+v", after)
	}
	versionsAfter, err := e.store.Versions(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(versionsAfter) != 1 || string(versionsAfter[0].Wrapped) != string(versionsBefore[0].Wrapped) {
		t.Fatal("the stored TMK version changed although register failed")
	}
	if n := len(e.auditActions(t, "acme", keyseal.ActionRegister)); n != 0 {
		t.Fatalf("%d register entries after a failed register", n)
	}

	if _, err := e.svc.Register(ctx, "acme", e.cmk, "admin:test"); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if tn := e.tenant(t, "acme"); !tn.BYOK || !tn.Key.Equal(e.cmk) {
		t.Fatalf("after retry: %+v", tn)
	}
	if _, _, err := e.svc.SessionTMK(ctx, "acme"); err != nil {
		t.Fatalf("TMK after the retried register: %v", err)
	}
}

// lostAnswerStore commits UpdateTenant but reports a failure while losing
// is set, the way a TransactWriteItems whose every answer was dropped
// after DynamoDB applied it looks to the caller.
type lostAnswerStore struct {
	keyseal.Store
	losing atomic.Bool
}

func (l *lostAnswerStore) UpdateTenant(ctx context.Context, t *keyseal.Tenant, c keyseal.Change) error {
	err := l.Store.UpdateTenant(ctx, t, c)
	if err == nil && l.losing.Load() {
		return errors.New("dynamodb: RequestError: send request failed: connection reset (injected, after the write)")
	}
	return err
}

// TestTransitionEventSurvivesLostAnswer: a seal and an unseal whose
// committed writes lose their answers still leave exactly one event each,
// because the event is committed with the transition, not published by the
// request that no longer knows it succeeded.
func TestTransitionEventSurvivesLostAnswer(t *testing.T) {
	var lost *lostAnswerStore
	e := newEnvWith(t, func(s keyseal.Store) keyseal.Store { lost = &lostAnswerStore{Store: s}; return lost }, nil)
	e.byokTenant(t, "acme")
	ctx := context.Background()

	e.setState(t, "disabled")
	lost.losing.Store(true)
	_, _ = e.svc.Check(ctx, "acme") // the answer is lost: whatever it says, the seal committed
	lost.losing.Store(false)
	if tn := e.tenant(t, "acme"); tn.Status != keyseal.StatusSealed {
		t.Fatalf("status %s, want sealed (the write committed)", tn.Status)
	}
	if n := e.events.count(keyseal.EventSealed); n != 1 {
		t.Fatalf("%d tenant.kms.sealed events in the outbox after a committed seal whose answer was lost, want 1", n)
	}

	e.setState(t, "enabled")
	lost.losing.Store(true)
	_ = e.svc.Unseal(ctx, "acme", "admin:test")
	lost.losing.Store(false)
	if tn := e.tenant(t, "acme"); tn.Status != keyseal.StatusActive {
		t.Fatalf("status %s, want active (the unseal committed)", tn.Status)
	}
	if n := e.events.count(keyseal.EventUnsealed); n != 1 {
		t.Fatalf("%d tenant.kms.unsealed events after a committed unseal whose answer was lost, want 1", n)
	}
	// A later poll of the now active tenant adds nothing.
	if _, err := e.svc.Check(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if s, u := e.events.count(keyseal.EventSealed), e.events.count(keyseal.EventUnsealed); s != 1 || u != 1 {
		t.Fatalf("events sealed %d unsealed %d, want 1 and 1", s, u)
	}
}

// uniqueDenial fails every call terminally with an error that names its
// own request, as AWS KMS does (the request id differs per call), so two
// sealers never record the same last_verify_error.
type uniqueDenial struct {
	keyseal.KMS
	calls atomic.Int64
	off   atomic.Bool // passes every call through while set
}

func (u *uniqueDenial) Wrap(ctx context.Context, key keyseal.KeyRef, plaintext []byte, ec map[string]string) (keyseal.Wrapped, error) {
	if u.off.Load() {
		return u.KMS.Wrap(ctx, key, plaintext, ec)
	}
	return keyseal.Wrapped{}, &keyseal.KMSError{Terminal: true, Reason: keyseal.ReasonAccessDenied, Code: "AccessDeniedException",
		Err: fmt.Errorf("not authorized (request id %d)", u.calls.Add(1))}
}

// racingStore lets a second sealer win the revision race against the
// first UpdateTenant it sees once armed: it runs race to completion, then
// lets the first write go on, to fail its condition.
type racingStore struct {
	keyseal.Store
	armed atomic.Bool
	race  func()
}

func (r *racingStore) UpdateTenant(ctx context.Context, t *keyseal.Tenant, c keyseal.Change) error {
	if r.armed.CompareAndSwap(true, false) {
		r.race()
	}
	return r.Store.UpdateTenant(ctx, t, c)
}

// TestSealRaceLoserPublishesNothing: a sealer that loses the revision race
// re-reads the sealed row and refreshes last_verify_error; that is not a
// transition, so exactly one tenant.kms.sealed event and one seal entry
// exist (before the fix the loser published a second event).
func TestSealRaceLoserPublishesNothing(t *testing.T) {
	var racing *racingStore
	var denial *uniqueDenial
	e := newEnvWith(t, func(s keyseal.Store) keyseal.Store { racing = &racingStore{Store: s}; return racing }, nil)
	e.byokTenant(t, "acme")
	ctx := context.Background()
	denial = &uniqueDenial{KMS: keyseal.Providers{keyseal.ProviderLocal: e.kms}}
	svc := tenantkms.New(racing, denial, tenantkms.Options{CacheTTL: cacheTTL, KMSTimeout: time.Second, Now: e.clock.Now})
	racing.race = func() {
		if out, err := svc.Check(ctx, "acme"); err != nil || out != tenantkms.OutcomeSealed {
			t.Errorf("racing check: %v %v", out, err)
		}
	}
	racing.armed.Store(true)
	if out, err := svc.Check(ctx, "acme"); err != nil || out != tenantkms.OutcomeSealed {
		t.Fatalf("check: %v %v", out, err)
	}
	if n := e.events.count(keyseal.EventSealed); n != 1 {
		t.Fatalf("%d sealed events for one seal, want 1", n)
	}
	if n := len(e.auditActions(t, "acme", keyseal.ActionSeal)); n != 1 {
		t.Fatalf("%d seal entries, want 1", n)
	}
}

// TestConcurrentSealersPublishOnce: 20 checks race one seal, each with its
// own KMS error; one event, one entry.
func TestConcurrentSealersPublishOnce(t *testing.T) {
	var denial *uniqueDenial
	e := newEnvWith(t, nil, func(k keyseal.KMS) keyseal.KMS { denial = &uniqueDenial{KMS: k}; denial.off.Store(true); return denial })
	e.byokTenant(t, "acme")
	denial.off.Store(false)
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if out, err := e.svc.Check(context.Background(), "acme"); err != nil || out != tenantkms.OutcomeSealed {
				t.Errorf("check: %v %v", out, err)
			}
		})
	}
	wg.Wait()
	if n := e.events.count(keyseal.EventSealed); n != 1 {
		t.Fatalf("%d sealed events for one seal by 20 racing checks, want 1", n)
	}
	if n := len(e.auditActions(t, "acme", keyseal.ActionSeal)); n != 1 {
		t.Fatalf("%d seal entries, want 1", n)
	}
}

// listingStore fails or hangs the listing of one shard.
type listingStore struct {
	keyseal.Store
	shard   int
	failing atomic.Int64 // how many more listings of shard fail
	hang    bool         // listings of shard wait for their deadline
}

func (l *listingStore) ListTenants(ctx context.Context, shard int, cursor string, limit int) ([]string, string, error) {
	if shard == l.shard {
		if l.hang {
			<-ctx.Done()
			return nil, "", keyseal.Unavailable(ctx.Err())
		}
		if l.failing.Add(-1) >= 0 {
			return nil, "", keyseal.Unavailable(errors.New("ProvisionedThroughputExceededException (injected)"))
		}
	}
	return l.Store.ListTenants(ctx, shard, cursor, limit)
}

func (e *env) sweeper(store keyseal.Store) *tenantkms.Service {
	return tenantkms.New(store, keyseal.Providers{keyseal.ProviderLocal: e.kms},
		tenantkms.Options{CacheTTL: cacheTTL, KMSTimeout: time.Second, ListBudget: 500 * time.Millisecond, Now: e.clock.Now})
}

// TestSweepRetriesAFailedShard: a shard whose listing fails twice is
// listed again within the same sweep, so its tenant seals this sweep, not
// one poll interval later (before: the shard was skipped).
func TestSweepRetriesAFailedShard(t *testing.T) {
	e := newEnv(t)
	e.byokTenant(t, "acme")
	e.setState(t, "disabled")
	ls := &listingStore{Store: e.store, shard: keyseal.ShardOf("acme")}
	ls.failing.Store(2)
	stats, err := e.sweeper(ls).Sweep(context.Background(), tenantkms.AllShards())
	if err != nil {
		t.Fatal(err)
	}
	if stats.ListErrors != 0 || stats.Outcomes[tenantkms.OutcomeSealed] != 1 {
		t.Fatalf("sweep stats = %+v, want the tenant of the flaky shard sealed and no list error", stats)
	}
}

// TestSweepHangingShardDoesNotHoldTheSweep: a shard the store never lists
// costs the sweep its listing budget, not the sweep: every other shard's
// tenants are checked and the sweep ends by itself (before: the listing
// was sequential and unbounded, and the sweep ran into its caller's
// deadline).
func TestSweepHangingShardDoesNotHoldTheSweep(t *testing.T) {
	e := newEnv(t)
	e.byokTenant(t, "acme")
	other := ""
	for i := 0; other == ""; i++ {
		if id := fmt.Sprintf("b%d", i); keyseal.ShardOf(id) != keyseal.ShardOf("acme") {
			other = id
		}
	}
	e.byokTenant(t, other)
	e.setState(t, "disabled")
	ls := &listingStore{Store: e.store, shard: keyseal.ShardOf("acme"), hang: true}
	// The safety net only: the sweep must end long before it.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stats, err := e.sweeper(ls).Sweep(ctx, tenantkms.AllShards())
	if err != nil {
		t.Fatalf("sweep: %v (stats %+v), want it to end within its own budget", err, stats)
	}
	if stats.ListErrors != 1 || stats.Outcomes[tenantkms.OutcomeSealed] != 1 {
		t.Fatalf("sweep stats = %+v, want the other shard's tenant sealed and one list error", stats)
	}
	if tn := e.tenant(t, other); tn.Status != keyseal.StatusSealed {
		t.Fatalf("tenant %s = %s, want sealed", other, tn.Status)
	}
}

// TestSlowChecksDoNotCutTheListing: the listing budget bounds store time,
// not the time the checks take to consume the listed ids. A sweep whose
// checks run far past the budget still checks every tenant (before: the
// listing gave up when its budget passed while it waited on the checks,
// skipping every tenant not yet handed over).
func TestSlowChecksDoNotCutTheListing(t *testing.T) {
	e := newEnv(t)
	const tenants = 12
	for i := range tenants {
		mustProvision(t, e, fmt.Sprintf("t%02d", i))
	}
	e.kms.SetLatency(20 * time.Millisecond) // a verify is 40 ms; one at a time, the sweep takes ~0.5 s
	svc := tenantkms.New(e.store, keyseal.Providers{keyseal.ProviderLocal: e.kms},
		tenantkms.Options{CacheTTL: cacheTTL, KMSTimeout: time.Second, Concurrency: 1, ListBudget: 50 * time.Millisecond, Now: e.clock.Now})
	stats, err := svc.Sweep(context.Background(), tenantkms.AllShards())
	if err != nil {
		t.Fatal(err)
	}
	if stats.Verified != tenants || stats.ListErrors != 0 {
		t.Fatalf("verified %d of %d tenants, %d list errors; want all, none", stats.Verified, tenants, stats.ListErrors)
	}
}
