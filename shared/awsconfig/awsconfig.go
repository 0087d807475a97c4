// Package awsconfig is the one place keyseal builds its aws.Config. Every
// client (KMS, DynamoDB, STS, Secrets Manager) is made from the config it
// returns; constructors elsewhere take clients and never load config.
//
// The Lambdas use FromEnv: Lambda puts the execution role's credentials
// and the region in the environment, so they need neither the SDK's
// shared-config files nor its SSO, SSO-OIDC, sign-in and STS web-identity
// providers, whose packages (clients, endpoint tables, schemas) cost
// about 1 ms of every cold start just by being linked. The local server,
// which a developer may point anywhere, uses package defaultchain (the
// SDK's config.LoadDefaultConfig) with the same HTTP client and retryer.
package awsconfig

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go/logging"
)

// HTTPClient is the SDK's buildable client (not a plain http.Client, so
// that a custom CA bundle can be added to it) with keyseal's 10 s bound.
func HTTPClient() *awshttp.BuildableClient {
	return awshttp.NewBuildableClient().WithTimeout(10 * time.Second)
}

// Retryer makes three attempts: keyseal's own timeouts bound the total,
// and the seal logic, not the SDK, decides what a persistent failure
// means.
func Retryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 3 })
}

// FromEnv builds the config from the variables the Lambda runtime sets,
// read through getenv: AWS_REGION (or AWS_DEFAULT_REGION),
// AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN (the
// execution role's credentials, valid for the execution environment's
// life), plus what the SDK's default chain would honour there:
// AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE> (LocalStack, DynamoDB
// Local; AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true turns them off) and
// AWS_CA_BUNDLE. It makes no network call. Shared config files, profiles,
// SSO and web identity are not read: a process without credentials in
// its environment gets an error naming the variables.
func FromEnv(getenv func(string) string) (aws.Config, error) {
	region := getenv("AWS_REGION")
	if region == "" {
		region = getenv("AWS_DEFAULT_REGION")
	}
	if region == "" {
		return aws.Config{}, errors.New("load AWS config: AWS_REGION is not set")
	}
	id, secret := getenv("AWS_ACCESS_KEY_ID"), getenv("AWS_SECRET_ACCESS_KEY")
	if id == "" || secret == "" {
		return aws.Config{}, errors.New("load AWS config: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set " +
			"(Lambda sets them from the execution role; elsewhere export them, as scripts/standins.sh env does)")
	}
	client := HTTPClient()
	if path := getenv("AWS_CA_BUNDLE"); path != "" {
		var err error
		if client, err = withCABundle(client, path); err != nil {
			return aws.Config{}, fmt.Errorf("load AWS config: AWS_CA_BUNDLE: %w", err)
		}
	}
	endpoints := envEndpoints{getenv: getenv}
	cfg := aws.Config{
		Region:             region,
		Credentials:        aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider(id, secret, getenv("AWS_SESSION_TOKEN"))),
		HTTPClient:         client,
		Retryer:            Retryer,
		Logger:             logging.NewStandardLogger(os.Stderr),
		RuntimeEnvironment: aws.RuntimeEnvironment{EnvironmentIdentifier: aws.ExecutionEnvironmentID(getenv("AWS_EXECUTION_ENV"))},
		ConfigSources:      []any{endpoints},
	}
	if u := getenv("AWS_ENDPOINT_URL"); u != "" && !endpoints.ignored() {
		cfg.BaseEndpoint = aws.String(u)
	}
	return cfg, nil
}

// withCABundle trusts the PEM certificates of path instead of the system
// roots, as the SDK's default chain does with AWS_CA_BUNDLE.
func withCABundle(c *awshttp.BuildableClient, path string) (*awshttp.BuildableClient, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return c.WithTransportOptions(func(tr *http.Transport) {
		if tr.TLSClientConfig == nil {
			tr.TLSClientConfig = &tls.Config{}
		}
		tr.TLSClientConfig.RootCAs = pool
	}), nil
}

// envEndpoints is a config source the SDK's clients ask for a service's
// endpoint (internal/configsources.ServiceBaseEndpointProvider):
// AWS_ENDPOINT_URL_<SERVICE>, the service's SDK id upper-cased with
// spaces as underscores (AWS_ENDPOINT_URL_DYNAMODB,
// AWS_ENDPOINT_URL_SECRETS_MANAGER), the default chain's naming.
type envEndpoints struct{ getenv func(string) string }

func (e envEndpoints) ignored() bool {
	return strings.EqualFold(e.getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"), "true")
}

// GetServiceBaseEndpoint returns the endpoint set for the service sdkID.
func (e envEndpoints) GetServiceBaseEndpoint(_ context.Context, sdkID string) (string, bool, error) {
	if e.ignored() {
		return "", false, nil
	}
	u := e.getenv("AWS_ENDPOINT_URL_" + strings.ToUpper(strings.ReplaceAll(sdkID, " ", "_")))
	return u, u != "", nil
}
