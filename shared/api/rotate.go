package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// maxReason bounds a rotation's reason, which goes into the audit chain.
const maxReason = 500

// RotateRequest is the body of POST /admin/tenant-kms/rotate. The members
// are pointers so that a missing one is told apart from an empty one.
type RotateRequest struct {
	RotationType *string `json:"rotation_type" jsonschema:"enum=tmk,enum=dek,enum=rewrap"`
	Reason       *string `json:"reason,omitempty" jsonschema:"maxLength=500"`
}

// RevokeRequest is the body of POST /admin/tenant-kms/versions/{v}/revoke:
// Confirm must be the admin's tenant id.
type RevokeRequest struct {
	Confirm *string `json:"confirm"`
}

// RotateResponse is the body of a successful POST /admin/tenant-kms/rotate.
type RotateResponse struct {
	RotationType  string    `json:"rotation_type"`
	ActiveVersion int       `json:"active_version"`
	RotatedAt     time.Time `json:"rotated_at"`
}

// RevokeResponse is the body of a successful POST
// /admin/tenant-kms/versions/{v}/revoke. BackupsExpireAt is honest about
// what crypto-erasure cannot reach: the table's point-in-time recovery
// keeps the erased blob until then.
type RevokeResponse struct {
	Version         int       `json:"version"`
	RevokedAt       time.Time `json:"revoked_at"`
	BackupsExpireAt time.Time `json:"backups_expire_at"`
	TenantStatus    string    `json:"tenant_status"`
	Note            string    `json:"note"`
}

// rotate serves POST /admin/tenant-kms/rotate: {"rotation_type", "reason"}.
// No step-up (seed 004's command carries none): a rotation only adds keys.
func (d *Deps) rotate(ctx context.Context, r *Request) (Response, error) {
	var in RotateRequest
	if err := Decode(r, &in, false); err != nil {
		return Response{}, err
	}
	if in.RotationType == nil {
		return Response{}, keyseal.Errorf(keyseal.EINVALID, "rotation_type is required: \"tmk\", \"dek\" or \"rewrap\"")
	}
	reason := ""
	if in.Reason != nil {
		reason = strings.TrimSpace(*in.Reason)
	}
	if len([]rune(reason)) > maxReason || strings.IndexFunc(reason, unicode.IsControl) >= 0 {
		return Response{}, keyseal.Errorf(keyseal.EINVALID, "reason must be at most %d characters, without control characters", maxReason)
	}
	rot, err := d.Tenants.Rotate(ctx, r.Admin.TenantID, *in.RotationType, reason, r.Admin.Actor())
	if err != nil {
		return Response{}, err
	}
	return JSON(http.StatusOK, RotateResponse{RotationType: *in.RotationType, ActiveVersion: rot.ActiveVersion, RotatedAt: rot.RotatedAt}), nil
}

// revokeVersion serves POST /admin/tenant-kms/versions/{v}/revoke:
// {"confirm": "<tenant_id>"}, admin + step-up. The path takes 3 or v3.
func (d *Deps) revokeVersion(ctx context.Context, r *Request) (Response, error) {
	version, ok := parseVersion(r.Params["v"])
	if !ok {
		return Response{}, keyseal.Errorf(keyseal.EINVALID, "version must be a TMK version number (3 or v3)")
	}
	var in RevokeRequest
	if err := Decode(r, &in, false); err != nil {
		return Response{}, err
	}
	if in.Confirm == nil || *in.Confirm != r.Admin.TenantID {
		return Response{}, keyseal.Errorf(keyseal.EINVALID, "confirm must be your tenant id: revoking crypto-erases the version and cannot be undone")
	}
	if err := r.ConsumeStepUp(ctx); err != nil {
		return Response{}, err
	}
	rev, err := d.Tenants.Revoke(ctx, r.Admin.TenantID, version, r.Admin.Actor())
	if err != nil {
		return Response{}, err
	}
	status := keyseal.StatusActive
	note := "the version's wrapped key was deleted; point-in-time recovery backups of the table still hold it until backups_expire_at"
	if rev.TenantRevoked {
		status = keyseal.StatusRevoked
		note += "; it was the active version, so the tenant is revoked until a \"tmk\" rotation creates a new one"
	} else if t, _, err := d.Tenants.Tenant(ctx, r.Admin.TenantID); err == nil {
		status = t.Status
	}
	return JSON(http.StatusOK, RevokeResponse{Version: rev.Version, RevokedAt: rev.RevokedAt, BackupsExpireAt: rev.BackupsExpireAt,
		TenantStatus: status, Note: note}), nil
}

// parseVersion reads a TMK version from a path segment: 1-999999, with or
// without a leading "v", no sign, no leading zero.
func parseVersion(s string) (int, bool) {
	s = strings.TrimPrefix(s, "v")
	if s == "" || len(s) > 6 || s[0] == '0' {
		return 0, false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, false
		}
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}
