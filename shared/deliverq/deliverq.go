// Package deliverq is the SQS driver of webhook delivery (AWS, and the
// local server in LocalStack mode): it runs a webhook.Deliverer on the
// messages of one queue and schedules retries on that same queue.
//
// A queue message is one of two kinds:
//
//   - an EventBridge event, put there by the rule on keyseal's bus (the
//     body is EventBridge's envelope, keyseal.Event is its detail): it is
//     fanned out to the tenant's subscriptions and each job delivered,
//     concurrently;
//   - a job (kind "webhook.job"): one retry of one event to one
//     subscription, due at due_at.
//
// What happens after an attempt (webhook.Result):
//
//   - Retry: the next job is sent to the queue with DelaySeconds up to
//     SQS's 900 s. A job received before its due time is hidden again with
//     ChangeMessageVisibility for what remains (at most MaxHide, under
//     SQS's 12 h) and reported as a batch item failure, so it comes back
//     when due. Each such early receive counts in ApproximateReceiveCount:
//     with the schedule's longest delay (10 h) a job is received at most
//     twice before it is due, so the queue's maxReceiveCount must leave
//     room for that (the stack sets MaxReceiveCount).
//   - DeadLetter: the job is sent to the dead-letter queue, with the last
//     attempt's error, where an operator redrives it (`aws sqs
//     start-message-move-task`: a redriven job is attempted once more).
//     The Deliverer counted KeyDeliveryFailures.
//   - Done: the message is deleted.
//
// A message that cannot be decoded, or whose handling failed (the store
// or KMS unavailable), is a batch item failure: SQS delivers it again
// after the visibility timeout, and after maxReceiveCount receives moves
// it to the dead-letter queue itself (a poison message). Every retry of
// an event carries the event's id, so receivers see the same webhook-id
// and can drop duplicates.
package deliverq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/webhook"
)

// Limits of SQS and the driver's settings.
const (
	// MaxDelay is SQS's longest DelaySeconds.
	MaxDelay = 900 * time.Second
	// MaxHide is the longest a received job is hidden again, under SQS's
	// 12 h visibility limit (counted from the receive) with a margin.
	MaxHide = 12*time.Hour - time.Minute
	// MaxReceiveCount is the redrive policy's maxReceiveCount the driver
	// is built for: at most 2 receives of a healthy job go to waiting
	// for its due time, leaving 8 for failed handling (the store or KMS
	// down), each a visibility timeout apart.
	MaxReceiveCount = 10
	// DefaultConcurrency bounds the deliveries one message's fan-out
	// makes at once (MaxWebhooksPerTenant: every subscription at once).
	DefaultConcurrency = keyseal.MaxWebhooksPerTenant
	// ErrorBackoff is the delay of a fanned-out job whose handling failed,
	// sent back as a job message.
	ErrorBackoff = 30 * time.Second
)

// DueSlack is how early a job may run: a queue's delay ends to the
// second, not to the millisecond, and hiding a job for a fraction of a
// second would cost a receive (the schedule's jitter is 10% of 5 s and
// more).
const DueSlack = 250 * time.Millisecond

// KindJob marks a job message.
const KindJob = "webhook.job"

// Message is a job message's body.
type Message struct {
	Kind string      `json:"kind"`
	Job  webhook.Job `json:"job"`
	// DueAt is when the job may be attempted.
	DueAt time.Time `json:"due_at"`
	// LastError is the last attempt's error, on dead-lettered jobs.
	LastError string `json:"last_error,omitempty"`
}

// envelope is what the driver reads of a body: a job message's kind, or
// an EventBridge event's source and detail.
type envelope struct {
	Kind       string          `json:"kind"`
	Source     string          `json:"source"`
	DetailType string          `json:"detail-type"`
	Detail     json.RawMessage `json:"detail"`
}

// Queue is what the driver calls on SQS (*sqs.Client implements it).
type Queue interface {
	SendMessage(ctx context.Context, in *sqs.SendMessageInput, opts ...func(*sqs.Options)) (*sqs.SendMessageOutput, error)
	ChangeMessageVisibility(ctx context.Context, in *sqs.ChangeMessageVisibilityInput, opts ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error)
}

// Driver handles batches of one queue. Its fields are set once, before
// use.
type Driver struct {
	Deliverer *webhook.Deliverer
	SQS       Queue
	// QueueURL is the queue retries are sent to (the one the driver
	// reads); DLQURL its dead-letter queue.
	QueueURL, DLQURL string
	// Concurrency bounds one message's deliveries; DefaultConcurrency
	// when zero.
	Concurrency int
	// Log receives what handling cannot return; nil discards.
	Log *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

func (d *Driver) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Driver) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.New(slog.DiscardHandler)
}

// Handle is the Lambda handler of an SQS event source with
// ReportBatchItemFailures: the messages are handled concurrently, and the
// ones not settled are returned as batch item failures.
func (d *Driver) Handle(ctx context.Context, ev events.SQSEvent) (events.SQSEventResponse, error) {
	failed := make([]bool, len(ev.Records))
	var wg sync.WaitGroup
	for i, m := range ev.Records {
		wg.Go(func() {
			if err := d.handle(ctx, m); err != nil {
				failed[i] = true
				if !errors.Is(err, errNotDue) {
					d.log().Warn("webhook message not settled", "message_id", m.MessageId,
						"receive_count", m.Attributes["ApproximateReceiveCount"], "err", err)
				}
			}
		})
	}
	wg.Wait()
	var resp events.SQSEventResponse
	for i, f := range failed {
		if f {
			resp.BatchItemFailures = append(resp.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: ev.Records[i].MessageId})
		}
	}
	return resp, nil
}

// errNotDue reports a job put back until its due time: a batch item
// failure that is no failure.
var errNotDue = errors.New("job not due yet")

// handle settles one message, or says why not.
func (d *Driver) handle(ctx context.Context, m events.SQSMessage) error {
	var env envelope
	if err := json.Unmarshal([]byte(m.Body), &env); err != nil {
		return fmt.Errorf("decode message: %w", err)
	}
	switch {
	case env.Kind == KindJob:
		var msg Message
		if err := json.Unmarshal([]byte(m.Body), &msg); err != nil {
			return fmt.Errorf("decode job: %w", err)
		}
		return d.handleJob(ctx, m, msg)
	case env.Kind == "" && env.Source == "keyseal" && len(env.Detail) > 0:
		var e keyseal.Event
		if err := json.Unmarshal(env.Detail, &e); err != nil {
			return fmt.Errorf("decode event detail: %w", err)
		}
		if e.ID == "" || e.TenantID == "" || e.Type == "" {
			return fmt.Errorf("event detail lacks id, tenant_id or type")
		}
		return d.handleEvent(ctx, e)
	}
	return fmt.Errorf("neither a keyseal event nor a job (kind %q, source %q)", env.Kind, env.Source)
}

// handleEvent fans e out and delivers every job. A job whose handling
// failed is sent back as a job message, so the others are not delivered
// again; if that send fails too, the whole event is (the receivers that
// got it see the same webhook-id again).
func (d *Driver) handleEvent(ctx context.Context, e keyseal.Event) error {
	jobs, err := d.Deliverer.FanOut(ctx, e)
	if err != nil {
		return err
	}
	limit := d.Concurrency
	if limit <= 0 {
		limit = DefaultConcurrency
	}
	var errs []error
	for i, o := range d.Deliverer.DeliverAll(ctx, jobs, limit) {
		if o.Err != nil {
			d.log().Warn("webhook job failed; sent back", "event_id", e.ID, "webhook_id", jobs[i].WebhookID, "err", o.Err)
			errs = append(errs, d.send(ctx, d.QueueURL, Message{Kind: KindJob, Job: jobs[i], DueAt: d.now().Add(ErrorBackoff)}))
			continue
		}
		errs = append(errs, d.settle(ctx, jobs[i], o.Result))
	}
	return errors.Join(errs...)
}

// handleJob runs a job when due, and hides it until then.
func (d *Driver) handleJob(ctx context.Context, m events.SQSMessage, msg Message) error {
	if wait := msg.DueAt.Sub(d.now()); wait > DueSlack {
		if _, err := d.SQS.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: aws.String(d.QueueURL),
			ReceiptHandle: aws.String(m.ReceiptHandle), VisibilityTimeout: seconds(min(wait, MaxHide))}); err != nil {
			return fmt.Errorf("hide job until due: %w", err)
		}
		return errNotDue
	}
	r, err := d.Deliverer.Deliver(ctx, msg.Job)
	if err != nil {
		return err
	}
	return d.settle(ctx, msg.Job, r)
}

// settle acts on the Result of job: a Retry is sent to the queue, a
// DeadLetter to the dead-letter queue.
func (d *Driver) settle(ctx context.Context, job webhook.Job, r webhook.Result) error {
	switch r.Action {
	case webhook.Retry:
		return d.send(ctx, d.QueueURL, Message{Kind: KindJob, Job: r.Next, DueAt: r.At})
	case webhook.DeadLetter:
		return d.send(ctx, d.DLQURL, Message{Kind: KindJob, Job: job, DueAt: d.now(), LastError: r.Attempt.Error})
	}
	return nil
}

// send puts msg on a queue, delayed until its due time (at most MaxDelay;
// handleJob hides it for the rest).
func (d *Driver) send(ctx context.Context, queueURL string, msg Message) error {
	body, err := json.Marshal(msg)
	if err != nil {
		return fmt.Errorf("encode job: %w", err)
	}
	in := &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(string(body))}
	if queueURL == d.QueueURL {
		if wait := msg.DueAt.Sub(d.now()); wait > DueSlack {
			in.DelaySeconds = seconds(min(wait, MaxDelay))
		}
	}
	if _, err := d.SQS.SendMessage(ctx, in); err != nil {
		return fmt.Errorf("send job of event %s (attempt %s): %w", msg.Job.Event.ID, strconv.Itoa(msg.Job.Attempt), err)
	}
	return nil
}

// seconds is d in whole seconds, rounded up: a job is never made visible
// before it is due.
func seconds(d time.Duration) int32 {
	return int32((d + time.Second - 1) / time.Second)
}
