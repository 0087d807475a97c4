package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// The delivery queue lives in the store's file, so a job enqueued before
// the outbox entry was acked survives a restart with it.

var _ keyseal.DeliveryQueue = (*Store)(nil)

// queueRecord is a job and its state.
type queueRecord struct {
	Job    keyseal.QueuedJob `json:"job"`
	State  string            `json:"state"` // pending, done or dead
	DoneAt time.Time         `json:"done_at,omitzero"`
}

const (
	statePending = "pending"
	stateDone    = "done"
	stateDead    = "dead"
)

// timeKey is be64 unix nanos + id: the due and done indexes' key.
func timeKey(t time.Time, id string) []byte {
	return append(binary.BigEndian.AppendUint64(nil, uint64(t.UnixNano())), id...)
}

// Enqueue implements keyseal.DeliveryQueue.
func (s *Store) Enqueue(ctx context.Context, jobs ...keyseal.QueuedJob) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, j := range jobs {
		if j.ID == "" {
			return keyseal.Errorf(keyseal.EINVALID, "queued job without an id")
		}
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		if err := pruneDone(tx, time.Now()); err != nil {
			return err
		}
		for _, j := range jobs {
			if err := enqueue(tx, j); err != nil {
				return err
			}
		}
		return nil
	})
}

// enqueue adds j unless its id is known, inside the caller's transaction.
func enqueue(tx *bolt.Tx, j keyseal.QueuedJob) error {
	jobs := tx.Bucket(bucketQueueJobs)
	if jobs.Get([]byte(j.ID)) != nil {
		return nil
	}
	j.Due, j.Reason = j.Due.UTC(), ""
	if err := putJSON(jobs, []byte(j.ID), queueRecord{Job: j, State: statePending}); err != nil {
		return err
	}
	return tx.Bucket(bucketQueueDue).Put(timeKey(j.Due, j.ID), nil)
}

// pruneDone forgets the jobs done more than DeliveryDoneKept before now.
func pruneDone(tx *bolt.Tx, now time.Time) error {
	cut := uint64(now.Add(-keyseal.DeliveryDoneKept).UnixNano())
	done, jobs := tx.Bucket(bucketQueueDone), tx.Bucket(bucketQueueJobs)
	c := done.Cursor()
	for k, _ := c.First(); len(k) >= 8 && binary.BigEndian.Uint64(k) < cut; k, _ = c.Next() {
		if err := jobs.Delete(k[8:]); err != nil {
			return err
		}
		if err := c.Delete(); err != nil {
			return err
		}
	}
	return nil
}

// Due implements keyseal.DeliveryQueue.
func (s *Store) Due(ctx context.Context, now time.Time, limit int) ([]keyseal.QueuedJob, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []keyseal.QueuedJob
	end := uint64(now.UnixNano())
	err := s.db.View(func(tx *bolt.Tx) error {
		jobs := tx.Bucket(bucketQueueJobs)
		c := tx.Bucket(bucketQueueDue).Cursor()
		for k, _ := c.First(); len(k) >= 8 && binary.BigEndian.Uint64(k) <= end; k, _ = c.Next() {
			r, err := getRecord(jobs, string(k[8:]))
			if err != nil {
				return err
			}
			out = append(out, r.Job)
			if limit > 0 && len(out) == limit {
				break
			}
		}
		return nil
	})
	return out, err
}

func getRecord(jobs *bolt.Bucket, id string) (*queueRecord, error) {
	raw := jobs.Get([]byte(id))
	if raw == nil {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "no delivery job %s", id)
	}
	var r queueRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("decode delivery job %s: %w", id, err)
	}
	r.Job.Body = bytes.Clone(r.Job.Body)
	return &r, nil
}

// settle loads the pending job id, takes it off the due index, lets edit
// change it and stores it back, all in one write.
func (s *Store) settle(ctx context.Context, id string, edit func(tx *bolt.Tx, r *queueRecord) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bolt.Tx) error {
		jobs := tx.Bucket(bucketQueueJobs)
		r, err := getRecord(jobs, id)
		if keyseal.ErrorCode(err) == keyseal.ENOTFOUND || err == nil && r.State != statePending {
			return keyseal.Errorf(keyseal.ENOTFOUND, "no pending delivery job %s", id)
		}
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketQueueDue).Delete(timeKey(r.Job.Due, id)); err != nil {
			return err
		}
		if err := edit(tx, r); err != nil {
			return err
		}
		return putJSON(jobs, []byte(id), r)
	})
}

// Complete implements keyseal.DeliveryQueue.
func (s *Store) Complete(ctx context.Context, id string, next *keyseal.QueuedJob) error {
	if next != nil && next.ID == "" {
		return keyseal.Errorf(keyseal.EINVALID, "queued job without an id")
	}
	return s.settle(ctx, id, func(tx *bolt.Tx, r *queueRecord) error {
		now := time.Now().UTC()
		r.State, r.DoneAt = stateDone, now
		if err := tx.Bucket(bucketQueueDone).Put(timeKey(now, id), nil); err != nil {
			return err
		}
		if next != nil {
			if err := enqueue(tx, *next); err != nil {
				return err
			}
		}
		return pruneDone(tx, now)
	})
}

// Reschedule implements keyseal.DeliveryQueue.
func (s *Store) Reschedule(ctx context.Context, id string, due time.Time) error {
	return s.settle(ctx, id, func(tx *bolt.Tx, r *queueRecord) error {
		r.Job.Due = due.UTC()
		return tx.Bucket(bucketQueueDue).Put(timeKey(r.Job.Due, id), nil)
	})
}

// Bury implements keyseal.DeliveryQueue.
func (s *Store) Bury(ctx context.Context, id, reason string) error {
	return s.settle(ctx, id, func(_ *bolt.Tx, r *queueRecord) error {
		r.State, r.Job.Reason = stateDead, reason
		return nil
	})
}

// Dead implements keyseal.DeliveryQueue.
func (s *Store) Dead(ctx context.Context, limit int) ([]keyseal.QueuedJob, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []keyseal.QueuedJob
	err := s.db.View(func(tx *bolt.Tx) error {
		jobs := tx.Bucket(bucketQueueJobs)
		return jobs.ForEach(func(k, _ []byte) error {
			if limit > 0 && len(out) == limit {
				return nil
			}
			r, err := getRecord(jobs, string(k))
			if err != nil {
				return err
			}
			if r.State == stateDead {
				out = append(out, r.Job)
			}
			return nil
		})
	})
	return out, err
}
