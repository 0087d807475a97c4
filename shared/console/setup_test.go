//go:build integration

package console_test

import (
	"context"
	"testing"

	"github.com/keyseal/keyseal/shared/client"
)

// The few API calls the browser tests make to arrange a scene go through
// the typed client; everything the admin does goes through the page.

// setKeyState puts a dev-mode key in state through the dev route, as the
// customer pulling the plug would (with push on, the tenant seals at once).
func setKeyState(t *testing.T, baseURL, keyID, state string) {
	t.Helper()
	if err := client.MustNew(baseURL, "").DevSetKeyState(context.Background(), keyID, state); err != nil {
		t.Fatalf("set key %s %s: %v", keyID, state, err)
	}
}

// devAdminToken mints an admin token as an identity provider would.
func devAdminToken(t *testing.T, baseURL string) string {
	t.Helper()
	tok, err := client.MustNew(baseURL, "").DevAdminToken(context.Background(), "", "")
	if err != nil || tok == "" {
		t.Fatalf("dev admin token: %q, %v", tok, err)
	}
	return tok
}
