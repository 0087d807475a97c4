// Package storecheck holds the argument checks every keyseal.Store adapter
// makes before writing, so the embedded store and DynamoDB refuse the same
// caller bugs with the same errors.
package storecheck

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// MaxVersion is the highest TMK version a store accepts: DynamoDB keys
// versions as eight zero-padded digits so they sort numerically.
const MaxVersion = 99_999_999

// TenantID rejects the empty id, which would address a bucket or partition
// shared by no tenant; the API validates ids fully before they get here.
func TenantID(id string) error {
	if id == "" {
		return keyseal.Errorf(keyseal.EINVALID, "tenant id is required")
	}
	return nil
}

// NewTenant is CreateTenant's checks: the tenant id, its first version and
// the audit record.
func NewTenant(t *keyseal.Tenant, v keyseal.TMKVersion, rec keyseal.AuditRecord) error {
	if err := TenantID(t.ID); err != nil {
		return err
	}
	if err := Versions(t.ID, []keyseal.TMKVersion{v}); err != nil {
		return err
	}
	return Record(rec)
}

// Versions makes sure every version belongs to the tenant being written and
// is in range, so a caller bug can neither file one tenant's TMK under
// another nor break version order.
func Versions(tenantID string, vs []keyseal.TMKVersion) error {
	for _, v := range vs {
		if v.TenantID != tenantID {
			return keyseal.Errorf(keyseal.EINVALID, "TMK version belongs to tenant %q, not %q", v.TenantID, tenantID)
		}
		if v.Version < 1 || v.Version > MaxVersion {
			return keyseal.Errorf(keyseal.EINVALID, "TMK version number %d out of range", v.Version)
		}
	}
	return nil
}

// Change checks what UpdateTenant writes beside the row: every version as
// Versions does, each version named at most once (DynamoDB refuses a
// transaction that touches one item twice, and the other stores would
// apply the two writes in some order), and the audit record if any.
func Change(tenantID string, c keyseal.Change) error {
	if err := Versions(tenantID, c.NewVersions); err != nil {
		return err
	}
	if err := Versions(tenantID, c.Replace); err != nil {
		return err
	}
	seen := make(map[int]bool, len(c.NewVersions)+len(c.Replace))
	for _, vs := range [][]keyseal.TMKVersion{c.NewVersions, c.Replace} {
		for _, v := range vs {
			if seen[v.Version] {
				return keyseal.Errorf(keyseal.EINVALID, "TMK version %d is written twice in one change", v.Version)
			}
			seen[v.Version] = true
		}
	}
	if err := Events(tenantID, c.Events); err != nil {
		return err
	}
	if c.Audit != nil {
		return Record(*c.Audit)
	}
	return nil
}

// Events checks outbox events: each has an id (unique in the change: it is
// the outbox key), a type, a time and data that is a JSON object, and
// belongs to the tenant written.
func Events(tenantID string, es []keyseal.Event) error {
	seen := make(map[string]bool, len(es))
	for _, e := range es {
		switch {
		case e.ID == "" || len(e.ID) > 128:
			return keyseal.Errorf(keyseal.EINVALID, "event %q: id must be 1-128 characters", e.Type)
		case seen[e.ID]:
			return keyseal.Errorf(keyseal.EINVALID, "event %s is written twice in one change", e.ID)
		case e.Type == "":
			return keyseal.Errorf(keyseal.EINVALID, "event %s has no type", e.ID)
		case e.TenantID != tenantID:
			return keyseal.Errorf(keyseal.EINVALID, "event %s belongs to tenant %q, not %q", e.ID, e.TenantID, tenantID)
		case !isObject(e.Data):
			return keyseal.Errorf(keyseal.EINVALID, "event %s: data must be a JSON object", e.ID)
		}
		if _, err := EventTime(e); err != nil {
			return err
		}
		seen[e.ID] = true
	}
	return nil
}

// isObject reports whether raw is one JSON object, compact as
// json.Marshal writes it, so it reads back unchanged from every store.
func isObject(raw json.RawMessage) bool {
	if len(raw) == 0 || raw[0] != '{' || !json.Valid(raw) {
		return false
	}
	var b bytes.Buffer
	return json.Compact(&b, raw) == nil && bytes.Equal(b.Bytes(), raw)
}

// EventTime parses an event's time, which orders the outbox.
func EventTime(e keyseal.Event) (time.Time, error) {
	at, err := time.Parse(time.RFC3339Nano, e.Time)
	if err != nil {
		return time.Time{}, keyseal.Errorf(keyseal.EINVALID, "event %s: time %q is not RFC 3339", e.ID, e.Time)
	}
	return at.UTC(), nil
}

// Record refuses an audit record without a time. An entry's ts is rec.At,
// from the service's clock; a store never falls back to its own, so the
// chain and the service agree on when things happened.
func Record(rec keyseal.AuditRecord) error {
	if rec.At.IsZero() {
		return keyseal.Errorf(keyseal.EINVALID, "audit record %q has no time", rec.Action)
	}
	return nil
}
