// Package awsreq sends one hand-built AWS API request, signed by the SDK's
// SigV4 signer, for the few calls keyseal's Lambdas make to services
// whose SDK clients would cost more cold start than the call is worth
// (an SDK client's package init, its schemas and endpoint rules, runs on
// every cold start whether or not the call is made). Package lambdainvoke
// (Lambda's Invoke) and package secretvalue (Secrets Manager's
// GetSecretValue) build their requests and read their answers on it.
//
// The endpoint is resolved from the aws.Config as the SDK's clients do it
// from the config shared/awsconfig builds: the config sources' endpoint
// for the service's SDK id (AWS_ENDPOINT_URL_LAMBDA,
// AWS_ENDPOINT_URL_SECRETS_MANAGER), else the config's BaseEndpoint
// (AWS_ENDPOINT_URL: LocalStack), else
// https://{endpoint prefix}.{region}.amazonaws.com (the aws partition;
// keyseal deploys nowhere else).
//
// A client makes one attempt per Do; DoRetryOnce adds the one retry both
// callers want (Retryable says which errors may pass on a second
// attempt).
package awsreq

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// MaxBody bounds the answer a client reads: more is an error, not a
// truncated body. Secrets Manager's largest answer (a 64 KiB secret
// string, JSON-escaped) fits well within it.
const MaxBody = 1 << 20

// Service names an AWS service as the SDK's clients know it.
type Service struct {
	// ID is the SDK's service id ("Lambda", "Secrets Manager"), the name
	// the config sources know its endpoint by.
	ID string
	// EndpointPrefix is the first label of the service's regional
	// endpoint ("lambda", "secretsmanager").
	EndpointPrefix string
	// SigningName is the service's SigV4 name, the credential scope's
	// service ("lambda", "secretsmanager").
	SigningName string
}

// serviceEndpoints is what a config source implements to set a service's
// endpoint (the SDK's internal/configsources.ServiceBaseEndpointProvider;
// shared/awsconfig's source of AWS_ENDPOINT_URL_<SERVICE>).
type serviceEndpoints interface {
	GetServiceBaseEndpoint(ctx context.Context, sdkID string) (string, bool, error)
}

// Endpoint is s's base URL for cfg, without a trailing slash (see the
// package comment for the order).
func Endpoint(cfg aws.Config, s Service) string {
	for _, src := range cfg.ConfigSources {
		if p, ok := src.(serviceEndpoints); ok {
			if u, found, err := p.GetServiceBaseEndpoint(context.Background(), s.ID); found && err == nil {
				return strings.TrimRight(u, "/")
			}
		}
	}
	if cfg.BaseEndpoint != nil {
		return strings.TrimRight(*cfg.BaseEndpoint, "/")
	}
	return "https://" + s.EndpointPrefix + "." + cfg.Region + ".amazonaws.com"
}

// Client sends signed requests to one service.
type Client struct {
	// RetryDelay is the wait before DoRetryOnce's second attempt (New
	// sets 100-300 ms, jittered; tests shorten it).
	RetryDelay func() time.Duration

	service  Service
	endpoint string
	region   string
	creds    aws.CredentialsProvider
	client   aws.HTTPClient
	signer   *v4.Signer
}

// New returns a client of s with cfg's credentials, region, HTTP client
// (a plain http.Client when it has none) and endpoint (Endpoint).
func New(cfg aws.Config, s Service) *Client {
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{}
	}
	return &Client{
		RetryDelay: func() time.Duration { return 100*time.Millisecond + rand.N(200*time.Millisecond) },
		service:    s,
		endpoint:   Endpoint(cfg, s),
		region:     cfg.Region,
		creds:      cfg.Credentials,
		client:     client,
		signer:     v4.NewSigner(),
	}
}

// Endpoint returns the client's base URL.
func (c *Client) Endpoint() string { return c.endpoint }

// Request is one API call.
type Request struct {
	// Operation names the call in errors ("Invoke", "GetSecretValue").
	Operation string
	// Method is the HTTP method.
	Method string
	// Path is the URL path as sent and signed, already escaped
	// ("/2015-03-31/functions/my-fn/invocations"; "/" for the JSON
	// protocols).
	Path string
	// Header holds the call's own headers (Content-Type, X-Amz-Target);
	// the client adds the signature's.
	Header http.Header
	// Body is sent as is, and signed.
	Body []byte
}

// Response is a 2xx answer.
type Response struct {
	// StatusCode is the HTTP status.
	StatusCode int
	// Header is the answer's headers.
	Header http.Header
	// Body is the answer's body (at most MaxBody bytes).
	Body []byte
}

// Error is a service's refusal: any answer but a 2xx.
type Error struct {
	// Service is the service's SDK id.
	Service string
	// Operation is the call refused.
	Operation string
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Code is the service's error code (ResourceNotFoundException,
	// AccessDeniedException, ThrottlingException), without the ":..."
	// and "...#" decorations it may come with; empty when the answer
	// named none.
	Code string
	// Message is the service's explanation, when it sent one.
	Message string
}

// Error names the service, the call, the status, the code and message.
func (e *Error) Error() string {
	s := fmt.Sprintf("%s %s: status %d", e.Service, e.Operation, e.StatusCode)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// Do sends r once, signed, and returns the answer when it is a 2xx. Any
// other answer is an *Error; a request without an answer (no
// credentials, a connection error, ctx done) is an error naming the
// service and the call.
func (c *Client) Do(ctx context.Context, r Request) (*Response, error) {
	fail := func(err error) (*Response, error) {
		return nil, fmt.Errorf("%s %s: %w", c.service.ID, r.Operation, err)
	}
	req, err := http.NewRequestWithContext(ctx, r.Method, c.endpoint+r.Path, bytes.NewReader(r.Body))
	if err != nil {
		return fail(err)
	}
	for k, vs := range r.Header {
		req.Header[http.CanonicalHeaderKey(k)] = append([]string(nil), vs...)
	}
	if c.creds == nil {
		return fail(errors.New("the AWS config has no credentials"))
	}
	creds, err := c.creds.Retrieve(ctx)
	if err != nil {
		return fail(fmt.Errorf("credentials: %w", err))
	}
	sum := sha256.Sum256(r.Body)
	if err := c.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), c.service.SigningName, c.region, time.Now()); err != nil {
		return fail(fmt.Errorf("sign: %w", err))
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()
	// Read to the end, so the connection is reused.
	body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody+1))
	if err != nil {
		return fail(fmt.Errorf("read the answer (status %d): %w", resp.StatusCode, err))
	}
	if len(body) > MaxBody {
		return fail(fmt.Errorf("the answer (status %d) exceeds %d bytes", resp.StatusCode, MaxBody))
	}
	if resp.StatusCode/100 != 2 {
		return nil, c.refusal(r.Operation, resp, body)
	}
	return &Response{StatusCode: resp.StatusCode, Header: resp.Header, Body: body}, nil
}

// refusal reads a service's error from an answer, as the SDK's REST-JSON
// and JSON 1.x protocols do: the code from the X-Amzn-ErrorType header or
// the body's "__type" or "code" (each may carry a ":..." or "...#"
// decoration), the message from "message" or "Message". The body's "Type"
// (Lambda's fault side, User or Service) is a code only when nothing
// else names one.
func (c *Client) refusal(op string, resp *http.Response, body []byte) *Error {
	var doc struct {
		Type      string `json:"__type"`
		CodeField string `json:"code"`
		Fault     string `json:"Type"`
		MessageLC string `json:"message"`
		Message   string `json:"Message"`
	}
	_ = json.Unmarshal(body, &doc) // a body that is not JSON (a proxy's page) names no code
	code := resp.Header.Get("X-Amzn-ErrorType")
	for _, alt := range []string{doc.Type, doc.CodeField, doc.Fault} {
		if code == "" {
			code = alt
		}
	}
	code, _, _ = strings.Cut(code, ":")
	if j := strings.LastIndexByte(code, '#'); j >= 0 {
		code = code[j+1:]
	}
	msg := doc.MessageLC
	if msg == "" {
		msg = doc.Message
	}
	return &Error{Service: c.service.ID, Operation: op, StatusCode: resp.StatusCode, Code: strings.TrimSpace(code), Message: msg}
}

// DoRetryOnce is Do, sent once more after RetryDelay when the first
// attempt's error is Retryable; ctx ending during the wait returns the
// first attempt's error.
func (c *Client) DoRetryOnce(ctx context.Context, r Request) (*Response, error) {
	resp, err := c.Do(ctx, r)
	if !Retryable(ctx, err) {
		return resp, err
	}
	select {
	case <-time.After(c.RetryDelay()):
	case <-ctx.Done():
		return nil, err
	}
	return c.Do(ctx, r)
}

// Retryable says whether err, an attempt's, may pass on one more: a
// throttle (429, or a 400 whose code is one of the SDK's throttle codes:
// the JSON protocols' ThrottlingException), a server error (5xx), or no
// answer at all (the request may not have left: typically a keep-alive
// connection the endpoint closed, which net/http does not retry for a
// POST). Never once ctx is done.
func Retryable(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500 || isThrottle(e.Code)
	}
	return true
}

// isThrottle says whether code is one the SDK's standard retryer takes for
// a throttle.
func isThrottle(code string) bool {
	_, ok := retry.DefaultThrottleErrorCodes[code]
	return ok
}
