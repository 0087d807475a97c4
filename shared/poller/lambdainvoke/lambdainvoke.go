// Package lambdainvoke starts the poller's worker function asynchronously:
// the fan-out's one AWS call (package poller says why asynchronous invokes).
//
// It sends Lambda's Invoke REST request itself (POST
// /2015-03-31/functions/{name}/invocations with X-Amz-Invocation-Type:
// Event), signed by the SDK's SigV4 signer, instead of using the SDK's
// Lambda client: that client's packages (its schemas and endpoint rules)
// cost the scheduled poller about 0.4-0.9 ms of package init and 0.9 MB of
// binary on every cold start, for one call whose request and answer fit
// in this file.
//
// The endpoint is resolved from the aws.Config as the SDK's client does
// it from the config shared/awsconfig builds: the config sources' endpoint
// for the service "Lambda" (AWS_ENDPOINT_URL_LAMBDA), else the config's
// BaseEndpoint (AWS_ENDPOINT_URL: LocalStack), else
// https://lambda.{region}.amazonaws.com (the aws partition; keyseal
// deploys nowhere else).
//
// # Retries
//
// One retry, after 100-300 ms, of a request that got no answer (a
// connection error: typically a keep-alive connection the endpoint closed
// during the minute since the last dispatch, which net/http does not retry
// for a POST) or a 429 or 5xx answer. The SDK's standard retryer made
// three attempts with up to seconds of backoff; here more would not help:
// the dispatcher waits for every invoke before its own sweep, each within
// 5 s, so a longer retry only delays its own group, while a persistent
// throttle or outage is counted (dispatch_errors, PollDispatchErrors) and
// the next minute dispatches afresh. A retried request that Lambda did
// queue is a duplicate event, which the poller tolerates (package poller).
package lambdainvoke

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
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/encoding/httpbinding"
)

// signingName is Lambda's SigV4 service name; sdkID is its SDK service id,
// the name the config sources know its endpoint by.
const (
	signingName = "lambda"
	sdkID       = "Lambda"
)

// Invoker invokes one function with InvocationType Event: Lambda queues
// the payload and answers 202 at once, so dispatching a group costs the
// dispatcher one short request, whatever the group's sweep then takes.
type Invoker struct {
	function string
	url      string // the function's invocations URL
	region   string
	creds    aws.CredentialsProvider
	client   aws.HTTPClient
	signer   *v4.Signer
	// retryDelay is the wait before the one retry.
	retryDelay func() time.Duration
}

// New returns an invoker of function (a name, or a partial or full ARN)
// with cfg's credentials, region, HTTP client (a plain http.Client when it
// has none) and endpoint (see the package comment).
func New(cfg aws.Config, function string) *Invoker {
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{}
	}
	return &Invoker{
		function:   function,
		url:        strings.TrimRight(endpoint(cfg), "/") + "/2015-03-31/functions/" + httpbinding.EscapePath(function, true) + "/invocations",
		region:     cfg.Region,
		creds:      cfg.Credentials,
		client:     client,
		signer:     v4.NewSigner(),
		retryDelay: func() time.Duration { return 100*time.Millisecond + rand.N(200*time.Millisecond) },
	}
}

// serviceEndpoints is what a config source implements to set a service's
// endpoint (the SDK's internal/configsources.ServiceBaseEndpointProvider;
// shared/awsconfig's source of AWS_ENDPOINT_URL_<SERVICE>).
type serviceEndpoints interface {
	GetServiceBaseEndpoint(ctx context.Context, sdkID string) (string, bool, error)
}

// endpoint is Lambda's base URL for cfg.
func endpoint(cfg aws.Config) string {
	for _, src := range cfg.ConfigSources {
		if p, ok := src.(serviceEndpoints); ok {
			if u, found, err := p.GetServiceBaseEndpoint(context.Background(), sdkID); found && err == nil {
				return u
			}
		}
	}
	if cfg.BaseEndpoint != nil {
		return *cfg.BaseEndpoint
	}
	return "https://lambda." + cfg.Region + ".amazonaws.com"
}

// Error is Lambda's refusal of an invocation (any answer but 202).
type Error struct {
	// Function is the function invoked.
	Function string
	// StatusCode is the HTTP status of the answer.
	StatusCode int
	// Code is Lambda's error type (TooManyRequestsException,
	// ResourceNotFoundException, AccessDeniedException); empty when the
	// answer named none.
	Code string
	// Message is Lambda's explanation, when it sent one.
	Message string
}

// Error names the function, the status, Lambda's error type and message.
func (e *Error) Error() string {
	s := fmt.Sprintf("invoke %s: status %d", e.Function, e.StatusCode)
	if e.Code != "" {
		s += " " + e.Code
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.StatusCode/100 == 2 {
		s += ", want 202 (queued)"
	}
	return s
}

// InvokeAsync queues one invocation with payload. Any answer but 202 is
// an *Error; a request without an answer is an error naming the function.
// Either is retried once when it may pass (see the package comment).
func (i *Invoker) InvokeAsync(ctx context.Context, payload []byte) error {
	sum := sha256.Sum256(payload)
	hash := hex.EncodeToString(sum[:])
	err := i.send(ctx, payload, hash)
	if !retryable(ctx, err) {
		return err
	}
	select {
	case <-time.After(i.retryDelay()):
	case <-ctx.Done():
		return err
	}
	return i.send(ctx, payload, hash)
}

// retryable says whether err, the first attempt's, is worth one more.
func retryable(ctx context.Context, err error) bool {
	if err == nil || ctx.Err() != nil {
		return false
	}
	var e *Error
	if errors.As(err, &e) {
		return e.StatusCode == http.StatusTooManyRequests || e.StatusCode >= 500
	}
	return true // no answer: the request may not have left
}

// send makes one signed request.
func (i *Invoker) send(ctx context.Context, payload []byte, hash string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, i.url, bytes.NewReader(payload))
	if err != nil {
		return fmt.Errorf("invoke %s: %w", i.function, err)
	}
	req.Header.Set("X-Amz-Invocation-Type", "Event")
	req.Header.Set("Content-Type", "application/octet-stream")
	if i.creds == nil {
		return fmt.Errorf("invoke %s: the AWS config has no credentials", i.function)
	}
	creds, err := i.creds.Retrieve(ctx)
	if err != nil {
		return fmt.Errorf("invoke %s: credentials: %w", i.function, err)
	}
	if err := i.signer.SignHTTP(ctx, creds, req, hash, signingName, i.region, time.Now()); err != nil {
		return fmt.Errorf("invoke %s: sign: %w", i.function, err)
	}
	resp, err := i.client.Do(req)
	if err != nil {
		return fmt.Errorf("invoke %s: %w", i.function, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10)) // read to the end (up to 64 KiB), so the connection is reused
	if resp.StatusCode == http.StatusAccepted {
		return nil
	}
	return refusal(i.function, resp, body)
}

// refusal reads Lambda's error from an answer: the type from the
// X-Amzn-ErrorType header or the body's "__type" (either may carry a
// ":..." or "...#" decoration), the message from "message" or "Message".
// The body's "Type" is the fault's side (User or Service), a code only when
// nothing else names one.
func refusal(function string, resp *http.Response, body []byte) *Error {
	var doc struct {
		Type      string `json:"__type"`
		Fault     string `json:"Type"`
		MessageLC string `json:"message"`
		Message   string `json:"Message"`
	}
	_ = json.Unmarshal(body, &doc) // a body that is not JSON (a proxy's page) names no type
	code := resp.Header.Get("X-Amzn-ErrorType")
	if code == "" {
		code = doc.Type
	}
	if code == "" {
		code = doc.Fault
	}
	code, _, _ = strings.Cut(code, ":")
	if j := strings.LastIndexByte(code, '#'); j >= 0 {
		code = code[j+1:]
	}
	msg := doc.MessageLC
	if msg == "" {
		msg = doc.Message
	}
	return &Error{Function: function, StatusCode: resp.StatusCode, Code: strings.TrimSpace(code), Message: msg}
}
