package tenantkms

import (
	"context"
	"errors"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// Migrate moves a BYOK tenant from its CMK to another one without passing
// through the platform key: a live wrap+unwrap test of the new key, then
// every live TMK version unwrapped with the old key and re-wrapped under
// the new one, written with the switch and a critical byok.kms.migrate
// entry naming both keys in one transaction. Any failure writes none of it.
//
// It returns EWAIVER / EWAIVERREACK from the waiver gate, ENOTFOUND when no
// CMK is registered, ECONFLICT when key is the current one, ECMKACCESS with
// key "new" (and a reason) when the new key fails, ESEALED with key "old"
// when the old key cannot unwrap (a terminal failure seals the tenant, as
// any observed failure does).
func (s *Service) Migrate(ctx context.Context, tenantID string, key keyseal.KeyRef, actor string) (*keyseal.Tenant, error) {
	if err := s.requireWaiver(ctx, tenantID); err != nil {
		return nil, err
	}
	t, err := s.getTenant(ctx, tenantID)
	if err != nil {
		return nil, err
	}
	if !t.BYOK {
		return nil, keyseal.Errorf(keyseal.ENOTFOUND, "no customer key is registered to migrate from; register one with PUT /admin/tenant-kms")
	}
	if key.Equal(t.Key) {
		return nil, keyErr(keyseal.Errorf(keyseal.ECONFLICT, "the tenant already uses this key"), t)
	}
	if err := sealedError(t); err != nil {
		return nil, whichKey(err)
	}
	if err := s.testKey(ctx, tenantID, key); err != nil {
		return nil, whichKey(err)
	}
	details := map[string]string{"provider": key.Provider, "key_id": key.KeyID,
		"previous_provider": t.Key.Provider, "previous_key_id": t.Key.KeyID}
	for name, v := range key.Access {
		details[name] = v
	}
	out, err := s.rewrapTo(ctx, t, key, true, s.record(keyseal.ActionMigrate, keyseal.SeverityCritical, actor, details),
		keyseal.EventMigrated, keyseal.MigratedData{OldProvider: t.Key.Provider, OldKeyID: t.Key.KeyID, NewProvider: key.Provider, NewKeyID: key.KeyID})
	if err != nil {
		return nil, whichKey(err)
	}
	return out, nil
}

// whichKey names the key a migration failure is about: the new key fails
// with ECMKACCESS, the old one with ESEALED.
func whichKey(err error) error {
	e, ok := errors.AsType[*keyseal.Error](err)
	if !ok {
		return err
	}
	switch e.Code {
	case keyseal.ECMKACCESS:
		return e.With("key", "new")
	case keyseal.ESEALED:
		return e.With("key", "old")
	}
	return err
}
