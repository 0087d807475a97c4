// Package defaultchain loads the aws.Config of the local server with the
// SDK's default chain (config.LoadDefaultConfig: environment, shared
// config files and profiles, SSO, web identity), with awsconfig's HTTP
// client and retryer. The Lambdas use awsconfig.FromEnv instead and do
// not link this package.
package defaultchain

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/keyseal/keyseal/shared/awsconfig"
)

// Load reads the standard AWS environment and shared configuration.
// Endpoint overrides for LocalStack and DynamoDB Local come from
// AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>, which the SDK honours
// natively.
func Load(ctx context.Context) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx, config.WithHTTPClient(awsconfig.HTTPClient()), config.WithRetryer(awsconfig.Retryer))
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, fmt.Errorf("load AWS config: AWS_REGION is not set")
	}
	return cfg, nil
}
