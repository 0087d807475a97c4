package boltstore

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/keyseal/keyseal/shared/internal/storecheck"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// outboxKey orders the outbox bucket by the event's time, then its id.
func outboxKey(e keyseal.Event) ([]byte, error) {
	at, err := storecheck.EventTime(e)
	if err != nil {
		return nil, err
	}
	return append(binary.BigEndian.AppendUint64(nil, uint64(at.UnixNano())), e.ID...), nil
}

// putOutbox writes checked events (storecheck.Events) inside the caller's
// transaction; ECONFLICT if one is there already, and the transaction
// rolls back.
func putOutbox(tx *bolt.Tx, es []keyseal.Event) error {
	b := tx.Bucket(bucketOutbox)
	for _, e := range es {
		k, err := outboxKey(e)
		if err != nil {
			return err
		}
		if b.Get(k) != nil {
			return keyseal.Errorf(keyseal.ECONFLICT, "event %s is already in the outbox", e.ID)
		}
		if err := putJSON(b, k, e); err != nil {
			return err
		}
	}
	return nil
}

// ListOutbox implements keyseal.Store.
func (s *Store) ListOutbox(ctx context.Context, limit int) ([]keyseal.Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []keyseal.Event
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		for k, raw := c.First(); k != nil && (limit <= 0 || len(out) < limit); k, raw = c.Next() {
			var e keyseal.Event
			if err := json.Unmarshal(raw, &e); err != nil {
				return fmt.Errorf("decode outbox event: %w", err)
			}
			out = append(out, e)
		}
		return nil
	})
	if err != nil {
		return nil, wrap("list outbox", err)
	}
	return out, nil
}

// AckOutbox implements keyseal.Store.
func (s *Store) AckOutbox(ctx context.Context, es []keyseal.Event) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		for _, e := range es {
			k, err := outboxKey(e)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketOutbox).Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	return wrap("ack outbox", err)
}
