//go:build integration

package suite

import (
	"net/http"
	"strings"
	"testing"
)

// TestWebhookRoutesMalformedIDOnDynamoDB: on the DynamoDB store an id
// in the path that no subscription can have (over DynamoDB's sort-key
// size, or shaped like another item's key) is 404, not a 500 from a
// ValidationException.
func TestWebhookRoutesMalformedIDOnDynamoDB(t *testing.T) {
	e := newEnv(t, nil)
	tn := e.newTenant()
	admin := e.adminToken(tn.ID, "alice")
	for _, id := range []string{strings.Repeat("x", 1100), "count", "wh_1%23x"} {
		for _, c := range []struct{ method, path string }{
			{http.MethodDelete, "/admin/webhooks/" + id},
			{http.MethodPost, "/admin/webhooks/" + id + "/rotate-secret"},
			{http.MethodPost, "/admin/webhooks/" + id + "/test"},
			{http.MethodGet, "/admin/webhooks/" + id + "/deliveries"},
		} {
			e.call(c.method, c.path, admin, "", nil).want(http.StatusNotFound)
		}
	}
}
