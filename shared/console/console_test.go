package console_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/keyseal/keyseal/shared/console"
)

func TestAssets(t *testing.T) {
	for name, ct := range map[string]string{console.Index: "text/html; charset=utf-8",
		"console.js": "text/javascript; charset=utf-8", "console.css": "text/css; charset=utf-8"} {
		b, got, ok := console.Asset(name)
		if !ok || got != ct || len(b) == 0 {
			t.Errorf("Asset(%q) = %d bytes, %q, %v; want %q", name, len(b), got, ok, ct)
		}
	}
	for _, name := range []string{"", "static/console.js", "../console.go", "console.go", ".x.js", "missing.css", "console"} {
		if _, _, ok := console.Asset(name); ok {
			t.Errorf("Asset(%q) served", name)
		}
	}
}

// The CSP allows no inline script or style, so the page must have none:
// no <script> body, no <style>, no style= or on...= attribute, and no
// link to another origin.
func TestPageHasNothingTheCSPWouldBlock(t *testing.T) {
	page, _, _ := console.Asset(console.Index)
	html := string(page)
	for _, re := range []string{`<script[^>]*>[^<]+</script>`, `<style`, `\sstyle=`, `\son[a-z]+=`, `(src|href)="(https?:)?//`, `javascript:`} {
		if m := regexp.MustCompile(`(?i)` + re).FindString(html); m != "" {
			t.Errorf("index.html has %q (pattern %s)", m, re)
		}
	}
	js, _, _ := console.Asset("console.js")
	for _, bad := range []string{"innerHTML", "localStorage", "sessionStorage", "document.cookie", "eval(", "new Function", "http://", "https://"} {
		if strings.Contains(string(js), bad) {
			t.Errorf("console.js uses %q", bad)
		}
	}
}
