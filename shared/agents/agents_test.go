package agents_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/agents"
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
