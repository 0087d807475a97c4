package secretvalue_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/keyseal/keyseal/shared/awsconfig"
	"github.com/keyseal/keyseal/shared/awsconfig/awsreq"
	"github.com/keyseal/keyseal/shared/awsconfig/awsreq/awsreqtest"
	"github.com/keyseal/keyseal/shared/awsconfig/secretvalue"
)

const (
	arn   = "arn:aws:secretsmanager:eu-west-1:111122223333:secret:keyseal-azure-AbCdEf"
	value = "Cl1ent~Secret.Value"
)

var key = awsreqtest.Key{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"}

// answer is one queued answer of fakeSecretsManager.
type answer struct {
	status int
	body   string
}

// fakeSecretsManager speaks GetSecretValue in the AWS JSON 1.1 protocol
// on loopback: the SecretString of a known id, or the answers a test
// queues. It checks every request's target, content type and SigV4
// signature (awsreqtest.SigV4Error).
type fakeSecretsManager struct {
	mu       sync.Mutex
	secrets  map[string]string
	answers  []answer
	requests int
	problems []string
}

func (f *fakeSecretsManager) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests++
	if err := awsreqtest.SigV4Error(r, body, key, "eu-west-1", "secretsmanager", "x-amz-target"); err != nil {
		f.problems = append(f.problems, err.Error())
	}
	if r.Method != http.MethodPost || r.URL.Path != "/" || r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" ||
		r.Header.Get("Content-Type") != "application/x-amz-json-1.1" {
		f.problems = append(f.problems, "request "+r.Method+" "+r.URL.Path+" "+r.Header.Get("X-Amz-Target")+" "+r.Header.Get("Content-Type"))
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	if len(f.answers) > 0 {
		a := f.answers[0]
		f.answers = f.answers[1:]
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
		return
	}
	var in map[string]any
	if err := json.Unmarshal(body, &in); err != nil || len(in) != 1 {
		f.problems = append(f.problems, "body "+string(body))
	}
	id, _ := in["SecretId"].(string)
	v, ok := f.secrets[id]
	if !ok {
		w.WriteHeader(400)
		io.WriteString(w, `{"__type":"com.amazonaws.secretsmanager#ResourceNotFoundException","Message":"Secrets Manager can't find the specified secret."}`)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"ARN": id, "Name": "keyseal-azure", "SecretString": v, "VersionId": "v1",
		"VersionStages": []string{"AWSCURRENT"}, "CreatedDate": 1.7e9})
}

// seenRequests and seenProblems are the fake's records, read under its
// lock (the race detector cannot see the socket order a request's record
// and its answer have).
func (f *fakeSecretsManager) seenRequests() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.requests
}

func (f *fakeSecretsManager) seenProblems() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.problems)
}

func client(t *testing.T, f *fakeSecretsManager) *secretvalue.Client {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		if len(f.seenProblems()) > 0 {
			t.Errorf("the fake saw: %v", f.seenProblems())
		}
	})
	c := secretvalue.New(aws.Config{Region: "eu-west-1", HTTPClient: srv.Client(), BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, "the-session-token")})
	secretvalue.SetRetryDelay(c, time.Millisecond)
	return c
}

func TestGetSecretString(t *testing.T) {
	stored := `{"client_secret":"` + value + `","note":"\u00e9 \"quoted\""}`
	f := &fakeSecretsManager{secrets: map[string]string{arn: stored}}
	got, err := client(t, f).GetSecretString(context.Background(), arn)
	if err != nil || got != stored {
		t.Fatalf("GetSecretString = %q, %v; want %q", got, err, stored)
	}
	if f.seenRequests() != 1 {
		t.Errorf("%d requests, want 1", f.seenRequests())
	}
}

// TestGetSecretStringErrors: a refusal is an *awsreq.Error naming the
// secret; an answer that is no secret string is an error naming the
// secret and never the answer (which may be the secret).
func TestGetSecretStringErrors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		answer   answer
		code     string
		requests int
	}{
		{"missing", answer{}, "ResourceNotFoundException", 1},
		{"denied", answer{400, `{"__type":"AccessDeniedException","Message":"not authorized to perform: secretsmanager:GetSecretValue"}`}, "AccessDeniedException", 1},
		{"binary", answer{200, `{"ARN":"` + arn + `","SecretBinary":"` + value + `"}`}, "", 1},
		{"not JSON", answer{200, value + `"}`}, "", 1},
		{"SecretString not a string", answer{200, `{"SecretString":{"client_secret":"` + value + `"}}`}, "", 1},
		{"server errors", answer{500, `{"__type":"InternalServiceError","Message":"` + "boom" + `"}`}, "InternalServiceError", 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSecretsManager{}
			if tc.answer.status != 0 {
				f.answers = []answer{tc.answer, tc.answer}
			}
			_, err := client(t, f).GetSecretString(context.Background(), arn)
			if err == nil || !strings.Contains(err.Error(), arn) || strings.Contains(err.Error(), value) {
				t.Fatalf("error %v: want one naming %s, never the value", err, arn)
			}
			var e *awsreq.Error
			if errors.As(err, &e) != (tc.code != "") || (e != nil && e.Code != tc.code) {
				t.Errorf("error %#v, want code %q", e, tc.code)
			}
			if f.seenRequests() != tc.requests {
				t.Errorf("%d requests, want %d", f.seenRequests(), tc.requests)
			}
		})
	}
}

// TestGetSecretStringRetriesOnce: a throttle or a server error is read
// again once, and a second success is a success.
func TestGetSecretStringRetriesOnce(t *testing.T) {
	for name, first := range map[string]answer{
		"throttled":    {400, `{"__type":"ThrottlingException","message":"Rate exceeded"}`},
		"server error": {500, `{"__type":"InternalServiceError"}`},
	} {
		t.Run(name, func(t *testing.T) {
			f := &fakeSecretsManager{secrets: map[string]string{arn: value}, answers: []answer{first}}
			if got, err := client(t, f).GetSecretString(context.Background(), arn); err != nil || got != value || f.seenRequests() != 2 {
				t.Fatalf("GetSecretString = %q, %v after %d requests", got, err, f.seenRequests())
			}
		})
	}
}

// TestEndpoint: the SDK id is "Secrets Manager": AWS_ENDPOINT_URL_SECRETS_MANAGER
// routes it, and the public endpoint is secretsmanager's.
func TestEndpoint(t *testing.T) {
	for _, tc := range []struct{ env, want string }{
		{"", "https://secretsmanager.eu-west-1.amazonaws.com/"},
		{"http://sm.local:9001", "http://sm.local:9001/"},
	} {
		env := map[string]string{"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": key.AccessKeyID, "AWS_SECRET_ACCESS_KEY": key.SecretAccessKey,
			"AWS_ENDPOINT_URL_SECRETS_MANAGER": tc.env}
		cfg, err := awsconfig.FromEnv(func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		var urls []string
		cfg.HTTPClient = doer(func(r *http.Request) (*http.Response, error) {
			urls = append(urls, r.URL.String())
			return &http.Response{StatusCode: 200, Header: http.Header{}, Body: io.NopCloser(strings.NewReader(`{"SecretString":"v"}`))}, nil
		})
		if _, err := secretvalue.New(cfg).GetSecretString(context.Background(), arn); err != nil || len(urls) != 1 || urls[0] != tc.want {
			t.Errorf("AWS_ENDPOINT_URL_SECRETS_MANAGER=%q: %v, requests %v, want %s", tc.env, err, urls, tc.want)
		}
	}
}

// doer is an aws.HTTPClient of a function.
type doer func(*http.Request) (*http.Response, error)

func (d doer) Do(r *http.Request) (*http.Response, error) { return d(r) }
