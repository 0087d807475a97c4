// Package standin points integration tests at keyseal's local AWS
// stand-ins: LocalStack (KMS, EventBridge, SQS, STS) at AWS_ENDPOINT_URL and
// DynamoDB Local at AWS_ENDPOINT_URL_DYNAMODB, the variables
// `bash scripts/standins.sh env` prints and `make test` exports.
//
// Every helper fails the test, never skips it, when a stand-in it needs is
// not configured or does not answer, so an integration run cannot pass by
// testing nothing. The package imports no keyseal package: tests inside
// any keyseal package (dynamostore's own, for one) can use it without an
// import cycle. It is meant for tests only; nothing else imports it.
package standin

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net"
	"net/url"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// The environment variables naming the stand-ins.
const (
	LocalStackVar = "AWS_ENDPOINT_URL"
	DynamoDBVar   = "AWS_ENDPOINT_URL_DYNAMODB"
)

// DefaultRegion is the region used when AWS_REGION is unset.
const DefaultRegion = "us-east-1"

// hint is what every failure tells the developer to do.
const hint = "the integration tests need LocalStack and DynamoDB Local: run them with `make test` or `make test-integration`, " +
	"or start the stand-ins (`bash scripts/standins.sh start`) and point the tests at them with " +
	"`eval \"$(bash scripts/standins.sh env)\"`"

// reached remembers the endpoints that answered once, so the many tests of
// a package dial each stand-in only once.
var reached sync.Map

// LocalStack returns LocalStack's endpoint URL, failing tb unless it is set
// and answers.
func LocalStack(tb testing.TB) string {
	tb.Helper()
	return endpoint(tb, LocalStackVar, "LocalStack")
}

// DynamoDBEndpoint returns DynamoDB Local's endpoint URL, failing tb unless
// it is set and answers.
func DynamoDBEndpoint(tb testing.TB) string {
	tb.Helper()
	return endpoint(tb, DynamoDBVar, "DynamoDB Local")
}

func endpoint(tb testing.TB, name, what string) string {
	tb.Helper()
	raw := os.Getenv(name)
	if raw == "" {
		tb.Fatalf("standin: %s is not set; %s", name, hint)
	}
	if _, ok := reached.Load(raw); ok {
		return raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		tb.Fatalf("standin: %s=%q is not an http(s) URL; %s", name, raw, hint)
	}
	host := u.Host
	if u.Port() == "" {
		port := "80"
		if u.Scheme == "https" {
			port = "443"
		}
		host = net.JoinHostPort(u.Hostname(), port)
	}
	conn, err := net.DialTimeout("tcp", host, 3*time.Second)
	if err != nil {
		tb.Fatalf("standin: %s at %s (%s) is not reachable: %v; %s", what, raw, name, err, hint)
	}
	conn.Close()
	reached.Store(raw, true)
	return raw
}

// Config returns an aws.Config for the stand-ins, failing tb unless both
// answer. Clients made from it with NewFromConfig find their endpoints the
// way keyseal's do, through the SDK's own AWS_ENDPOINT_URL and
// AWS_ENDPOINT_URL_<SERVICE> handling. The region is AWS_REGION (default
// us-east-1). The credentials are always the static pair test/test, which
// the stand-ins accept (LocalStack maps it to account 000000000000): real
// AWS credentials in the environment or in ~/.aws are never used, nor are
// shared config files read. HTTP calls time out after 10 s and are tried
// three times, as in keyseal's awsconfig.
func Config(tb testing.TB) aws.Config {
	tb.Helper()
	LocalStack(tb)
	DynamoDBEndpoint(tb)
	return load(tb)
}

func load(tb testing.TB) aws.Config {
	tb.Helper()
	region := os.Getenv("AWS_REGION")
	if region == "" {
		region = DefaultRegion
	}
	cfg, err := config.LoadDefaultConfig(context.Background(),
		config.WithRegion(region),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("test", "test", "")),
		config.WithSharedConfigFiles([]string{}),
		config.WithSharedCredentialsFiles([]string{}),
		config.WithHTTPClient(awshttp.NewBuildableClient().WithTimeout(10*time.Second)),
		config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(o *retry.StandardOptions) { o.MaxAttempts = 3 })
		}),
	)
	if err != nil {
		tb.Fatalf("standin: load the AWS config: %v", err)
	}
	return cfg
}

// The client constructors below set each client's endpoint explicitly to
// its stand-in, so a test that later points keyseal elsewhere (through
// AWS_ENDPOINT_URL_KMS, at a fault proxy, say) still reaches the stand-in
// directly with them. Options given last override anything, the endpoint
// included.

// DynamoDB returns a DynamoDB client for DynamoDB Local.
func DynamoDB(tb testing.TB, optFns ...func(*dynamodb.Options)) *dynamodb.Client {
	tb.Helper()
	ep := DynamoDBEndpoint(tb)
	return dynamodb.NewFromConfig(load(tb), prepend(func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(ep) }, optFns)...)
}

// KMS returns a KMS client for LocalStack.
func KMS(tb testing.TB, optFns ...func(*kms.Options)) *kms.Client {
	tb.Helper()
	ep := LocalStack(tb)
	return kms.NewFromConfig(load(tb), prepend(func(o *kms.Options) { o.BaseEndpoint = aws.String(ep) }, optFns)...)
}

// EventBridge returns an EventBridge client for LocalStack.
func EventBridge(tb testing.TB, optFns ...func(*eventbridge.Options)) *eventbridge.Client {
	tb.Helper()
	ep := LocalStack(tb)
	return eventbridge.NewFromConfig(load(tb), prepend(func(o *eventbridge.Options) { o.BaseEndpoint = aws.String(ep) }, optFns)...)
}

// SQS returns an SQS client for LocalStack.
func SQS(tb testing.TB, optFns ...func(*sqs.Options)) *sqs.Client {
	tb.Helper()
	ep := LocalStack(tb)
	return sqs.NewFromConfig(load(tb), prepend(func(o *sqs.Options) { o.BaseEndpoint = aws.String(ep) }, optFns)...)
}

// STS returns an STS client for LocalStack.
func STS(tb testing.TB, optFns ...func(*sts.Options)) *sts.Client {
	tb.Helper()
	ep := LocalStack(tb)
	return sts.NewFromConfig(load(tb), prepend(func(o *sts.Options) { o.BaseEndpoint = aws.String(ep) }, optFns)...)
}

func prepend[T any](first T, rest []T) []T {
	return append([]T{first}, rest...)
}

// Name returns prefix followed by 12 random hex digits: a fresh name for a
// table, queue, bus or tenant, so tests and repeated runs sharing the
// stand-ins never collide. It fits every name limit the tests meet with a
// prefix of up to 40 characters.
func Name(prefix string) string {
	var b [6]byte
	rand.Read(b[:]) // never fails: it crashes the program instead
	return prefix + hex.EncodeToString(b[:])
}
