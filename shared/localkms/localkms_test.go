package localkms_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/kmstest"
	"github.com/keyseal/keyseal/shared/localkms"
)

func TestConformance(t *testing.T) {
	// In memory and on a file: the file-backed provider must behave the
	// same, every state change going through a save.
	for name, path := range map[string]string{"memory": "", "file": filepath.Join(t.TempDir(), "local-kms.json")} {
		t.Run(name, func(t *testing.T) {
			p, err := localkms.Open(path)
			if err != nil {
				t.Fatal(err)
			}
			kmstest.Run(t, kmstest.Harness{
				Fields: func(key keyseal.KeyRef) map[string]string { return map[string]string{"key_id": key.KeyID} },
				New: func(t *testing.T) (keyseal.Provider, keyseal.KeyRef) {
					id, err := p.CreateKey()
					if err != nil {
						t.Fatal(err)
					}
					return p, keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: id}
				},
				SetState: func(t *testing.T, key keyseal.KeyRef, state string) bool {
					if err := p.SetState(key.KeyID, state); err != nil {
						t.Fatal(err)
					}
					return true
				},
			})
		})
	}
}

func newKey(t *testing.T, p *localkms.Provider) keyseal.KeyRef {
	t.Helper()
	id, err := p.CreateKey()
	if err != nil {
		t.Fatal(err)
	}
	return keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: id}
}

func kmsError(t *testing.T, err error) *keyseal.KMSError {
	t.Helper()
	var ke *keyseal.KMSError
	if !errors.As(err, &ke) {
		t.Fatalf("want a *keyseal.KMSError, got %v", err)
	}
	return ke
}

func TestCreateKey(t *testing.T) {
	p, err := localkms.Open("")
	if err != nil {
		t.Fatal(err)
	}
	a, b := newKey(t, p), newKey(t, p)
	for _, k := range []keyseal.KeyRef{a, b} {
		if !regexp.MustCompile(`^local-[0-9a-f]{16}$`).MatchString(k.KeyID) {
			t.Fatalf("key id %q, want local- and 16 hex digits", k.KeyID)
		}
		if s, err := p.State(k.KeyID); err != nil || s != localkms.StateEnabled {
			t.Fatalf("new key state %q %v, want enabled", s, err)
		}
	}
	if a.KeyID == b.KeyID {
		t.Fatal("two keys got one id")
	}
	// Two keys have their own material: a blob of one does not open under
	// the other even when the id in the blob is rewritten.
	blob, err := p.Wrap(context.Background(), a, []byte("secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	forged := keyseal.Wrapped{Blob: bytes.Replace(blob.Blob, []byte(a.KeyID), []byte(b.KeyID), 1), KeyVersion: blob.KeyVersion}
	_, err = p.Unwrap(context.Background(), b, forged, nil)
	if ke := kmsError(t, err); !ke.Terminal || ke.Reason != keyseal.ReasonInvalidBlob {
		t.Fatalf("forged blob: %v", ke)
	}
}

// TestEncryptionContextEncoding: the context is bound pair by pair with
// length prefixes, so contexts that concatenate alike differ, while order
// of insertion does not matter.
func TestEncryptionContextEncoding(t *testing.T) {
	p, _ := localkms.Open("")
	key := newKey(t, p)
	ctx := context.Background()
	blob, err := p.Wrap(ctx, key, []byte("secret"), map[string]string{"a": "bc", "x": "1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, ec := range []map[string]string{
		{"ab": "c", "x": "1"},
		{"a": "bcx1"},
		{"a": "bc"},
		{"a": "bc", "x": "1", "y": ""},
	} {
		_, err := p.Unwrap(ctx, key, blob, ec)
		if ke := kmsError(t, err); !ke.Terminal || ke.Reason != keyseal.ReasonInvalidBlob || ke.Code != "InvalidCiphertextException" {
			t.Fatalf("context %v opened a blob bound to another: %v", ec, ke)
		}
	}
	same := map[string]string{}
	same["x"], same["a"] = "1", "bc"
	if got, err := p.Unwrap(ctx, key, blob, same); err != nil || string(got) != "secret" {
		t.Fatalf("same context: %q %v", got, err)
	}
	if _, err := p.Unwrap(ctx, key, keyseal.Wrapped{Blob: blob.Blob[:len(blob.Blob)-1]}, same); kmsError(t, err).Reason != keyseal.ReasonInvalidBlob {
		t.Fatal("a truncated blob was not refused as invalid ciphertext")
	}
	if _, err := p.Unwrap(ctx, key, keyseal.Wrapped{}, same); kmsError(t, err).Reason != keyseal.ReasonInvalidBlob {
		t.Fatal("an empty blob was not refused as invalid ciphertext")
	}
}

// TestStateCodes: the states answer with the codes AWS KMS uses, so the
// same dashboards and last_verify_error texts read alike in dev mode.
func TestStateCodes(t *testing.T) {
	p, _ := localkms.Open("")
	key := newKey(t, p)
	for state, code := range map[string]string{
		localkms.StateDisabled:        "DisabledException",
		localkms.StatePendingDeletion: "KMSInvalidStateException",
		localkms.StateAccessDenied:    "AccessDeniedException",
		localkms.StateUnreachable:     "Unreachable",
	} {
		if err := p.SetState(key.KeyID, state); err != nil {
			t.Fatal(err)
		}
		_, err := p.Wrap(context.Background(), key, []byte("x"), nil)
		if got := kmsError(t, err).Code; got != code {
			t.Errorf("%s: code %s, want %s", state, got, code)
		}
	}
	_, err := p.Wrap(context.Background(), keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: "local-0000000000000000"}, []byte("x"), nil)
	if ke := kmsError(t, err); !ke.Terminal || ke.Reason != keyseal.ReasonKeyNotFound || ke.Code != "NotFoundException" {
		t.Fatalf("unknown key: %v", ke)
	}
}

func TestPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "local-kms.json")
	p, err := localkms.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	key := newKey(t, p)
	other := newKey(t, p)
	blob, err := p.Wrap(context.Background(), key, []byte("secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetState(key.KeyID, localkms.StateDisabled); err != nil {
		t.Fatal(err)
	}
	if err := p.SetState(other.KeyID, localkms.StateUnreachable); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}
	if entries, _ := os.ReadDir(filepath.Dir(path)); len(entries) != 1 {
		t.Fatalf("the directory holds %d files, want only the key file (no temporary files left)", len(entries))
	}

	again, err := localkms.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := again.State(key.KeyID); err != nil || s != localkms.StateDisabled {
		t.Fatalf("state after reopen: %q %v", s, err)
	}
	if s, err := again.State(other.KeyID); err != nil || s != localkms.StateUnreachable {
		t.Fatalf("second key's state after reopen: %q %v", s, err)
	}
	if err := again.SetState(key.KeyID, localkms.StateEnabled); err != nil {
		t.Fatal(err)
	}
	if got, err := again.Unwrap(context.Background(), key, blob, nil); err != nil || string(got) != "secret" {
		t.Fatalf("unwrap with the reopened key: %q %v", got, err)
	}
}

func TestOpenRefusesACorruptFile(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{
		"not json":      `{not json`,
		"short key":     `{"local-0000000000000000": {"material": "AAAA", "state": "enabled"}}`,
		"unknown state": `{"local-0000000000000000": {"material": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", "state": "melted"}}`,
	} {
		path := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".json")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := localkms.Open(path); err == nil {
			t.Errorf("%s: opened without error", name)
		}
	}
	// A missing file is a fresh, empty provider.
	if _, err := localkms.Open(filepath.Join(dir, "absent.json")); err != nil {
		t.Fatal(err)
	}
}

func TestSetStateErrors(t *testing.T) {
	p, _ := localkms.Open("")
	key := newKey(t, p)
	err := p.SetState(key.KeyID, "melted")
	if keyseal.ErrorCode(err) != keyseal.EINVALID {
		t.Fatalf("unknown state: %v", err)
	}
	for _, s := range localkms.States {
		if !strings.Contains(keyseal.ErrorMessage(err), s) {
			t.Errorf("the message %q does not list the state %s", keyseal.ErrorMessage(err), s)
		}
	}
	if len(localkms.States) != 5 {
		t.Fatalf("%d states, docs/contract.md §10 names five", len(localkms.States))
	}
	if s, _ := p.State(key.KeyID); s != localkms.StateEnabled {
		t.Fatalf("a refused SetState changed the state to %q", s)
	}
	if err := p.SetState("local-nope", localkms.StateDisabled); keyseal.ErrorCode(err) != keyseal.ENOTFOUND {
		t.Fatalf("unknown key: %v", err)
	}
	if _, err := p.State("local-nope"); keyseal.ErrorCode(err) != keyseal.ENOTFOUND {
		t.Fatalf("state of an unknown key: %v", err)
	}
}

func TestCallsAndLatency(t *testing.T) {
	p, _ := localkms.Open("")
	key := newKey(t, p)
	blob, _ := p.Wrap(context.Background(), key, []byte("x"), nil)
	_, _ = p.Unwrap(context.Background(), key, blob, nil)
	_, _ = p.Unwrap(context.Background(), key, blob, nil)
	if w, u := p.Calls(); w != 1 || u != 2 {
		t.Fatalf("calls %d wraps %d unwraps, want 1 and 2", w, u)
	}

	// A latency longer than the caller is willing to wait ends as a
	// transient failure, the way a slow KMS does, and the call still counts.
	p.SetLatency(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.Wrap(ctx, key, []byte("x"), nil)
	if ke := kmsError(t, err); ke.Terminal || ke.Reason != keyseal.ReasonUnreachable || !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	_, err = p.Unwrap(ctx, key, blob, nil)
	if ke := kmsError(t, err); ke.Terminal || ke.Reason != keyseal.ReasonUnreachable {
		t.Fatalf("cancelled wait: %v", err)
	}
	if w, u := p.Calls(); w != 2 || u != 3 {
		t.Fatalf("calls %d wraps %d unwraps, want 2 and 3", w, u)
	}
	p.SetLatency(0)
	if _, err := p.Unwrap(context.Background(), key, blob, nil); err != nil {
		t.Fatalf("after removing the latency: %v", err)
	}
}

// TestConcurrentUse runs wraps, unwraps, key creation and state changes at
// once; the race detector checks the locking.
func TestConcurrentUse(t *testing.T) {
	p, err := localkms.Open(filepath.Join(t.TempDir(), "local-kms.json"))
	if err != nil {
		t.Fatal(err)
	}
	key := newKey(t, p)
	blob, err := p.Wrap(context.Background(), key, []byte("secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := range 8 {
		wg.Go(func() {
			for range 20 {
				if i == 0 {
					_ = p.SetState(key.KeyID, localkms.StateDisabled)
					_ = p.SetState(key.KeyID, localkms.StateEnabled)
					continue
				}
				if _, err := p.CreateKey(); err != nil {
					errs <- err
					return
				}
				got, err := p.Unwrap(context.Background(), key, blob, nil)
				// Disabled for a moment is fine; anything else is not.
				var ke *keyseal.KMSError
				switch {
				case err != nil && !(errors.As(err, &ke) && ke.Reason == keyseal.ReasonKeyDisabled):
					errs <- err
					return
				case err == nil && string(got) != "secret":
					errs <- errors.New("unwrap returned other bytes")
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if _, u := p.Calls(); u != 7*20 {
		t.Fatalf("%d unwraps counted, want %d", u, 7*20)
	}
}
