package localserver_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestWebhookSubscriptionsOverHTTP: the subscription routes through the
// dev server: create (the secret shown once) → list (no secret) → rotate
// → test → deliveries → delete; dev mode admits http://127.0.0.1, never
// another http host; bad input is 400 naming the rule.
func TestWebhookSubscriptionsOverHTTP(t *testing.T) {
	s := devServer(t, t.TempDir(), nil)
	a := newTenantAdmin(t, s, "hookco")

	r := a.call(http.MethodPost, "/admin/webhooks", `{"url":"http://127.0.0.1:9999/hook","events":["tenant.kms.sealed","tenant.kms.unsealed"],"description":"local receiver"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("create: %d %s", r.status, r.raw)
	}
	id, _ := r.body["id"].(string)
	secret, _ := r.body["secret"].(string)
	if !strings.HasPrefix(id, "wh_") || !strings.HasPrefix(secret, "whsec_") || r.body["url"] != "http://127.0.0.1:9999/hook" ||
		r.body["description"] != "local receiver" || r.body["created_at"] == nil {
		t.Fatalf("create answer: %s", r.raw)
	}
	if evs, _ := r.body["events"].([]any); len(evs) != 2 {
		t.Fatalf("create answer events: %s", r.raw)
	}

	r = a.call(http.MethodGet, "/admin/webhooks", "")
	if r.status != http.StatusOK || !strings.Contains(r.raw, id) || strings.Contains(r.raw, "whsec_") || strings.Contains(r.raw, "secret") {
		t.Fatalf("list: %d %s", r.status, r.raw)
	}
	if other := newTenantAdmin(t, s, "otherco").call(http.MethodGet, "/admin/webhooks", ""); strings.Contains(other.raw, id) {
		t.Fatalf("another tenant lists the subscription: %s", other.raw)
	}

	r = a.call(http.MethodPost, "/admin/webhooks/"+id+"/rotate-secret", "")
	if r.status != http.StatusOK || r.body["previous_expires_at"] == nil {
		t.Fatalf("rotate: %d %s", r.status, r.raw)
	}
	if rotated, _ := r.body["secret"].(string); !strings.HasPrefix(rotated, "whsec_") || rotated == secret {
		t.Fatalf("rotate returned no new secret: %s", r.raw)
	}

	r = a.call(http.MethodPost, "/admin/webhooks/"+id+"/test", "")
	if r.status != http.StatusAccepted || r.body["event_id"] == nil || r.body["webhook_id"] != id {
		t.Fatalf("test: %d %s", r.status, r.raw)
	}

	r = a.call(http.MethodGet, "/admin/webhooks/"+id+"/deliveries?limit=5", "")
	if r.status != http.StatusOK || r.body["deliveries"] == nil {
		t.Fatalf("deliveries: %d %s", r.status, r.raw)
	}
	wantError(t, a.call(http.MethodGet, "/admin/webhooks/"+id+"/deliveries?limit=101", ""), 400, "invalid_request")
	wantError(t, a.call(http.MethodGet, "/admin/webhooks/"+id+"/deliveries?limit=x", ""), 400, "invalid_request")

	r = a.call(http.MethodDelete, "/admin/webhooks/"+id, "")
	if r.status != http.StatusNoContent {
		t.Fatalf("delete: %d %s", r.status, r.raw)
	}
	if r := a.call(http.MethodGet, "/admin/webhooks", ""); strings.Contains(r.raw, id) {
		t.Fatalf("list after delete: %s", r.raw)
	}
	wantError(t, a.call(http.MethodDelete, "/admin/webhooks/"+id, ""), 404, "not_found")
	wantError(t, a.call(http.MethodPost, "/admin/webhooks/"+id+"/test", ""), 404, "not_found")
	wantError(t, a.call(http.MethodGet, "/admin/webhooks/"+id+"/deliveries", ""), 404, "not_found")
}

func TestWebhookCreateBadInputOverHTTP(t *testing.T) {
	s := devServer(t, t.TempDir(), nil)
	a := newTenantAdmin(t, s, "hookco")
	for _, tc := range []struct{ body, says string }{
		{`{"url":"http://example.com/hook","events":["tenant.kms.sealed"]}`, "only to 127.0.0.1 or localhost"},
		{`{"url":"https://169.254.169.254/latest","events":["tenant.kms.sealed"]}`, "metadata"},
		{`{"url":"http://127.0.0.1:9999/hook","events":[]}`, "at least one event type"},
		{`{"url":"http://127.0.0.1:9999/hook","events":["tenant.kms.nope"]}`, "valid types"},
		{`{"url":"http://127.0.0.1:9999/hook","events":["webhook.test"]}`, "cannot be subscribed"},
		{`{"url":"http://127.0.0.1:9999/hook","events":["tenant.kms.sealed"],"secret":"mine"}`, "secret"},
		{`{"events":["tenant.kms.sealed"]}`, "url is required"},
		{`{"url":"http://127.0.0.1:9999/hook","events":["tenant.kms.sealed"],"description":"` + strings.Repeat("d", 257) + `"}`, "at most 256"},
	} {
		r := a.call(http.MethodPost, "/admin/webhooks", tc.body)
		wantError(t, r, 400, "invalid_request")
		if !strings.Contains(r.raw, tc.says) {
			t.Fatalf("%s: %s; want it to say %q", tc.body, r.raw, tc.says)
		}
	}
	if r := a.call(http.MethodGet, "/admin/webhooks", ""); r.raw != `{"webhooks":[]}` && !strings.Contains(r.raw, `"webhooks":[]`) {
		t.Fatalf("refused creates stored something: %s", r.raw)
	}
}
