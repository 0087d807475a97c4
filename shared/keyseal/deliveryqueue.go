package keyseal

import (
	"context"
	"time"
)

// The delivery queue of dev mode: the local server's stand-in for the SQS
// queue and its DLQ. The outbox drain fans each event out to one job per
// subscription and enqueues the jobs before it acks the outbox entry; a
// worker takes due jobs, delivers them and settles each (done, a retry
// enqueued in its place, or dead).

// QueuedJob is one job of a DeliveryQueue. The queue does not read Body.
type QueuedJob struct {
	// ID is the job's idempotency key (event id, webhook id and attempt
	// number): enqueuing an ID the queue has seen, pending, done within
	// DeliveryDoneKept, or dead, is a no-op, so a redone fan-out does not
	// deliver twice.
	ID string `json:"id"`
	// Due is when the job may run.
	Due time.Time `json:"due"`
	// Body is the job itself (a webhook.Job as JSON).
	Body []byte `json:"body"`
	// Reason is set on a dead job: why it was given up.
	Reason string `json:"reason,omitempty"`
}

// DeliveryDoneKept is how long a queue remembers a completed job's ID
// (against a redone fan-out) after completing it.
const DeliveryDoneKept = 24 * time.Hour

// DeliveryQueue is a durable queue of delivery jobs with one consumer.
type DeliveryQueue interface {
	// Enqueue adds jobs, skipping IDs already known (see QueuedJob.ID),
	// all or nothing. EINVALID for a job without an ID.
	Enqueue(ctx context.Context, jobs ...QueuedJob) error
	// Due returns up to limit pending jobs due at now, earliest first
	// (0: all).
	Due(ctx context.Context, now time.Time, limit int) ([]QueuedJob, error)
	// Complete settles a pending job and, when next is not nil, enqueues
	// next (the retry) in the same write, so a crash loses neither.
	// ENOTFOUND when id is not pending.
	Complete(ctx context.Context, id string, next *QueuedJob) error
	// Reschedule makes a pending job due again at due (a job that could
	// not be settled). ENOTFOUND when id is not pending.
	Reschedule(ctx context.Context, id string, due time.Time) error
	// Bury marks a pending job dead, kept with reason for inspection.
	// ENOTFOUND when id is not pending.
	Bury(ctx context.Context, id, reason string) error
	// Dead lists up to limit dead jobs in ID order (0: all).
	Dead(ctx context.Context, limit int) ([]QueuedJob, error)
}
