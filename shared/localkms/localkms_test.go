package localkms_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/kmstest"
	"github.com/keyseal/keyseal/shared/localkms"
)

func TestConformance(t *testing.T) {
	p, err := localkms.Open("")
	if err != nil {
		t.Fatal(err)
	}
	kmstest.Run(t, kmstest.Harness{
		New: func(t *testing.T) (keyseal.KMS, keyseal.KeyRef) {
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
		Missing: func(*testing.T) keyseal.KeyRef {
			return keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: "local-0000000000000000"}
		},
	})
}

func TestPersistence(t *testing.T) {
	path := filepath.Join(t.TempDir(), "local-kms.json")
	p, err := localkms.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	id, err := p.CreateKey()
	if err != nil {
		t.Fatal(err)
	}
	key := keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: id}
	blob, err := p.Wrap(context.Background(), key, []byte("secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.SetState(id, localkms.StateDisabled); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", fi.Mode().Perm())
	}

	again, err := localkms.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := again.State(id); err != nil || s != localkms.StateDisabled {
		t.Fatalf("state after reopen: %q %v", s, err)
	}
	if err := again.SetState(id, localkms.StateEnabled); err != nil {
		t.Fatal(err)
	}
	if got, err := again.Unwrap(context.Background(), key, blob, nil); err != nil || string(got) != "secret" {
		t.Fatalf("unwrap with the reopened key: %q %v", got, err)
	}

	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := localkms.Open(path); err == nil {
		t.Fatal("a corrupt key file opened without error")
	}
}

func TestSetStateErrors(t *testing.T) {
	p, _ := localkms.Open("")
	id, _ := p.CreateKey()
	if err := p.SetState(id, "melted"); keyseal.ErrorCode(err) != keyseal.EINVALID {
		t.Fatalf("unknown state: %v", err)
	}
	if err := p.SetState("local-nope", localkms.StateDisabled); keyseal.ErrorCode(err) != keyseal.ENOTFOUND {
		t.Fatalf("unknown key: %v", err)
	}
}

func TestCallsAndLatency(t *testing.T) {
	p, _ := localkms.Open("")
	id, _ := p.CreateKey()
	key := keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: id}
	blob, _ := p.Wrap(context.Background(), key, []byte("x"), nil)
	_, _ = p.Unwrap(context.Background(), key, blob, nil)
	_, _ = p.Unwrap(context.Background(), key, blob, nil)
	if w, u := p.Calls(); w != 1 || u != 2 {
		t.Fatalf("calls %d wraps %d unwraps, want 1 and 2", w, u)
	}

	// A latency longer than the caller's deadline ends as a transient
	// timeout, the way a slow KMS does.
	p.SetLatency(time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := p.Wrap(ctx, key, []byte("x"), nil)
	var ke *keyseal.KMSError
	if !errors.As(err, &ke) || ke.Terminal || ke.Reason != keyseal.ReasonUnreachable {
		t.Fatalf("cancelled wait: %v", err)
	}
}
