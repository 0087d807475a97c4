package localserver_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestWebhookRoutesBadInputOverHTTP: every /admin/webhooks route answers
// bad input with a 4xx naming it, never a 500.
func TestWebhookRoutesBadInputOverHTTP(t *testing.T) {
	s := devServer(t, t.TempDir(), nil)
	a := newTenantAdmin(t, s, "hookco")
	created := a.call(http.MethodPost, "/admin/webhooks", `{"url":"http://127.0.0.1:9999/hook","events":["tenant.kms.sealed"]}`)
	if created.status != http.StatusCreated {
		t.Fatalf("create: %d %s", created.status, created.raw)
	}
	id := created.body["id"].(string)
	long := "http://127.0.0.1:9999/" + strings.Repeat("a", 2048)
	for _, tc := range []struct {
		method, path, body string
		status             int
	}{
		{http.MethodPost, "/admin/webhooks", `{"url":`, 400},
		{http.MethodPost, "/admin/webhooks", `[]`, 400},
		{http.MethodPost, "/admin/webhooks", `{"url":"http://127.0.0.1:9999/hook","events":"tenant.kms.sealed"}`, 400},
		{http.MethodPost, "/admin/webhooks", `{"url":"http://127.0.0.1:9999/hook","events":null}`, 400},
		{http.MethodPost, "/admin/webhooks", `{"url":"http://127.0.0.1:9999/hook","events":["tenant.kms.sealed"],"extra":1}`, 400},
		{http.MethodPost, "/admin/webhooks", `{"url":"` + long + `","events":["tenant.kms.sealed"]}`, 400},
		{http.MethodPost, "/admin/webhooks", `{"url":"http://127.0.0.1:99999/hook","events":["tenant.kms.sealed"]}`, 400},
		{http.MethodPost, "/admin/webhooks", `{"url":"http://127.0.0.1:0/hook","events":["tenant.kms.sealed"]}`, 400},
		{http.MethodPost, "/admin/webhooks", `{"url":"http://127.0.0.1:x/hook","events":["tenant.kms.sealed"]}`, 400},
		{http.MethodPost, "/admin/webhooks", `{"url":"https://[::1]/hook","events":["tenant.kms.sealed"]}`, 400},
		{http.MethodPost, "/admin/webhooks", `{"url":"https://[::ffff:169.254.169.254]/hook","events":["tenant.kms.sealed"]}`, 400},
		{http.MethodPost, "/admin/webhooks", `{"url":"https://[fe80::1%25eth0]/hook","events":["tenant.kms.sealed"]}`, 400},
		{http.MethodPost, "/admin/webhooks", `{"url":"https://10.1.2.3/hook","events":["tenant.kms.sealed"]}`, 400},
		{http.MethodPost, "/admin/webhooks", `{"url":"http://localhost.:9999/hook","events":["tenant.kms.sealed"]}`, 400},
		{http.MethodPost, "/admin/webhooks", `{"url":"ftp://127.0.0.1/hook","events":["tenant.kms.sealed"]}`, 400},
		{http.MethodPost, "/admin/webhooks", `{"url":"/relative","events":["tenant.kms.sealed"]}`, 400},
		{http.MethodPost, "/admin/webhooks", `{"url":"http://127.0.0.1:9999/hook","events":["tenant.kms.sealed","tenant.kms.sealed"]}`, 400},
		{http.MethodPost, "/admin/webhooks", `{"url":"http://127.0.0.1:9999/hook","events":["tenant.kms.sealed"],"description":"a\u0000b"}`, 400},
		{http.MethodPost, "/admin/webhooks/" + id + "/rotate-secret", `{"x":1}`, 400},
		{http.MethodPost, "/admin/webhooks/" + id + "/rotate-secret", `garbage`, 400},
		{http.MethodPost, "/admin/webhooks/" + id + "/test", `{"x":1}`, 400},
		{http.MethodPost, "/admin/webhooks/" + id + "/test", `{`, 400},
		{http.MethodGet, "/admin/webhooks/" + id + "/deliveries?limit=0", "", 400},
		{http.MethodGet, "/admin/webhooks/" + id + "/deliveries?limit=-1", "", 400},
		{http.MethodGet, "/admin/webhooks/" + id + "/deliveries?limit=101", "", 400},
		{http.MethodGet, "/admin/webhooks/" + id + "/deliveries?limit=abc", "", 400},
		{http.MethodGet, "/admin/webhooks/" + id + "/deliveries?limit=99999999999999999999", "", 400},
		{http.MethodDelete, "/admin/webhooks/nope", "", 404},
		{http.MethodDelete, "/admin/webhooks/" + strings.Repeat("x", 3000), "", 404},
		{http.MethodDelete, "/admin/webhooks/wh_%00", "", 404},
		{http.MethodPost, "/admin/webhooks/nope/rotate-secret", "", 404},
		{http.MethodPost, "/admin/webhooks/nope/test", "", 404},
		{http.MethodGet, "/admin/webhooks/nope/deliveries", "", 404},
		{http.MethodGet, "/admin/webhooks/" + strings.Repeat("x", 3000) + "/deliveries", "", 404},
	} {
		r := a.call(tc.method, tc.path, tc.body)
		if r.status != tc.status {
			t.Errorf("%s %.80s %.100s: %d %.300s; want %d", tc.method, tc.path, tc.body, r.status, r.raw, tc.status)
		}
	}
	// The 21st subscription is refused.
	for i := 1; i < 20; i++ {
		if r := a.call(http.MethodPost, "/admin/webhooks", fmt.Sprintf(`{"url":"http://127.0.0.1:9999/%d","events":["tenant.kms.sealed"]}`, i)); r.status != http.StatusCreated {
			t.Fatalf("create %d: %d %s", i+1, r.status, r.raw)
		}
	}
	r := a.call(http.MethodPost, "/admin/webhooks", `{"url":"http://127.0.0.1:9999/21","events":["tenant.kms.sealed"]}`)
	wantError(t, r, 400, "invalid_request")
}

// TestWebhookRoutesOtherTenantOverHTTP: another tenant's admin gets 404
// on each route naming the subscription, and changes nothing.
func TestWebhookRoutesOtherTenantOverHTTP(t *testing.T) {
	s := devServer(t, t.TempDir(), nil)
	a := newTenantAdmin(t, s, "hookco")
	created := a.call(http.MethodPost, "/admin/webhooks", `{"url":"http://127.0.0.1:9999/hook","events":["tenant.kms.sealed"]}`)
	if created.status != http.StatusCreated {
		t.Fatalf("create: %d %s", created.status, created.raw)
	}
	id := created.body["id"].(string)
	other := newTenantAdmin(t, s, "otherco")
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, "/admin/webhooks/" + id + "/rotate-secret"},
		{http.MethodPost, "/admin/webhooks/" + id + "/test"},
		{http.MethodGet, "/admin/webhooks/" + id + "/deliveries"},
		{http.MethodDelete, "/admin/webhooks/" + id},
	} {
		wantError(t, other.call(c.method, c.path, ""), 404, "not_found")
	}
	if r := a.call(http.MethodGet, "/admin/webhooks", ""); !strings.Contains(r.raw, id) {
		t.Fatalf("the owner's subscription is gone: %s", r.raw)
	}
	if r := a.call(http.MethodGet, "/admin/audit?action=webhook.rotate_secret", ""); strings.Contains(r.raw, id) {
		t.Fatalf("another tenant's rotation was audited: %s", r.raw)
	}
}
