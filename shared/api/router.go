// Package api turns API Gateway REST (v1) proxy events into calls on
// keyseal's services and back. One table (Table, routes.go) says which
// routes exist, which Lambda serves each, and what auth and step-up each
// needs; it drives the Lambdas' routers, the local server, and (through the
// golden file infra/stack/routes.json) the CDK API. The local server serves
// every row through the same Router, so local runs exercise the Lambda code.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// MaxBody is the largest request body accepted (docs/contract.md §3).
const MaxBody = 64 << 10

// Style selects the error body shape.
type Style int

// Error body styles: the agent API (every path under /agent/) nests the
// error object, the admin API flattens it (seed 000's shapes).
const (
	StyleAdmin Style = iota
	StyleAgent
)

func styleOf(path string) Style {
	if strings.HasPrefix(path, "/agent/") {
		return StyleAgent
	}
	return StyleAdmin
}

// Request is one API call.
type Request struct {
	events.APIGatewayProxyRequest
	// Params holds the values of {name} path segments.
	Params map[string]string
	// Admin is the verified admin of an admin route, Agent the
	// authenticated agent of an agent route; nil otherwise.
	Admin *auth.Admin
	Agent *keyseal.Agent
	// stepUp consumes the request's step-up token on a step-up route.
	stepUp     func(ctx context.Context) error
	stepUpUsed bool
}

// ConsumeStepUp spends the request's step-up token (header
// auth.StepUpHeader). A handler of a step-up route calls it after
// validating its input, so a typo in a body never burns a token; the router
// refuses to answer success for a step-up route that did not.
func (r *Request) ConsumeStepUp(ctx context.Context) error {
	if r.stepUp == nil {
		return errors.New("api: step-up consumed on a route the table does not mark step_up")
	}
	r.stepUpUsed = true
	return r.stepUp(ctx)
}

// Header returns a request header, case-insensitively.
func (r *Request) Header(name string) string {
	for k, v := range r.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	for k, v := range r.MultiValueHeaders {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// Response is what a handler answers: Body encoded as JSON, or Text sent
// as it is (the console's page, script and style sheet, whose Headers then
// name the Content-Type).
type Response struct {
	Status  int
	Body    any
	Text    string
	Headers map[string]string
}

// JSON is a Response with a JSON body.
func JSON(status int, body any) Response { return Response{Status: status, Body: body} }

// HandlerFunc serves one route. A returned error becomes the JSON error body
// of its code (see StatusOf).
type HandlerFunc func(ctx context.Context, r *Request) (Response, error)

// Route binds a method and a path pattern ("/admin/agents/{id}") to a
// handler: a row of Table bound to its service (Deps.Routes), or a local
// server's own /dev route.
type Route struct {
	Method  string
	Path    string
	Handler HandlerFunc
}

// Router dispatches proxy events to routes. It never returns a Go error to
// Lambda: API Gateway would turn one into a bare 502.
type Router struct {
	routes []Route
	log    *slog.Logger
}

// NewRouter returns a Router over routes.
func NewRouter(log *slog.Logger, routes ...[]Route) *Router {
	r := &Router{log: log}
	for _, set := range routes {
		r.routes = append(r.routes, set...)
	}
	return r
}

// Handle serves one API Gateway proxy event.
func (rt *Router) Handle(ctx context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	start := time.Now()
	route, params, allowed := rt.match(ev.HTTPMethod, ev.Path)
	style := styleOf(ev.Path)
	var resp Response
	var err error
	switch {
	case !validUTF8(ev):
		err = keyseal.Errorf(keyseal.EINVALID, "the request path or query string is not valid UTF-8")
	case route != nil:
		resp, err = rt.call(ctx, route, &Request{APIGatewayProxyRequest: ev, Params: params})
	case len(allowed) > 0:
		err = keyseal.Errorf(keyseal.EMETHOD, "method %s is not allowed on %s (allowed: %s)", ev.HTTPMethod, ev.Path, strings.Join(allowed, ", "))
		resp.Headers = map[string]string{"Allow": strings.Join(allowed, ", ")}
	default:
		err = keyseal.Errorf(keyseal.ENOTFOUND, "no route %s %s", ev.HTTPMethod, ev.Path)
	}
	if err != nil {
		resp = rt.errorResponse(ctx, ev, style, err, resp.Headers)
	}
	out := encode(resp)
	rt.log.InfoContext(ctx, "request", "method", ev.HTTPMethod, "path", ev.Path, "status", out.StatusCode,
		"ms", time.Since(start).Milliseconds(), "request_id", ev.RequestContext.RequestID)
	return out, nil
}

// call runs a handler, turning a panic into a 500 rather than a crashed
// Lambda.
func (rt *Router) call(ctx context.Context, route *Route, r *Request) (resp Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic in %s %s: %v\n%s", route.Method, route.Path, p, debug.Stack())
		}
	}()
	return route.Handler(ctx, r)
}

func (rt *Router) match(method, path string) (*Route, map[string]string, []string) {
	var allowed []string
	for i := range rt.routes {
		params, ok := matchPath(rt.routes[i].Path, path)
		if !ok {
			continue
		}
		if rt.routes[i].Method == method {
			return &rt.routes[i], params, nil
		}
		allowed = append(allowed, rt.routes[i].Method)
	}
	return nil, nil, allowed
}

// matchPath matches path exactly: no slash is trimmed or merged, so
// "//admin/audit" and "/admin/audit/" are not "/admin/audit". A proxy's
// path-prefix rule in front of keyseal then sees the path keyseal serves.
func matchPath(pattern, path string) (map[string]string, bool) {
	ps := strings.Split(pattern, "/")
	xs := strings.Split(path, "/")
	if len(ps) != len(xs) {
		return nil, false
	}
	var params map[string]string
	for i, p := range ps {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			if xs[i] == "" {
				return nil, false
			}
			if params == nil {
				params = map[string]string{}
			}
			params[p[1:len(p)-1]] = xs[i]
			continue
		}
		if p != xs[i] {
			return nil, false
		}
	}
	return params, true
}

// validUTF8 reports whether the path and every query parameter are valid
// UTF-8: a string keyseal would otherwise store or compare with U+FFFD in
// place of the bytes sent is refused instead. (Bodies: Decode.)
func validUTF8(ev events.APIGatewayProxyRequest) bool {
	if !utf8.ValidString(ev.Path) {
		return false
	}
	for k, v := range ev.QueryStringParameters {
		if !utf8.ValidString(k) || !utf8.ValidString(v) {
			return false
		}
	}
	for k, vs := range ev.MultiValueQueryStringParameters {
		if !utf8.ValidString(k) {
			return false
		}
		for _, v := range vs {
			if !utf8.ValidString(v) {
				return false
			}
		}
	}
	return true
}

func encode(r Response) events.APIGatewayProxyResponse {
	out := events.APIGatewayProxyResponse{StatusCode: r.Status, Headers: map[string]string{
		"Content-Type": "application/json", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
	}}
	for k, v := range r.Headers {
		out.Headers[k] = v
	}
	if r.Body == nil && r.Text != "" {
		out.Body = r.Text
	}
	if r.Body != nil {
		b, err := json.Marshal(r.Body)
		if err != nil {
			out.StatusCode = http.StatusInternalServerError
			b = []byte(`{"error":"internal","message":"internal error"}`)
		}
		out.Body = string(b)
	}
	return out
}
