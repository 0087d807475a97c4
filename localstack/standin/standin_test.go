package standin

import (
	"context"
	"fmt"
	"net"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// fatalRecorder is a testing.TB whose Fatal ends only the goroutine it is
// called on, recording the message, so a test can look at how a helper
// fails.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *fatalRecorder) Fatal(args ...any) {
	r.msg = fmt.Sprint(args...)
	runtime.Goexit()
}

// failure runs f with a recorder and returns the message it failed with,
// or "" if it returned.
func failure(t *testing.T, f func(tb testing.TB)) string {
	t.Helper()
	r := &fatalRecorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.msg
}

// listen returns the URL of a loopback port that accepts connections.
func listen(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return "http://" + l.Addr().String()
}

// closedPort returns the URL of a loopback port nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	return "http://" + l.Addr().String()
}

const standinsEnv = `eval "$(bash scripts/standins.sh env)"`

func TestMissingStandinFailsTheTest(t *testing.T) {
	up := listen(t)
	for _, tc := range []struct {
		name, localstack, dynamodb string
		call                       func(tb testing.TB)
		want                       string
	}{
		{"LocalStack unset", "", up, func(tb testing.TB) { Config(tb) }, "AWS_ENDPOINT_URL is not set"},
		{"DynamoDB unset", up, "", func(tb testing.TB) { Config(tb) }, "AWS_ENDPOINT_URL_DYNAMODB is not set"},
		{"DynamoDB client, DynamoDB unset", up, "", func(tb testing.TB) { DynamoDB(tb) }, "AWS_ENDPOINT_URL_DYNAMODB is not set"},
		{"KMS client, LocalStack down", closedPort(t), up, func(tb testing.TB) { KMS(tb) }, "LocalStack at http://127.0.0.1:"},
		{"SQS client, LocalStack down", closedPort(t), up, func(tb testing.TB) { SQS(tb) }, "is not reachable"},
		{"DynamoDB down", up, closedPort(t), func(tb testing.TB) { DynamoDB(tb) }, "DynamoDB Local at http://127.0.0.1:"},
		{"not a URL", "127.0.0.1:4566", up, func(tb testing.TB) { LocalStack(tb) }, "is not an http(s) URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(LocalStackVar, tc.localstack)
			t.Setenv(DynamoDBVar, tc.dynamodb)
			msg := failure(t, tc.call)
			if msg == "" {
				t.Fatal("the helper returned; want it to fail the test")
			}
			if !strings.Contains(msg, tc.want) || !strings.Contains(msg, standinsEnv) {
				t.Fatalf("failure message %q, want it to contain %q and %q", msg, tc.want, standinsEnv)
			}
		})
	}
}

func TestClientsReachTheirStandin(t *testing.T) {
	localstack, dynamodb := listen(t), listen(t)
	t.Setenv(LocalStackVar, localstack)
	t.Setenv(DynamoDBVar, dynamodb)
	t.Setenv("AWS_REGION", "")
	// The test credentials win over any in the environment.
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAREAL")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "real")
	// Like the fault proxy the suite puts in front of KMS: the helper's
	// client still goes straight to LocalStack.
	t.Setenv("AWS_ENDPOINT_URL_KMS", "http://127.0.0.1:1")

	cfg := Config(t)
	if cfg.Region != DefaultRegion {
		t.Errorf("region %q, want %q", cfg.Region, DefaultRegion)
	}
	creds, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil || creds.AccessKeyID != "test" || creds.SecretAccessKey != "test" {
		t.Errorf("credentials %+v, %v; want test/test", creds, err)
	}
	endpoints := map[string]*string{
		"DynamoDB":    DynamoDB(t).Options().BaseEndpoint,
		"KMS":         KMS(t).Options().BaseEndpoint,
		"EventBridge": EventBridge(t).Options().BaseEndpoint,
		"SQS":         SQS(t).Options().BaseEndpoint,
		"STS":         STS(t).Options().BaseEndpoint,
	}
	for svc, got := range endpoints {
		want := localstack
		if svc == "DynamoDB" {
			want = dynamodb
		}
		if aws.ToString(got) != want {
			t.Errorf("%s endpoint %q, want %q", svc, aws.ToString(got), want)
		}
	}
	o := KMS(t, func(o *kms.Options) { o.BaseEndpoint = aws.String("http://proxy"); o.RetryMaxAttempts = 1 }).Options()
	if aws.ToString(o.BaseEndpoint) != "http://proxy" || o.RetryMaxAttempts != 1 {
		t.Errorf("options given by the caller did not win: endpoint %q, attempts %d", aws.ToString(o.BaseEndpoint), o.RetryMaxAttempts)
	}

	t.Setenv("AWS_REGION", "eu-west-1")
	if got := Config(t).Region; got != "eu-west-1" {
		t.Errorf("region %q, want AWS_REGION's eu-west-1", got)
	}
}

func TestName(t *testing.T) {
	shape := regexp.MustCompile(`^keyseal-it-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 100 {
		n := Name("keyseal-it-")
		if !shape.MatchString(n) || seen[n] {
			t.Fatalf("Name gave %q (repeated: %v), want keyseal-it- and 12 new hex digits", n, seen[n])
		}
		seen[n] = true
	}
}
