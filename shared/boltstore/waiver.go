package boltstore

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/keyseal/keyseal/shared/internal/storecheck"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// PutWaiverAck implements keyseal.Store: the acknowledgment and its audit
// entry in one bolt transaction.
func (s *Store) PutWaiverAck(ctx context.Context, ack keyseal.WaiverAck, rec keyseal.AuditRecord) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := storecheck.WaiverAck(ack, rec); err != nil {
		return err
	}
	ack.AcknowledgedAt = ack.AcknowledgedAt.UTC()
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := putJSON(tx.Bucket(bucketWaivers), []byte(ack.TenantID), ack); err != nil {
			return err
		}
		_, err := s.appendAudit(ctx, tx, ack.TenantID, rec)
		return err
	})
	return wrap("put waiver acknowledgment", err)
}

// GetWaiverAck implements keyseal.Store.
func (s *Store) GetWaiverAck(ctx context.Context, tenantID string) (*keyseal.WaiverAck, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var ack *keyseal.WaiverAck
	err := s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucketWaivers).Get([]byte(tenantID))
		if raw == nil || tenantID == "" {
			return keyseal.Errorf(keyseal.ENOTFOUND, "no waiver acknowledgment")
		}
		ack = &keyseal.WaiverAck{}
		if err := json.Unmarshal(raw, ack); err != nil {
			return fmt.Errorf("decode waiver acknowledgment: %w", err)
		}
		ack.AcknowledgedAt = ack.AcknowledgedAt.UTC()
		return nil
	})
	if err != nil {
		return nil, wrap("get waiver acknowledgment", err)
	}
	return ack, nil
}
