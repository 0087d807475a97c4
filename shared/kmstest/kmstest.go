// Package kmstest is the conformance suite every keyseal.Provider
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
	"strings"
	"testing"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// Key states a harness can drive a key into (docs/contract.md §10).
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
	New func(t *testing.T) (keyseal.Provider, keyseal.KeyRef)
	// Fields returns the registration fields (a PUT /admin/tenant-kms body
	// without "provider") that name key; ParseKey must give key back.
	Fields func(key keyseal.KeyRef) map[string]string
	// SetState drives a key into one of the five states; it returns false
	// when the harness cannot produce that state (the subtest is then
	// skipped saying so). Enabled must always work: it also clears any
	// fault injected for the key.
	SetState func(t *testing.T, key keyseal.KeyRef, state string) bool
	// Missing, when set, returns a reference to a key that does not exist.
	// Otherwise the suite makes one from a fresh key by changing the hex
	// digits its id ends with, which keeps the id's shape (a local id, a
	// key UUID or a key ARN) so the provider looks it up rather than reject
	// it as malformed.
	Missing func(t *testing.T) keyseal.KeyRef
}

// ec is an encryption context like the one keyseal binds a TMK to.
var ec = map[string]string{"keyseal:tenant": "acme", "keyseal:purpose": "tmk"}

// Run runs the suite. Every subtest makes its own keys, so state changes
// never leak from one to the next.
func Run(t *testing.T, h Harness) {
	ctx := context.Background()
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}

	t.Run("RoundTrip", func(t *testing.T) {
		k, key := h.New(t)
		blob := wrap(t, k, key, secret)
		if bytes.Contains(blob.Blob, secret) {
			t.Fatal("the wrapped blob contains the plaintext")
		}
		unwrap(t, k, key, blob, secret)
	})

	t.Run("ParseKey", func(t *testing.T) {
		k, key := h.New(t)
		got, err := k.ParseKey(h.Fields(key))
		if err != nil || !got.Equal(key) {
			t.Fatalf("ParseKey(%v) = %+v, %v; want %+v", h.Fields(key), got, err, key)
		}
		fields := h.Fields(key)
		fields["no_such_field"] = "x"
		if _, err := k.ParseKey(fields); keyseal.ErrorCode(err) != keyseal.EINVALID || !strings.Contains(keyseal.ErrorMessage(err), "no_such_field") {
			t.Fatalf("ParseKey with an unknown field: %v, want EINVALID naming it", err)
		}
		if _, err := k.ParseKey(map[string]string{}); keyseal.ErrorCode(err) != keyseal.EINVALID {
			t.Fatalf("ParseKey without a key: %v, want EINVALID", err)
		}
	})

	t.Run("OtherEncryptionContextIsTerminal", func(t *testing.T) {
		k, key := h.New(t)
		blob := wrap(t, k, key, secret)
		other := map[string]string{"keyseal:tenant": "other", "keyseal:purpose": "tmk"}
		_, err := k.Unwrap(ctx, key, blob, other)
		want(t, "Unwrap with another context", err, true, keyseal.ReasonInvalidBlob)
		_, err = k.Unwrap(ctx, key, blob, nil)
		want(t, "Unwrap without the context", err, true, keyseal.ReasonInvalidBlob)
	})

	t.Run("OtherKeyIsTerminal", func(t *testing.T) {
		k, key := h.New(t)
		k2, other := h.New(t)
		blob := wrap(t, k, key, secret)
		// The blob is genuine, just not the key's the tenant row names:
		// a pinned unwrap refuses it.
		_, err := k2.Unwrap(ctx, other, blob, ec)
		want(t, "Unwrap under a second key", err, true, keyseal.ReasonInvalidBlob)
	})

	t.Run("MissingKeyIsTerminal", func(t *testing.T) {
		k, key := h.New(t)
		blob := wrap(t, k, key, secret)
		missing := keyseal.KeyRef{Provider: key.Provider, KeyID: otherID(key.KeyID)}
		if h.Missing != nil {
			missing = h.Missing(t)
		}
		_, err := k.Wrap(ctx, missing, secret, ec)
		want(t, "Wrap", err, true, keyseal.ReasonKeyNotFound)
		_, err = k.Unwrap(ctx, missing, blob, ec)
		want(t, "Unwrap", err, true, keyseal.ReasonKeyNotFound)
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
				t.Skipf("this harness cannot produce the state %s", s.state)
			}
			_, err := k.Wrap(ctx, key, secret, ec)
			want(t, "Wrap", err, s.terminal, s.reason)
			_, err = k.Unwrap(ctx, key, blob, ec)
			want(t, "Unwrap", err, s.terminal, s.reason)

			// Reversible: once the key is enabled again the blob made
			// before unwraps, and new wraps work.
			if !h.SetState(t, key, Enabled) {
				t.Fatal("the harness cannot enable the key again")
			}
			unwrap(t, k, key, blob, secret)
			unwrap(t, k, key, wrap(t, k, key, secret), secret)
		})
	}
}

func wrap(t *testing.T, k keyseal.KMS, key keyseal.KeyRef, plaintext []byte) keyseal.Wrapped {
	t.Helper()
	blob, err := k.Wrap(context.Background(), key, plaintext, ec)
	if err != nil {
		t.Fatalf("wrap: %v", err)
	}
	return blob
}

func unwrap(t *testing.T, k keyseal.KMS, key keyseal.KeyRef, blob keyseal.Wrapped, plaintext []byte) {
	t.Helper()
	got, err := k.Unwrap(context.Background(), key, blob, ec)
	if err != nil {
		t.Fatalf("unwrap: %v", err)
	}
	if !bytes.Equal(got, plaintext) {
		t.Fatal("unwrap returned other bytes than were wrapped")
	}
}

// want checks err is a classified KMS failure of the given kind.
func want(t *testing.T, op string, err error, terminal bool, reason string) {
	t.Helper()
	var ke *keyseal.KMSError
	if !errors.As(err, &ke) {
		t.Fatalf("%s: want a *keyseal.KMSError (terminal=%v, %s), got %v", op, terminal, reason, err)
	}
	if ke.Terminal != terminal || ke.Reason != reason {
		t.Fatalf("%s: got terminal=%v reason=%s (%v), want terminal=%v reason=%s", op, ke.Terminal, ke.Reason, ke, terminal, reason)
	}
	if ke.Code == "" {
		// last_verify_error and the seal event report it.
		t.Fatalf("%s: the KMSError has no provider code: %v", op, ke)
	}
}

// otherID returns id with each hex digit of its trailing run of hex digits
// moved on by one, so the result has the same shape but names another key.
func otherID(id string) string {
	const digits = "0123456789abcdef"
	start := len(id)
	for start > 0 && strings.IndexByte(digits, lower(id[start-1])) >= 0 {
		start--
	}
	if start == len(id) {
		return id + "-0" // no hex tail to change
	}
	tail := id[start:]
	upper := strings.ContainsAny(tail, "ABCDEF")
	b := []byte(id)
	for i := start; i < len(b); i++ {
		c := digits[(strings.IndexByte(digits, lower(b[i]))+1)%len(digits)]
		if upper && c >= 'a' {
			c -= 'a' - 'A'
		}
		b[i] = c
	}
	return string(b)
}

func lower(c byte) byte {
	if c >= 'A' && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
