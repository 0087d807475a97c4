package localserver_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/keyseal/keyseal/shared/console"
	"github.com/keyseal/keyseal/shared/localserver"
)

// TestServesTheConsole: the local server serves the admin console's page
// (with and without the trailing slash) and its two assets, each with the
// console's Content-Security-Policy, and 404 for any other file.
func TestServesTheConsole(t *testing.T) {
	s, _ := startServer(t, t.TempDir(), nil, localserver.Options{})
	for _, c := range []struct {
		path, status, ctype, body string
	}{
		{"/console", "200", "text/html", "<html"},
		{"/console/", "200", "text/html", "<html"},
		{"/console/console.js", "200", "text/javascript", "use strict"},
		{"/console/console.css", "200", "text/css", "{"},
		{"/console/secrets.txt", "404", "application/json", "not_found"},
	} {
		resp, err := http.Get(s.URL + c.path)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if got := resp.Status[:3]; got != c.status || !strings.HasPrefix(resp.Header.Get("Content-Type"), c.ctype) ||
			!strings.Contains(string(raw), c.body) {
			t.Errorf("GET %s: %s %q, %.60q; want %s %s containing %q", c.path, resp.Status, resp.Header.Get("Content-Type"), raw, c.status, c.ctype, c.body)
		}
		if got := resp.Header.Get("Content-Security-Policy"); got != console.CSP {
			t.Errorf("GET %s: CSP %q, want %q", c.path, got, console.CSP)
		}
	}
}
