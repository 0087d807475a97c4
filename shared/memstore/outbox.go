package memstore

import (
	"bytes"
	"cmp"
	"context"
	"maps"
	"slices"
	"time"

	"github.com/keyseal/keyseal/shared/internal/storecheck"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// outboxItem is an undelivered event and its order: the event's time, then
// the order of writing.
type outboxItem struct {
	event keyseal.Event
	at    time.Time
	seq   int64
}

// checkOutbox returns ECONFLICT if an event id is in the outbox already.
// The caller holds the lock; storecheck.Events has run.
func (s *Store) checkOutbox(es []keyseal.Event) error {
	for _, e := range es {
		if _, ok := s.outbox[e.ID]; ok {
			return keyseal.Errorf(keyseal.ECONFLICT, "event %s is already in the outbox", e.ID)
		}
	}
	return nil
}

// putOutbox adds checked events; the caller holds the lock.
func (s *Store) putOutbox(es []keyseal.Event) {
	for _, e := range es {
		at, _ := storecheck.EventTime(e) // checked by storecheck.Events
		s.outSeq++
		s.outbox[e.ID] = outboxItem{event: cloneEvent(e), at: at, seq: s.outSeq}
	}
}

// ListOutbox implements keyseal.Store.
func (s *Store) ListOutbox(ctx context.Context, limit int) ([]keyseal.Event, error) {
	if err := s.lock(ctx); err != nil {
		return nil, err
	}
	defer s.mu.Unlock()
	items := slices.Collect(maps.Values(s.outbox))
	slices.SortFunc(items, func(a, b outboxItem) int {
		return cmp.Or(a.at.Compare(b.at), cmp.Compare(a.seq, b.seq))
	})
	if limit > 0 && len(items) > limit {
		items = items[:limit]
	}
	out := make([]keyseal.Event, len(items))
	for i, it := range items {
		out[i] = cloneEvent(it.event)
	}
	return out, nil
}

// AckOutbox implements keyseal.Store.
func (s *Store) AckOutbox(ctx context.Context, es []keyseal.Event) error {
	if err := s.lock(ctx); err != nil {
		return err
	}
	defer s.mu.Unlock()
	for _, e := range es {
		delete(s.outbox, e.ID)
	}
	return nil
}

func cloneEvent(e keyseal.Event) keyseal.Event {
	e.Data = bytes.Clone(e.Data)
	return e
}
