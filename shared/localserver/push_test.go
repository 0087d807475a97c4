package localserver_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyevents"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/localserver"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// pushOn is dev mode's default, which the other tests' startServer turns
// off.
var pushOn = map[string]string{"KEYSEAL_DEV_PUSH": "1"}

// sessionStatus is the status of one session request of the demo agent.
func sessionStatus(t *testing.T, s *localserver.Server) int {
	t.Helper()
	return do(t, s, http.MethodPost, "/agent/v1/session", bearer(s.Credentials.AgentKey), "").status
}

// within polls until the demo agent's session answers want, failing after
// limit; it returns how long that took.
func within(t *testing.T, s *localserver.Server, want int, limit time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		got := sessionStatus(t, s)
		if got == want {
			return time.Since(start)
		}
		if time.Since(start) > limit {
			t.Fatalf("session still %d after %v, want %d", got, limit, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func setKeyState(t *testing.T, s *localserver.Server, state string) {
	t.Helper()
	if r := do(t, s, http.MethodPost, "/dev/kms/keys/"+s.Credentials.KMSKeyID+"/state", nil, `{"state":"`+state+`"}`); r.status != http.StatusOK {
		t.Fatalf("set state %s: %d %s", state, r.status, r.raw)
	}
}

// TestDevPushSeals: with the poller parked at 1 h, disabling the demo key
// seals within a second (the pushed DisableKey verifies now), and enabling
// it unseals (its verify deferred to one second after the first).
func TestDevPushSeals(t *testing.T) {
	s := devServer(t, t.TempDir(), pushOn)
	if got := sessionStatus(t, s); got != http.StatusCreated {
		t.Fatalf("session before: %d", got)
	}
	setKeyState(t, s, "disabled")
	took := within(t, s, http.StatusServiceUnavailable, time.Second)
	tn, err := s.App.Store.GetTenant(context.Background(), localserver.DemoTenant)
	if err != nil || tn.Status != keyseal.StatusSealed || tn.SealReason != keyseal.ReasonKeyDisabled {
		t.Fatalf("after DisableKey: %+v %v", tn, err)
	}
	t.Logf("sealed and first 503 after %v", took)
	setKeyState(t, s, "enabled")
	within(t, s, http.StatusCreated, 2*time.Second)
}

// TestDevPushOff: with KEYSEAL_DEV_PUSH=0 a disabled key changes nothing
// until a sweep.
func TestDevPushOff(t *testing.T) {
	s := devServer(t, t.TempDir(), map[string]string{"KEYSEAL_DEV_PUSH": "0"})
	setKeyState(t, s, "disabled")
	time.Sleep(1500 * time.Millisecond)
	if got := sessionStatus(t, s); got != http.StatusCreated {
		t.Fatalf("session %d before any sweep, want 201 (push is off)", got)
	}
	if s.Push(keyevents.CloudTrailEvent("DisableKey", localserver.DevKeyARN(s.Credentials.KMSKeyID), time.Now())) {
		t.Fatal("Push accepted an event with push off")
	}
	if _, err := s.App.Tenants.Sweep(context.Background(), tenantkms.AllShards()); err != nil {
		t.Fatal(err)
	}
	if got := sessionStatus(t, s); got != http.StatusServiceUnavailable {
		t.Fatalf("session %d after the sweep, want 503", got)
	}
}

// TestForgedEventDoesNotSeal: an event claiming the key was disabled,
// while its KMS answers fine, costs one verify and seals nothing.
func TestForgedEventDoesNotSeal(t *testing.T) {
	s := devServer(t, t.TempDir(), pushOn)
	before, err := s.App.Store.GetTenant(context.Background(), localserver.DemoTenant)
	if err != nil {
		t.Fatal(err)
	}
	res, err := s.KeyEvents.Handle(context.Background(),
		keyevents.CloudTrailEvent("DisableKey", localserver.DevKeyARN(s.Credentials.KMSKeyID), time.Now()))
	if err != nil {
		t.Fatal(err)
	}
	if res.Checked[localserver.DemoTenant] != tenantkms.OutcomeHealthy {
		t.Fatalf("forged event: %+v, want one healthy verify of the demo tenant", res)
	}
	after, err := s.App.Store.GetTenant(context.Background(), localserver.DemoTenant)
	if err != nil {
		t.Fatal(err)
	}
	// The healthy outcome is the live verify's (not last_verified_at,
	// which the poller may write at most once a minute).
	if after.Status != keyseal.StatusActive || after.SealedSince != nil || after.Revision < before.Revision {
		t.Fatalf("after a forged DisableKey: %+v, want still active", after)
	}
	if got := sessionStatus(t, s); got != http.StatusCreated {
		t.Fatalf("session %d after a forged event", got)
	}
}

func TestDevPushBadValue(t *testing.T) {
	_, _, err := localserver.Wire(context.Background(), func(k string) string {
		return map[string]string{"KEYSEAL_DEV_PUSH": "yes"}[k]
	}, localserver.ModeDev, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "KEYSEAL_DEV_PUSH must be 0 or 1") {
		t.Fatalf("Wire with KEYSEAL_DEV_PUSH=yes: %v", err)
	}
}
