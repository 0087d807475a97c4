package boltstore

import (
	"context"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// stepUpRecord is the stored form of a step-up token, for the same reason
// as agentRecord.
type stepUpRecord struct {
	keyseal.StepUpToken
	Hash string `json:"hash"`
}

// PutStepUp implements keyseal.Store.
func (s *Store) PutStepUp(ctx context.Context, tok keyseal.StepUpToken) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if tok.Hash == "" {
		return keyseal.Errorf(keyseal.EINVALID, "step-up token hash is required")
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketStepUps)
		if b.Get([]byte(tok.Hash)) != nil {
			return keyseal.Errorf(keyseal.ECONFLICT, "step-up token already exists")
		}
		return putJSON(b, []byte(tok.Hash), stepUpRecord{StepUpToken: tok, Hash: tok.Hash})
	})
	return wrap("put step-up", err)
}

// GetStepUp implements keyseal.Store.
func (s *Store) GetStepUp(ctx context.Context, hash string) (*keyseal.StepUpToken, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var tok *keyseal.StepUpToken
	err := s.db.View(func(tx *bolt.Tx) error {
		var err error
		tok, err = readStepUp(tx, hash)
		return err
	})
	if err != nil {
		return nil, wrap("get step-up", err)
	}
	return tok, nil
}

// UseStepUp implements keyseal.Store. The check and the write share one
// write transaction, so of many concurrent uses exactly one wins.
func (s *Store) UseStepUp(ctx context.Context, hash string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		tok, err := readStepUp(tx, hash)
		if err != nil {
			return err
		}
		if tok.Used {
			return keyseal.Errorf(keyseal.ECONFLICT, "step-up token already used")
		}
		tok.Used = true
		return putJSON(tx.Bucket(bucketStepUps), []byte(hash), stepUpRecord{StepUpToken: *tok, Hash: hash})
	})
	return wrap("use step-up", err)
}

func readStepUp(tx *bolt.Tx, hash string) (*keyseal.StepUpToken, error) {
	raw := tx.Bucket(bucketStepUps).Get([]byte(hash))
	if raw == nil || hash == "" {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "step-up token not found")
	}
	var r stepUpRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, fmt.Errorf("decode step-up token: %w", err)
	}
	tok := r.StepUpToken
	tok.Hash = r.Hash
	tok.ExpiresAt = tok.ExpiresAt.UTC()
	return &tok, nil
}
