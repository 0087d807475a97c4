// Package lambdainvoke starts the poller's worker function asynchronously:
// the fan-out's one AWS call (package poller says why asynchronous invokes).
// It is a package of its own so that only the scheduled poller links the
// Lambda client.
package lambdainvoke

import (
	"context"
	"fmt"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
)

// API is the slice of the Lambda client the invoker uses.
type API interface {
	Invoke(ctx context.Context, in *lambda.InvokeInput, optFns ...func(*lambda.Options)) (*lambda.InvokeOutput, error)
}

var _ API = (*lambda.Client)(nil)

// Invoker invokes one function with InvocationType Event: Lambda queues
// the payload and answers 202 at once, so dispatching a group costs the
// dispatcher one short request, whatever the group's sweep then takes.
type Invoker struct {
	api      API
	function string
}

// New returns an invoker of function (a name or ARN).
func New(api API, function string) *Invoker { return &Invoker{api: api, function: function} }

// InvokeAsync queues one invocation with payload. A throttled, refused or
// failed request is an error naming the function (the SDK's retryer has
// already retried what it retries); a queued one is not.
func (i *Invoker) InvokeAsync(ctx context.Context, payload []byte) error {
	out, err := i.api.Invoke(ctx, &lambda.InvokeInput{
		FunctionName:   &i.function,
		InvocationType: types.InvocationTypeEvent,
		Payload:        payload,
	})
	if err != nil {
		return fmt.Errorf("invoke %s: %w", i.function, err)
	}
	if out.StatusCode != http.StatusAccepted {
		return fmt.Errorf("invoke %s: status %d, want 202 (queued)", i.function, out.StatusCode)
	}
	return nil
}
