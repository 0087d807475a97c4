package webhook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/metrics"
)

// Attempt makes one delivery of e to target, signed with secrets
// (current first), as attempt number attempt (from 1) of an event first
// attempted at first. now is the attempt's webhook-timestamp. The
// outcome: 2xx delivered; 410 gone (the caller disables the
// subscription); anything else (another status, a 3xx, a timeout, a
// refused address, a connection error) retrying with NextRetryAt, or
// failed when no attempt is left. The error text never holds the URL (its
// query may carry the receiver's token) nor a secret.
func (c *Client) Attempt(ctx context.Context, target keyseal.Webhook, secrets [][]byte, e keyseal.Event, attempt int, first, now time.Time) keyseal.DeliveryAttempt {
	a := keyseal.DeliveryAttempt{TenantID: target.TenantID, WebhookID: target.ID, EventID: e.ID, EventType: e.Type, Attempt: attempt, At: now.UTC()}
	start := time.Now()
	code, retryAfter, err := c.post(ctx, target.URL, secrets, e, now)
	a.LatencyMS = time.Since(start).Milliseconds()
	a.ResponseCode = code
	switch {
	case err != nil:
		a.Error = err.Error()
	case code >= 200 && code < 300:
		a.Outcome = keyseal.DeliveryDelivered
		return a
	case code == 410:
		a.Outcome = keyseal.DeliveryGone
		a.Error = "receiver answered " + statusText(code)
		return a
	case code >= 300 && code < 400:
		a.Error = "receiver answered " + statusText(code) + " (redirects are not followed)"
	default:
		a.Error = "receiver answered " + statusText(code)
	}
	// Under a retry scale the schedule runs on a clock that many times
	// faster since first: the delays and the window shrink alike.
	vnow := now
	if c.scale != 1 {
		vnow = first.Add(time.Duration(float64(now.Sub(first)) / c.scale))
	}
	if next, ok := NextRetry(attempt, first, vnow, retryAfter, nil); ok {
		next = now.Add(time.Duration(float64(next.Sub(vnow)) * c.scale))
		a.Outcome, a.NextRetryAt = keyseal.DeliveryRetrying, &next
	} else {
		a.Outcome = keyseal.DeliveryFailed
	}
	return a
}

// post sends one signed request, with the URL checked again (the rules
// that need no DNS); the dialer checks the resolved addresses.
func (c *Client) post(ctx context.Context, rawURL string, secrets [][]byte, e keyseal.Event, now time.Time) (int, string, error) {
	u, err := c.policy.CheckURL(rawURL)
	if err != nil {
		return 0, "", err
	}
	if len(secrets) == 0 {
		return 0, "", errors.New("no signing secret")
	}
	body, err := json.Marshal(e)
	if err != nil {
		return 0, "", fmt.Errorf("encode event: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return 0, "", fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	SetHeaders(req.Header, e.ID, now, body, secrets)
	code, ra, err := c.do(req)
	var ue *url.Error
	if errors.As(err, &ue) {
		// url.Error names the URL; keep only what went wrong.
		err = ue.Err
		if ue.Timeout() {
			err = fmt.Errorf("timed out after %s: %w", c.timeout, err)
		}
	}
	return code, ra, err
}

// Job is one attempt to deliver one event to one subscription: what a
// queue message carries (SQS on AWS, the embedded outbox in dev mode).
type Job struct {
	Event     keyseal.Event `json:"event"`
	TenantID  string        `json:"tenant_id"`
	WebhookID string        `json:"webhook_id"`
	// Attempt is the number of the attempt this job makes, from 1.
	Attempt int `json:"attempt"`
	// FirstAt is when attempt 1 was made; zero before it (Deliver sets
	// it), the start of the RetryWindow after.
	FirstAt time.Time `json:"first_at,omitzero"`
}

// Subscriptions is what delivery needs of the subscription service.
type Subscriptions interface {
	// Targets are the enabled subscriptions an event goes to: the
	// tenant's subscriptions to its type, or for webhook.test the one
	// subscription it names.
	Targets(ctx context.Context, e keyseal.Event) ([]keyseal.Webhook, error)
	// SigningSecrets are the unsealed secrets that sign at now, current
	// first (two during the SecretOverlap after a rotation).
	SigningSecrets(ctx context.Context, w *keyseal.Webhook, now time.Time) ([][]byte, error)
	// Disable stops deliveries to w (a 410 Gone), audited.
	Disable(ctx context.Context, w *keyseal.Webhook, reason string) error
}

// Store is the slice of keyseal.WebhookStore delivery uses.
type Store interface {
	GetWebhook(ctx context.Context, tenantID, id string) (*keyseal.Webhook, error)
	RecordDelivery(ctx context.Context, a keyseal.DeliveryAttempt) error
}

var _ Store = keyseal.WebhookStore(nil)

// Metrics receives the delivery metrics (*metrics.Emitter implements it).
type Metrics interface {
	Emit(values ...metrics.Value)
}

// Action is what a queue driver does with a job after Deliver.
type Action int

// The actions.
const (
	// Done: delivered, gone (disabled), or nothing to deliver to (the
	// subscription was deleted or disabled meanwhile). Drop the message.
	Done Action = iota
	// Retry: enqueue Result.Next at Result.At.
	Retry
	// DeadLetter: no attempt is left; the driver keeps the message where
	// an operator finds it (the DLQ). KeyDeliveryFailures was counted.
	DeadLetter
)

func (a Action) String() string {
	switch a {
	case Done:
		return "done"
	case Retry:
		return "retry"
	case DeadLetter:
		return "dead-letter"
	}
	return fmt.Sprintf("Action(%d)", int(a))
}

// Result is Deliver's answer to the driver.
type Result struct {
	Action Action
	// At and Next are set for Retry: the next job (same event and id,
	// the attempt number plus one) and when it is due.
	At   time.Time
	Next Job
	// Attempt is what was recorded; zero when no attempt was made.
	Attempt keyseal.DeliveryAttempt
}

// Deliverer runs jobs: it loads the subscription and its secrets, makes
// the attempt, records it, disables the subscription on 410 and tells
// the driver what to do next. Its fields are set once, before use.
type Deliverer struct {
	Client        *Client
	Subscriptions Subscriptions
	Store         Store
	// Metrics counts KeyDeliveryFailures; nil emits nothing.
	Metrics Metrics
	// Log receives what delivery cannot return (a failed record); nil
	// discards.
	Log *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

func (d *Deliverer) now() time.Time {
	if d.Now != nil {
		return d.Now()
	}
	return time.Now()
}

func (d *Deliverer) log() *slog.Logger {
	if d.Log != nil {
		return d.Log
	}
	return slog.New(slog.DiscardHandler)
}

// FanOut returns the jobs of one event: attempt 1 to each subscription
// of its tenant to its type.
func (d *Deliverer) FanOut(ctx context.Context, e keyseal.Event) ([]Job, error) {
	targets, err := d.Subscriptions.Targets(ctx, e)
	if err != nil {
		return nil, fmt.Errorf("webhook targets of %s: %w", e.ID, err)
	}
	jobs := make([]Job, 0, len(targets))
	for _, w := range targets {
		jobs = append(jobs, Job{Event: e, TenantID: e.TenantID, WebhookID: w.ID, Attempt: 1})
	}
	return jobs, nil
}

// Deliver runs one job. An error (the store or the secrets unavailable,
// the disable not written) means the job was not settled: the driver
// retries the same message later, which is safe, the receiver seeing the
// same webhook-id.
func (d *Deliverer) Deliver(ctx context.Context, j Job) (Result, error) {
	w, err := d.Store.GetWebhook(ctx, j.TenantID, j.WebhookID)
	if keyseal.ErrorCode(err) == keyseal.ENOTFOUND {
		return Result{Action: Done}, nil // deleted since: nothing to deliver to
	}
	if err != nil {
		return Result{}, fmt.Errorf("webhook %s: %w", j.WebhookID, err)
	}
	if w.Disabled {
		return Result{Action: Done}, nil
	}
	now := d.now()
	secrets, err := d.Subscriptions.SigningSecrets(ctx, w, now)
	if err != nil {
		return Result{}, fmt.Errorf("webhook %s secrets: %w", w.ID, err)
	}
	if j.Attempt < 1 {
		j.Attempt = 1
	}
	if j.FirstAt.IsZero() {
		j.FirstAt = now
	}
	a := d.Client.Attempt(ctx, *w, secrets, j.Event, j.Attempt, j.FirstAt, now)
	if err := d.Store.RecordDelivery(ctx, a); err != nil {
		// The attempt happened: settling the job matters more than its
		// row in the recent-deliveries list.
		d.log().Warn("webhook delivery not recorded", "webhook_id", w.ID, "event_id", j.Event.ID, "attempt", a.Attempt, "err", err)
	}
	r := Result{Attempt: a}
	switch a.Outcome {
	case keyseal.DeliveryDelivered:
		r.Action = Done
	case keyseal.DeliveryGone:
		if err := d.Subscriptions.Disable(ctx, w, "receiver answered 410 Gone"); err != nil {
			return r, fmt.Errorf("disable webhook %s: %w", w.ID, err)
		}
		r.Action = Done
	case keyseal.DeliveryRetrying:
		next := j
		next.Attempt++
		r.Action, r.At, r.Next = Retry, *a.NextRetryAt, next
	default:
		r.Action = DeadLetter
		if d.Metrics != nil {
			d.Metrics.Emit(metrics.Value{Name: metrics.KeyDeliveryFailures, Unit: metrics.Count, Values: []float64{1}})
		}
	}
	return r, nil
}

// Outcome is one job's Result or error, in DeliverAll's answer.
type Outcome struct {
	Result Result
	Err    error
}

// DeliverAll runs jobs concurrently, at most limit at a time (1 when
// less), so one slow receiver holds one slot for at most the client's
// timeout and never the others. Outcomes are in the jobs' order.
func (d *Deliverer) DeliverAll(ctx context.Context, jobs []Job, limit int) []Outcome {
	out := make([]Outcome, len(jobs))
	var g errgroup.Group
	g.SetLimit(max(limit, 1))
	for i, j := range jobs {
		g.Go(func() error {
			out[i].Result, out[i].Err = d.Deliver(ctx, j)
			return nil
		})
	}
	_ = g.Wait()
	return out
}
