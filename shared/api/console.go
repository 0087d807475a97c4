package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/keyseal/keyseal/shared/console"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// consoleHeaders are the headers of every console response, errors
// included: the strict CSP, no framing, no sniffing, no referrer, and no
// caching of a page whose script holds a token.
func consoleHeaders(contentType string) map[string]string {
	h := map[string]string{
		"Content-Security-Policy": console.CSP,
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
		"Cache-Control":           "no-store",
	}
	if contentType != "" {
		h["Content-Type"] = contentType
	}
	return h
}

// consolePage serves GET /console and /console/: the page. API Gateway
// routes both to one resource, and some gateways drop the trailing slash,
// so the page is served at either URL rather than redirected from one to
// the other (a redirect could loop); its asset links are made relative to
// the URL it was served at.
func (d *Deps) consolePage(_ context.Context, r *Request) (Response, error) {
	body, ct, _ := console.Asset(console.Index)
	base := "./"
	if !strings.HasSuffix(r.Path, "/") {
		base = "console/"
	}
	return Response{Status: http.StatusOK, Headers: consoleHeaders(ct),
		Text: strings.ReplaceAll(string(body), "%BASE%", base)}, nil
}

// consoleAsset serves GET /console/{asset}: the script and the style sheet.
func (d *Deps) consoleAsset(_ context.Context, r *Request) (Response, error) {
	name := r.Params["asset"]
	body, ct, ok := console.Asset(name)
	if !ok || name == console.Index {
		return Response{Headers: consoleHeaders("")}, keyseal.Errorf(keyseal.ENOTFOUND, "the console has no file %q", name)
	}
	return Response{Status: http.StatusOK, Headers: consoleHeaders(ct), Text: string(body)}, nil
}
