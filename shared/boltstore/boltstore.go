// Package boltstore is the embedded keyseal.Store of dev mode: one bbolt
// file, no server, durable across restarts. Every method that writes
// several records does so in one bolt write transaction, which gives the
// all-or-nothing behaviour the DynamoDB store gets from TransactWriteItems;
// bolt serialises write transactions, so optimistic-lock checks made inside
// one cannot race.
package boltstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/internal/storecheck"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// Top-level buckets. Per-tenant data (versions, audit entries, agents) sits
// in a nested bucket named by the tenant id, so a tenant's records are
// contiguous and ordered by their own keys.
var (
	bucketTenants  = []byte("tenants")       // tenant id -> Tenant
	bucketShards   = []byte("tenant_shards") // shard byte + tenant id -> empty
	bucketVersions = []byte("versions")      // tenant id / be32 version -> TMKVersion
	bucketAudit    = []byte("audit")         // tenant id / be64 seq -> AuditEntry
	bucketHeads    = []byte("audit_heads")   // tenant id -> AuditHead
	bucketAgents   = []byte("agents")        // tenant id / agent id -> agentRecord
	bucketAgentKey = []byte("agent_keys")    // key hash -> agentRef
	bucketStepUps  = []byte("step_ups")      // token hash -> stepUpRecord

	allBuckets = [][]byte{bucketTenants, bucketShards, bucketVersions, bucketAudit,
		bucketHeads, bucketAgents, bucketAgentKey, bucketStepUps}
)

// lockTimeout bounds the wait for bolt's file lock, so a second process
// fails fast with a clear message instead of hanging.
const lockTimeout = time.Second

// Store is a keyseal.Store backed by a bbolt file. It is safe for
// concurrent use; only one process may hold the file at a time.
type Store struct {
	db *bolt.DB
}

var _ keyseal.Store = (*Store)(nil)

// agentRecord is the stored form of an agent. keyseal.Agent keeps KeyHash
// out of its JSON so it never reaches API responses; the store needs it.
type agentRecord struct {
	keyseal.Agent
	KeyHash string `json:"key_hash"`
}

// agentRef is the key-hash index entry: where the agent lives.
type agentRef struct {
	TenantID string `json:"tenant_id"`
	AgentID  string `json:"agent_id"`
}

// stepUpRecord is the stored form of a step-up token, for the same reason
// as agentRecord.
type stepUpRecord struct {
	keyseal.StepUpToken
	Hash string `json:"hash"`
}

// Open opens or creates the store file at path (mode 0600) and its buckets.
// bolt allows one process per file; if another keyseal process holds it,
// Open gives up after a second with an error saying so.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("boltstore: %s is in use by another keyseal process: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstore: init %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// Close releases the file and its lock.
func (s *Store) Close() error { return s.db.Close() }

// Ping reports whether the file is still open and readable.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucketTenants) == nil {
			return errors.New("boltstore: tenants bucket missing")
		}
		return nil
	})
}

// GetTenant implements keyseal.Store.
func (s *Store) GetTenant(ctx context.Context, tenantID string) (*keyseal.Tenant, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var t *keyseal.Tenant
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		t, err = readTenant(tx, tenantID)
		return err
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

// CreateTenant implements keyseal.Store.
func (s *Store) CreateTenant(ctx context.Context, t *keyseal.Tenant, v keyseal.TMKVersion, rec keyseal.AuditRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := storecheck.TenantID(t.ID); err != nil {
		return err
	}
	if err := storecheck.Versions(t.ID, []keyseal.TMKVersion{v}); err != nil {
		return err
	}
	row := t.Clone()
	row.Revision = 1
	err := s.db.Update(func(tx *bolt.Tx) error {
		tenants := tx.Bucket(bucketTenants)
		if tenants.Get([]byte(t.ID)) != nil {
			return keyseal.Errorf(keyseal.ECONFLICT, "tenant %s already exists", t.ID)
		}
		if err := putJSON(tenants, []byte(t.ID), row); err != nil {
			return err
		}
		if err := tx.Bucket(bucketShards).Put(shardKey(keyseal.ShardOf(t.ID), t.ID), nil); err != nil {
			return err
		}
		if err := putVersions(tx, t.ID, []keyseal.TMKVersion{v}); err != nil {
			return err
		}
		_, err := appendAudit(tx, t.ID, rec)
		return err
	})
	if err != nil {
		return wrap("create tenant", err)
	}
	t.Revision = row.Revision
	return nil
}

// UpdateTenant implements keyseal.Store. t.Revision is only incremented
// once the transaction has committed, so a caller can retry a failed write
// with the same value.
func (s *Store) UpdateTenant(ctx context.Context, t *keyseal.Tenant, c keyseal.Change) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := storecheck.Versions(t.ID, c.PutVersions); err != nil {
		return err
	}
	row := t.Clone()
	row.Revision = t.Revision + 1
	err := s.db.Update(func(tx *bolt.Tx) error {
		cur, err := readTenant(tx, t.ID)
		if err != nil {
			return err
		}
		if cur.Revision != t.Revision {
			return keyseal.Errorf(keyseal.ECONFLICT, "tenant %s changed concurrently (revision %d, expected %d)", t.ID, cur.Revision, t.Revision)
		}
		if err := putJSON(tx.Bucket(bucketTenants), []byte(t.ID), row); err != nil {
			return err
		}
		if err := putVersions(tx, t.ID, c.PutVersions); err != nil {
			return err
		}
		if c.Audit != nil {
			_, err = appendAudit(tx, t.ID, *c.Audit)
		}
		return err
	})
	if err != nil {
		return wrap("update tenant", err)
	}
	t.Revision = row.Revision
	return nil
}

// ListTenants implements keyseal.Store. The cursor is the last id of the
// previous page; a limit of zero or less lists the whole shard.
func (s *Store) ListTenants(ctx context.Context, shard int, cursor string, limit int) ([]string, string, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if shard < 0 || shard >= keyseal.PollShards {
		return nil, "", keyseal.Errorf(keyseal.EINVALID, "shard %d out of range 0..%d", shard, keyseal.PollShards-1)
	}
	var ids []string
	next := ""
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketShards).Cursor()
		start := shardKey(shard, cursor)
		k, _ := c.Seek(start)
		if cursor != "" && k != nil && string(k) == string(start) {
			k, _ = c.Next()
		}
		for ; k != nil && k[0] == byte(shard); k, _ = c.Next() {
			if limit > 0 && len(ids) == limit {
				next = ids[len(ids)-1]
				break
			}
			ids = append(ids, string(k[1:]))
		}
		return nil
	})
	if err != nil {
		return nil, "", wrap("list tenants", err)
	}
	return ids, next, nil
}

// Versions implements keyseal.Store; versions are keyed big-endian, so the
// bucket order is version order. An unknown tenant has no versions.
func (s *Store) Versions(ctx context.Context, tenantID string) ([]keyseal.TMKVersion, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []keyseal.TMKVersion
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tenantBucket(tx, bucketVersions, tenantID)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, raw []byte) error {
			var v keyseal.TMKVersion
			if err := json.Unmarshal(raw, &v); err != nil {
				return fmt.Errorf("decode version: %w", err)
			}
			v.CreatedAt = v.CreatedAt.UTC()
			utcPtr(v.RevokedAt)
			out = append(out, v)
			return nil
		})
	})
	if err != nil {
		return nil, wrap("versions", err)
	}
	return out, nil
}

// AppendAudit implements keyseal.Store.
func (s *Store) AppendAudit(ctx context.Context, tenantID string, rec keyseal.AuditRecord) (keyseal.AuditEntry, error) {
	if err := ctx.Err(); err != nil {
		return keyseal.AuditEntry{}, err
	}
	if err := storecheck.TenantID(tenantID); err != nil {
		return keyseal.AuditEntry{}, err
	}
	var e keyseal.AuditEntry
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		e, err = appendAudit(tx, tenantID, rec)
		return err
	})
	if err != nil {
		return keyseal.AuditEntry{}, wrap("append audit", err)
	}
	return e, nil
}

// ListAudit implements keyseal.Store. It walks the chain backwards from the
// cursor and filters by action before counting, so Limit counts matching
// entries. A limit of zero or less returns every match.
func (s *Store) ListAudit(ctx context.Context, tenantID string, q keyseal.AuditQuery) ([]keyseal.AuditEntry, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []keyseal.AuditEntry
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tenantBucket(tx, bucketAudit, tenantID)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		var k, raw []byte
		if q.Before > 0 {
			// Seek lands on the first seq >= Before; the entry before it
			// is the newest one the cursor admits.
			if k, _ = c.Seek(seqKey(q.Before)); k == nil {
				k, raw = c.Last()
			} else {
				k, raw = c.Prev()
			}
		} else {
			k, raw = c.Last()
		}
		for ; k != nil; k, raw = c.Prev() {
			e, err := decodeEntry(raw)
			if err != nil {
				return err
			}
			if q.Action != "" && e.Action != q.Action {
				continue
			}
			out = append(out, e)
			if q.Limit > 0 && len(out) == q.Limit {
				break
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrap("list audit", err)
	}
	return out, nil
}

// ScanAudit implements keyseal.Store. Entries and head come from one read
// transaction, so they are a consistent snapshot even while appends go on;
// fn runs after that transaction ends, because a bolt read transaction held
// across a caller's write in the same goroutine can deadlock when the file
// grows.
func (s *Store) ScanAudit(ctx context.Context, tenantID string, fn func(keyseal.AuditEntry) error) (keyseal.AuditHead, error) {
	if err := ctx.Err(); err != nil {
		return keyseal.AuditHead{}, err
	}
	var (
		head    keyseal.AuditHead
		entries []keyseal.AuditEntry
	)
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		if head, err = readHead(tx, tenantID); err != nil {
			return err
		}
		b := tenantBucket(tx, bucketAudit, tenantID)
		if b == nil {
			return nil
		}
		return b.ForEach(func(_, raw []byte) error {
			e, err := decodeEntry(raw)
			if err != nil {
				return err
			}
			entries = append(entries, e)
			return nil
		})
	})
	if err != nil {
		return keyseal.AuditHead{}, wrap("scan audit", err)
	}
	for _, e := range entries {
		if err := fn(e); err != nil {
			return keyseal.AuditHead{}, err
		}
	}
	return head, nil
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
		if err := putJSON(keys, []byte(a.KeyHash), agentRef{TenantID: a.TenantID, AgentID: a.ID}); err != nil {
			return err
		}
		_, err = appendAudit(tx, a.TenantID, rec)
		return err
	})
	return wrap("create agent", err)
}

// AgentByKeyHash implements keyseal.Store.
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
		var ref agentRef
		if err := json.Unmarshal(raw, &ref); err != nil {
			return fmt.Errorf("decode agent key index: %w", err)
		}
		var err error
		a, err = readAgent(tx, ref.TenantID, ref.AgentID)
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
		_, err = appendAudit(tx, tenantID, rec)
		return err
	})
	return wrap("revoke agent", err)
}

// PutStepUp implements keyseal.Store.
func (s *Store) PutStepUp(ctx context.Context, tok keyseal.StepUpToken) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if tok.Hash == "" {
		return keyseal.Errorf(keyseal.EINVALID, "step-up token hash is required")
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketStepUps)
		if b.Get([]byte(tok.Hash)) != nil {
			return keyseal.Errorf(keyseal.ECONFLICT, "step-up token already exists")
		}
		return putJSON(b, []byte(tok.Hash), stepUpRecord{StepUpToken: tok, Hash: tok.Hash})
	})
	return wrap("put step-up", err)
}

// GetStepUp implements keyseal.Store.
func (s *Store) GetStepUp(ctx context.Context, hash string) (*keyseal.StepUpToken, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var tok *keyseal.StepUpToken
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		tok, err = readStepUp(tx, hash)
		return err
	})
	if err != nil {
		return nil, wrap("get step-up", err)
	}
	return tok, nil
}

// UseStepUp implements keyseal.Store. The check and the write share one
// write transaction, so of many concurrent uses exactly one wins.
func (s *Store) UseStepUp(ctx context.Context, hash string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		tok, err := readStepUp(tx, hash)
		if err != nil {
			return err
		}
		if tok.Used {
			return keyseal.Errorf(keyseal.ECONFLICT, "step-up token already used")
		}
		tok.Used = true
		return putJSON(tx.Bucket(bucketStepUps), []byte(hash), stepUpRecord{StepUpToken: *tok, Hash: hash})
	})
	return wrap("use step-up", err)
}

// appendAudit links rec to the tenant's chain inside tx: it reads the head,
// builds the entry with audit.Next and writes entry and head together.
func appendAudit(tx *bolt.Tx, tenantID string, rec keyseal.AuditRecord) (keyseal.AuditEntry, error) {
	head, err := readHead(tx, tenantID)
	if err != nil {
		return keyseal.AuditEntry{}, err
	}
	e := audit.Next(tenantID, head, rec, time.Now().UTC().Truncate(time.Microsecond))
	entries, err := tx.Bucket(bucketAudit).CreateBucketIfNotExists([]byte(tenantID))
	if err != nil {
		return keyseal.AuditEntry{}, err
	}
	if err := putJSON(entries, seqKey(e.Seq), e); err != nil {
		return keyseal.AuditEntry{}, err
	}
	if err := putJSON(tx.Bucket(bucketHeads), []byte(tenantID), keyseal.AuditHead{Seq: e.Seq, Hash: e.Hash}); err != nil {
		return keyseal.AuditEntry{}, err
	}
	return e, nil
}

// putVersions writes TMK versions under the tenant, replacing any with the
// same number.
func putVersions(tx *bolt.Tx, tenantID string, vs []keyseal.TMKVersion) error {
	if len(vs) == 0 {
		return nil
	}
	b, err := tx.Bucket(bucketVersions).CreateBucketIfNotExists([]byte(tenantID))
	if err != nil {
		return err
	}
	for _, v := range vs {
		if err := putJSON(b, versionKey(v.Version), v); err != nil {
			return err
		}
	}
	return nil
}

func readTenant(tx *bolt.Tx, tenantID string) (*keyseal.Tenant, error) {
	raw := tx.Bucket(bucketTenants).Get([]byte(tenantID))
	if raw == nil || tenantID == "" {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "tenant %s has no KMS configuration", tenantID)
	}
	var t keyseal.Tenant
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, fmt.Errorf("decode tenant: %w", err)
	}
	t.CreatedAt, t.UpdatedAt = t.CreatedAt.UTC(), t.UpdatedAt.UTC()
	utcPtr(t.SealedSince)
	utcPtr(t.LastVerifiedAt)
	return &t, nil
}

func readHead(tx *bolt.Tx, tenantID string) (keyseal.AuditHead, error) {
	var head keyseal.AuditHead
	raw := tx.Bucket(bucketHeads).Get([]byte(tenantID))
	if raw == nil || tenantID == "" {
		return head, nil
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return head, fmt.Errorf("decode audit head: %w", err)
	}
	return head, nil
}

func decodeEntry(raw []byte) (keyseal.AuditEntry, error) {
	var e keyseal.AuditEntry
	if err := json.Unmarshal(raw, &e); err != nil {
		return e, fmt.Errorf("decode audit entry: %w", err)
	}
	e.TS = e.TS.UTC()
	return e, nil
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

func readStepUp(tx *bolt.Tx, hash string) (*keyseal.StepUpToken, error) {
	raw := tx.Bucket(bucketStepUps).Get([]byte(hash))
	if raw == nil || hash == "" {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "step-up token not found")
	}
	var r stepUpRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("decode step-up token: %w", err)
	}
	tok := r.StepUpToken
	tok.Hash = r.Hash
	tok.ExpiresAt = tok.ExpiresAt.UTC()
	return &tok, nil
}

// tenantBucket returns the tenant's nested bucket under parent, or nil when
// the tenant has nothing stored there.
func tenantBucket(tx *bolt.Tx, parent []byte, tenantID string) *bolt.Bucket {
	if tenantID == "" {
		return nil
	}
	return tx.Bucket(parent).Bucket([]byte(tenantID))
}

func putJSON(b *bolt.Bucket, key []byte, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return b.Put(key, raw)
}

// seqKey encodes an audit seq big-endian, so byte order is numeric order.
func seqKey(seq int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(seq)) }

// versionKey encodes a TMK version number big-endian.
func versionKey(v int) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }

// shardKey is the shard index key: one shard byte (PollShards fits in a
// byte), then the tenant id, so a shard's tenants are one ordered range.
func shardKey(shard int, tenantID string) []byte {
	return append([]byte{byte(shard)}, tenantID...)
}

func utcPtr(t *time.Time) {
	if t != nil {
		*t = t.UTC()
	}
}

// wrap adds context to infrastructure errors and passes application errors
// (*keyseal.Error) and nil through untouched.
func wrap(op string, err error) error {
	var ke *keyseal.Error
	if err == nil || errors.As(err, &ke) {
		return err
	}
	return fmt.Errorf("boltstore: %s: %w", op, err)
}
