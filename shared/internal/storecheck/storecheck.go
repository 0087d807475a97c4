// Package storecheck holds the argument checks every keyseal.Store adapter
// makes before writing, so the embedded store and DynamoDB refuse the same
// caller bugs with the same errors.
package storecheck

import "github.com/keyseal/keyseal/shared/keyseal"

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
