package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/keyseal/keyseal/shared/awskms"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// WaiverView is a tenant's waiver standing on its config row.
type WaiverView struct {
	Acknowledged             bool `json:"acknowledged"`
	RequiresReacknowledgment bool `json:"requires_reacknowledgment"`
}

// getWaiver serves GET /admin/tenant-kms/legal-waiver: the current text.
func (d *Deps) getWaiver(_ context.Context, _ *Request) (Response, error) {
	return JSON(http.StatusOK, d.Waiver.Current()), nil
}

// ackWaiver serves POST /admin/tenant-kms/legal-waiver:
// {"acknowledged": true, "acknowledged_by": "<email>"}. Admin only (seed
// 004's curl carries no step-up); the entry names the admin's subject.
func (d *Deps) ackWaiver(ctx context.Context, r *Request) (Response, error) {
	var in struct {
		Acknowledged   bool   `json:"acknowledged"`
		AcknowledgedBy string `json:"acknowledged_by"`
	}
	if err := Decode(r, &in, false); err != nil {
		return Response{}, err
	}
	if !in.Acknowledged {
		return Response{}, keyseal.Errorf(keyseal.EINVALID, `acknowledged must be true: read GET /admin/tenant-kms/legal-waiver and send {"acknowledged": true, "acknowledged_by": "<email>"}`)
	}
	st, err := d.Waiver.Acknowledge(ctx, r.Admin.TenantID, in.AcknowledgedBy, r.Admin.Actor())
	if err != nil {
		return Response{}, err
	}
	return JSON(http.StatusOK, st), nil
}

// waiverStatus serves GET /admin/tenant-kms/legal-waiver/status.
func (d *Deps) waiverStatus(ctx context.Context, r *Request) (Response, error) {
	st, err := d.Waiver.Status(ctx, r.Admin.TenantID)
	if err != nil {
		return Response{}, err
	}
	return JSON(http.StatusOK, st), nil
}

// keyPolicy serves GET /admin/tenant-kms/key-policy: the statements to add
// to the CMK's key policy before registering.
func (d *Deps) keyPolicy(_ context.Context, r *Request) (Response, error) {
	return JSON(http.StatusOK, awskms.PolicyFor(d.ServicePrincipal, r.Admin.TenantID)), nil
}

// withKeyPolicy adds required_key_policy to a cannot_access_cmk answer
// about an AWS (or dev-mode local) key: the statements the key policy
// needs, for the principal that calls KMS (the customer's role when
// keyseal assumes one, else keyseal's own).
func (d *Deps) withKeyPolicy(err error, tenantID string, key keyseal.KeyRef) error {
	e, ok := errors.AsType[*keyseal.Error](err)
	if !ok || e.Code != keyseal.ECMKACCESS || (key.Provider != keyseal.ProviderAWS && key.Provider != keyseal.ProviderLocal) {
		return err
	}
	principal := d.ServicePrincipal
	if role := key.Access[awskms.AccessRoleARN]; role != "" {
		principal = role
	}
	out := e.With("required_key_policy", awskms.PolicyFor(principal, tenantID))
	if e.Extra["reason"] == keyseal.ReasonAccessDenied {
		out.Message += "; the statements to add to the key policy are in required_key_policy (also GET /admin/tenant-kms/key-policy)"
	}
	return out
}
