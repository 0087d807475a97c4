package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// CheckpointVerifyRequest is the body of POST /admin/audit/verify: a
// signed checkpoint saved earlier from GET /admin/audit/checkpoint.
type CheckpointVerifyRequest struct {
	Checkpoint *string `json:"checkpoint" jsonschema:"minLength=1"`
}

// listAudit serves GET /admin/audit?limit=&action=&cursor= (an
// audit.Page).
func (d *Deps) listAudit(ctx context.Context, r *Request) (Response, error) {
	q := keyseal.AuditQuery{Action: r.QueryStringParameters["action"]}
	if s := r.QueryStringParameters["limit"]; s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			return Response{}, keyseal.Errorf(keyseal.EINVALID, "limit must be an integer between 1 and %d", audit.MaxPage)
		}
		q.Limit = n
	}
	if s := r.QueryStringParameters["cursor"]; s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n < 1 {
			return Response{}, keyseal.Errorf(keyseal.EINVALID, "cursor must be the next_cursor of a previous page")
		}
		q.Before = n
	}
	page, err := d.Audit.List(ctx, r.Admin.TenantID, q)
	if err != nil {
		return Response{}, err
	}
	return JSON(http.StatusOK, page), nil
}

// verifyAudit serves GET /admin/audit/verify (an audit.Result).
func (d *Deps) verifyAudit(ctx context.Context, r *Request) (Response, error) {
	res, err := d.Audit.Verify(ctx, r.Admin.TenantID)
	if err != nil {
		return Response{}, err
	}
	return JSON(http.StatusOK, res), nil
}

// verifyCheckpoint serves POST /admin/audit/verify {"checkpoint": "..."}:
// does the chain extend a checkpoint saved earlier (an audit.Result)?
func (d *Deps) verifyCheckpoint(ctx context.Context, r *Request) (Response, error) {
	var in CheckpointVerifyRequest
	if err := Decode(r, &in, false); err != nil {
		return Response{}, err
	}
	if in.Checkpoint == nil || *in.Checkpoint == "" {
		return Response{}, keyseal.Errorf(keyseal.EINVALID, "checkpoint is required: a signed checkpoint from GET /admin/audit/checkpoint")
	}
	res, err := d.Audit.VerifyCheckpoint(ctx, r.Admin.TenantID, *in.Checkpoint)
	if err != nil {
		return Response{}, err
	}
	return JSON(http.StatusOK, res), nil
}

// getCheckpoint serves GET /admin/audit/checkpoint (an audit.Signed).
func (d *Deps) getCheckpoint(ctx context.Context, r *Request) (Response, error) {
	cp, err := d.Audit.Checkpoint(ctx, r.Admin.TenantID)
	if err != nil {
		return Response{}, err
	}
	return JSON(http.StatusOK, cp), nil
}

// getCheckpointKey serves GET /admin/audit/checkpoint-key (an
// audit.KeyInfo).
func (d *Deps) getCheckpointKey(ctx context.Context, r *Request) (Response, error) {
	k, err := d.Audit.CheckpointKey(ctx, r.Admin.TenantID)
	if err != nil {
		return Response{}, err
	}
	return JSON(http.StatusOK, k), nil
}
