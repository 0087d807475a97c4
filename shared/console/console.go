// Package console is keyseal's admin console: one static page (HTML, one
// script, one style sheet; no build step, no third-party code) embedded in
// the binary. The admin Lambda serves it at /console/ (shared/api
// console.go) and so does the local server; the page calls the admin API
// of the same origin with a token it keeps in memory only.
package console

import (
	"embed"
	"strings"
)

//go:embed static
var files embed.FS

// CSP is the Content-Security-Policy of every console response: the page
// loads its own script and style sheet and talks to its own origin, and
// nothing else (no inline script or style, no frames, no forms, no base).
const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; " +
	"frame-ancestors 'none'; base-uri 'none'; form-action 'none'"

// Index is the asset name of the page itself.
const Index = "index.html"

// contentTypes are the asset kinds the console ships.
var contentTypes = map[string]string{
	".html": "text/html; charset=utf-8",
	".js":   "text/javascript; charset=utf-8",
	".css":  "text/css; charset=utf-8",
}

// Asset returns the embedded file name (Index, "console.js",
// "console.css") and its Content-Type; ok is false for any other name,
// including one that tries to leave the folder.
func Asset(name string) (body []byte, contentType string, ok bool) {
	if name == "" || strings.ContainsAny(name, `/\`) || strings.HasPrefix(name, ".") {
		return nil, "", false
	}
	dot := strings.LastIndexByte(name, '.')
	if dot < 0 {
		return nil, "", false
	}
	ct, known := contentTypes[name[dot:]]
	if !known {
		return nil, "", false
	}
	b, err := files.ReadFile("static/" + name)
	if err != nil {
		return nil, "", false
	}
	return b, ct, true
}
