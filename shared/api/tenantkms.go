package api

import (
	"context"
	"net/http"
	"time"

	"github.com/go-json-experiment/json/jsontext"

	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// rotationFlagAge is seed 004's threshold for flagging an old TMK version.
const rotationFlagAge = 90 * 24 * time.Hour

// VersionView is one TMK version as the admin API shows it (never the
// blob).
type VersionView struct {
	Version         int        `json:"version"`
	Provider        string     `json:"provider"`
	KeyID           string     `json:"key_id"`
	CreatedAt       time.Time  `json:"created_at"`
	RevokedAt       *time.Time `json:"revoked_at"`
	Active          bool       `json:"active"`
	AgeDays         int        `json:"age_days"`
	RotationOverdue bool       `json:"rotation_overdue"`
}

// TenantView is the config row of GET /admin/tenant-kms.
type TenantView struct {
	TenantID string `json:"tenant_id"`
	Provider string `json:"provider"`
	KeyID    string `json:"key_id"`
	// KeyAccess holds the provider's access fields (aws-kms: role_arn,
	// external_id); absent when keyseal reaches the key as itself.
	KeyAccess       map[string]string `json:"key_access,omitempty"`
	BYOK            bool              `json:"byok"`
	Status          string            `json:"status"`
	SealedSince     *time.Time        `json:"sealed_since"`
	SealReason      *string           `json:"seal_reason"`
	LastVerifyError *string           `json:"last_verify_error"`
	LastVerifiedAt  *time.Time        `json:"last_verified_at"`
	LastLatencyMS   int64             `json:"last_latency_ms"`
	// KMSReachable is false while the last check failed (or the tenant is
	// sealed); ServingFromCacheUntil then says when an active tenant seals
	// unless its KMS answers again.
	KMSReachable          bool          `json:"kms_reachable"`
	ServingFromCacheUntil *time.Time    `json:"serving_from_cache_until"`
	ActiveVersion         int           `json:"active_version"`
	Versions              []VersionView `json:"versions"`
	CreatedAt             time.Time     `json:"created_at"`
	UpdatedAt             time.Time     `json:"updated_at"`

	// RotatedAt is the last tmk rotation (or the tenant's creation): the
	// active version's created_at. Rotation age counts from it.
	RotatedAt       time.Time `json:"rotated_at"`
	RotationAgeDays int       `json:"rotation_age_days"`
	RotationDue     bool      `json:"rotation_due"`
	// Waiver is the tenant's standing against the current legal waiver.
	Waiver *WaiverView `json:"waiver,omitempty"`
}

// UnsealResponse is the body of a successful POST /admin/tenant-kms/unseal.
type UnsealResponse struct {
	Unsealed bool `json:"unsealed"`
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func (d *Deps) tenantView(ctx context.Context, tenantID string) (TenantView, error) {
	t, versions, err := d.Tenants.Tenant(ctx, tenantID)
	if err != nil {
		return TenantView{}, err
	}
	now := d.Now()
	reach := d.Tenants.Reachability(t)
	v := TenantView{TenantID: t.ID, Provider: t.Key.Provider, KeyID: t.Key.KeyID, KeyAccess: t.Key.Access, BYOK: t.BYOK,
		Status: t.Status, SealedSince: t.SealedSince, SealReason: optional(t.SealReason), LastVerifyError: optional(t.LastVerifyError),
		LastVerifiedAt: t.LastVerifiedAt, LastLatencyMS: t.LastLatencyMS, KMSReachable: reach.Reachable,
		ServingFromCacheUntil: reach.ServingFromCacheUntil, ActiveVersion: t.ActiveVersion,
		Versions: []VersionView{}, CreatedAt: t.CreatedAt, UpdatedAt: t.UpdatedAt}
	v.RotatedAt = tenantkms.RotatedAt(t, versions)
	rotationAge := now.Sub(v.RotatedAt)
	v.RotationAgeDays = int(max(0, rotationAge) / (24 * time.Hour))
	v.RotationDue = rotationAge > tenantkms.RotationDueAge
	if d.Waiver != nil {
		st, err := d.Waiver.Status(ctx, tenantID)
		if err != nil {
			return TenantView{}, err
		}
		v.Waiver = &WaiverView{Acknowledged: st.Acknowledged, RequiresReacknowledgment: st.RequiresReacknowledgment}
	}
	for _, tv := range versions {
		age := now.Sub(tv.CreatedAt)
		v.Versions = append(v.Versions, VersionView{Version: tv.Version, Provider: tv.Key.Provider, KeyID: tv.Key.KeyID,
			CreatedAt: tv.CreatedAt, RevokedAt: tv.RevokedAt, Active: tv.Version == t.ActiveVersion,
			AgeDays: int(age / (24 * time.Hour)), RotationOverdue: tv.Version == t.ActiveVersion && age > rotationFlagAge})
	}
	return v, nil
}

func (d *Deps) getTenantKMS(ctx context.Context, r *Request) (Response, error) {
	return d.viewResponse(ctx, r)
}

// registerKey serves PUT /admin/tenant-kms: {"provider", ...the provider's
// fields}. The provider named parses and validates its own fields.
func (d *Deps) registerKey(ctx context.Context, r *Request) (Response, error) {
	key, err := d.keyRequest(ctx, r)
	if err != nil {
		return Response{}, err
	}
	if err := r.ConsumeStepUp(ctx); err != nil {
		return Response{}, err
	}
	if _, err := d.Tenants.Register(ctx, r.Admin.TenantID, key, r.Admin.Actor()); err != nil {
		return Response{}, d.withKeyPolicy(err, r.Admin.TenantID, key)
	}
	return d.viewResponse(ctx, r)
}

// migrateKey serves POST /admin/tenant-kms/migrate, body as registration.
func (d *Deps) migrateKey(ctx context.Context, r *Request) (Response, error) {
	key, err := d.keyRequest(ctx, r)
	if err != nil {
		return Response{}, err
	}
	if err := r.ConsumeStepUp(ctx); err != nil {
		return Response{}, err
	}
	if _, err := d.Tenants.Migrate(ctx, r.Admin.TenantID, key, r.Admin.Actor()); err != nil {
		return Response{}, d.withKeyPolicy(err, r.Admin.TenantID, key)
	}
	return d.viewResponse(ctx, r)
}

// parseKeyBody reads a registration body: {"provider", ...fields}, every
// member a string, parsed by the provider it names.
// keyRequest is the part of register and migrate that refuses before a
// step-up token is spent: the body (the provider's fields) and the legal
// waiver gate. The service checks the waiver again, in its own order.
func (d *Deps) keyRequest(ctx context.Context, r *Request) (keyseal.KeyRef, error) {
	key, err := d.parseKeyBody(r)
	if err != nil {
		return keyseal.KeyRef{}, err
	}
	if d.Waiver != nil {
		if err := d.Waiver.Require(ctx, r.Admin.TenantID); err != nil {
			return keyseal.KeyRef{}, err
		}
	}
	return key, nil
}

func (d *Deps) parseKeyBody(r *Request) (keyseal.KeyRef, error) {
	// Pointers, so a null is told apart from "" and refused like any other
	// value that is not a string (Decode refuses duplicates).
	var raw map[string]*string
	if err := Decode(r, &raw, false); err != nil {
		return keyseal.KeyRef{}, err
	}
	fields := make(map[string]string, len(raw))
	for k, v := range raw {
		if v == nil {
			return keyseal.KeyRef{}, keyseal.Errorf(keyseal.EINVALID, "malformed JSON body: member %s must be a string", memberName(jsontext.Pointer("").AppendToken(k)))
		}
		fields[k] = *v
	}
	provider := fields["provider"]
	delete(fields, "provider")
	return d.Keys.ParseKey(provider, fields)
}

func (d *Deps) deregisterKey(ctx context.Context, r *Request) (Response, error) {
	if err := r.ConsumeStepUp(ctx); err != nil {
		return Response{}, err
	}
	if _, err := d.Tenants.Deregister(ctx, r.Admin.TenantID, r.Admin.Actor()); err != nil {
		return Response{}, err
	}
	return d.viewResponse(ctx, r)
}

func (d *Deps) viewResponse(ctx context.Context, r *Request) (Response, error) {
	v, err := d.tenantView(ctx, r.Admin.TenantID)
	if err != nil {
		return Response{}, err
	}
	return JSON(http.StatusOK, v), nil
}

func (d *Deps) unseal(ctx context.Context, r *Request) (Response, error) {
	var in struct{}
	if err := Decode(r, &in, true); err != nil {
		return Response{}, err
	}
	if err := r.ConsumeStepUp(ctx); err != nil {
		return Response{}, err
	}
	if err := d.Tenants.Unseal(ctx, r.Admin.TenantID, r.Admin.Actor()); err != nil {
		return Response{}, err
	}
	return JSON(http.StatusOK, UnsealResponse{Unsealed: true}), nil
}
