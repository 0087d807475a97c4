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
		e, err = s.appendAudit(ctx, tx, tenantID, rec)
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
			e := decodeEntry(k, raw)
			if q.Action != "" && e.Action != q.Action && !e.Corrupt {
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
		return b.ForEach(func(k, raw []byte) error {
			entries = append(entries, decodeEntry(k, raw))
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
// clock, never the store's), and writes entry and head, with the
// checkpoint the anchor signs, together, and the checkpoint's event to the
// outbox when the anchor says this append publishes it.
func (s *Store) appendAudit(ctx context.Context, tx *bolt.Tx, tenantID string, rec keyseal.AuditRecord) (keyseal.AuditEntry, error) {
	prev, err := readHead(tx, tenantID)
	if err != nil {
		return keyseal.AuditEntry{}, err
	}
	e := audit.Next(tenantID, prev, rec, rec.At)
	head, checkpoint := s.anchor.NextHead(ctx, prev, e)
	if checkpoint != nil {
		if err := putOutbox(tx, []keyseal.Event{*checkpoint}); err != nil {
			return keyseal.AuditEntry{}, err
		}
	}
	entries, err := tx.Bucket(bucketAudit).CreateBucketIfNotExists([]byte(tenantID))
	if err != nil {
		return keyseal.AuditEntry{}, err
	}
	if err := putJSON(entries, seqKey(e.Seq), e); err != nil {
		return keyseal.AuditEntry{}, err
	}
	if err := putJSON(tx.Bucket(bucketHeads), []byte(tenantID), head); err != nil {
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

// decodeEntry decodes the entry stored at key k. One that does not decode
// (not JSON, a field of the wrong type) comes back marked corrupt with
// the seq of its key, so a listing or a verify reports it instead of
// failing (docs/contract.md §7).
func decodeEntry(k, raw []byte) keyseal.AuditEntry {
	var e keyseal.AuditEntry
	if err := json.Unmarshal(raw, &e); err != nil {
		return keyseal.AuditEntry{Seq: seqOfKey(k), Corrupt: true}
	}
	e.TS = e.TS.UTC()
	return e
}

// seqOfKey reads an audit entry key (0 for a key of the wrong length).
func seqOfKey(k []byte) int64 {
	if len(k) != 8 {
		return 0
	}
	return int64(binary.BigEndian.Uint64(k))
}

// ReadAuditHead implements keyseal.Store.
func (s *Store) ReadAuditHead(ctx context.Context, tenantID string) (keyseal.AuditHead, error) {
	if err := ctx.Err(); err != nil {
		return keyseal.AuditHead{}, err
	}
	var head keyseal.AuditHead
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		head, err = readHead(tx, tenantID)
		return err
	})
	return head, wrap("read audit head", err)
}

// seqKey encodes an audit seq big-endian, so byte order is numeric order.
func seqKey(seq int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(seq)) }
