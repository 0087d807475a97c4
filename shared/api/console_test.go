package api_test

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/console"
)

// consoleGet serves GET path through the admin Lambda's own routes (the
// console needs none of Deps' services).
func consoleGet(t *testing.T, path string) events.APIGatewayProxyResponse {
	t.Helper()
	rt := api.NewRouter(discard(), (&api.Deps{}).AdminRoutes())
	resp, err := rt.Handle(context.Background(), events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: path})
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func TestConsoleServesItsFilesWithTheCSP(t *testing.T) {
	for _, c := range []struct{ path, contentType, contains string }{
		{"/console/", "text/html; charset=utf-8", `<script src="./console.js" defer></script>`},
		// Without the slash (a gateway may drop it) the links point into
		// the folder instead of being redirected there.
		{"/console", "text/html; charset=utf-8", `<script src="console/console.js" defer></script>`},
		{"/console/console.js", "text/javascript; charset=utf-8", "'use strict'"},
		{"/console/console.css", "text/css; charset=utf-8", "--danger"},
	} {
		resp := consoleGet(t, c.path)
		if resp.StatusCode != 200 || resp.Headers["Content-Type"] != c.contentType || !strings.Contains(resp.Body, c.contains) {
			t.Errorf("GET %s: %d %q, body has %q: %v", c.path, resp.StatusCode, resp.Headers["Content-Type"], c.contains, strings.Contains(resp.Body, c.contains))
		}
		if got := resp.Headers["Content-Security-Policy"]; got != console.CSP {
			t.Errorf("GET %s: CSP %q, want %q", c.path, got, console.CSP)
		}
		if resp.Headers["X-Frame-Options"] != "DENY" || resp.Headers["Cache-Control"] != "no-store" {
			t.Errorf("GET %s: headers %v", c.path, resp.Headers)
		}
		if strings.Contains(resp.Body, "%BASE%") {
			t.Errorf("GET %s: an unfilled %%BASE%% link", c.path)
		}
	}
}

func TestConsoleRefusesOtherFiles(t *testing.T) {
	for _, path := range []string{"/console/index.html", "/console/nope.js", "/console/..%2Fconsole.go", "/console/console.go", "/console/.hidden.css"} {
		resp := consoleGet(t, path)
		if resp.StatusCode != 404 || !strings.Contains(resp.Body, `"not_found"`) {
			t.Errorf("GET %s: %d %s, want 404 not_found", path, resp.StatusCode, resp.Body)
		}
		if resp.Headers["Content-Security-Policy"] != console.CSP {
			t.Errorf("GET %s: error without the CSP: %v", path, resp.Headers)
		}
	}
}

func TestConsoleCSPIsStrict(t *testing.T) {
	for _, want := range []string{"default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'",
		"frame-ancestors 'none'", "base-uri 'none'", "form-action 'none'"} {
		if !strings.Contains(console.CSP, want) {
			t.Errorf("CSP %q lacks %q", console.CSP, want)
		}
	}
	if strings.Contains(console.CSP, "unsafe") || strings.Contains(console.CSP, "*") || strings.Contains(console.CSP, "http") {
		t.Errorf("CSP %q allows more than its own origin", console.CSP)
	}
}
