package storecheck

import (
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/keyseal"
)

func TestChange(t *testing.T) {
	v := func(tenant string, n int) keyseal.TMKVersion { return keyseal.TMKVersion{TenantID: tenant, Version: n} }
	timed := keyseal.AuditRecord{At: time.Unix(1, 0), Action: keyseal.ActionSeal}
	untimed := keyseal.AuditRecord{Action: keyseal.ActionSeal}
	tests := []struct {
		name string
		c    keyseal.Change
		want string
	}{
		{"empty", keyseal.Change{}, ""},
		{"new and replaced", keyseal.Change{NewVersions: []keyseal.TMKVersion{v("a", 2)}, Replace: []keyseal.TMKVersion{v("a", 1)}, Audit: &timed}, ""},
		{"foreign new version", keyseal.Change{NewVersions: []keyseal.TMKVersion{v("b", 2)}}, keyseal.EINVALID},
		{"foreign replaced version", keyseal.Change{Replace: []keyseal.TMKVersion{v("b", 1)}}, keyseal.EINVALID},
		{"version zero", keyseal.Change{Replace: []keyseal.TMKVersion{v("a", 0)}}, keyseal.EINVALID},
		{"version past the key range", keyseal.Change{NewVersions: []keyseal.TMKVersion{v("a", MaxVersion+1)}}, keyseal.EINVALID},
		{"new twice", keyseal.Change{NewVersions: []keyseal.TMKVersion{v("a", 2), v("a", 2)}}, keyseal.EINVALID},
		{"new and replaced at once", keyseal.Change{NewVersions: []keyseal.TMKVersion{v("a", 2)}, Replace: []keyseal.TMKVersion{v("a", 2)}}, keyseal.EINVALID},
		{"record without a time", keyseal.Change{Audit: &untimed}, keyseal.EINVALID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Change("a", tc.c)
			if got := keyseal.ErrorCode(err); got != tc.want {
				t.Fatalf("Change = %v, want code %q", err, tc.want)
			}
		})
	}
}

func TestRecord(t *testing.T) {
	if err := Record(keyseal.AuditRecord{At: time.Unix(0, 1)}); err != nil {
		t.Fatalf("Record(timed) = %v", err)
	}
	if err := Record(keyseal.AuditRecord{Action: keyseal.ActionSeal}); keyseal.ErrorCode(err) != keyseal.EINVALID {
		t.Fatalf("Record(zero At) = %v, want %s", err, keyseal.EINVALID)
	}
}
