package faultproxy

import (
	"errors"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go"
)

// dynamoClient is the real SDK client pointed at the proxy, without
// retries, so each call is one request and the SDK's own decoding of the
// injected answers is what the test sees.
func (f *fixture) dynamoClient() *dynamodb.Client {
	return dynamodb.New(dynamodb.Options{Region: "us-east-1", BaseEndpoint: aws.String(f.url), HTTPClient: f.client,
		Credentials: credentials.NewStaticCredentialsProvider("test", "test", ""), Retryer: aws.NopRetryer{}})
}

func getItem(c *dynamodb.Client, t *testing.T, table string) error {
	_, err := c.GetItem(t.Context(), &dynamodb.GetItemInput{TableName: aws.String(table),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}}})
	return err
}

func transact(c *dynamodb.Client, t *testing.T, table string) error {
	_, err := c.TransactWriteItems(t.Context(), &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{{
		Put: &types.Put{TableName: aws.String(table), Item: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "a"}}}}}})
	return err
}

// TestStoreFaultsDecodeAsDynamoDBErrors: the SDK reads the injected
// answers as the typed errors DynamoDB itself would produce.
func TestStoreFaultsDecodeAsDynamoDBErrors(t *testing.T) {
	tests := []struct {
		fault Fault
		check func(error) bool
	}{
		{Throttle, func(err error) bool {
			api, ok := errors.AsType[smithy.APIError](err)
			return ok && api.ErrorCode() == "ThrottlingException"
		}},
		{ThroughputExceeded, func(err error) bool {
			_, ok := errors.AsType[*types.ProvisionedThroughputExceededException](err)
			return ok
		}},
		{ServerError, func(err error) bool {
			_, ok := errors.AsType[*types.InternalServerError](err)
			return ok
		}},
	}
	for _, tc := range tests {
		t.Run(string(tc.fault), func(t *testing.T) {
			f := newFixture(t)
			f.proxy.AddStoreRule(StoreRule{Operation: "GetItem", Fault: tc.fault})
			err := getItem(f.dynamoClient(), t, "t1")
			if !tc.check(err) {
				t.Fatalf("GetItem through %s: %v", tc.fault, err)
			}
			if f.up.count() != 0 {
				t.Fatalf("%d requests reached DynamoDB, want 0", f.up.count())
			}
		})
	}
}

// TestStoreDropAnswerForwards: the write reaches DynamoDB, the client gets
// no answer.
func TestStoreDropAnswerForwards(t *testing.T) {
	f := newFixture(t)
	f.proxy.AddStoreRule(StoreRule{Operation: "TransactWriteItems", Fault: DropAnswer})
	if err := transact(f.dynamoClient(), t, "t1"); err == nil {
		t.Fatal("TransactWriteItems answered although its answer was dropped")
	}
	if f.up.count() != 1 {
		t.Fatalf("%d requests reached DynamoDB, want 1 (forwarded, then the answer dropped)", f.up.count())
	}
}

// TestStoreRuleMatching: operation, table (also inside a transaction) and
// Times select what a rule touches; everything else passes.
func TestStoreRuleMatching(t *testing.T) {
	f := newFixture(t)
	c := f.dynamoClient()
	f.proxy.AddStoreRule(StoreRule{Table: "t1", Fault: Throttle, Times: 2})
	if err := getItem(c, t, "t2"); err != nil {
		t.Fatalf("other table: %v", err)
	}
	if err := transact(c, t, "t1"); err == nil {
		t.Fatal("transaction on t1 passed the table rule")
	}
	if err := getItem(c, t, "t1"); err == nil {
		t.Fatal("second request on t1 passed a rule with Times 2")
	}
	if err := getItem(c, t, "t1"); err != nil {
		t.Fatalf("third request on t1, the rule spent: %v", err)
	}
	if got := f.proxy.Injected()[Throttle]; got != 2 {
		t.Fatalf("Injected()[throttle] = %d, want 2", got)
	}
	f.proxy.Clear()
	f.proxy.AddStoreRule(StoreRule{Operation: "PutItem", Fault: ServerError})
	if err := getItem(c, t, "t1"); err != nil {
		t.Fatalf("GetItem under a PutItem rule: %v", err)
	}
}

// TestStoreRuleRate: a rate fires for about that share of requests.
func TestStoreRuleRate(t *testing.T) {
	f := newFixture(t)
	f.proxy.AddStoreRule(StoreRule{Fault: Throttle, Rate: 0.3})
	c := f.dynamoClient()
	failed := 0
	const n = 200
	for range n {
		if getItem(c, t, "t1") != nil {
			failed++
		}
	}
	// 30% of 200 is 60; 20..110 is over 6 standard deviations either side.
	if failed < 20 || failed > 110 {
		t.Fatalf("%d of %d requests throttled at rate 0.3", failed, n)
	}
}

func TestAddStoreRuleRefusesKMSFaults(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("AddStoreRule accepted Deny")
		}
	}()
	p, _ := New("http://127.0.0.1:1")
	p.AddStoreRule(StoreRule{Fault: Deny})
}
