package localserver

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/outbox"
	"github.com/keyseal/keyseal/shared/webhook"
)

// Defaults of dev mode's webhook delivery.
const (
	// DeliveryInterval is how often the worker looks for due jobs when
	// nothing wakes it.
	DeliveryInterval = 250 * time.Millisecond
	// DeliveryConcurrency bounds the attempts in flight: a receiver that
	// hangs holds one slot for at most the client's timeout (15 s).
	DeliveryConcurrency = 16
	// unsettledDelay is when a job whose Deliver failed (the store or the
	// secrets unavailable) is tried again, with the same attempt number.
	unsettledDelay = 5 * time.Second
)

// Delivery is dev mode's webhook delivery, the local stand-in for the
// SQS queue and the deliver Lambda, running the same webhook.Deliverer:
// the outbox drain fans each event out to one job per subscription and
// enqueues the jobs in the durable queue (the store's bbolt file) before
// the outbox entry is acked; the worker (Run) delivers due jobs and
// settles them in the queue: done, the retry enqueued at its time, or
// dead (kept, see Queue.Dead, and logged). A restart resumes from the
// queue.
type Delivery struct {
	Queue     keyseal.DeliveryQueue
	Deliverer *webhook.Deliverer
	Log       *slog.Logger
	// Interval and Concurrency default to DeliveryInterval and
	// DeliveryConcurrency.
	Interval    time.Duration
	Concurrency int

	wakeOnce sync.Once
	wake     chan struct{}
}

func (d *Delivery) wakeChan() chan struct{} {
	d.wakeOnce.Do(func() { d.wake = make(chan struct{}, 1) })
	return d.wake
}

// Wake makes the worker look for due jobs now.
func (d *Delivery) Wake() {
	select {
	case d.wakeChan() <- struct{}{}:
	default:
	}
}

// JobID is a job's idempotency key in the queue: a fan-out redone after
// a crash (the outbox entry not acked) enqueues nothing twice.
func JobID(j webhook.Job) string {
	return j.Event.ID + "/" + j.WebhookID + "/" + strconv.Itoa(j.Attempt)
}

func queued(j webhook.Job, due time.Time) (keyseal.QueuedJob, error) {
	body, err := json.Marshal(j)
	if err != nil {
		return keyseal.QueuedJob{}, fmt.Errorf("encode delivery job: %w", err)
	}
	return keyseal.QueuedJob{ID: JobID(j), Due: due, Body: body}, nil
}

// Enqueue fans e out to its subscriptions and enqueues the jobs, due now.
func (d *Delivery) Enqueue(ctx context.Context, e keyseal.Event) error {
	jobs, err := d.Deliverer.FanOut(ctx, e)
	if err != nil || len(jobs) == 0 {
		return err
	}
	now := time.Now()
	qs := make([]keyseal.QueuedJob, 0, len(jobs))
	for _, j := range jobs {
		q, err := queued(j, now)
		if err != nil {
			return err
		}
		qs = append(qs, q)
	}
	if err := d.Queue.Enqueue(ctx, qs...); err != nil {
		return fmt.Errorf("enqueue deliveries of %s: %w", e.ID, err)
	}
	return nil
}

// Sink returns the drain's sink: next (the log) and then the fan-out. An
// event whose jobs were not enqueued reports an error, so the drain keeps
// it in the outbox for the next round.
func (d *Delivery) Sink(next outbox.Sink) outbox.Sink { return fanOutSink{next: next, d: d} }

type fanOutSink struct {
	next outbox.Sink
	d    *Delivery
}

func (f fanOutSink) Publish(ctx context.Context, es []keyseal.Event) []error {
	errs := f.next.Publish(ctx, es)
	for i, e := range es {
		if errs[i] != nil {
			continue
		}
		errs[i] = f.d.Enqueue(ctx, e)
	}
	f.d.Wake()
	return errs
}

// Run delivers due jobs until ctx ends, then waits for the attempts in
// flight (canceled with ctx, they stay pending for the next start).
func (d *Delivery) Run(ctx context.Context) {
	interval, limit := d.Interval, d.Concurrency
	if interval <= 0 {
		interval = DeliveryInterval
	}
	if limit <= 0 {
		limit = DeliveryConcurrency
	}
	w := &worker{d: d, slots: make(chan struct{}, limit), inflight: map[string]bool{}}
	defer w.wg.Wait()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		w.dispatch(ctx, limit)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-d.wakeChan():
		}
	}
}

// worker is Run's state: the jobs in flight, never handed out twice.
type worker struct {
	d        *Delivery
	slots    chan struct{}
	wg       sync.WaitGroup
	mu       sync.Mutex
	inflight map[string]bool
}

// dispatch starts the due jobs not in flight while slots are free.
func (w *worker) dispatch(ctx context.Context, limit int) {
	w.mu.Lock()
	busy := len(w.inflight)
	w.mu.Unlock()
	jobs, err := w.d.Queue.Due(ctx, time.Now(), limit+busy)
	if err != nil {
		if ctx.Err() == nil {
			w.d.Log.Error("webhook delivery: reading the queue", "err", err)
		}
		return
	}
	for _, q := range jobs {
		w.mu.Lock()
		skip := w.inflight[q.ID]
		w.mu.Unlock()
		if skip {
			continue
		}
		select {
		case w.slots <- struct{}{}:
		default:
			return // all slots busy: the next round
		}
		w.mu.Lock()
		w.inflight[q.ID] = true
		w.mu.Unlock()
		w.wg.Go(func() {
			defer func() {
				w.mu.Lock()
				delete(w.inflight, q.ID)
				w.mu.Unlock()
				<-w.slots
				w.d.Wake() // a slot is free, a retry may be due
			}()
			w.d.run(ctx, q)
		})
	}
}

// run makes one job's attempt and settles it in the queue.
func (d *Delivery) run(ctx context.Context, q keyseal.QueuedJob) {
	// Settling outlives a shutdown that lands after the attempt: a
	// delivered job is not redelivered on the next start.
	settle := context.WithoutCancel(ctx)
	var j webhook.Job
	if err := json.Unmarshal(q.Body, &j); err != nil {
		d.Log.Error("webhook delivery: undecodable job buried", "job_id", q.ID, "err", err)
		d.check(q.ID, d.Queue.Bury(settle, q.ID, "undecodable job: "+err.Error()))
		return
	}
	r, err := d.Deliverer.Deliver(ctx, j)
	if ctx.Err() != nil && r.Attempt.Outcome != keyseal.DeliveryDelivered {
		return // stopped mid-attempt: pending, made again after a restart
	}
	log := d.Log.With("event_id", j.Event.ID, "type", j.Event.Type, "tenant_id", j.TenantID, "webhook_id", j.WebhookID, "attempt", j.Attempt)
	if err != nil {
		log.Warn("webhook delivery not settled; retried", "err", err)
		d.check(q.ID, d.Queue.Reschedule(settle, q.ID, time.Now().Add(unsettledDelay)))
		return
	}
	switch r.Action {
	case webhook.Done:
		log.Info("webhook delivery done", "outcome", r.Attempt.Outcome, "response_code", r.Attempt.ResponseCode)
		d.check(q.ID, d.Queue.Complete(settle, q.ID, nil))
	case webhook.Retry:
		next, err := queued(r.Next, r.At)
		if err != nil {
			d.check(q.ID, err)
			return
		}
		log.Info("webhook delivery failed; retry scheduled", "response_code", r.Attempt.ResponseCode, "error", r.Attempt.Error, "next_retry_at", r.At)
		d.check(q.ID, d.Queue.Complete(settle, q.ID, &next))
	case webhook.DeadLetter:
		log.Warn("webhook delivery dead-lettered: no attempt left", "response_code", r.Attempt.ResponseCode, "error", r.Attempt.Error)
		d.check(q.ID, d.Queue.Bury(settle, q.ID, "no attempt left: "+r.Attempt.Error))
	}
}

// check logs a settle that failed: the job stays pending and runs again.
func (d *Delivery) check(id string, err error) {
	if err != nil {
		d.Log.Error("webhook delivery: settling the job failed; it runs again", "job_id", id, "err", err)
	}
}
