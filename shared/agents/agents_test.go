package agents_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/agents"
	"github.com/keyseal/keyseal/shared/boltstore"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/memstore"
)

// TestCreateRefusesHostileNames: a name with NUL, control, bidi or
// zero-width characters, or invalid UTF-8, is a 400 and writes nothing.
func TestCreateRefusesHostileNames(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	s := &agents.Service{Store: store, Now: time.Now}
	for _, name := range []string{
		"", strings.Repeat("a", agents.MaxNameLen+1),
		"bot\x00admin", "bot\nforged: entry", "tab\there", "del\x7f", "c1\u0085",
		"bidi \u202egnp.exe", "zero\u200bwidth", "line\u2028sep", "bad \xff utf8",
	} {
		if _, err := s.Create(ctx, "acme", name, "admin:alice"); keyseal.ErrorCode(err) != keyseal.EINVALID {
			t.Errorf("Create(%q) = %v, want %s", name, err, keyseal.EINVALID)
		}
	}
	if list, err := store.ListAgents(ctx, "acme"); err != nil || len(list) != 0 {
		t.Fatalf("refused names left agents behind: %v, %v", list, err)
	}
	for _, name := range []string{"ci-runner", "Build bot 2", "café ☕", "ロボット", "a\u00a0b"} {
		if _, err := s.Create(ctx, "acme", name, "admin:alice"); err != nil {
			t.Errorf("Create(%q) = %v, want success", name, err)
		}
	}
}

// TestRevokedKeyRefusedAtOnce: the revocation writes what authentication
// reads (the key index item carries the agent), so the next request with
// the key is refused, in each embedded store (dynamostore: the storetest
// conformance suite's Agents/Revoke).
func TestRevokedKeyRefusedAtOnce(t *testing.T) {
	ctx := context.Background()
	bolt, err := boltstore.Open(filepath.Join(t.TempDir(), "keyseal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer bolt.Close()
	for name, store := range map[string]keyseal.Store{"memstore": memstore.New(), "boltstore": bolt} {
		s := &agents.Service{Store: store, Now: time.Now}
		created, err := s.Create(ctx, "acme", "bot", "admin:alice")
		if err != nil {
			t.Fatal(err)
		}
		if a, err := s.Authenticate(ctx, "Bearer "+created.Key); err != nil || a.ID != created.ID {
			t.Fatalf("%s: Authenticate before revoke: %v", name, err)
		}
		if err := s.Revoke(ctx, "acme", created.ID, "admin:alice"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Authenticate(ctx, "Bearer "+created.Key); keyseal.ErrorCode(err) != keyseal.EUNAUTHORIZED || !strings.Contains(keyseal.ErrorMessage(err), "revoked") {
			t.Errorf("%s: Authenticate after revoke = %v, want %s (revoked)", name, err, keyseal.EUNAUTHORIZED)
		}
	}
}
