package memstore_test

import (
	"testing"

	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/memstore"
	"github.com/keyseal/keyseal/shared/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, storetest.Harness{
		New: func(*testing.T) keyseal.Store { return memstore.New() },
		Tamper: func(t *testing.T, s keyseal.Store, tenantID string, seq int64, edit func(*keyseal.AuditEntry)) {
			t.Helper()
			if err := s.(*memstore.Store).TamperAudit(tenantID, seq, edit); err != nil {
				t.Fatalf("TamperAudit: %v", err)
			}
		},
		DeleteAudit: func(t *testing.T, s keyseal.Store, tenantID string, seq int64) {
			t.Helper()
			if err := s.(*memstore.Store).DeleteAudit(tenantID, seq); err != nil {
				t.Fatalf("DeleteAudit: %v", err)
			}
		},
		Corrupt: func(t *testing.T, s keyseal.Store, tenantID string, seq int64) {
			t.Helper()
			if err := s.(*memstore.Store).CorruptAudit(tenantID, seq); err != nil {
				t.Fatalf("CorruptAudit: %v", err)
			}
		},
		Anchored: func(_ *testing.T, a *audit.Anchor) keyseal.Store { return memstore.New(memstore.WithAnchor(a)) },
		SetHead: func(_ *testing.T, s keyseal.Store, tenantID string, head keyseal.AuditHead) {
			s.(*memstore.Store).SetAuditHead(tenantID, head)
		},
	})
}

func TestPollStatsConformance(t *testing.T) {
	storetest.RunPollStats(t, func(*testing.T) keyseal.PollStats { return memstore.New() })
}
