package waiver_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/memstore"
	"github.com/keyseal/keyseal/shared/waiver"
)

func TestEmbedded(t *testing.T) {
	w := waiver.Embedded()
	if w.Version == "" || !strings.HasPrefix(w.Text, "version: "+w.Version+"\n") || len(w.SHA256) != 64 {
		t.Fatalf("embedded waiver: %+v", w)
	}
}

func TestValidEmail(t *testing.T) {
	for _, ok := range []string{"legal@acme.example", "a.b+c@sub.acme.io"} {
		if err := waiver.ValidEmail(ok); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", "legal", "legal@", "@acme.io", "legal@localhost", "Legal <legal@acme.io>", " legal@acme.io",
		"legal@acme.io, x@y.io", "legal@.io", strings.Repeat("a", 250) + "@a.io"} {
		if code := keyseal.ErrorCode(waiver.ValidEmail(bad)); code != keyseal.EINVALID {
			t.Errorf("%q: code %q", bad, code)
		}
	}
}

// TestLifecycle: never acknowledged blocks (waiver_not_acknowledged); an
// acknowledgment of the current version opens the gate and is audited; a
// newer version blocks again (waiver_reacknowledgment_required) with the
// old acknowledgment still reported, until acknowledged again.
func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	store := memstore.New()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	v1, err := waiver.New("v1", "version: v1\nterms")
	if err != nil {
		t.Fatal(err)
	}
	s := waiver.NewService(store, v1, func() time.Time { return now })

	requireGate(t, s, keyseal.EWAIVER, "v1")
	st, err := s.Status(ctx, "acme")
	if err != nil || st.Acknowledged || st.RequiresReacknowledgment || st.AcknowledgedBy != nil || st.Version != "v1" {
		t.Fatalf("status before: %+v, %v", st, err)
	}
	if _, err := s.Acknowledge(ctx, "acme", "not-an-email", "admin:alice"); keyseal.ErrorCode(err) != keyseal.EINVALID {
		t.Fatalf("bad email: %v", err)
	}
	if st, err = s.Acknowledge(ctx, "acme", "legal@acme.example", "admin:alice"); err != nil || !st.Acknowledged {
		t.Fatalf("acknowledge: %+v, %v", st, err)
	}
	if err := s.Require(ctx, "acme"); err != nil {
		t.Fatalf("gate after acknowledging: %v", err)
	}
	entries, err := store.ListAudit(ctx, "acme", keyseal.AuditQuery{Limit: 10})
	if err != nil || len(entries) != 1 || entries[0].Action != keyseal.ActionWaiverAck || entries[0].Actor != "admin:alice" ||
		entries[0].Details["acknowledged_by"] != "legal@acme.example" || entries[0].Details["version"] != "v1" {
		t.Fatalf("audit: %+v, %v", entries, err)
	}

	v2, _ := waiver.New("v2", "version: v2\nnew terms")
	s.Publish(v2)
	requireGate(t, s, keyseal.EWAIVERREACK, "v2")
	st, _ = s.Status(ctx, "acme")
	if st.Acknowledged || !st.RequiresReacknowledgment || *st.AcknowledgedVersion != "v1" || *st.AcknowledgedBy != "legal@acme.example" ||
		!st.AcknowledgedAt.Equal(now) || st.Version != "v2" {
		t.Fatalf("status after a new version: %+v", st)
	}
	// The same version with other text is not what was acknowledged.
	if _, err := s.Acknowledge(ctx, "acme", "legal@acme.example", "admin:alice"); err != nil {
		t.Fatal(err)
	}
	edited, _ := waiver.New("v2", "version: v2\nedited terms")
	s.Publish(edited)
	requireGate(t, s, keyseal.EWAIVERREACK, "v2")
}

func requireGate(t *testing.T, s *waiver.Service, code, version string) {
	t.Helper()
	err := s.Require(context.Background(), "acme")
	e, ok := err.(*keyseal.Error)
	if !ok || e.Code != code || e.Extra["waiver_version"] != version {
		t.Fatalf("gate: %v, want %s with waiver_version %s", err, code, version)
	}
}
