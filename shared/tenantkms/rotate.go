package tenantkms

import (
	"context"
	"crypto/rand"
	"errors"
	"strconv"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// Rotation types of POST /admin/tenant-kms/rotate (docs/contract.md §6).
// RotateDEK is seed 004's name for RotateTMK.
const (
	RotateTMK    = "tmk"
	RotateDEK    = "dek"
	RotateRewrap = "rewrap"
)

// RotationDueAge is the rotation age past which rotation_due is set and the
// KeyRotationAgeDays alarm fires (seed 004: > 90 days since rotation).
const RotationDueAge = 90 * 24 * time.Hour

// PITRWindow is how long DynamoDB point-in-time recovery keeps a table's
// past states (its maximum, which the stack configures): a revoked blob
// survives in those backups until then.
const PITRWindow = 35 * 24 * time.Hour

// Rotation is what a rotation did.
type Rotation struct {
	ActiveVersion int
	RotatedAt     time.Time
}

// Revocation is what a revoke did.
type Revocation struct {
	Version   int
	RevokedAt time.Time
	// BackupsExpireAt is when point-in-time backups that still hold the
	// erased blob have all aged out.
	BackupsExpireAt time.Time
	// TenantRevoked says the revoked version was the active one.
	TenantRevoked bool
}

// Rotate rotates the tenant's TMK. RotateTMK (or RotateDEK) creates version
// n+1, wrapped under the tenant's current key, and makes it active; older
// live versions stay for decryption and in the JWKS. It is also the only way
// out of the revoked state. RotateRewrap re-wraps every live version under
// the key's current material. Both write their audit entry in the same
// transaction as the change.
//
// It returns EINVALID for an unknown type, ESEALED for a sealed tenant (and
// for a rewrap of a revoked one), ECMKACCESS or EKMSUNAVAILABLE when the key
// fails during the rotation (a terminal failure also seals, as any observed
// failure does), ETENANT for an unknown tenant.
func (s *Service) Rotate(ctx context.Context, tenantID, rotationType, reason, actor string) (Rotation, error) {
	switch rotationType {
	case RotateTMK, RotateDEK:
		return s.rotateTMK(ctx, tenantID, rotationType, reason, actor)
	case RotateRewrap:
		return s.rewrap(ctx, tenantID, reason, actor)
	}
	return Rotation{}, keyseal.Errorf(keyseal.EINVALID, "rotation_type must be one of %q, %q, %q", RotateTMK, RotateDEK, RotateRewrap)
}

func (s *Service) rotateTMK(ctx context.Context, tenantID, rotationType, reason, actor string) (Rotation, error) {
	t, err := s.getTenant(ctx, tenantID)
	if err != nil {
		return Rotation{}, err
	}
	if t.Status == keyseal.StatusSealed {
		// Not that a fresh TMK needs the old one: a key keyseal cannot use
		// right now must not be handed more TMKs to guard.
		return Rotation{}, sealedError(t)
	}
	versions, err := s.store.Versions(ctx, tenantID)
	if err != nil {
		return Rotation{}, err
	}
	next := 1
	for _, v := range versions {
		next = max(next, v.Version+1)
	}
	tmk := make([]byte, 32)
	if _, err := rand.Read(tmk); err != nil {
		return Rotation{}, err
	}
	nv, err := s.newVersion(ctx, tenantID, next, tmk, t.Key)
	if err == nil {
		// Prove the new blob unwraps before it becomes the only way to the
		// tenant's sessions (an Azure key that is disabled still wraps).
		_, err = s.unwrap(ctx, nv)
	}
	if err != nil {
		return Rotation{}, s.rotationFailed(ctx, t, err)
	}
	now := s.now()
	restored := false
	updated, err := s.mutate(ctx, tenantID, func(cur *keyseal.Tenant) (keyseal.Change, error) {
		if cur.ActiveVersion != t.ActiveVersion || !cur.Key.Equal(t.Key) || cur.Status != t.Status {
			return keyseal.Change{}, keyseal.Errorf(keyseal.ECONFLICT, "the tenant's key or state changed concurrently; retry")
		}
		details := map[string]string{"rotation_type": rotationType, "reason": reason, "key_id": cur.Key.KeyID,
			"previous_version": strconv.Itoa(cur.ActiveVersion), "active_version": strconv.Itoa(next)}
		c := keyseal.Change{NewVersions: []keyseal.TMKVersion{nv}}
		restored = cur.Status == keyseal.StatusRevoked
		if restored {
			// The only way out of revoked: a fresh TMK nobody erased.
			details["restored_from"] = keyseal.StatusRevoked
			cur.Status = keyseal.StatusActive
			cur.SealedSince = nil
			cur.SealReason = ""
			cur.LastVerifyError = ""
			ev, err := s.event(keyseal.EventUnsealed, tenantID, keyseal.UnsealedData{Trigger: keyseal.TriggerAdmin})
			if err != nil {
				return keyseal.Change{}, err
			}
			c.Events = []keyseal.Event{ev}
		}
		rotated, err := s.event(keyseal.EventRotated, tenantID, keyseal.RotatedData{RotationType: rotationType, Version: next, Reason: reason})
		if err != nil {
			return keyseal.Change{}, err
		}
		c.Events = append([]keyseal.Event{rotated}, c.Events...)
		cur.ActiveVersion = next
		cur.LastVerifiedAt = &now
		severity := keyseal.SeverityInfo
		if restored {
			severity = keyseal.SeverityCritical // a state transition, like an unseal
		}
		c.Audit = s.record(keyseal.ActionRotate, severity, actor, details)
		return c, nil
	})
	if err != nil {
		return Rotation{}, err
	}
	s.cache.put(tenantID, next, tmk)
	s.opt.Log.Info("TMK rotated", "tenant_id", tenantID, "active_version", updated.ActiveVersion, "restored", restored, "actor", actor)
	return Rotation{ActiveVersion: next, RotatedAt: nv.CreatedAt}, nil
}

// rotationFailed turns a KMS failure during a rotation into the caller's
// error, applying it to the tenant first like any observed failure (a
// terminal one seals).
func (s *Service) rotationFailed(ctx context.Context, t *keyseal.Tenant, err error) error {
	kerr, ok := errors.AsType[*keyseal.KMSError](err)
	if !ok {
		return err
	}
	if t.Status == keyseal.StatusActive {
		// record=false: a transient failure leaves the row untouched.
		sealed, ferr := s.fail(ctx, t, kerr, false)
		if ferr != nil {
			return ferr
		}
		if sealed != nil {
			return keyseal.Errorf(keyseal.ESEALED, "the tenant's key failed during the rotation (%s); the tenant is now sealed: %s", kerr.Code, remedy(kerr.Reason))
		}
	}
	if !kerr.Terminal {
		return keyseal.Errorf(keyseal.EKMSUNAVAILABLE, "the tenant's KMS did not answer during the rotation (%s); nothing changed, retry shortly", kerr.Code)
	}
	return keyseal.Errorf(keyseal.ECMKACCESS, "the tenant's key refused the rotation (%s): %s; nothing changed", kerr.Code, remedy(kerr.Reason)).
		With("reason", kerr.Reason)
}

func (s *Service) rewrap(ctx context.Context, tenantID, reason, actor string) (Rotation, error) {
	t, err := s.getTenant(ctx, tenantID)
	if err != nil {
		return Rotation{}, err
	}
	if t.Status == keyseal.StatusRevoked {
		return Rotation{}, keyseal.Errorf(keyseal.ESEALED, "tenant is sealed: its active master key version was revoked; only a %q rotation brings it back", RotateTMK)
	}
	rec := s.record(keyseal.ActionRewrap, keyseal.SeverityInfo, actor, map[string]string{"rotation_type": RotateRewrap, "reason": reason,
		"key_id": t.Key.KeyID, "active_version": strconv.Itoa(t.ActiveVersion)})
	updated, err := s.rewrapTo(ctx, t, t.Key, t.BYOK, rec,
		keyseal.EventRotated, keyseal.RotatedData{RotationType: RotateRewrap, Version: t.ActiveVersion, Reason: reason})
	if err != nil {
		return Rotation{}, err
	}
	return Rotation{ActiveVersion: updated.ActiveVersion, RotatedAt: rec.At}, nil
}

// RotatedAt is when the tenant's TMK was last rotated (tmk): the creation
// of its active version, which only provisioning and a tmk rotation make
// (re-wraps keep a version's created_at). Rotation age counts from it.
func RotatedAt(t *keyseal.Tenant, versions []keyseal.TMKVersion) time.Time {
	for _, v := range versions {
		if v.Version == t.ActiveVersion {
			return v.CreatedAt
		}
	}
	return t.CreatedAt
}

// Revoke crypto-erases one TMK version: its wrapped blob is removed from the
// store (the version stays, with revoked_at and no blob), so no key can ever
// unwrap it again; it leaves the JWKS, so the tokens it signed stop
// verifying. Revoking the active version puts the tenant in the revoked
// state (with a tenant.kms.sealed event, reason revoked), which only a tmk
// rotation leaves. The revoke needs no KMS call, so it works while the
// tenant is sealed.
//
// It returns ENOTFOUND for an unknown version, EREVOKEDVERSION for one
// already revoked, ETENANT for an unknown tenant.
func (s *Service) Revoke(ctx context.Context, tenantID string, version int, actor string) (Revocation, error) {
	now := s.now()
	out := Revocation{Version: version, RevokedAt: now, BackupsExpireAt: now.Add(PITRWindow)}
	_, err := s.mutate(ctx, tenantID, func(t *keyseal.Tenant) (keyseal.Change, error) {
		// Read inside the attempt: a concurrent revoke makes the store
		// refuse the replace (it is conditional on not-yet-revoked), and
		// the retry must then see it and answer "already revoked".
		versions, err := s.store.Versions(ctx, tenantID)
		if err != nil {
			return keyseal.Change{}, err
		}
		var target *keyseal.TMKVersion
		for i := range versions {
			if versions[i].Version == version {
				target = &versions[i]
			}
		}
		switch {
		case target == nil:
			return keyseal.Change{}, keyseal.Errorf(keyseal.ENOTFOUND, "tenant has no TMK version %d", version)
		case target.RevokedAt != nil || target.Wrapped == nil:
			return keyseal.Change{}, keyseal.Errorf(keyseal.EREVOKEDVERSION, "TMK version %d is already revoked", version)
		}
		erased := *target
		erased.Wrapped = nil
		erased.KeyVersion = ""
		erased.RevokedAt = &now
		active := version == t.ActiveVersion
		out.TenantRevoked = active
		c := keyseal.Change{Replace: []keyseal.TMKVersion{erased}}
		details := map[string]string{"version": strconv.Itoa(version), "active": strconv.FormatBool(active),
			"key_id": target.Key.KeyID, "backups_expire_at": out.BackupsExpireAt.Format(time.RFC3339)}
		revoked, err := s.event(keyseal.EventRevoked, tenantID, keyseal.RevokedData{Version: version, WasActive: active})
		if err != nil {
			return keyseal.Change{}, err
		}
		c.Events = []keyseal.Event{revoked}
		if active {
			if t.Status == keyseal.StatusActive {
				// A transition like seal's: its event commits with it.
				ev, err := s.event(keyseal.EventSealed, tenantID, keyseal.SealedData{Reason: keyseal.ReasonRevoked, SealedSince: now, LastError: "TMKVersionRevoked"})
				if err != nil {
					return keyseal.Change{}, err
				}
				c.Events = append(c.Events, ev)
			}
			if t.SealedSince == nil {
				t.SealedSince = &now
			}
			details["previous_status"] = t.Status
			t.Status = keyseal.StatusRevoked
			t.SealReason = keyseal.ReasonRevoked
			t.LastVerifyError = ""
		}
		c.Audit = s.record(keyseal.ActionRevoke, keyseal.SeverityCritical, actor, details)
		return c, nil
	})
	if err != nil {
		return Revocation{}, err
	}
	// This process forgets the erased TMK at once; the others stop using
	// it when they read the row (sessions check the status first).
	s.cache.drop(tenantID)
	s.opt.Log.Warn("TMK version revoked", "tenant_id", tenantID, "version", version, "tenant_revoked", out.TenantRevoked, "actor", actor)
	return out, nil
}
