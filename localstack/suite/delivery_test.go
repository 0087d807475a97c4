//go:build integration

package suite

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/keyseal/keyseal/localstack/standin"
	"github.com/keyseal/keyseal/shared/app/deliverer"
	"github.com/keyseal/keyseal/shared/client"
	"github.com/keyseal/keyseal/shared/deliverq"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/localserver"
	"github.com/keyseal/keyseal/shared/webhook"
)

// delivered is one request a receiver got.
type delivered struct {
	at     time.Time
	id     string
	header http.Header
	body   []byte
}

// retryScale shortens the retry schedule for the delivery tests
// (KEYSEAL_WEBHOOK_RETRY_SCALE's option).
const retryScale = 0.004

// TestWebhookDeliveryOnSQS is the AWS delivery path on LocalStack: the
// bus rule puts tenant.kms.sealed on a queue; the webhook-deliver handler
// (deliverq.Driver, run by the local Poller as Lambda's event source
// would) delivers it to a receiver that fails twice, retrying through the
// same queue with the same webhook-id; every request verifies with the
// Standard Webhooks library; a message that cannot be decoded ends in the
// dead-letter queue after maxReceiveCount receives.
func TestWebhookDeliveryOnSQS(t *testing.T) {
	e := newEnv(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var mu sync.Mutex
	var got []delivered
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, delivered{at: time.Now(), id: r.Header.Get("webhook-id"), header: r.Header.Clone(), body: body})
		n := len(got)
		mu.Unlock()
		if n <= 2 {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer recv.Close()

	tn := e.newTenant()
	created := must(e.admin(tn.ID).CreateWebhook(ctx, client.WebhookRequest{URL: recv.URL + "/hook", Events: []string{keyseal.EventSealed}}))(t)
	hookID, secret := created.ID, created.Secret

	// The stack's pieces, small: a DLQ, a queue redriving to it after 2
	// receives with a 1 s visibility timeout, a rule from the bus.
	dlqURL, dlqARN := createQueue(t, e.sqs, e.table+"-dlq", nil)
	queueURL, queueARN := createQueue(t, e.sqs, e.table+"-webhooks", map[string]string{
		"VisibilityTimeout": "1",
		"RedrivePolicy":     fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"2"}`, dlqARN),
	})
	eb := standin.EventBridge(t)
	rule := e.table + "-webhooks"
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(rule), EventBusName: aws.String(e.table),
		EventPattern: aws.String(`{"source":["keyseal"],"detail-type":["` + keyseal.EventSealed + `","webhook.test"]}`)}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(rule), EventBusName: aws.String(e.table),
		Targets: []ebtypes.Target{{Id: aws.String("webhooks"), Arn: aws.String(queueARN)}}}); err != nil {
		t.Fatal(err)
	}

	svc := e.srv.App.Deps.Webhooks
	d := deliverer.NewDriver(deliverer.Parts{Store: svc.Store, KMS: svc.KMS, PlatformKey: svc.PlatformKey, SQS: e.sqs,
		QueueURL: queueURL, DLQURL: dlqURL, Policy: webhook.Policy{Dev: true}, Log: e.srv.App.Log,
		RetryScale: retryScale}) // the schedule's 5 s and 5 min become 20 ms and 1.2 s
	p := &deliverq.Poller{Driver: d, SQS: e.sqs, Wait: time.Second}
	go p.Run(ctx)

	// Poison: not JSON at all.
	if _, err := e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String("garbage{")}); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	if _, err := e.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(tn.KeyID)}); err != nil {
		t.Fatal(err)
	}
	e.sweep()

	deadline := time.Now().Add(15 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("receiver got %d requests, want 3 (two failures, then success)", n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("sealed delivered on attempt 3, %s after the key was disabled", time.Since(start).Round(10*time.Millisecond))
	time.Sleep(1500 * time.Millisecond) // nothing more arrives once delivered
	mu.Lock()
	reqs := append([]delivered(nil), got...)
	mu.Unlock()
	if len(reqs) != 3 {
		t.Fatalf("receiver got %d requests, want exactly 3", len(reqs))
	}
	// The second retry is due 5 min × retryScale (less the jitter) after
	// the second attempt.
	if gap, least := reqs[2].at.Sub(reqs[1].at), time.Duration(float64(5*time.Minute)*retryScale*0.9)-deliverq.DueSlack; gap < least {
		t.Errorf("attempt 3 came %s after the previous, before its retry delay (at least %s)", gap, least)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	for i, q := range reqs {
		if q.id == "" || q.id != reqs[0].id {
			t.Errorf("request %d has webhook-id %q, want the first's %q", i+1, q.id, reqs[0].id)
		}
		if err := wh.Verify(q.body, q.header); err != nil {
			t.Errorf("request %d does not verify: %v", i+1, err)
		}
	}
	sealed := e.awaitEvent(keyseal.EventSealed, tn.ID) // the env's own queue saw the same event
	if reqs[0].id != sealed.Detail.ID {
		t.Errorf("webhook-id %s, want the event id %s", reqs[0].id, sealed.Detail.ID)
	}
	atts, err := svc.Store.ListDeliveries(ctx, tn.ID, hookID, 0)
	if err != nil || len(atts) != 3 || atts[0].Outcome != keyseal.DeliveryDelivered || atts[0].Attempt != 3 ||
		atts[2].Outcome != keyseal.DeliveryRetrying || atts[2].ResponseCode != 503 {
		t.Fatalf("recorded attempts %+v, %v", atts, err)
	}

	// A job received before its due time is hidden until then.
	test := keyseal.Event{ID: "evt_hidden_" + tn.ID, Type: keyseal.EventWebhookTest, TenantID: tn.ID,
		Time: time.Now().UTC().Format(time.RFC3339), Data: []byte(`{"webhook_id":"` + hookID + `"}`)}
	body, _ := json.Marshal(deliverq.Message{Kind: deliverq.KindJob, DueAt: time.Now().Add(2 * time.Second),
		Job: webhook.Job{Event: test, TenantID: tn.ID, WebhookID: hookID, Attempt: 1}})
	sent := time.Now()
	if _, err := e.sqs.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(string(body))}); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(8 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		var last delivered
		if n > 0 {
			last = got[n-1]
		}
		mu.Unlock()
		if n == 4 {
			if last.id != test.ID || last.at.Sub(sent) < 2*time.Second-deliverq.DueSlack {
				t.Fatalf("hidden job delivered as %s after %s, want %s after 2 s", last.id, last.at.Sub(sent), test.ID)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the job due in 2 s never arrived (%d requests)", n)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// The poison message went to the DLQ, by SQS's redrive.
	deadline = time.Now().Add(10 * time.Second)
	for {
		out, err := e.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(dlqURL), WaitTimeSeconds: 1,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount}})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Messages) > 0 {
			if body := aws.ToString(out.Messages[0].Body); body != "garbage{" || len(out.Messages) != 1 {
				t.Fatalf("DLQ holds %d messages, first %q; want the poison message alone", len(out.Messages), body)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the poison message never reached the DLQ")
		}
	}
}

// createQueue makes an SQS queue and returns its URL and ARN.
func createQueue(t *testing.T, c *sqs.Client, name string, attrs map[string]string) (string, string) {
	t.Helper()
	q, err := c.CreateQueue(context.Background(), &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.GetQueueAttributes(context.Background(), &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(q.QueueUrl), a.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]
}

// TestLocalServerDeliversOnSQS: `make run-localstack` delivers webhooks
// the AWS way (localserver.StartSQSDelivery): a test event reaches its
// receiver through the bus, the rule and the queue, signed.
func TestLocalServerDeliversOnSQS(t *testing.T) {
	e := newEnv(t, nil)
	bodies := make(chan delivered, 4)
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		bodies <- delivered{id: r.Header.Get("webhook-id"), header: r.Header.Clone(), body: body}
	}))
	defer recv.Close()
	d, err := localserver.StartSQSDelivery(context.Background(), e.srv.App, e.srv.Local)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	tn := e.newTenant()
	admin := e.admin(tn.ID)
	created := must(admin.CreateWebhook(context.Background(), client.WebhookRequest{URL: recv.URL + "/hook", Events: []string{keyseal.EventSealed}}))(t)
	ev := must(admin.TestWebhook(context.Background(), created.ID))(t).EventID
	select {
	case got := <-bodies:
		wh, err := standardwebhooks.NewWebhook(created.Secret)
		if err != nil {
			t.Fatal(err)
		}
		if err := wh.Verify(got.body, got.header); err != nil || got.id != ev {
			t.Fatalf("delivery %s (want %s): %v", got.id, ev, err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the test event never reached the receiver")
	}
}
