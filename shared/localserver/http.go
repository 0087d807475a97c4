// Package localserver runs keyseal's Lambda handlers behind a plain HTTP
// server, with the poller in process: `make run` (dev mode) and the
// LocalStack mode. Requests are turned into the same API Gateway proxy
// events API Gateway sends, so local runs exercise the Lambda code.
package localserver

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keyseal/keyseal/shared/api"
)

// Handler adapts a Router to net/http.
func Handler(router *api.Router) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Read one byte past the limit so the router can reject oversized
		// bodies with its own clear error.
		if headersTooLarge(r) {
			writeJSONError(w, http.StatusRequestHeaderFieldsTooLarge, "invalid_request", fmt.Sprintf("request headers are larger than %d bytes", MaxHeaderBytes))
			return
		}
		body, err := io.ReadAll(io.LimitReader(r.Body, api.MaxBody+1))
		if err != nil {
			writeJSONError(w, http.StatusBadRequest, "invalid_request", "cannot read the request body (cut off, or slower than the read timeout)")
			return
		}
		// A path whose percent-escapes are not the canonical ones (up to
		// the case of hex digits), such as "/%64ev/admin-token" or
		// "/admin%2Faudit", is passed as sent, so it matches no route,
		// rather than decoded into one a proxy's path rule did not see.
		path := r.URL.Path
		if sent := r.URL.EscapedPath(); !strings.EqualFold(sent, (&url.URL{Path: path}).EscapedPath()) {
			path = sent
		}
		ev := events.APIGatewayProxyRequest{
			HTTPMethod:                      r.Method,
			Path:                            path,
			Resource:                        path,
			Headers:                         map[string]string{},
			MultiValueHeaders:               map[string][]string(r.Header),
			QueryStringParameters:           map[string]string{},
			MultiValueQueryStringParameters: map[string][]string(r.URL.Query()),
			Body:                            string(body),
			RequestContext:                  events.APIGatewayProxyRequestContext{RequestID: requestID(), Stage: "local"},
		}
		for k, v := range r.Header {
			ev.Headers[k] = v[0]
		}
		for k, v := range r.URL.Query() {
			ev.QueryStringParameters[k] = v[0]
		}
		resp, _ := router.Handle(r.Context(), ev) // Handle never returns an error
		for k, v := range resp.Headers {
			w.Header().Set(k, v)
		}
		w.WriteHeader(resp.StatusCode)
		io.WriteString(w, resp.Body)
	})
}

func requestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
