package api

import (
	"context"
	"net/http"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// AgentList is the body of GET /admin/agents.
type AgentList struct {
	Agents []keyseal.Agent `json:"agents"`
}

// CreateAgentRequest is the body of POST /admin/agents.
type CreateAgentRequest struct {
	Name string `json:"name" jsonschema:"minLength=1,maxLength=128"`
}

// AgentRevoked is the body of DELETE /admin/agents/{id}.
type AgentRevoked struct {
	AgentID string `json:"agent_id"`
	Revoked bool   `json:"revoked"`
}

func (d *Deps) createAgent(ctx context.Context, r *Request) (Response, error) {
	var in CreateAgentRequest
	if err := Decode(r, &in, false); err != nil {
		return Response{}, err
	}
	actor := r.Admin.Actor()
	if _, err := d.Tenants.Provision(ctx, r.Admin.TenantID, actor); err != nil {
		return Response{}, err
	}
	created, err := d.Agents.Create(ctx, r.Admin.TenantID, in.Name, actor)
	if err != nil {
		return Response{}, err
	}
	return JSON(http.StatusCreated, created), nil
}

func (d *Deps) listAgents(ctx context.Context, r *Request) (Response, error) {
	list, err := d.Agents.List(ctx, r.Admin.TenantID)
	if err != nil {
		return Response{}, err
	}
	if list == nil {
		list = []keyseal.Agent{}
	}
	return JSON(http.StatusOK, AgentList{Agents: list}), nil
}

func (d *Deps) revokeAgent(ctx context.Context, r *Request) (Response, error) {
	if err := d.Agents.Revoke(ctx, r.Admin.TenantID, r.Params["id"], r.Admin.Actor()); err != nil {
		return Response{}, err
	}
	return JSON(http.StatusOK, AgentRevoked{AgentID: r.Params["id"], Revoked: true}), nil
}
