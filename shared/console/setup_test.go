//go:build integration

package console_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"testing"
)

// The few API calls the browser tests make to arrange a scene, as plain
// HTTP in this one file so that the typed client of shared/client can take
// their place. Everything the admin does goes through the page.

// setKeyState puts a dev-mode key in state through the dev route, as the
// customer pulling the plug would (with push on, the tenant seals at once).
func setKeyState(t *testing.T, baseURL, keyID, state string) {
	t.Helper()
	post(t, baseURL+"/dev/kms/keys/"+keyID+"/state", map[string]string{"state": state}, http.StatusOK)
}

// devAdminToken mints an admin token as an identity provider would.
func devAdminToken(t *testing.T, baseURL string) string {
	t.Helper()
	tok, _ := post(t, baseURL+"/dev/admin-token", map[string]string{}, http.StatusOK)["admin_token"].(string)
	if tok == "" {
		t.Fatal("POST /dev/admin-token: no admin_token")
	}
	return tok
}

func post(t *testing.T, url string, body any, want int) map[string]any {
	t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("POST %s: %d, body not JSON: %v", url, resp.StatusCode, err)
	}
	if resp.StatusCode != want {
		t.Fatalf("POST %s: %d %v, want %d", url, resp.StatusCode, out, want)
	}
	return out
}
