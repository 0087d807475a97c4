package awsconfig_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyseal/keyseal/shared/awsconfig"
)

// recorder is an HTTP server noting which requests reached it, answering
// every one with an empty JSON object.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string // X-Amz-Target, then the credential in Authorization
}

func newRecorder(t *testing.T) *recorder {
	r := &recorder{}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.seen = append(r.seen, req.Header.Get("X-Amz-Target")+" "+req.Header.Get("Authorization")+" "+req.Header.Get("X-Amz-Security-Token"))
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		_, _ = w.Write([]byte(`{}`))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *recorder) requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.seen...)
}

// TestFromEnvEndpointsAndCredentials: clients built from FromEnv sign
// with the environment's credentials (session token included) and go to
// AWS_ENDPOINT_URL, or to AWS_ENDPOINT_URL_<SERVICE> where one is set,
// as the SDK's default chain does.
func TestFromEnvEndpointsAndCredentials(t *testing.T) {
	all, dynamo := newRecorder(t), newRecorder(t)
	env := map[string]string{"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "ASIAEXAMPLEKEYID", "AWS_SECRET_ACCESS_KEY": "secret",
		"AWS_SESSION_TOKEN": "the-session-token", "AWS_ENDPOINT_URL": all.URL, "AWS_ENDPOINT_URL_DYNAMODB": dynamo.URL}
	// The clients read AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>
	// from the process environment too, to decide whether to ask the
	// config sources.
	for k, v := range env {
		t.Setenv(k, v)
	}
	cfg, err := awsconfig.FromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "eu-west-1" {
		t.Errorf("region %q", cfg.Region)
	}
	ctx := context.Background()
	_, _ = kms.NewFromConfig(cfg).ListKeys(ctx, &kms.ListKeysInput{})
	_, _ = dynamodb.NewFromConfig(cfg).ListTables(ctx, &dynamodb.ListTablesInput{})
	k, d := all.requests(), dynamo.requests()
	if len(k) != 1 || !strings.HasPrefix(k[0], "TrentService.ListKeys ") {
		t.Fatalf("AWS_ENDPOINT_URL got %q, want KMS ListKeys only", k)
	}
	if len(d) != 1 || !strings.HasPrefix(d[0], "DynamoDB_20120810.ListTables ") {
		t.Fatalf("AWS_ENDPOINT_URL_DYNAMODB got %q, want DynamoDB ListTables only", d)
	}
	for _, r := range append(k, d...) {
		if !strings.Contains(r, "Credential=ASIAEXAMPLEKEYID/") || !strings.HasSuffix(r, " the-session-token") {
			t.Errorf("request not signed with the environment's credentials: %q", r)
		}
	}
}

// TestFromEnvNamesWhatIsMissing: no region, or no credentials, is an
// error naming the variables, not a client that fails later.
func TestFromEnvNamesWhatIsMissing(t *testing.T) {
	for _, c := range []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}, "AWS_REGION"},
		{map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "a"}, "AWS_SECRET_ACCESS_KEY"},
		{map[string]string{"AWS_DEFAULT_REGION": "us-east-1", "AWS_SECRET_ACCESS_KEY": "b"}, "AWS_ACCESS_KEY_ID"},
		{map[string]string{"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b", "AWS_CA_BUNDLE": "/nonexistent.pem"}, "AWS_CA_BUNDLE"},
	} {
		_, err := awsconfig.FromEnv(func(k string) string { return c.env[k] })
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("FromEnv(%v): %v, want an error naming %s", c.env, err, c.want)
		}
	}
	cfg, err := awsconfig.FromEnv(func(k string) string {
		return map[string]string{"AWS_DEFAULT_REGION": "us-west-2", "AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"}[k]
	})
	if err != nil || cfg.Region != "us-west-2" {
		t.Errorf("AWS_DEFAULT_REGION alone: %v %q", err, cfg.Region)
	}
}
