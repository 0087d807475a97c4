package localserver

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/keyseal/keyseal/shared/keyevents"
)

// SQSKeyEvents is push sealing in LocalStack mode: the stack's two rules
// on the bus (infra/stack/keyevents.go), targeting a queue instead of the
// key-events Lambda (LocalStack runs no Lambda without Docker), and the
// key-events handler run in process on what the queue receives.
type SQSKeyEvents struct {
	QueueURL string
	stop     context.CancelFunc
	done     sync.WaitGroup
}

// Stop ends the consumer and waits for it.
func (k *SQSKeyEvents) Stop() {
	k.stop()
	k.done.Wait()
}

// keyEventPatterns are the stack's two rule patterns.
func keyEventPatterns() map[string]string {
	names, _ := json.Marshal(keyevents.APIEvents)
	return map[string]string{
		"key-api-calls": `{"source":["aws.kms"],"detail-type":["` + keyevents.DetailCloudTrail + `"],` +
			`"detail":{"eventSource":["kms.amazonaws.com"],"eventName":` + string(names) + `}}`,
		"key-lifecycle": `{"source":["aws.kms"],"detail-type":["` + keyevents.DetailDeletion + `","` + keyevents.DetailMaterialExpiry + `"]}`,
	}
}

// StartSQSKeyEvents creates (or reuses) the queue <bus>-key-events and the
// rules <bus>-key-api-calls and <bus>-key-lifecycle, and runs s.KeyEvents
// on each message until ctx ends or Stop. It needs LocalStack mode.
func StartSQSKeyEvents(ctx context.Context, s *Server) (*SQSKeyEvents, error) {
	l := s.Local
	if l.AWS == nil {
		return nil, fmt.Errorf("key events on SQS need LocalStack mode")
	}
	sqsc := sqs.NewFromConfig(l.AWS.Config)
	bus := s.App.Config.EventBus
	queueURL, queueARN, err := ensureQueue(ctx, sqsc, bus+"-key-events", map[string]string{"VisibilityTimeout": "30"})
	if err != nil {
		return nil, err
	}
	for name, pattern := range keyEventPatterns() {
		rule := bus + "-" + name
		if _, err := l.AWS.EventBridge.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(rule), EventBusName: aws.String(bus),
			EventPattern: aws.String(pattern)}); err != nil {
			return nil, fmt.Errorf("key events rule %s: %w", rule, err)
		}
		if _, err := l.AWS.EventBridge.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(rule), EventBusName: aws.String(bus),
			Targets: []ebtypes.Target{{Id: aws.String("key-events"), Arn: aws.String(queueARN)}}}); err != nil {
			return nil, fmt.Errorf("key events rule %s target: %w", rule, err)
		}
	}
	pctx, stop := context.WithCancel(ctx)
	k := &SQSKeyEvents{QueueURL: queueURL, stop: stop}
	k.done.Go(func() { s.consumeKeyEvents(pctx, sqsc, queueURL) })
	return k, nil
}

// consumeKeyEvents long-polls the queue (one second, so Stop is prompt)
// and hands each message to the key-events handler, deleting it once
// handled; a message whose handling failed returns after the visibility
// timeout, as an asynchronous Lambda invoke would be retried.
func (s *Server) consumeKeyEvents(ctx context.Context, c *sqs.Client, queueURL string) {
	for ctx.Err() == nil {
		out, err := c.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL),
			MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			if ctx.Err() == nil && !strings.Contains(err.Error(), "context canceled") {
				s.App.Log.Error("key events: receive", "err", err)
			}
			continue
		}
		for _, m := range out.Messages {
			if _, err := s.KeyEvents.Handle(ctx, json.RawMessage(aws.ToString(m.Body))); err != nil {
				s.App.Log.Error("key events", "err", err)
				continue
			}
			if _, err := c.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil && ctx.Err() == nil {
				s.App.Log.Error("key events: delete", "err", err)
			}
		}
		if len(out.Messages) > 0 {
			s.DrainNow()
		}
	}
}
