package tenantkms

import (
	"context"
	"crypto/rand"
	"errors"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// Register activates BYOK: after a live wrap+unwrap test of the customer's
// key, every stored TMK version is re-wrapped under it and the tenant row
// switched, in one transaction with a byok.kms.register audit entry. The
// tenant is provisioned first when new.
//
// key comes from keyseal.Providers.ParseKey, which validated its fields.
// It returns EWAIVER or EWAIVERREACK when the legal waiver gate refuses
// (before anything is written), EKEYEXISTS when a CMK is already
// registered, ECMKACCESS (with a reason) when the key fails the test,
// ESEALED when the current TMK cannot be unwrapped.
func (s *Service) Register(ctx context.Context, tenantID string, key keyseal.KeyRef, actor string) (*keyseal.Tenant, error) {
	if err := s.requireWaiver(ctx, tenantID); err != nil {
		return nil, err
	}
	t, err := s.Provision(ctx, tenantID, actor)
	if err != nil {
		return nil, err
	}
	if t.BYOK {
		return nil, keyErr(keyseal.Errorf(keyseal.EKEYEXISTS, "a customer key is already registered; move to the new key with POST /admin/tenant-kms/migrate (same body), or DELETE /admin/tenant-kms first (re-wraps under the platform key) and then register it"), t).
			With("migrate", "POST /admin/tenant-kms/migrate")
	}
	if err := s.testKey(ctx, tenantID, key); err != nil {
		return nil, err
	}
	details := map[string]string{"provider": key.Provider, "key_id": key.KeyID}
	for name, v := range key.Access {
		details[name] = v
	}
	return s.rewrapTo(ctx, t, key, true, s.record(keyseal.ActionRegister, keyseal.SeverityCritical, actor, details),
		keyseal.EventRegistered, keyseal.RegisteredData{Provider: key.Provider, KeyID: key.KeyID})
}

// Deregister leaves BYOK: every TMK version is re-wrapped under the platform
// key. It needs the customer's key to still work.
func (s *Service) Deregister(ctx context.Context, tenantID, actor string) (*keyseal.Tenant, error) {
	t, err := s.getTenant(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	if !t.BYOK {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "no customer key is registered")
	}
	return s.rewrapTo(ctx, t, s.opt.PlatformKey, false, s.record(keyseal.ActionDeregister, keyseal.SeverityCritical, actor,
		map[string]string{"previous_key_id": t.Key.KeyID}),
		keyseal.EventDeregistered, keyseal.DeregisteredData{Provider: t.Key.Provider, KeyID: t.Key.KeyID})
}

// requireWaiver is the legal waiver gate of register and migrate (no gate
// when the service has none).
func (s *Service) requireWaiver(ctx context.Context, tenantID string) error {
	if s.opt.Waiver == nil {
		return nil
	}
	return s.opt.Waiver.Require(ctx, tenantID)
}

func keyErr(e *keyseal.Error, t *keyseal.Tenant) *keyseal.Error {
	return e.With("key_id", t.Key.KeyID)
}

// testKey wraps and unwraps a random probe with the candidate key.
func (s *Service) testKey(ctx context.Context, tenantID string, key keyseal.KeyRef) error {
	probe := make([]byte, 32)
	if _, err := rand.Read(probe); err != nil {
		return err
	}
	w, err := s.wrap(ctx, key, probe, probeContext(tenantID))
	if err == nil {
		ctx, cancel := context.WithTimeout(ctx, s.opt.KMSTimeout)
		_, err = s.kms.Unwrap(ctx, key, w, probeContext(tenantID))
		cancel()
	}
	if err != nil {
		kerr, ok := errors.AsType[*keyseal.KMSError](err)
		if !ok {
			return err // not the key's fault: no provider, a bug
		}
		return keyseal.Errorf(keyseal.ECMKACCESS, "wrap/unwrap test with the key failed (%s): %s", kerr.Code, remedy(kerr.Reason)).
			With("reason", kerr.Reason)
	}
	return nil
}

// remedy says what the customer does about a failed key test.
func remedy(reason string) string {
	switch reason {
	case keyseal.ReasonKeyDisabled:
		return "the key is disabled; enable it and retry"
	case keyseal.ReasonPendingDeletion:
		return "the key is scheduled for deletion; cancel the deletion, enable it and retry"
	case keyseal.ReasonKeyNotFound:
		return "no such key, or keyseal may not see it; check the key id and region"
	case keyseal.ReasonUnreachable:
		return "the KMS did not answer; retry shortly"
	}
	return "grant keyseal's principal encrypt and decrypt on the key (key policy or IAM/RBAC) and retry"
}

// rewrapTo re-wraps every live TMK version under key and switches the
// tenant to it, conditional on the tenant row not having moved. The
// re-wrapped versions are written as replacements, which the store refuses
// for a version revoked since they were read: a re-wrap never brings an
// erased blob back.
//
// The switch commits with rec and one event of type typ carrying data
// (registered, migrated, deregistered).
func (s *Service) rewrapTo(ctx context.Context, t *keyseal.Tenant, key keyseal.KeyRef, byok bool, rec *keyseal.AuditRecord,
	typ string, data any) (*keyseal.Tenant, error) {
	if err := sealedError(t); err != nil {
		return nil, err
	}
	versions, err := s.store.Versions(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	var rewrapped []keyseal.TMKVersion
	for _, v := range versions {
		if v.Wrapped == nil {
			continue // crypto-erased: stays erased
		}
		tmk, err := s.unwrap(ctx, v)
		if err != nil {
			var kerr *keyseal.KMSError
			if errors.As(err, &kerr) {
				if _, ferr := s.fail(ctx, t, kerr, true); ferr != nil {
					return nil, ferr
				}
				return nil, keyseal.Errorf(keyseal.ESEALED, "cannot unwrap TMK version %d with the current key (%s)", v.Version, kerr.Code)
			}
			return nil, err
		}
		nv, err := s.newVersion(ctx, t.ID, v.Version, tmk, key)
		if err != nil {
			kerr := keyseal.ClassifyKMS(err)
			return nil, keyseal.Errorf(keyseal.ECMKACCESS, "re-wrapping TMK version %d under the new key failed (%s)", v.Version, kerr.Code).With("reason", kerr.Reason)
		}
		nv.CreatedAt = v.CreatedAt
		rewrapped = append(rewrapped, nv)
	}
	return s.mutate(ctx, t.ID, func(cur *keyseal.Tenant) (keyseal.Change, error) {
		if cur.ActiveVersion != t.ActiveVersion || !cur.Key.Equal(t.Key) || cur.Status != keyseal.StatusActive {
			return keyseal.Change{}, keyseal.Errorf(keyseal.ECONFLICT, "the tenant's key changed concurrently; retry")
		}
		ev, err := s.event(typ, t.ID, data)
		if err != nil {
			return keyseal.Change{}, err
		}
		cur.Key = key
		cur.BYOK = byok
		return keyseal.Change{Replace: rewrapped, Audit: rec, Events: []keyseal.Event{ev}}, nil
	})
}
