package dynamostore

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/keyseal/keyseal/shared/keyseal"
)

func httpStatus(code int) error {
	return &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: code}}, Err: errors.New("answer")}
}

// TestUnavailableClassification: what a retry may cure is EUNAVAILABLE,
// what DynamoDB refused is not.
func TestUnavailableClassification(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"throttling", &smithy.GenericAPIError{Code: "ThrottlingException", Fault: smithy.FaultClient}, true},
		{"provisioned throughput", &types.ProvisionedThroughputExceededException{Message: aws.String("slow down")}, true},
		{"request limit", &types.RequestLimitExceeded{Message: aws.String("slow down")}, true},
		{"internal server error", &types.InternalServerError{Message: aws.String("oops")}, true},
		{"a 500 without a code", httpStatus(500), true},
		{"a 503", httpStatus(503), true},
		{"deadline", fmt.Errorf("op: %w", context.DeadlineExceeded), true},
		{"connection reset", errLost, true},
		{"validation", &smithy.GenericAPIError{Code: "ValidationException", Fault: smithy.FaultClient}, false},
		{"a 400", httpStatus(400), false},
		{"failed condition", &types.ConditionalCheckFailedException{Message: aws.String("no")}, false},
		{"cancelled transaction", cancelled(reasonThrottling), false},
		{"unclassified", errors.New("decode: bad item"), false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := isUnavailable(tc.err); got != tc.want {
				t.Fatalf("isUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
			}
			code := keyseal.ErrorCode(unavailableOr(tc.err))
			if tc.want != (code == keyseal.EUNAVAILABLE) {
				t.Fatalf("code %q", code)
			}
			if !errors.Is(unavailableOr(tc.err), tc.err) {
				t.Fatal("the cause is not reachable")
			}
		})
	}
}

// TestStoreFaultIsUnavailable: a throttled read reaches the caller as
// EUNAVAILABLE through a store method, not as an internal error.
func TestStoreFaultIsUnavailable(t *testing.T) {
	s := New(throttledAPI{newFake()}, "t")
	_, err := s.GetTenant(t.Context(), "acme")
	if code := keyseal.ErrorCode(err); code != keyseal.EUNAVAILABLE {
		t.Fatalf("GetTenant on a throttled store: %v (code %q), want %s", err, code, keyseal.EUNAVAILABLE)
	}
}

type throttledAPI struct{ *fakeAPI }

func (throttledAPI) GetItem(context.Context, *dynamodb.GetItemInput, ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error) {
	return nil, &types.ProvisionedThroughputExceededException{Message: aws.String("injected")}
}
