// Package deliverer wires the webhook-deliver Lambda: the SQS driver of
// webhook delivery (package deliverq) on the DynamoDB store, AWS KMS for
// the platform key (signing secrets are sealed under it) and the safe
// webhook client. It is apart from package app, like package publisher,
// so the Lambda links neither the Google nor the Azure SDK: it calls no
// tenant's KMS.
package deliverer

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/auditkey"
	"github.com/keyseal/keyseal/shared/awsconfig"
	"github.com/keyseal/keyseal/shared/awskms"
	"github.com/keyseal/keyseal/shared/config"
	"github.com/keyseal/keyseal/shared/deliverq"
	"github.com/keyseal/keyseal/shared/dynamostore"
	"github.com/keyseal/keyseal/shared/internal/jsonlog"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/metrics"
	"github.com/keyseal/keyseal/shared/subscription"
	"github.com/keyseal/keyseal/shared/webhook"
)

// New wires the queue's handler. It needs the table, the platform key,
// the audit signing key (disabling a subscription on 410 Gone is
// audited) and both queue URLs.
func New(ctx context.Context, getenv config.Getenv) (*deliverq.Driver, error) {
	cfg, err := config.Load(getenv)
	if err == nil {
		err = cfg.RequireAWS()
	}
	if err == nil {
		err = cfg.RequireAuditSigning()
	}
	if err == nil {
		err = cfg.RequireWebhookQueues()
	}
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	awsCfg, err := awsconfig.FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	log := jsonlog.New(cfg.LogLevel)
	kmsClient := kms.NewFromConfig(awsCfg)
	anchor, err := audit.NewAnchor(auditkey.NewKMS(kmsClient, cfg.AuditSigningKeyID, cfg.KMSTimeout), cfg.Stage, log)
	if err != nil {
		return nil, fmt.Errorf("configuration: KEYSEAL_STAGE: %w", err)
	}
	store := dynamostore.New(dynamodb.NewFromConfig(awsCfg), cfg.Table, dynamostore.WithAnchor(anchor))
	emf := metrics.New(os.Stdout, cfg.Stage)
	if fn := getenv("AWS_LAMBDA_FUNCTION_NAME"); fn != "" { // set by the Lambda runtime
		emf = emf.With("function", fn)
	}
	return NewDriver(Parts{Store: store, KMS: keyseal.Providers{keyseal.ProviderAWS: awskms.New(kmsClient)},
		PlatformKey: keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: cfg.PlatformKeyID}, SQS: sqs.NewFromConfig(awsCfg),
		QueueURL: cfg.WebhookQueueURL, DLQURL: cfg.WebhookDLQURL, Metrics: emf, Log: log}), nil
}

// Parts are what NewDriver assembles: the Lambda's AWS adapters, or the
// local server's and the tests' (LocalStack).
type Parts struct {
	Store       keyseal.WebhookStore
	KMS         keyseal.KMS
	PlatformKey keyseal.KeyRef
	SQS         deliverq.Queue
	// QueueURL is the queue read, DLQURL its dead-letter queue.
	QueueURL, DLQURL string
	// Policy is the URL policy of deliveries: the zero Policy on AWS,
	// Policy{Dev: true} locally (the subscriptions' own policy).
	Policy  webhook.Policy
	Metrics webhook.Metrics
	Log     *slog.Logger
	// RetryScale shortens the retry schedule (webhook.ClientOptions; 0
	// or 1 on AWS: the production schedule).
	RetryScale float64
}

// NewDriver assembles the subscription service, the deliverer and the
// driver on p.
func NewDriver(p Parts) *deliverq.Driver {
	subs := &subscription.Service{Store: p.Store, KMS: p.KMS, PlatformKey: p.PlatformKey, Policy: p.Policy, Now: time.Now}
	d := &webhook.Deliverer{Client: webhook.NewClient(p.Policy, webhook.ClientOptions{RetryScale: p.RetryScale}), Subscriptions: subs, Store: p.Store,
		Metrics: p.Metrics, Log: p.Log, Now: time.Now}
	return &deliverq.Driver{Deliverer: d, SQS: p.SQS, QueueURL: p.QueueURL, DLQURL: p.DLQURL, Log: p.Log}
}

// Must is New for the Lambda's main: a configuration error is printed
// naming the function and the process exits.
func Must(function string) *deliverq.Driver {
	d, err := New(context.Background(), os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", function, err)
		os.Exit(1)
	}
	return d
}
