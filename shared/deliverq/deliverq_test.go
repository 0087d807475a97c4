package deliverq_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/keyseal/keyseal/shared/deliverq"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/metrics"
	"github.com/keyseal/keyseal/shared/webhook"
)

// queue records what the driver sends and hides (the SQS stand-in of
// these tests; the LocalStack suite runs the driver on SQS itself).
type queue struct {
	mu     sync.Mutex
	sent   []*sqs.SendMessageInput
	hidden []*sqs.ChangeMessageVisibilityInput
}

func (q *queue) SendMessage(_ context.Context, in *sqs.SendMessageInput, _ ...func(*sqs.Options)) (*sqs.SendMessageOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sent = append(q.sent, in)
	return &sqs.SendMessageOutput{}, nil
}

func (q *queue) ChangeMessageVisibility(_ context.Context, in *sqs.ChangeMessageVisibilityInput, _ ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityOutput, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.hidden = append(q.hidden, in)
	return &sqs.ChangeMessageVisibilityOutput{}, nil
}

// hooks is one tenant's subscriptions, with an optional store failure.
type hooks struct {
	hooks []keyseal.Webhook
	fail  error
	count float64
}

func (h *hooks) Targets(context.Context, keyseal.Event) ([]keyseal.Webhook, error) {
	return h.hooks, nil
}
func (h *hooks) SigningSecrets(context.Context, *keyseal.Webhook, time.Time) ([][]byte, error) {
	return [][]byte{[]byte("0123456789abcdef0123456789abcdef")}, nil
}
func (h *hooks) Disable(context.Context, *keyseal.Webhook, string) error { return nil }
func (h *hooks) GetWebhook(_ context.Context, _, id string) (*keyseal.Webhook, error) {
	if h.fail != nil {
		return nil, h.fail
	}
	for _, w := range h.hooks {
		if w.ID == id {
			return &w, nil
		}
	}
	return nil, keyseal.Errorf(keyseal.ENOTFOUND, "no webhook %s", id)
}
func (h *hooks) RecordDelivery(context.Context, keyseal.DeliveryAttempt) error { return nil }
func (h *hooks) Emit(values ...metrics.Value) {
	for _, v := range values {
		if v.Name == metrics.KeyDeliveryFailures {
			h.count += v.Values[0]
		}
	}
}

const queueURL, dlqURL = "https://sqs.us-east-1.amazonaws.com/123456789012/webhooks", "https://sqs.us-east-1.amazonaws.com/123456789012/webhooks-dlq"

// setup is a driver delivering to a receiver answering status (with
// retryAfter when set).
func setup(t *testing.T, status int, retryAfter string) (*deliverq.Driver, *queue, *hooks) {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	h := &hooks{hooks: []keyseal.Webhook{{ID: "wh_1", TenantID: "acme", URL: srv.URL, Events: []string{keyseal.EventSealed}}}}
	q := &queue{}
	d := &deliverq.Driver{Deliverer: &webhook.Deliverer{Client: webhook.NewClient(webhook.Policy{Dev: true}, webhook.ClientOptions{}),
		Subscriptions: h, Store: h, Metrics: h}, SQS: q, QueueURL: queueURL, DLQURL: dlqURL}
	return d, q, h
}

func sealed() keyseal.Event {
	return keyseal.Event{ID: "evt_1", Type: keyseal.EventSealed, TenantID: "acme", Time: "2026-12-01T22:00:00Z", Data: json.RawMessage(`{"reason":"key_disabled"}`)}
}

// bridge is an SQS message as the bus rule puts it.
func bridge(t testing.TB, e keyseal.Event) events.SQSMessage {
	detail, _ := json.Marshal(e)
	body, _ := json.Marshal(map[string]any{"version": "0", "id": "eb-1", "source": "keyseal", "detail-type": e.Type, "detail": json.RawMessage(detail)})
	return events.SQSMessage{MessageId: "m-event", ReceiptHandle: "rh-event", Body: string(body)}
}

func job(t *testing.T, m deliverq.Message) events.SQSMessage {
	body, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return events.SQSMessage{MessageId: "m-job", ReceiptHandle: "rh-job", Body: string(body)}
}

func failures(r events.SQSEventResponse) string {
	var ids []string
	for _, f := range r.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return strings.Join(ids, ",")
}

func decode(t *testing.T, in *sqs.SendMessageInput) deliverq.Message {
	var m deliverq.Message
	if err := json.Unmarshal([]byte(aws.ToString(in.MessageBody)), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestRetryDelayIsCapped: a receiver asking for 10 h gets its retry as a
// job message on the same queue, due in 10 h, delayed SQS's most (900 s).
func TestRetryDelayIsCapped(t *testing.T) {
	d, q, _ := setup(t, http.StatusServiceUnavailable, "36000")
	r, _ := d.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{bridge(t, sealed())}})
	if failures(r) != "" || len(q.sent) != 1 {
		t.Fatalf("failures %q, sent %d", failures(r), len(q.sent))
	}
	in := q.sent[0]
	m := decode(t, in)
	if aws.ToString(in.QueueUrl) != queueURL || in.DelaySeconds != 900 || m.Kind != deliverq.KindJob || m.Job.Attempt != 2 ||
		m.Job.Event.ID != "evt_1" || m.Job.WebhookID != "wh_1" || time.Until(m.DueAt) < 10*time.Hour-time.Minute {
		t.Fatalf("retry %s delay %d: %+v", aws.ToString(in.QueueUrl), in.DelaySeconds, m)
	}
}

// TestJobNotDueIsHidden: a job due in 13 h is hidden for the most SQS
// allows and reported as a batch item failure, undelivered.
func TestJobNotDueIsHidden(t *testing.T) {
	d, q, _ := setup(t, http.StatusOK, "")
	m := job(t, deliverq.Message{Kind: deliverq.KindJob, DueAt: time.Now().Add(13 * time.Hour),
		Job: webhook.Job{Event: sealed(), TenantID: "acme", WebhookID: "wh_1", Attempt: 3}})
	r, _ := d.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{m}})
	if failures(r) != "m-job" || len(q.hidden) != 1 || len(q.sent) != 0 {
		t.Fatalf("failures %q, hidden %d, sent %d", failures(r), len(q.hidden), len(q.sent))
	}
	if h := q.hidden[0]; aws.ToString(h.ReceiptHandle) != "rh-job" || h.VisibilityTimeout != int32(deliverq.MaxHide/time.Second) {
		t.Fatalf("hidden %+v, want %d s", h, int32(deliverq.MaxHide/time.Second))
	}
}

// TestLastAttemptGoesToTheDLQ: past the retry window the job goes to the
// dead-letter queue with the last error, and KeyDeliveryFailures counts it.
func TestLastAttemptGoesToTheDLQ(t *testing.T) {
	d, q, h := setup(t, http.StatusInternalServerError, "")
	m := job(t, deliverq.Message{Kind: deliverq.KindJob, DueAt: time.Now().Add(-time.Second),
		Job: webhook.Job{Event: sealed(), TenantID: "acme", WebhookID: "wh_1", Attempt: 9, FirstAt: time.Now().Add(-webhook.RetryWindow)}})
	r, _ := d.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{m}})
	if failures(r) != "" || len(q.sent) != 1 || aws.ToString(q.sent[0].QueueUrl) != dlqURL {
		t.Fatalf("failures %q, sent %v", failures(r), q.sent)
	}
	got := decode(t, q.sent[0])
	if got.Job.Event.ID != "evt_1" || got.Job.Attempt != 9 || !strings.Contains(got.LastError, "500") || h.count != 1 {
		t.Fatalf("dead letter %+v, KeyDeliveryFailures %v", got, h.count)
	}
}

// TestFailuresAreBatchItemFailures: a body that is no message and a job
// whose store is down are reported; an event whose job failed is settled
// and the job sent back on its own (the other receivers are not called
// again).
func TestFailuresAreBatchItemFailures(t *testing.T) {
	d, q, h := setup(t, http.StatusOK, "")
	h.fail = errors.New("dynamodb unavailable")
	jm := job(t, deliverq.Message{Kind: deliverq.KindJob, DueAt: time.Now(), Job: webhook.Job{Event: sealed(), TenantID: "acme", WebhookID: "wh_1", Attempt: 2}})
	r, _ := d.Handle(context.Background(), events.SQSEvent{Records: []events.SQSMessage{
		{MessageId: "m-garbage", Body: "garbage{"}, {MessageId: "m-other", Body: `{"source":"aws.s3","detail":{}}`}, jm, bridge(t, sealed())}})
	if got := failures(r); got != "m-garbage,m-other,m-job" {
		t.Fatalf("failures %q", got)
	}
	if len(q.sent) != 1 || decode(t, q.sent[0]).Job.WebhookID != "wh_1" || q.sent[0].DelaySeconds != int32(deliverq.ErrorBackoff/time.Second) {
		t.Fatalf("sent %v", q.sent)
	}
}
