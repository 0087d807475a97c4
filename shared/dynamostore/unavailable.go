package dynamostore

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// retryableCodes are the DynamoDB error codes that say "not now" rather
// than "no": the request was fine and a later one may succeed.
var retryableCodes = map[string]bool{
	"ThrottlingException":                    true,
	"ProvisionedThroughputExceededException": true,
	"RequestLimitExceeded":                   true,
	"InternalServerError":                    true,
	"ServiceUnavailable":                     true,
	"TransactionInProgressException":         true,
}

// isUnavailable reports whether err is a store failure a retry may cure:
// throttling, a 5xx, a timeout, a connection that failed or was cut. These
// reach keyseal's clients as EUNAVAILABLE (503, Retry-After), never as an
// internal error. A cancelled transaction is not one of them: its reasons
// are decided by transact.
func isUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if _, ok := errors.AsType[*types.TransactionCanceledException](err); ok {
		return false
	}
	if _, ok := keyseal.TransportCode(err); ok {
		return true
	}
	if _, ok := errors.AsType[ratelimit.QuotaExceededError](err); ok {
		// The SDK's retry quota ran dry under sustained faults.
		return true
	}
	if _, ok := errors.AsType[*smithyhttp.RequestSendError](err); ok {
		return true
	}
	if api, ok := errors.AsType[smithy.APIError](err); ok {
		if retryableCodes[api.ErrorCode()] || api.ErrorFault() == smithy.FaultServer {
			return true
		}
	}
	if status, ok := errors.AsType[interface {
		error
		HTTPStatusCode() int
	}](err); ok {
		return status.HTTPStatusCode() >= 500 || status.HTTPStatusCode() == 429
	}
	return false
}

// classified is the API with the unavailable failures of every call turned
// into EUNAVAILABLE at the adapter's edge, so no store method can let one
// through as an internal error. The cause stays reachable (errors.As).
type classified struct{ api API }

func unavailableOr(err error) error {
	if isUnavailable(err) {
		return keyseal.Unavailable(err)
	}
	return err
}

func (c classified) GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	out, err := c.api.GetItem(ctx, in, optFns...)
	return out, unavailableOr(err)
}

func (c classified) PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	out, err := c.api.PutItem(ctx, in, optFns...)
	return out, unavailableOr(err)
}

func (c classified) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	out, err := c.api.UpdateItem(ctx, in, optFns...)
	return out, unavailableOr(err)
}

func (c classified) DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error) {
	out, err := c.api.DeleteItem(ctx, in, optFns...)
	return out, unavailableOr(err)
}

func (c classified) Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error) {
	out, err := c.api.Query(ctx, in, optFns...)
	return out, unavailableOr(err)
}

func (c classified) Scan(ctx context.Context, in *dynamodb.ScanInput, optFns ...func(*dynamodb.Options)) (*dynamodb.ScanOutput, error) {
	out, err := c.api.Scan(ctx, in, optFns...)
	return out, unavailableOr(err)
}

func (c classified) TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error) {
	out, err := c.api.TransactWriteItems(ctx, in, optFns...)
	return out, unavailableOr(err)
}

func (c classified) DescribeTable(ctx context.Context, in *dynamodb.DescribeTableInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DescribeTableOutput, error) {
	out, err := c.api.DescribeTable(ctx, in, optFns...)
	return out, unavailableOr(err)
}

// unknownOutcome reports whether a failed write may nevertheless have
// committed: DynamoDB did not say no (no cancellation, no failed
// condition, no validation error), the answer was lost or never came. A
// throttled request did not commit either, but reading back to find that
// out costs one read and is always correct.
func unknownOutcome(err error) bool {
	return keyseal.ErrorCode(err) == keyseal.EUNAVAILABLE
}
