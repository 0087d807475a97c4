// Package kmstest is the conformance suite every keyseal.KMS provider
// passes: the local provider in unit tests, AWS KMS on LocalStack (with the
// fault proxy for the states LocalStack cannot produce) in the integration
// tier. It pins down the contract the seal state machine relies on: which
// failures are terminal, with which reason.
package kmstest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// Key states a harness can drive a key into.
const (
	Enabled         = "enabled"
	Disabled        = "disabled"
	PendingDeletion = "pending_deletion"
	AccessDenied    = "access_denied"
	Unreachable     = "unreachable"
)

// Harness tells the suite how to reach a provider.
type Harness struct {
	// New returns a provider and a fresh enabled key on it.
	New func(t *testing.T) (keyseal.KMS, keyseal.KeyRef)
	// SetState drives key into a state; false means the harness cannot
	// produce it (the subtest is skipped saying so).
	SetState func(t *testing.T, key keyseal.KeyRef, state string) bool
	// Missing returns a reference to a key that does not exist.
	Missing func(t *testing.T) keyseal.KeyRef
}

var ec = map[string]string{"keyseal:tenant": "acme", "keyseal:purpose": "tmk"}

// Run runs the suite.
func Run(t *testing.T, h Harness) {
	ctx := context.Background()
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}

	t.Run("RoundTrip", func(t *testing.T) {
		k, key := h.New(t)
		blob := wrap(t, k, key, secret)
		if bytes.Contains(blob, secret) {
			t.Fatal("the wrapped blob contains the plaintext")
		}
		got, err := k.Unwrap(ctx, key, blob, ec)
		if err != nil || !bytes.Equal(got, secret) {
			t.Fatalf("unwrap: %v", err)
		}
	})

	t.Run("OtherEncryptionContextIsTerminal", func(t *testing.T) {
		k, key := h.New(t)
		blob := wrap(t, k, key, secret)
		_, err := k.Unwrap(ctx, key, blob, map[string]string{"keyseal:tenant": "other", "keyseal:purpose": "tmk"})
		want(t, err, true, keyseal.ReasonInvalidBlob)
	})

	t.Run("OtherKeyIsTerminal", func(t *testing.T) {
		k, key := h.New(t)
		_, other := h.New(t)
		blob := wrap(t, k, key, secret)
		_, err := k.Unwrap(ctx, other, blob, ec)
		want(t, err, true, keyseal.ReasonInvalidBlob)
	})

	t.Run("MissingKeyIsTerminal", func(t *testing.T) {
		k, _ := h.New(t)
		_, err := k.Wrap(ctx, h.Missing(t), secret, ec)
		want(t, err, true, keyseal.ReasonKeyNotFound)
	})

	states := []struct {
		state    string
		terminal bool
		reason   string
	}{
		{Disabled, true, keyseal.ReasonKeyDisabled},
		{PendingDeletion, true, keyseal.ReasonPendingDeletion},
		{AccessDenied, true, keyseal.ReasonAccessDenied},
		{Unreachable, false, keyseal.ReasonUnreachable},
	}
	for _, s := range states {
		t.Run("State_"+s.state, func(t *testing.T) {
			k, key := h.New(t)
			blob := wrap(t, k, key, secret)
			if !h.SetState(t, key, s.state) {
				t.Skipf("this harness cannot produce %s", s.state)
			}
			_, err := k.Wrap(ctx, key, secret, ec)
			want(t, err, s.terminal, s.reason)
			_, err = k.Unwrap(ctx, key, blob, ec)
			want(t, err, s.terminal, s.reason)
			if !h.SetState(t, key, Enabled) {
				t.Fatal("cannot re-enable the key")
			}
			if got, err := k.Unwrap(ctx, key, blob, ec); err != nil || !bytes.Equal(got, secret) {
				t.Fatalf("unwrap after re-enabling: %v", err)
			}
		})
	}
}

func wrap(t *testing.T, k keyseal.KMS, key keyseal.KeyRef, plaintext []byte) []byte {
	t.Helper()
	blob, err := k.Wrap(context.Background(), key, plaintext, ec)
	if err != nil {
		t.Fatalf("wrap: %v", err)
	}
	return blob
}

// want checks err is a classified KMS failure of the given kind.
func want(t *testing.T, err error, terminal bool, reason string) {
	t.Helper()
	var ke *keyseal.KMSError
	if !errors.As(err, &ke) {
		t.Fatalf("want a *keyseal.KMSError (terminal=%v, %s), got %v", terminal, reason, err)
	}
	if ke.Terminal != terminal || ke.Reason != reason {
		t.Fatalf("got terminal=%v reason=%s (%s), want terminal=%v reason=%s", ke.Terminal, ke.Reason, ke.Code, terminal, reason)
	}
}
