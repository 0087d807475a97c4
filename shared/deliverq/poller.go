package deliverq

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// Receiver is what Poller calls on SQS besides the Driver's calls
// (*sqs.Client implements it).
type Receiver interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, opts ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessage(ctx context.Context, in *sqs.DeleteMessageInput, opts ...func(*sqs.Options)) (*sqs.DeleteMessageOutput, error)
}

// Poller plays Lambda's SQS event source where there is no Lambda (the
// local server in LocalStack mode, the integration tests): it receives
// batches from the Driver's queue, hands them to Driver.Handle and deletes
// the messages it settled, leaving the batch item failures to come back
// after their visibility timeout.
type Poller struct {
	Driver *Driver
	SQS    Receiver
	// Wait is the long-poll wait of one receive (at most 20 s); 1 s when
	// zero.
	Wait time.Duration
}

// Run polls until ctx ends; a failed receive is retried after Wait.
func (p *Poller) Run(ctx context.Context) error {
	for ctx.Err() == nil {
		if _, err := p.Poll(ctx); err != nil && ctx.Err() == nil {
			p.Driver.log().Warn("webhook queue poll failed", "err", err)
			select {
			case <-ctx.Done():
			case <-time.After(p.wait()):
			}
		}
	}
	return ctx.Err()
}

func (p *Poller) wait() time.Duration {
	if p.Wait <= 0 {
		return time.Second
	}
	return min(p.Wait, 20*time.Second)
}

// Poll receives one batch (up to 10 messages), handles it and deletes
// what was settled; it returns how many messages it received.
func (p *Poller) Poll(ctx context.Context) (int, error) {
	out, err := p.SQS.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(p.Driver.QueueURL), MaxNumberOfMessages: 10,
		WaitTimeSeconds:             int32(p.wait().Seconds()),
		MessageSystemAttributeNames: []types.MessageSystemAttributeName{types.MessageSystemAttributeNameApproximateReceiveCount}})
	if err != nil {
		return 0, fmt.Errorf("receive from webhook queue: %w", err)
	}
	if len(out.Messages) == 0 {
		return 0, nil
	}
	ev := events.SQSEvent{Records: make([]events.SQSMessage, len(out.Messages))}
	for i, m := range out.Messages {
		ev.Records[i] = events.SQSMessage{MessageId: aws.ToString(m.MessageId), ReceiptHandle: aws.ToString(m.ReceiptHandle),
			Body: aws.ToString(m.Body), Attributes: m.Attributes}
	}
	resp, _ := p.Driver.Handle(ctx, ev)
	failed := map[string]bool{}
	for _, f := range resp.BatchItemFailures {
		failed[f.ItemIdentifier] = true
	}
	for _, m := range ev.Records {
		if failed[m.MessageId] {
			continue
		}
		if _, err := p.SQS.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(p.Driver.QueueURL),
			ReceiptHandle: aws.String(m.ReceiptHandle)}); err != nil {
			return len(ev.Records), fmt.Errorf("delete settled message: %w", err)
		}
	}
	return len(ev.Records), nil
}
