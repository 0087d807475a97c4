package localserver

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/keyseal/keyseal/shared/app"
	"github.com/keyseal/keyseal/shared/app/deliverer"
	"github.com/keyseal/keyseal/shared/deliverq"
	"github.com/keyseal/keyseal/shared/webhook"
)

// SQSDelivery is webhook delivery in LocalStack mode, the way the stack
// deploys it on AWS (README, "Delivery on AWS"): a rule on the bus, a
// queue with a dead-letter queue, and the webhook-deliver handler run in
// process by deliverq.Poller in place of Lambda's event source.
type SQSDelivery struct {
	QueueURL, DLQURL string
	stop             context.CancelFunc
	done             sync.WaitGroup
}

// Stop ends the poller and waits for it.
func (d *SQSDelivery) Stop() {
	d.stop()
	d.done.Wait()
}

// StartSQSDelivery creates (or reuses) the queues <bus>-webhooks and
// <bus>-webhooks-dlq (redrive after deliverq.MaxReceiveCount receives,
// visibility 30 s) and the rule <bus>-webhooks, and polls the queue until
// ctx ends or Stop. It needs LocalStack mode (a Local with AWS clients).
// Deliveries use the dev URL policy, like the local server's
// subscriptions.
func StartSQSDelivery(ctx context.Context, a *app.App, l *Local) (*SQSDelivery, error) {
	if l.AWS == nil {
		return nil, fmt.Errorf("webhook delivery on SQS needs LocalStack mode")
	}
	sqsc := sqs.NewFromConfig(l.AWS.Config)
	bus := a.Config.EventBus
	dlqURL, dlqARN, err := ensureQueue(ctx, sqsc, bus+"-webhooks-dlq", map[string]string{"MessageRetentionPeriod": "1209600"})
	if err != nil {
		return nil, err
	}
	queueURL, queueARN, err := ensureQueue(ctx, sqsc, bus+"-webhooks", map[string]string{"VisibilityTimeout": "30",
		"RedrivePolicy": fmt.Sprintf(`{"deadLetterTargetArn":%q,"maxReceiveCount":"%d"}`, dlqARN, deliverq.MaxReceiveCount)})
	if err != nil {
		return nil, err
	}
	rule := bus + "-webhooks"
	if _, err := l.AWS.EventBridge.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(rule), EventBusName: aws.String(bus),
		EventPattern: aws.String(`{"source":["keyseal"]}`)}); err != nil {
		return nil, fmt.Errorf("webhook rule: %w", err)
	}
	if _, err := l.AWS.EventBridge.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(rule), EventBusName: aws.String(bus),
		Targets: []ebtypes.Target{{Id: aws.String("webhooks"), Arn: aws.String(queueARN)}}}); err != nil {
		return nil, fmt.Errorf("webhook rule target: %w", err)
	}
	svc := a.Deps.Webhooks
	drv := deliverer.NewDriver(deliverer.Parts{Store: svc.Store, KMS: svc.KMS, PlatformKey: svc.PlatformKey, SQS: sqsc,
		QueueURL: queueURL, DLQURL: dlqURL, Policy: webhook.Policy{Dev: true}, Log: a.Log})
	p := &deliverq.Poller{Driver: drv, SQS: sqsc, Wait: 5 * time.Second}
	pctx, stop := context.WithCancel(ctx)
	d := &SQSDelivery{QueueURL: queueURL, DLQURL: dlqURL, stop: stop}
	d.done.Go(func() { _ = p.Run(pctx) })
	return d, nil
}

// ensureQueue creates a queue (CreateQueue returns an existing one with
// the same attributes) and returns its URL and ARN.
func ensureQueue(ctx context.Context, c *sqs.Client, name string, attrs map[string]string) (string, string, error) {
	q, err := c.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name), Attributes: attrs})
	if err != nil {
		return "", "", fmt.Errorf("create queue %s: %w", name, err)
	}
	a, err := c.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return "", "", fmt.Errorf("queue %s: %w", name, err)
	}
	return aws.ToString(q.QueueUrl), a.Attributes[string(sqstypes.QueueAttributeNameQueueArn)], nil
}
