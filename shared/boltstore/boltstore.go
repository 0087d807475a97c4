// Package boltstore is the embedded keyseal.Store of dev mode: one bbolt
// file, no server, durable across restarts. Every method that writes
// several records does so in one bolt write transaction, which gives the
// all-or-nothing behaviour the DynamoDB store gets from TransactWriteItems;
// bolt serialises write transactions, so optimistic-lock checks made inside
// one cannot race.
package boltstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// Top-level buckets. Per-tenant data (versions, audit entries, agents) sits
// in a nested bucket named by the tenant id, so a tenant's records are
// contiguous and ordered by their own keys.
var (
	bucketTenants = []byte("tenants")       // tenant id -> Tenant
	bucketShards  = []byte("tenant_shards") // shard byte + tenant id -> empty
	// bucketTenantKeys is the key index of BYOK tenants (tenants.go):
	// provider NUL key id NUL tenant id -> empty.
	bucketTenantKeys = []byte("tenant_keys")
	bucketVersions   = []byte("versions")    // tenant id / be32 version -> TMKVersion
	bucketAudit      = []byte("audit")       // tenant id / be64 seq -> AuditEntry
	bucketHeads      = []byte("audit_heads") // tenant id -> AuditHead
	bucketAgents     = []byte("agents")      // tenant id / agent id -> agentRecord
	bucketAgentKey   = []byte("agent_keys")  // key hash -> a copy of the agent
	bucketStepUps    = []byte("step_ups")    // token hash -> stepUpRecord
	bucketOutbox     = []byte("outbox")      // be64 unix nanos + event id -> Event
	bucketWaivers    = []byte("waiver_acks") // tenant id -> WaiverAck
	// bucketWebhooks: tenant id / webhook id -> webhookRecord
	bucketWebhooks = []byte("webhooks")
	// bucketDeliveries: tenant id / webhook id / be64 unix nanos + be64
	// sequence -> DeliveryAttempt
	bucketDeliveries = []byte("webhook_deliveries")
	// The delivery queue (deliveryqueue.go): job id -> queueRecord; the
	// pending jobs by due time, be64 unix nanos + id -> empty; the done
	// jobs by completion, be64 unix nanos + id -> empty (for pruning).
	bucketQueueJobs = []byte("delivery_jobs")
	bucketQueueDue  = []byte("delivery_due")
	bucketQueueDone = []byte("delivery_done")

	allBuckets = [][]byte{bucketTenants, bucketShards, bucketVersions, bucketAudit,
		bucketHeads, bucketAgents, bucketAgentKey, bucketStepUps, bucketOutbox, bucketWaivers,
		bucketWebhooks, bucketDeliveries, bucketQueueJobs, bucketQueueDue, bucketQueueDone, bucketTenantKeys}
)

// lockTimeout bounds the wait for bolt's file lock, so a second process
// fails fast with a clear message instead of hanging.
const lockTimeout = time.Second

// Store is a keyseal.Store backed by a bbolt file. It is safe for
// concurrent use; only one process may hold the file at a time.
type Store struct {
	db *bolt.DB
	// anchor signs each new head (nil: unsigned heads).
	anchor *audit.Anchor
}

// Option configures a Store.
type Option func(*Store)

// WithAnchor makes the store sign a checkpoint with every append and
// publish it as the anchor decides.
func WithAnchor(a *audit.Anchor) Option { return func(s *Store) { s.anchor = a } }

var _ keyseal.Store = (*Store)(nil)

// Open opens or creates the store file at path (mode 0600) and its buckets.
// bolt allows one process per file; if another keyseal process holds it,
// Open gives up after a second with an error saying so.
func Open(path string, opts ...Option) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("boltstore: %s is in use by another keyseal process: %w", path, err)
	}
	if err != nil {
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		backfill := tx.Bucket(bucketTenantKeys) == nil
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		if backfill { // a file from before the key index
			return indexAllKeys(tx)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("boltstore: init %s: %w", path, err)
	}
	s := &Store{db: db}
	for _, o := range opts {
		o(s)
	}
	return s, nil
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
