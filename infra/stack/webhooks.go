package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatch"
	"github.com/aws/aws-cdk-go/awscdk/v2/awscloudwatchactions"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awssqs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Webhook delivery settings (shared/deliverq).
const (
	// deliverTimeout is the webhook-deliver function's timeout, seconds.
	deliverTimeout = 60
	// deliverVisibility is the queue's visibility timeout: 6 times the
	// function's, as AWS recommends for a Lambda event source, so a
	// batch still running is never handed to a second invocation.
	deliverVisibility = 6 * deliverTimeout
	// DeliverMaxReceiveCount is the redrive policy's maxReceiveCount
	// (deliverq.MaxReceiveCount): a healthy retry job is received at
	// most twice before it is due; the rest are failed handlings, a
	// visibility timeout apart (8 x 6 min: a store or KMS outage of about
	// 48 minutes) before a message goes to the dead-letter queue.
	DeliverMaxReceiveCount = 10
	// deliverBatch: messages per invocation (each message an event's
	// fan-out or one retry).
	deliverBatch = 10
	// deliverConcurrency caps concurrent invocations (the mapping's
	// maximum concurrency), and so the deliveries under way at once
	// (at most 5 x 10 messages x 20 subscriptions) and the load on the
	// table and the platform key.
	deliverConcurrency = 5
)

// DeliveredTypes are the detail types the rule sends to the webhook
// queue: keyseal's event catalogue (shared/keyseal EventTypes) and
// webhook.test. shared/deliverq's tests check the list is the catalogue.
var DeliveredTypes = []string{
	"tenant.kms.sealed", "tenant.kms.unsealed", "tenant.kms.revoked", "tenant.kms.rotated", "tenant.kms.registered",
	"tenant.kms.migrated", "tenant.kms.deregistered", "tenant.kms.health_degraded", "tenant.kms.rotation_due",
	"webhook.test",
}

// Webhooks is the AWS delivery path: bus rule -> queue -> webhook-deliver
// -> dead-letter queue.
type Webhooks struct {
	constructs.Construct
	Queue, DLQ awssqs.Queue
	Rule       awsevents.Rule
	Mapping    awslambda.EventSourceMapping
}

// NewWebhooks creates the queues, the rule on keyseal's bus, the event
// source of the webhook-deliver function with its queue grants and
// configuration, and the two delivery alarms.
func NewWebhooks(scope constructs.Construct, id string, c Config, ev *Events, fns *Functions, alarms *Alarms) *Webhooks {
	s := constructs.NewConstruct(scope, jsii.String(id))
	dlq := awssqs.NewQueue(s, jsii.String("DLQ"), &awssqs.QueueProps{
		QueueName:       jsii.String(c.Prefix("webhooks-dlq")),
		RetentionPeriod: awscdk.Duration_Days(jsii.Number(14)), // SQS's longest: time to look and redrive
		Encryption:      awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:      jsii.Bool(true),
	})
	queue := awssqs.NewQueue(s, jsii.String("Queue"), &awssqs.QueueProps{
		QueueName: jsii.String(c.Prefix("webhooks")),
		// A retry is a new message, so one waits at most a retry's delay
		// (10 h) plus its failed handlings; 4 days is SQS's default.
		RetentionPeriod:   awscdk.Duration_Days(jsii.Number(4)),
		VisibilityTimeout: awscdk.Duration_Seconds(jsii.Number(deliverVisibility)),
		Encryption:        awssqs.QueueEncryption_SQS_MANAGED,
		EnforceSSL:        jsii.Bool(true),
		DeadLetterQueue:   &awssqs.DeadLetterQueue{Queue: dlq, MaxReceiveCount: jsii.Number(DeliverMaxReceiveCount)},
	})
	rule := awsevents.NewRule(s, jsii.String("Rule"), &awsevents.RuleProps{
		RuleName:    jsii.String(c.Prefix("webhooks")),
		Description: jsii.String("keyseal events to the webhook delivery queue"),
		EventBus:    ev.Bus,
		EventPattern: &awsevents.EventPattern{
			Source:     jsii.Strings("keyseal"),
			DetailType: jsii.Strings(DeliveredTypes...),
		},
	})
	// An event EventBridge cannot put to the queue (after its own
	// retries, 24 h) goes to the dead-letter queue too.
	rule.AddTarget(awseventstargets.NewSqsQueue(queue, &awseventstargets.SqsQueueProps{DeadLetterQueue: dlq}))

	fn := fns.ByName[FnDeliver]
	fn.AddEnvironment(jsii.String("KEYSEAL_WEBHOOK_QUEUE_URL"), queue.QueueUrl(), nil)
	fn.AddEnvironment(jsii.String("KEYSEAL_WEBHOOK_DLQ_URL"), dlq.QueueUrl(), nil)
	// What the event source mapping polls with, what the driver hides a
	// job not yet due with, and its sends: retries to the queue, dead
	// letters to the DLQ. Built by hand (not CDK's SqsEventSource, whose
	// grant adds GetQueueUrl) so the role has exactly these.
	fn.AddToRolePolicy(statement([]string{"sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility",
		"sqs:GetQueueAttributes", "sqs:SendMessage"}, []*string{queue.QueueArn()}, nil))
	fn.AddToRolePolicy(statement([]string{"sqs:SendMessage"}, []*string{dlq.QueueArn()}, nil))
	m := awslambda.NewEventSourceMapping(s, jsii.String("Source"), &awslambda.EventSourceMappingProps{
		Target:                  fn,
		EventSourceArn:          queue.QueueArn(),
		BatchSize:               jsii.Number(deliverBatch),
		ReportBatchItemFailures: jsii.Bool(true),
		MaxConcurrency:          jsii.Number(deliverConcurrency),
	})
	// Lambda checks the role's SQS permissions when the mapping is created.
	if p := fn.Role().Node().TryFindChild(jsii.String("DefaultPolicy")); p != nil {
		m.Node().AddDependency(p)
	}

	action := awscloudwatchactions.NewSnsAction(alarms.Topic)
	a := awscloudwatch.NewAlarm(s, jsii.String("DLQAlarm"), &awscloudwatch.AlarmProps{
		AlarmName:        jsii.String(c.Prefix("WebhookDLQ")),
		AlarmDescription: jsii.String("Webhook messages are in the dead-letter queue: deliveries that failed for 72 h, or messages that could not be handled. Inspect them, then redrive with aws sqs start-message-move-task."),
		Metric: dlq.MetricApproximateNumberOfMessagesVisible(&awscloudwatch.MetricOptions{
			Statistic: jsii.String("Maximum"), Period: awscdk.Duration_Minutes(jsii.Number(5))}),
		Threshold:          jsii.Number(0),
		EvaluationPeriods:  jsii.Number(1),
		ComparisonOperator: awscloudwatch.ComparisonOperator_GREATER_THAN_THRESHOLD,
		TreatMissingData:   awscloudwatch.TreatMissingData_NOT_BREACHING,
	})
	a.AddAlarmAction(action)
	a.AddOkAction(action)
	return &Webhooks{Construct: s, Queue: queue, DLQ: dlq, Rule: rule, Mapping: m}
}
