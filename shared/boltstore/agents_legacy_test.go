package boltstore

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// TestAgentByKeyHashFollowsAnOldIndexEntry: a key index entry written
// before it carried the agent ({"tenant_id","agent_id"}) still resolves,
// through the agent's own row, revoked_at included.
func TestAgentByKeyHashFollowsAnOldIndexEntry(t *testing.T) {
	s, err := Open(filepath.Join(t.TempDir(), "keyseal.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := &keyseal.Agent{ID: "agt_1", TenantID: "acme", Name: "bot", KeyHash: "h1", CreatedAt: at, CreatedBy: "admin:alice"}
	rec := keyseal.AuditRecord{At: at, Action: keyseal.ActionAgentCreate, Severity: keyseal.SeverityInfo, Actor: "admin:alice"}
	if err := s.CreateAgent(ctx, a, rec); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketAgentKey).Put([]byte("h1"), []byte(`{"tenant_id":"acme","agent_id":"agt_1"}`))
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.AgentByKeyHash(ctx, "h1")
	if err != nil || got.Name != "bot" || !got.CreatedAt.Equal(at) || got.RevokedAt != nil {
		t.Fatalf("AgentByKeyHash(old entry) = %+v, %v", got, err)
	}
	rec.Action = keyseal.ActionAgentRevoke
	if err := s.RevokeAgent(ctx, "acme", "agt_1", at.Add(time.Hour), rec); err != nil {
		t.Fatal(err)
	}
	if got, err := s.AgentByKeyHash(ctx, "h1"); err != nil || got.RevokedAt == nil {
		t.Fatalf("AgentByKeyHash after revoke = %+v, %v; want revoked", got, err)
	}
}
