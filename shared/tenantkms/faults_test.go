package tenantkms_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

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
