package memstore_test

import (
	"testing"

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
	})
}
