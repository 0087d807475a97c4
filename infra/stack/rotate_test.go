package stack_test

import (
	"testing"

	"github.com/keyseal/keyseal/infra/stack"
)

// TestRotationRoutesReachTheAdminFunction: rotation, its seed 004 alias and
// revoke are API Gateway methods of the admin Lambda, with its invoke grant.
func TestRotationRoutesReachTheAdminFunction(t *testing.T) {
	tpl := synth(t, "dev")
	methods, grants := tpl.methodTargets(t), tpl.invokeGrants(t)
	for _, key := range []string{"POST /admin/tenant-kms/rotate", "POST /api/v1/byok/keys/rotate", "POST /admin/tenant-kms/versions/{v}/revoke"} {
		if methods[key] != stack.FnAdmin {
			t.Errorf("%s reaches %q, want %q", key, methods[key], stack.FnAdmin)
		}
	}
	if grants["POST /admin/tenant-kms/versions/*/revoke"] != stack.FnAdmin {
		t.Errorf("no invoke grant for the revoke route: %v", grants)
	}
}
