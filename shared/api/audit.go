package api

import (
	"context"
	"net/http"
	"strconv"

	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/keyseal"
)

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
