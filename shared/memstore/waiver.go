package memstore

import (
	"context"

	"github.com/keyseal/keyseal/shared/internal/storecheck"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// PutWaiverAck implements keyseal.Store.
func (s *Store) PutWaiverAck(ctx context.Context, ack keyseal.WaiverAck, rec keyseal.AuditRecord) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	if err := storecheck.WaiverAck(ack, rec); err != nil {
		return err
	}
	ack.AcknowledgedAt = ack.AcknowledgedAt.UTC()
	s.waivers[ack.TenantID] = ack
	s.appendLocked(ctx, ack.TenantID, rec)
	return nil
}

// GetWaiverAck implements keyseal.Store.
func (s *Store) GetWaiverAck(ctx context.Context, tenantID string) (*keyseal.WaiverAck, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	ack, ok := s.waivers[tenantID]
	if !ok {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "no waiver acknowledgment")
	}
	return &ack, nil
}
