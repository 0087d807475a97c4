package memstore

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// DeliveryQueue is an in-memory keyseal.DeliveryQueue for unit tests.
type DeliveryQueue struct {
	mu   sync.Mutex
	jobs map[string]*queued
	// Now is the clock of DeliveryDoneKept; time.Now when nil.
	Now func() time.Time
}

// queued is one job and its state.
type queued struct {
	job    keyseal.QueuedJob
	state  jobState
	doneAt time.Time
}

type jobState int

const (
	jobPending jobState = iota
	jobDone
	jobDead
)

var _ keyseal.DeliveryQueue = (*DeliveryQueue)(nil)

// NewDeliveryQueue returns an empty queue.
func NewDeliveryQueue() *DeliveryQueue { return &DeliveryQueue{jobs: map[string]*queued{}} }

func (q *DeliveryQueue) now() time.Time {
	if q.Now != nil {
		return q.Now()
	}
	return time.Now()
}

func (q *DeliveryQueue) lock(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	q.mu.Lock()
	return nil
}

// Enqueue implements keyseal.DeliveryQueue.
func (q *DeliveryQueue) Enqueue(ctx context.Context, jobs ...keyseal.QueuedJob) error {
	if err := q.lock(ctx); err != nil {
		return err
	}
	defer q.mu.Unlock()
	for _, j := range jobs {
		if j.ID == "" {
			return keyseal.Errorf(keyseal.EINVALID, "queued job without an id")
		}
	}
	q.prune()
	for _, j := range jobs {
		q.add(j)
	}
	return nil
}

func (q *DeliveryQueue) add(j keyseal.QueuedJob) {
	if _, ok := q.jobs[j.ID]; ok {
		return
	}
	j.Body = slices.Clone(j.Body)
	j.Due = j.Due.UTC()
	j.Reason = ""
	q.jobs[j.ID] = &queued{job: j}
}

// prune forgets the jobs done more than DeliveryDoneKept ago.
func (q *DeliveryQueue) prune() {
	cut := q.now().Add(-keyseal.DeliveryDoneKept)
	for id, it := range q.jobs {
		if it.state == jobDone && it.doneAt.Before(cut) {
			delete(q.jobs, id)
		}
	}
}

// Due implements keyseal.DeliveryQueue.
func (q *DeliveryQueue) Due(ctx context.Context, now time.Time, limit int) ([]keyseal.QueuedJob, error) {
	if err := q.lock(ctx); err != nil {
		return nil, err
	}
	defer q.mu.Unlock()
	var out []keyseal.QueuedJob
	for _, it := range q.jobs {
		if it.state == jobPending && !it.job.Due.After(now) {
			out = append(out, copyJob(it.job))
		}
	}
	slices.SortFunc(out, func(a, b keyseal.QueuedJob) int {
		if c := a.Due.Compare(b.Due); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// pending returns the pending job id, or ENOTFOUND.
func (q *DeliveryQueue) pending(id string) (*queued, error) {
	it, ok := q.jobs[id]
	if !ok || it.state != jobPending {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "no pending delivery job %s", id)
	}
	return it, nil
}

// Complete implements keyseal.DeliveryQueue.
func (q *DeliveryQueue) Complete(ctx context.Context, id string, next *keyseal.QueuedJob) error {
	if err := q.lock(ctx); err != nil {
		return err
	}
	defer q.mu.Unlock()
	if next != nil && next.ID == "" {
		return keyseal.Errorf(keyseal.EINVALID, "queued job without an id")
	}
	it, err := q.pending(id)
	if err != nil {
		return err
	}
	it.state, it.doneAt = jobDone, q.now()
	if next != nil {
		q.add(*next)
	}
	q.prune()
	return nil
}

// Reschedule implements keyseal.DeliveryQueue.
func (q *DeliveryQueue) Reschedule(ctx context.Context, id string, due time.Time) error {
	if err := q.lock(ctx); err != nil {
		return err
	}
	defer q.mu.Unlock()
	it, err := q.pending(id)
	if err != nil {
		return err
	}
	it.job.Due = due.UTC()
	return nil
}

// Bury implements keyseal.DeliveryQueue.
func (q *DeliveryQueue) Bury(ctx context.Context, id, reason string) error {
	if err := q.lock(ctx); err != nil {
		return err
	}
	defer q.mu.Unlock()
	it, err := q.pending(id)
	if err != nil {
		return err
	}
	it.state, it.job.Reason = jobDead, reason
	return nil
}

// Dead implements keyseal.DeliveryQueue.
func (q *DeliveryQueue) Dead(ctx context.Context, limit int) ([]keyseal.QueuedJob, error) {
	if err := q.lock(ctx); err != nil {
		return nil, err
	}
	defer q.mu.Unlock()
	var out []keyseal.QueuedJob
	for _, it := range q.jobs {
		if it.state == jobDead {
			out = append(out, copyJob(it.job))
		}
	}
	slices.SortFunc(out, func(a, b keyseal.QueuedJob) int { return strings.Compare(a.ID, b.ID) })
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func copyJob(j keyseal.QueuedJob) keyseal.QueuedJob {
	j.Body = slices.Clone(j.Body)
	return j
}
