package awsreq_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/keyseal/keyseal/shared/awsconfig"
	"github.com/keyseal/keyseal/shared/awsconfig/awsreq"
	"github.com/keyseal/keyseal/shared/awsconfig/awsreq/awsreqtest"
)

var (
	key            = awsreqtest.Key{AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"}
	secretsManager = awsreq.Service{ID: "Secrets Manager", EndpointPrefix: "secretsmanager", SigningName: "secretsmanager"}
	lambdaService  = awsreq.Service{ID: "Lambda", EndpointPrefix: "lambda", SigningName: "lambda"}
)

// TestEndpoint: a service's endpoint comes from where the SDK's client
// would take it in a config from shared/awsconfig: the variable of its SDK
// id (spaces as underscores), then AWS_ENDPOINT_URL, then the region's
// public endpoint of its endpoint prefix.
func TestEndpoint(t *testing.T) {
	for _, tc := range []struct {
		service awsreq.Service
		env     map[string]string
		want    string
	}{
		{secretsManager, nil, "https://secretsmanager.eu-west-1.amazonaws.com"},
		{lambdaService, nil, "https://lambda.eu-west-1.amazonaws.com"},
		{secretsManager, map[string]string{"AWS_ENDPOINT_URL": "http://localhost:4566/"}, "http://localhost:4566"},
		{secretsManager, map[string]string{"AWS_ENDPOINT_URL": "http://localhost:4566", "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://sm.local:9001/"},
			"http://sm.local:9001"},
		{lambdaService, map[string]string{"AWS_ENDPOINT_URL": "http://localhost:4566", "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://sm.local:9001"},
			"http://localhost:4566"},
		{secretsManager, map[string]string{"AWS_ENDPOINT_URL_SECRETSMANAGER": "http://sm.local:9001"}, "https://secretsmanager.eu-west-1.amazonaws.com"},
		{secretsManager, map[string]string{"AWS_ENDPOINT_URL": "http://localhost:4566", "AWS_ENDPOINT_URL_SECRETS_MANAGER": "http://sm.local:9001",
			"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS": "true"}, "https://secretsmanager.eu-west-1.amazonaws.com"},
	} {
		env := map[string]string{"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": key.AccessKeyID, "AWS_SECRET_ACCESS_KEY": key.SecretAccessKey}
		for k, v := range tc.env {
			env[k] = v
		}
		cfg, err := awsconfig.FromEnv(func(k string) string { return env[k] })
		if err != nil {
			t.Fatal(err)
		}
		if got := awsreq.Endpoint(cfg, tc.service); got != tc.want {
			t.Errorf("%s %v: endpoint %s, want %s", tc.service.ID, tc.env, got, tc.want)
		}
		rec := &recorder{}
		cfg.HTTPClient = rec
		if _, err := awsreq.New(cfg, tc.service).Do(context.Background(), awsreq.Request{Operation: "Op", Method: "POST", Path: "/"}); err != nil {
			t.Fatal(err)
		}
		if len(rec.urls) != 1 || rec.urls[0] != tc.want+"/" {
			t.Errorf("%s %v: requests %v, want %s/", tc.service.ID, tc.env, rec.urls, tc.want)
		}
	}
}

// recorder is an aws.HTTPClient that answers 200 and keeps the URLs.
type recorder struct{ urls []string }

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	r.urls = append(r.urls, req.URL.String())
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Header: http.Header{}}, nil
}

// answer is what the fake service sends: a status, X-Amzn-ErrorType and
// a body.
type answer struct {
	status    int
	errorType string
	body      string
}

// serve starts a service that checks each request's signature for
// secretsmanager in eu-west-1 (the X-Amz-Target header signed too) and
// sends a.
func serve(t *testing.T, a answer, sessionToken string) (*awsreq.Client, *[]*http.Request, *[]error) {
	t.Helper()
	var reqs []*http.Request
	var sigErrs []error
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		reqs = append(reqs, r)
		sigErrs = append(sigErrs, awsreqtest.SigV4Error(r, body, key, "eu-west-1", "secretsmanager", "x-amz-target", "content-type"))
		if a.errorType != "" {
			w.Header().Set("X-Amzn-ErrorType", a.errorType)
		}
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	t.Cleanup(srv.Close)
	cfg := aws.Config{Region: "eu-west-1", Credentials: credentials.NewStaticCredentialsProvider(key.AccessKeyID, key.SecretAccessKey, sessionToken),
		HTTPClient: srv.Client(), BaseEndpoint: aws.String(srv.URL)}
	return awsreq.New(cfg, secretsManager), &reqs, &sigErrs
}

func getSecretValue(body string) awsreq.Request {
	return awsreq.Request{Operation: "GetSecretValue", Method: http.MethodPost, Path: "/", Body: []byte(body),
		Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}, "X-Amz-Target": {"secretsmanager.GetSecretValue"}}}
}

// TestDoSigns: the request arrives with the caller's headers and body,
// signed with SigV4 for the service's signing name and the config's
// region, and the 2xx answer comes back as sent.
func TestDoSigns(t *testing.T) {
	c, reqs, sigErrs := serve(t, answer{status: 200, body: `{"SecretString":"x"}`}, "")
	resp, err := c.Do(context.Background(), getSecretValue(`{"SecretId":"s"}`))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || string(resp.Body) != `{"SecretString":"x"}` {
		t.Errorf("answer %d %q", resp.StatusCode, resp.Body)
	}
	r := (*reqs)[0]
	if r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" || r.Header.Get("Content-Type") != "application/x-amz-json-1.1" || r.ContentLength != 16 {
		t.Errorf("request headers %v, length %d", r.Header, r.ContentLength)
	}
	if got := r.Header.Get("X-Amz-Security-Token"); got != "" {
		t.Errorf("X-Amz-Security-Token %q without a session token", got)
	}
	if (*sigErrs)[0] != nil {
		t.Errorf("not a valid SigV4 signature for secretsmanager in eu-west-1: %v", (*sigErrs)[0])
	}
}

// TestDoSendsTheSessionToken: a Lambda's execution role's credentials are
// temporary; AWS refuses them without their token, which must be signed
// too.
func TestDoSendsTheSessionToken(t *testing.T) {
	c, reqs, sigErrs := serve(t, answer{status: 200}, "the-session-token")
	if _, err := c.Do(context.Background(), getSecretValue(`{}`)); err != nil {
		t.Fatal(err)
	}
	if got := (*reqs)[0].Header.Get("X-Amz-Security-Token"); got != "the-session-token" {
		t.Errorf("X-Amz-Security-Token %q", got)
	}
	if (*sigErrs)[0] != nil {
		t.Errorf("signature: %v", (*sigErrs)[0])
	}
}

// TestDoErrors: a non-2xx answer is one *Error whose code comes from the
// header or the body, without its decorations, and whose message from
// either spelling.
func TestDoErrors(t *testing.T) {
	for _, tc := range []struct {
		name          string
		answer        answer
		code, message string
	}{
		{"type in the body, namespaced", answer{400, "", `{"__type":"com.amazonaws.secretsmanager#ResourceNotFoundException","Message":"Secrets Manager can't find the specified secret."}`},
			"ResourceNotFoundException", "Secrets Manager can't find the specified secret."},
		{"type in the header, decorated", answer{400, "AccessDeniedException:http://internal.amazon.com/coral/com.amazon.coral.service/",
			`{"message":"User: arn:aws:sts::111122223333:assumed-role/x is not authorized to perform: secretsmanager:GetSecretValue"}`},
			"AccessDeniedException", "User: arn:aws:sts::111122223333:assumed-role/x is not authorized to perform: secretsmanager:GetSecretValue"},
		{"header over body", answer{400, "ThrottlingException", `{"__type":"com.amazonaws.secretsmanager#Other","message":"Rate exceeded"}`},
			"ThrottlingException", "Rate exceeded"},
		{"code field", answer{400, "", `{"code":"DecryptionFailure","message":"no"}`}, "DecryptionFailure", "no"},
		{"fault side only", answer{503, "", `{"Type":"Service","message":"Internal error"}`}, "Service", "Internal error"},
		{"not JSON", answer{502, "", `<html>Bad Gateway</html>`}, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, _, _ := serve(t, tc.answer, "")
			_, err := c.Do(context.Background(), getSecretValue(`{}`))
			var e *awsreq.Error
			if !errors.As(err, &e) || e.Service != "Secrets Manager" || e.Operation != "GetSecretValue" || e.StatusCode != tc.answer.status ||
				e.Code != tc.code || e.Message != tc.message {
				t.Fatalf("error %#v (%v)", e, err)
			}
			for _, want := range []string{"Secrets Manager GetSecretValue: status " + strconv.Itoa(tc.answer.status), tc.code, tc.message} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
		})
	}
}

// TestDoBoundsTheAnswer: an answer larger than MaxBody is an error, not a
// truncated body.
func TestDoBoundsTheAnswer(t *testing.T) {
	c, _, _ := serve(t, answer{status: 200, body: strings.Repeat("x", awsreq.MaxBody+1)}, "")
	if _, err := c.Do(context.Background(), getSecretValue(`{}`)); err == nil || !strings.Contains(err.Error(), "exceeds") {
		t.Fatalf("a %d-byte answer: %v", awsreq.MaxBody+1, err)
	}
	c, _, _ = serve(t, answer{status: 200, body: strings.Repeat("x", awsreq.MaxBody)}, "")
	if resp, err := c.Do(context.Background(), getSecretValue(`{}`)); err != nil || len(resp.Body) != awsreq.MaxBody {
		t.Fatalf("a %d-byte answer: %v", awsreq.MaxBody, err)
	}
}

// TestDoWithoutCredentials: a config without credentials is an error
// naming the call, not an unsigned request.
func TestDoWithoutCredentials(t *testing.T) {
	rec := &recorder{}
	_, err := awsreq.New(aws.Config{Region: "eu-west-1", HTTPClient: rec}, lambdaService).Do(context.Background(), awsreq.Request{Operation: "Invoke", Method: "POST", Path: "/"})
	if err == nil || !strings.Contains(err.Error(), "Lambda Invoke") || !strings.Contains(err.Error(), "credentials") || len(rec.urls) != 0 {
		t.Fatalf("error %v, %d requests", err, len(rec.urls))
	}
}

func TestRetryable(t *testing.T) {
	ctx := context.Background()
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	for _, tc := range []struct {
		ctx  context.Context
		err  error
		want bool
	}{
		{ctx, nil, false},
		{ctx, errors.New("Secrets Manager GetSecretValue: connection reset"), true},
		{canceled, errors.New("Secrets Manager GetSecretValue: context canceled"), false},
		{ctx, &awsreq.Error{StatusCode: 429, Code: "TooManyRequestsException"}, true},
		{ctx, &awsreq.Error{StatusCode: 400, Code: "ThrottlingException"}, true},
		{ctx, &awsreq.Error{StatusCode: 500, Code: "InternalServiceError"}, true},
		{ctx, &awsreq.Error{StatusCode: 503}, true},
		{ctx, &awsreq.Error{StatusCode: 400, Code: "ResourceNotFoundException"}, false},
		{ctx, &awsreq.Error{StatusCode: 403, Code: "AccessDeniedException"}, false},
		{ctx, &awsreq.Error{StatusCode: 200}, false},
	} {
		if got := awsreq.Retryable(tc.ctx, tc.err); got != tc.want {
			t.Errorf("Retryable(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
