// Package awsconfig is the one place keyseal builds its aws.Config. Every
// client (KMS, DynamoDB, EventBridge, STS) is made from the config it
// returns; constructors elsewhere take clients and never load config.
package awsconfig

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Load reads the standard AWS environment. Endpoint overrides for
// LocalStack and DynamoDB Local come from AWS_ENDPOINT_URL and
// AWS_ENDPOINT_URL_<SERVICE> (for example AWS_ENDPOINT_URL_DYNAMODB), which
// the SDK honours natively, so no code path differs between AWS and the
// stand-ins.
func Load(ctx context.Context) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx,
		// The SDK's buildable client, not a plain http.Client: it must
		// accept AWS_CA_BUNDLE (custom root CAs) where one is set.
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(10*time.Second)),
		// Three attempts: keyseal's own timeouts bound the total, and the
		// seal logic, not the SDK, decides what a persistent failure means.
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 3 })
		}),
	)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, fmt.Errorf("load AWS config: AWS_REGION is not set")
	}
	return cfg, nil
}
