package dynamostore

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// lossyStepUps applies step-up puts and updates with DynamoDB's condition
// semantics, then loses the answer of the first `lose` calls: the write
// commits, the caller hears a connection reset, and (like the SDK) tries
// the same request again.
type lossyStepUps struct {
	*fakeAPI
	lose atomic.Int64
}

func (l *lossyStepUps) answer(err error) error {
	if err == nil && l.lose.Add(-1) >= 0 {
		return errLost
	}
	return err
}

func (l *lossyStepUps) PutItem(ctx context.Context, in *dynamodb.PutItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error) {
	for {
		out, err := l.putOnce(in)
		if err = l.answer(err); err != errLost {
			return out, err
		}
		// The SDK retries a lost answer with the same request.
	}
}

func (l *lossyStepUps) putOnce(in *dynamodb.PutItemInput) (*dynamodb.PutItemOutput, error) {
	l.mu.Lock()
	k := [2]string{in.Item[attrPK].(*types.AttributeValueMemberS).Value, in.Item[attrSK].(*types.AttributeValueMemberS).Value}
	_, exists := l.items[k]
	l.mu.Unlock()
	if exists {
		return nil, &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed")}
	}
	l.put(in.Item)
	return &dynamodb.PutItemOutput{}, nil
}

func (l *lossyStepUps) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	for {
		out, err := l.updateOnce(in)
		if err = l.answer(err); err != errLost {
			return out, err
		}
	}
}

func (l *lossyStepUps) updateOnce(in *dynamodb.UpdateItemInput) (*dynamodb.UpdateItemOutput, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := [2]string{in.Key[attrPK].(*types.AttributeValueMemberS).Value, in.Key[attrSK].(*types.AttributeValueMemberS).Value}
	item, ok := l.items[k]
	if !ok || item["used"].(*types.AttributeValueMemberBOOL).Value {
		return nil, &types.ConditionalCheckFailedException{Message: aws.String("The conditional request failed")}
	}
	next := map[string]types.AttributeValue{}
	for name, v := range item {
		next[name] = v
	}
	next["used"] = in.ExpressionAttributeValues[":true"]
	next["use_id"] = in.ExpressionAttributeValues[":use"]
	l.items[k] = next
	return &dynamodb.UpdateItemOutput{}, nil
}

// TestStepUpPutAnswerLost: a put whose answer was lost and whose retry
// then failed attribute_not_exists is the token stored, not a conflict.
func TestStepUpPutAnswerLost(t *testing.T) {
	api := &lossyStepUps{fakeAPI: newFake()}
	api.lose.Store(1)
	s := New(api, "t")
	tok := keyseal.StepUpToken{Hash: "h1", Subject: "admin:alice", TenantID: "acme", ExpiresAt: fixedTime}
	if err := s.PutStepUp(t.Context(), tok); err != nil {
		t.Fatalf("PutStepUp after a lost answer: %v, want success (the token is stored)", err)
	}
	// Another subject's token under the same hash is still a conflict.
	other := tok
	other.Subject = "admin:mallory"
	if code := keyseal.ErrorCode(s.PutStepUp(t.Context(), other)); code != keyseal.ECONFLICT {
		t.Fatalf("PutStepUp of a foreign token under a stored hash: code %q, want %s", code, keyseal.ECONFLICT)
	}
}

// TestStepUpUseAnswerLost: a use whose answer was lost and whose retry
// found the token used is this call's own use, not "already used"; a
// second, separate use still is.
func TestStepUpUseAnswerLost(t *testing.T) {
	api := &lossyStepUps{fakeAPI: newFake()}
	s := New(api, "t")
	tok := keyseal.StepUpToken{Hash: "h1", Subject: "admin:alice", TenantID: "acme", ExpiresAt: fixedTime}
	if err := s.PutStepUp(t.Context(), tok); err != nil {
		t.Fatal(err)
	}
	api.lose.Store(1)
	if err := s.UseStepUp(t.Context(), tok.Hash); err != nil {
		t.Fatalf("UseStepUp after a lost answer: %v, want success (this call spent it)", err)
	}
	if code := keyseal.ErrorCode(s.UseStepUp(t.Context(), tok.Hash)); code != keyseal.ECONFLICT {
		t.Fatalf("second UseStepUp: code %q, want %s", code, keyseal.ECONFLICT)
	}
}
