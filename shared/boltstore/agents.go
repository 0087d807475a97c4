package boltstore

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/keyseal/keyseal/shared/internal/storecheck"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// agentRecord is the stored form of an agent. keyseal.Agent keeps KeyHash
// out of its JSON so it never reaches API responses; the store needs it.
type agentRecord struct {
	keyseal.Agent
	KeyHash string `json:"key_hash"`
}

// CreateAgent implements keyseal.Store. A key hash already indexed is a
// conflict too: two agents must never share a key.
func (s *Store) CreateAgent(ctx context.Context, a *keyseal.Agent, rec keyseal.AuditRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := storecheck.TenantID(a.TenantID); err != nil {
		return err
	}
	if a.ID == "" || a.KeyHash == "" {
		return keyseal.Errorf(keyseal.EINVALID, "agent id and key hash are required")
	}
	if err := storecheck.Record(rec); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		agents, err := tx.Bucket(bucketAgents).CreateBucketIfNotExists([]byte(a.TenantID))
		if err != nil {
			return err
		}
		if agents.Get([]byte(a.ID)) != nil {
			return keyseal.Errorf(keyseal.ECONFLICT, "agent %s already exists", a.ID)
		}
		keys := tx.Bucket(bucketAgentKey)
		if keys.Get([]byte(a.KeyHash)) != nil {
			return keyseal.Errorf(keyseal.ECONFLICT, "agent key already registered")
		}
		row := agentRecord{Agent: *a, KeyHash: a.KeyHash}
		if err := putJSON(agents, []byte(a.ID), row); err != nil {
			return err
		}
		// The index entry is a copy of the agent: authenticating a key
		// reads it alone (RevokeAgent rewrites both).
		if err := putJSON(keys, []byte(a.KeyHash), row); err != nil {
			return err
		}
		_, err = s.appendAudit(ctx, tx, a.TenantID, rec)
		return err
	})
	return wrap("create agent", err)
}

// AgentByKeyHash implements keyseal.Store: one read of the key index,
// which holds a copy of the agent (an agentRecord); an entry from before the
// copy ({"tenant_id","agent_id"} only: no created_at) is followed to the
// agent.
func (s *Store) AgentByKeyHash(ctx context.Context, keyHash string) (*keyseal.Agent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var a *keyseal.Agent
	err := s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketAgentKey).Get([]byte(keyHash))
		if raw == nil || keyHash == "" {
			return keyseal.Errorf(keyseal.ENOTFOUND, "unknown agent key")
		}
		var err error
		if a, err = decodeAgent(raw); err != nil {
			return fmt.Errorf("decode agent key index: %w", err)
		}
		if a.CreatedAt.IsZero() { // an entry from before the copy
			a, err = readAgent(tx, a.TenantID, a.ID)
		}
		return err
	})
	if err != nil {
		return nil, wrap("agent by key", err)
	}
	return a, nil
}

// ListAgents implements keyseal.Store. Agents are keyed by id, so they are
// sorted by creation time here (ties by id, for a stable order).
func (s *Store) ListAgents(ctx context.Context, tenantID string) ([]keyseal.Agent, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []keyseal.Agent
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tenantBucket(tx, bucketAgents, tenantID)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, raw []byte) error {
			a, err := decodeAgent(raw)
			if err != nil {
				return err
			}
			out = append(out, *a)
			return nil
		})
	})
	if err != nil {
		return nil, wrap("list agents", err)
	}
	slices.SortStableFunc(out, func(x, y keyseal.Agent) int {
		if c := x.CreatedAt.Compare(y.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(x.ID, y.ID)
	})
	return out, nil
}

// RevokeAgent implements keyseal.Store. The agent is looked up under
// tenantID only, so one tenant can never revoke another's agent.
func (s *Store) RevokeAgent(ctx context.Context, tenantID, agentID string, at time.Time, rec keyseal.AuditRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := storecheck.Record(rec); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		a, err := readAgent(tx, tenantID, agentID)
		if err != nil {
			return err
		}
		if a.RevokedAt != nil {
			return keyseal.Errorf(keyseal.ECONFLICT, "agent %s is already revoked", agentID)
		}
		when := at.UTC()
		a.RevokedAt = &when
		row := agentRecord{Agent: *a, KeyHash: a.KeyHash}
		if err := putJSON(tx.Bucket(bucketAgents).Bucket([]byte(tenantID)), []byte(agentID), row); err != nil {
			return err
		}
		if err := putJSON(tx.Bucket(bucketAgentKey), []byte(a.KeyHash), row); err != nil {
			return err
		}
		_, err = s.appendAudit(ctx, tx, tenantID, rec)
		return err
	})
	return wrap("revoke agent", err)
}

func readAgent(tx *bolt.Tx, tenantID, agentID string) (*keyseal.Agent, error) {
	var raw []byte
	if b := tenantBucket(tx, bucketAgents, tenantID); b != nil && agentID != "" {
		raw = b.Get([]byte(agentID))
	}
	if raw == nil {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "agent %s not found", agentID)
	}
	return decodeAgent(raw)
}

func decodeAgent(raw []byte) (*keyseal.Agent, error) {
	var r agentRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("decode agent: %w", err)
	}
	a := r.Agent
	a.KeyHash = r.KeyHash
	a.CreatedAt = a.CreatedAt.UTC()
	utcPtr(a.RevokedAt)
	return &a, nil
}
