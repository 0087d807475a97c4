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
// The request is made, signed and its refusals read by package awsreq,
// which resolves the endpoint as the SDK's client would (the service
// "Lambda": AWS_ENDPOINT_URL_LAMBDA, else AWS_ENDPOINT_URL, else
// https://lambda.{region}.amazonaws.com).
//
// # Retries
//
// One retry, after 100-300 ms, of a request that got no answer (a
// connection error: typically a keep-alive connection the endpoint closed
// during the minute since the last dispatch, which net/http does not retry
// for a POST) or a 429, 5xx or other throttle answer (awsreq.Retryable).
// The SDK's standard retryer made three attempts with up to seconds of
// backoff; here more would not help: the dispatcher waits for every
// invoke before its own sweep, each within 5 s, so a longer retry only
// delays its own group, while a persistent throttle or outage is counted
// (dispatch_errors, PollDispatchErrors) and the next minute dispatches
// afresh. A retried request that Lambda did queue is a duplicate event,
// which the poller tolerates (package poller).
package lambdainvoke

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/smithy-go/encoding/httpbinding"

	"github.com/keyseal/keyseal/shared/awsconfig/awsreq"
)

// service is Lambda as the SDK knows it.
var service = awsreq.Service{ID: "Lambda", EndpointPrefix: "lambda", SigningName: "lambda"}

// Invoker invokes one function with InvocationType Event: Lambda queues
// the payload and answers 202 at once, so dispatching a group costs the
// dispatcher one short request, whatever the group's sweep then takes.
type Invoker struct {
	function string
	path     string // the function's invocations path, escaped
	client   *awsreq.Client
}

// New returns an invoker of function (a name, or a partial or full ARN)
// with cfg's credentials, region, HTTP client (a plain http.Client when it
// has none) and endpoint (see the package comment).
func New(cfg aws.Config, function string) *Invoker {
	return &Invoker{
		function: function,
		path:     "/2015-03-31/functions/" + httpbinding.EscapePath(function, true) + "/invocations",
		client:   awsreq.New(cfg, service),
	}
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
	resp, err := i.client.DoRetryOnce(ctx, awsreq.Request{
		Operation: "Invoke",
		Method:    http.MethodPost,
		Path:      i.path,
		Header:    http.Header{"X-Amz-Invocation-Type": {"Event"}, "Content-Type": {"application/octet-stream"}},
		Body:      payload,
	})
	if err == nil && resp.StatusCode != http.StatusAccepted {
		err = &awsreq.Error{Service: service.ID, Operation: "Invoke", StatusCode: resp.StatusCode}
	}
	return i.named(err)
}

// named is err as this package's: Lambda's refusal an *Error, any other
// error wrapped with the function's name.
func (i *Invoker) named(err error) error {
	if err == nil {
		return nil
	}
	var e *awsreq.Error
	if errors.As(err, &e) {
		return &Error{Function: i.function, StatusCode: e.StatusCode, Code: e.Code, Message: e.Message}
	}
	return fmt.Errorf("invoke %s: %w", i.function, err)
}
