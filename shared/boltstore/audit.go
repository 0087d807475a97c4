package boltstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/internal/storecheck"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// AppendAudit implements keyseal.Store.
func (s *Store) AppendAudit(ctx context.Context, tenantID string, rec keyseal.AuditRecord) (keyseal.AuditEntry, error) {
	if err := ctx.Err(); err != nil {
		return keyseal.AuditEntry{}, err
	}
	if err := storecheck.TenantID(tenantID); err != nil {
		return keyseal.AuditEntry{}, err
	}
	if err := storecheck.Record(rec); err != nil {
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

// appendAudit links rec to the tenant's chain inside tx: it reads the head,
// builds the entry with audit.Next, stamped with rec.At (the service's
// clock, never the store's), and writes entry and head together.
func appendAudit(tx *bolt.Tx, tenantID string, rec keyseal.AuditRecord) (keyseal.AuditEntry, error) {
	head, err := readHead(tx, tenantID)
	if err != nil {
		return keyseal.AuditEntry{}, err
	}
	e := audit.Next(tenantID, head, rec, rec.At)
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

// seqKey encodes an audit seq big-endian, so byte order is numeric order.
func seqKey(seq int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(seq)) }
