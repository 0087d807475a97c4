package dynamostore

import (
	"context"
	"crypto/rand"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// PutStepUp implements keyseal.Store. The item carries a TTL past its
// expiry, so DynamoDB reaps spent tokens without a sweeper.
func (s *Store) PutStepUp(ctx context.Context, tok keyseal.StepUpToken) error {
	if tok.Hash == "" {
		return keyseal.Errorf(keyseal.EINVALID, "step-up token hash is required")
	}
	item, err := encodeStepUp(tok)
	if err != nil {
		return fmt.Errorf("dynamostore: put step-up: %w", err)
	}
	_, err = s.api.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           &s.table,
		Item:                item,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	if isConditionFailed(err) {
		// The hash is of 256 random bits, so an item under it is this
		// token: either an earlier attempt of this put whose answer was
		// lost (the SDK retried), or a caller reusing a hash. Only the
		// same token, for the same subject and tenant, unused, is the
		// former.
		cur, gerr := s.GetStepUp(ctx, tok.Hash)
		if gerr == nil && cur.Subject == tok.Subject && cur.TenantID == tok.TenantID &&
			cur.ExpiresAt.Equal(tok.ExpiresAt) && cur.Used == tok.Used {
			return nil
		}
		if gerr != nil && keyseal.ErrorCode(gerr) != keyseal.ENOTFOUND {
			return fmt.Errorf("dynamostore: put step-up: read after failed condition: %w", gerr)
		}
		return keyseal.Errorf(keyseal.ECONFLICT, "step-up token already exists")
	}
	if err != nil {
		return fmt.Errorf("dynamostore: put step-up: %w", err)
	}
	return nil
}

// GetStepUp implements keyseal.Store. A token past its TTL but not yet
// reaped is still returned; expiry is the caller's check, made on
// ExpiresAt.
func (s *Store) GetStepUp(ctx context.Context, hash string) (*keyseal.StepUpToken, error) {
	if hash == "" {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "step-up token not found")
	}
	av, err := s.get(ctx, stepUpPK(hash), skStepUp)
	if err != nil {
		return nil, fmt.Errorf("dynamostore: get step-up: %w", err)
	}
	if av == nil {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "step-up token not found")
	}
	tok, err := decodeStepUp(av)
	if err != nil {
		return nil, fmt.Errorf("dynamostore: get step-up: %w", err)
	}
	return tok, nil
}

// UseStepUp implements keyseal.Store. The flip from unused to used is one
// conditional update, so of many concurrent uses exactly one succeeds. The
// update records a random id of this call; when its condition fails, the
// item says whether this call spent the token itself (an attempt whose
// answer was lost, retried by the SDK: success) or another did (ECONFLICT).
func (s *Store) UseStepUp(ctx context.Context, hash string) error {
	if hash == "" {
		return keyseal.Errorf(keyseal.ENOTFOUND, "step-up token not found")
	}
	useID := rand.Text()
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &s.table,
		Key:                      key(stepUpPK(hash), skStepUp),
		UpdateExpression:         aws.String("SET #used = :true, #use = :use"),
		ConditionExpression:      aws.String("attribute_exists(pk) AND #used = :false"),
		ExpressionAttributeNames: map[string]string{"#used": "used", "#use": "use_id"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":true":  &types.AttributeValueMemberBOOL{Value: true},
			":false": &types.AttributeValueMemberBOOL{Value: false},
			":use":   str(useID),
		},
	})
	if unknownOutcome(err) {
		// Every attempt lost its answer: the item says whether one landed.
		if cur, gerr := s.settle(ctx, stepUpPK(hash), skStepUp); gerr == nil && usedBy(cur, useID) {
			return nil
		}
		return fmt.Errorf("dynamostore: use step-up: %w", err)
	}
	if err == nil {
		return nil
	}
	if !isConditionFailed(err) {
		return fmt.Errorf("dynamostore: use step-up: %w", err)
	}
	cur, err := s.get(ctx, stepUpPK(hash), skStepUp)
	switch {
	case err != nil:
		return fmt.Errorf("dynamostore: use step-up: read after failed condition: %w", err)
	case cur == nil:
		return keyseal.Errorf(keyseal.ENOTFOUND, "step-up token not found")
	case usedBy(cur, useID):
		return nil
	default:
		return keyseal.Errorf(keyseal.ECONFLICT, "step-up token already used")
	}
}

// usedBy reports whether the stored token was spent by the call with
// useID.
func usedBy(item map[string]types.AttributeValue, useID string) bool {
	id, ok := item["use_id"].(*types.AttributeValueMemberS)
	return ok && id.Value == useID
}
