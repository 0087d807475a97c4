package gcpkms_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/gcpkms"
	"github.com/keyseal/keyseal/shared/gcpkms/gcpkmsfake"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/kmstest"
)

// env is a fake Cloud KMS and keyseal's client talking to it over HTTP.
type env struct {
	fake   *gcpkmsfake.Server
	client *gcpkms.Client
	p      *gcpkms.Provider
}

func newEnv(t *testing.T) *env {
	t.Helper()
	fake, err := gcpkmsfake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fake.Stop)
	client := fake.Client()
	return &env{fake: fake, client: client, p: gcpkms.New(client)}
}

// newKey makes an enabled key whose name ends in hex digits (the suite's
// missing key changes them).
func (e *env) newKey(t *testing.T) keyseal.KeyRef {
	t.Helper()
	id := make([]byte, 8)
	if _, err := rand.Read(id); err != nil {
		t.Fatal(err)
	}
	name := "projects/keyseal-test/locations/global/keyRings/tenants/cryptoKeys/k-" + hex.EncodeToString(id)
	if err := e.fake.CreateKey(name); err != nil {
		t.Fatal(err)
	}
	return keyseal.KeyRef{Provider: keyseal.ProviderGCP, KeyID: name}
}

func (e *env) fault(t *testing.T, key keyseal.KeyRef, f gcpkmsfake.Fault) {
	t.Helper()
	if err := e.fake.SetFault(key.KeyID, f); err != nil {
		t.Fatal(err)
	}
}

func TestConformance(t *testing.T) {
	e := newEnv(t)
	kmstest.Run(t, kmstest.Harness{
		New: func(t *testing.T) (keyseal.Provider, keyseal.KeyRef) { return e.p, e.newKey(t) },
		Fields: func(key keyseal.KeyRef) map[string]string {
			return map[string]string{"key_name": key.KeyID}
		},
		SetState: func(t *testing.T, key keyseal.KeyRef, state string) bool {
			f := map[string]gcpkmsfake.Fault{
				kmstest.Enabled:         {State: gcpkms.StateEnabled},
				kmstest.Disabled:        {State: gcpkms.StateDisabled},
				kmstest.PendingDeletion: {State: gcpkms.StateDestroyScheduled},
				kmstest.AccessDenied:    {Denied: true},
				kmstest.Unreachable:     {Outage: true},
			}[state]
			e.fault(t, key, f)
			return true
		},
	})
}

var ec = map[string]string{"keyseal:tenant": "acme", "keyseal:purpose": "tmk"}

func wantKMS(t *testing.T, op string, err error, terminal bool, reason, code string) {
	t.Helper()
	var ke *keyseal.KMSError
	if !errors.As(err, &ke) || ke.Terminal != terminal || ke.Reason != reason || ke.Code != code {
		t.Fatalf("%s: got %#v (%v), want terminal=%v reason=%s code=%s", op, ke, err, terminal, reason, code)
	}
}

// A checksum that does not match the bytes it covers is never used: the
// call fails, transiently, whichever way the damage went.
func TestChecksums(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := e.newKey(t)
	secret := []byte("0123456789abcdef0123456789abcdef")
	good, err := e.p.Wrap(ctx, key, secret, ec)
	if err != nil {
		t.Fatal(err)
	}

	e.fault(t, key, gcpkmsfake.Fault{CorruptChecksums: true})
	_, err = e.p.Wrap(ctx, key, secret, ec)
	wantKMS(t, "Wrap with a corrupt ciphertext checksum", err, false, keyseal.ReasonUnreachable, "ChecksumMismatch")
	pt, err := e.p.Unwrap(ctx, key, good, ec)
	wantKMS(t, "Unwrap with a corrupt plaintext checksum", err, false, keyseal.ReasonUnreachable, "ChecksumMismatch")
	if pt != nil {
		t.Fatal("Unwrap returned plaintext whose checksum failed")
	}

	e.fault(t, key, gcpkmsfake.Fault{Unverified: true})
	_, err = e.p.Wrap(ctx, key, secret, ec)
	wantKMS(t, "Wrap the server did not verify", err, false, keyseal.ReasonUnreachable, "ChecksumMismatch")

	// Damage on the way in: the server's own check (InvalidArgument naming
	// the crc32c field) is transient too, not a wrong key.
	e.fault(t, key, gcpkmsfake.Fault{})
	damaged := keyseal.Wrapped{Blob: append([]byte(nil), good.Blob...), KeyVersion: good.KeyVersion}
	damaged.Blob[len(damaged.Blob)-1] ^= 1
	_, err = e.p.Unwrap(ctx, key, damaged, ec)
	wantKMS(t, "Unwrap of a damaged blob", err, true, keyseal.ReasonInvalidBlob, "InvalidArgument")
}

// Wrap reports the version that encrypted; after a rotation new wraps name
// the new primary and old blobs still unwrap.
func TestKeyVersion(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := e.newKey(t)
	secret := []byte("tmk")
	w1, err := e.p.Wrap(ctx, key, secret, ec)
	if err != nil || w1.KeyVersion != key.KeyID+"/cryptoKeyVersions/1" {
		t.Fatalf("Wrap = %q, %v; want version 1", w1.KeyVersion, err)
	}
	v2, err := e.fake.RotateKey(key.KeyID)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := e.p.Wrap(ctx, key, secret, ec)
	if err != nil || w2.KeyVersion != v2 {
		t.Fatalf("Wrap after rotation = %q, %v; want %s", w2.KeyVersion, err, v2)
	}
	for _, w := range []keyseal.Wrapped{w1, w2} {
		if got, err := e.p.Unwrap(ctx, key, w, ec); err != nil || string(got) != "tmk" {
			t.Fatalf("Unwrap(%s) = %q, %v", w.KeyVersion, got, err)
		}
	}
}

// The client never retries: an outage is one call, answered at once, and
// the caller's deadline is what bounds a slow KMS.
func TestNoClientRetriesAndDeadline(t *testing.T) {
	e := newEnv(t)
	key := e.newKey(t)
	e.fault(t, key, gcpkmsfake.Fault{Outage: true})
	before := e.fake.Calls()
	// The bound only keeps a regression from hanging the test: with
	// retries, the client would call again and again within it.
	bounded, stop := context.WithTimeout(context.Background(), 5*time.Second)
	defer stop()
	_, err := e.p.Wrap(bounded, key, []byte("x"), ec)
	wantKMS(t, "Wrap in an outage", err, false, keyseal.ReasonUnreachable, "Unavailable")
	if n := e.fake.Calls() - before; n != 1 {
		t.Fatalf("Wrap in an outage made %d calls, want 1 (no client retries)", n)
	}

	e.fault(t, key, gcpkmsfake.Fault{})
	e.fake.SetLatency(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = e.p.Unwrap(ctx, key, keyseal.Wrapped{Blob: []byte("blob")}, ec)
	var ke *keyseal.KMSError
	if !errors.As(err, &ke) || ke.Terminal || ke.Reason != keyseal.ReasonUnreachable {
		t.Fatalf("Unwrap past its deadline: %v, want transient unreachable", err)
	}
}

func TestAPIDisabledIsTransient(t *testing.T) {
	e := newEnv(t)
	key := e.newKey(t)
	e.fake.SetAPIDisabled(true)
	_, err := e.p.Wrap(context.Background(), key, []byte("x"), ec)
	wantKMS(t, "Wrap with the API disabled", err, false, keyseal.ReasonUnreachable, "FailedPrecondition")
	if !strings.Contains(err.Error(), "has not been used in project keyseal-test") {
		t.Fatalf("the error lost GCP's message: %v", err)
	}
}

func TestKeyState(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	key := e.newKey(t)
	for state, want := range map[string]string{
		gcpkms.StateDisabled:         keyseal.KeyStateDisabled,
		gcpkms.StateDestroyScheduled: keyseal.KeyStatePendingDeletion,
		gcpkms.StateDestroyed:        keyseal.KeyStatePendingDeletion,
		gcpkms.StateEnabled:          keyseal.KeyStateEnabled,
	} {
		e.fault(t, key, gcpkmsfake.Fault{State: state})
		if got, err := e.p.KeyState(ctx, key); err != nil || got != want {
			t.Errorf("KeyState with the version %s = %s, %v; want %s", state, got, err, want)
		}
	}
	e.fault(t, key, gcpkmsfake.Fault{Denied: true})
	_, err := e.p.KeyState(ctx, key)
	wantKMS(t, "KeyState denied", err, true, keyseal.ReasonAccessDenied, "PermissionDenied")
}

// A key naming a service account on a provider that cannot impersonate is
// never called with keyseal's own identity, and the error does not seal.
func TestServiceAccountWithoutImpersonation(t *testing.T) {
	e := newEnv(t)
	key := e.newKey(t)
	key.Access = map[string]string{gcpkms.AccessServiceAccount: "tenant-kms@acme-prod.iam.gserviceaccount.com"}
	calls := e.fake.Calls()
	_, err := e.p.Wrap(context.Background(), key, []byte("x"), ec)
	var ke *keyseal.KMSError
	if err == nil || errors.As(err, &ke) {
		t.Fatalf("Wrap = %v, want a deployment error that is not a KMSError", err)
	}
	if e.fake.Calls() != calls {
		t.Fatal("Wrap called KMS with keyseal's own identity")
	}

	// With impersonation configured the key goes through its client.
	var asked string
	p := gcpkms.New(e.client, gcpkms.WithServiceAccounts(func(sa string) (gcpkms.API, error) { asked = sa; return e.client, nil }))
	if _, err := p.Wrap(context.Background(), key, []byte("x"), ec); err != nil || asked != key.Access[gcpkms.AccessServiceAccount] {
		t.Fatalf("Wrap through the service account: %v (asked for %q)", err, asked)
	}
}

func TestAAD(t *testing.T) {
	a := gcpkms.AAD(map[string]string{"a": "bc", "d": ""})
	b := gcpkms.AAD(map[string]string{"a": "b", "cd": ""})
	if string(a) == string(b) {
		t.Fatal("two contexts share their AAD bytes")
	}
	if string(gcpkms.AAD(ec)) != string(gcpkms.AAD(map[string]string{"keyseal:purpose": "tmk", "keyseal:tenant": "acme"})) {
		t.Fatal("AAD depends on map order")
	}
	if string(gcpkms.AAD(nil)) != string(gcpkms.AAD(map[string]string{})) || len(gcpkms.AAD(nil)) != 4 {
		t.Fatal("an empty context is not four zero bytes")
	}
}

// TestAdviseNamesTheIdentity: the provider's advice binds the service
// account it was built with, and asks the customer's account to let it
// impersonate when the key names one.
func TestAdviseNamesTheIdentity(t *testing.T) {
	const self = "keyseal@keyseal-prod.iam.gserviceaccount.com"
	key := keyseal.KeyRef{Provider: keyseal.ProviderGCP, KeyID: "projects/acme-prod/locations/global/keyRings/r/cryptoKeys/k",
		Access: map[string]string{gcpkms.AccessServiceAccount: "byok@acme-prod.iam.gserviceaccount.com"}}
	r := gcpkms.New(nil, gcpkms.WithIdentity(self)).Advise(key, keyseal.Finding{Problem: keyseal.ReasonAccessDenied})
	if len(r) != 3 || r[1].Action != "grant-token-creator" || !strings.Contains(r[1].Command, "--member serviceAccount:"+self+" ") {
		t.Fatalf("advice = %+v", r)
	}
}
