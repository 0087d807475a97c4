// Package agents manages agent credentials: keys are shown once at
// creation, stored only as hashes, and revocable.
package agents

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// Service creates, lists, revokes and authenticates agents.
type Service struct {
	Store keyseal.AgentStore
	Now   func() time.Time
}

// Created is an agent together with its key, which exists only in this
// value: keyseal stores the hash.
type Created struct {
	keyseal.Agent
	Key string `json:"agent_key"`
}

// MaxNameLen bounds an agent's display name.
const MaxNameLen = 128

// Create makes an agent for an existing tenant.
func (s *Service) Create(ctx context.Context, tenantID, name, actor string) (*Created, error) {
	if name == "" || len(name) > MaxNameLen {
		return nil, keyseal.Errorf(keyseal.EINVALID, "name is required (1-%d characters)", MaxNameLen)
	}
	if !validName(name) {
		return nil, keyseal.Errorf(keyseal.EINVALID, "name must be valid UTF-8 of visible characters and spaces: no NUL, control, format (bidi, zero-width) or line-separator characters")
	}
	key, hash, err := auth.NewAgentKey()
	if err != nil {
		return nil, err
	}
	var raw [8]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, err
	}
	a := keyseal.Agent{ID: "agt_" + hex.EncodeToString(raw[:]), TenantID: tenantID, Name: name, KeyHash: hash,
		CreatedAt: s.Now().UTC().Truncate(time.Microsecond), CreatedBy: actor}
	err = s.Store.CreateAgent(ctx, &a, keyseal.AuditRecord{At: a.CreatedAt, Action: keyseal.ActionAgentCreate, Severity: keyseal.SeverityInfo, Actor: actor,
		Details: map[string]string{"agent_id": a.ID, "name": name}})
	if err != nil {
		return nil, err
	}
	return &Created{Agent: a, Key: key}, nil
}

// validName reports whether an agent name is valid UTF-8 made only of
// graphic characters (letters, marks, numbers, punctuation, symbols and
// spaces). A name is shown in the console and the audit chain: a NUL, a
// control character or a bidi override there could hide or disguise what
// an admin reads.
func validName(name string) bool {
	if !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if !unicode.IsGraphic(r) {
			return false
		}
	}
	return true
}

// List returns a tenant's agents.
func (s *Service) List(ctx context.Context, tenantID string) ([]keyseal.Agent, error) {
	return s.Store.ListAgents(ctx, tenantID)
}

// Revoke revokes an agent: its key stops working at once (sessions already
// issued live until their exp).
func (s *Service) Revoke(ctx context.Context, tenantID, agentID, actor string) error {
	at := s.Now().UTC().Truncate(time.Microsecond)
	return s.Store.RevokeAgent(ctx, tenantID, agentID, at, keyseal.AuditRecord{At: at,
		Action: keyseal.ActionAgentRevoke, Severity: keyseal.SeverityWarning, Actor: actor, Details: map[string]string{"agent_id": agentID}})
}

// Authenticate resolves an Authorization header to an active agent, or
// EUNAUTHORIZED.
func (s *Service) Authenticate(ctx context.Context, authorization string) (*keyseal.Agent, error) {
	key, ok := auth.BearerToken(authorization)
	if !ok {
		return nil, keyseal.Errorf(keyseal.EUNAUTHORIZED, "missing agent key: send Authorization: Bearer <agent key>")
	}
	a, err := s.Store.AgentByKeyHash(ctx, auth.HashAgentKey(key))
	switch {
	case keyseal.ErrorCode(err) == keyseal.ENOTFOUND:
		return nil, keyseal.Errorf(keyseal.EUNAUTHORIZED, "unknown agent key")
	case err != nil:
		return nil, err
	case a.RevokedAt != nil:
		return nil, keyseal.Errorf(keyseal.EUNAUTHORIZED, "agent key revoked")
	}
	return a, nil
}
