package dynamostore

import (
	"context"
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
// conditional update, so of many concurrent uses exactly one succeeds.
func (s *Store) UseStepUp(ctx context.Context, hash string) error {
	if hash == "" {
		return keyseal.Errorf(keyseal.ENOTFOUND, "step-up token not found")
	}
	_, err := s.api.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &s.table,
		Key:                      key(stepUpPK(hash), skStepUp),
		UpdateExpression:         aws.String("SET #used = :true"),
		ConditionExpression:      aws.String("attribute_exists(pk) AND #used = :false"),
		ExpressionAttributeNames: map[string]string{"#used": "used"},
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":true":  &types.AttributeValueMemberBOOL{Value: true},
			":false": &types.AttributeValueMemberBOOL{Value: false},
		},
	})
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
	default:
		return keyseal.Errorf(keyseal.ECONFLICT, "step-up token already used")
	}
}
