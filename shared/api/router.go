// Package api turns API Gateway REST (v1) proxy events into calls on
// keyseal's services and back. Each Lambda serves a set of Routes through a
// Router; the local server serves the union of all sets through the same
// Router, so local runs exercise the Lambda code paths.
package api

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keyseal/keyseal/shared/keyseal"
)

// MaxBody is the largest request body accepted (SPEC §3).
const MaxBody = 64 << 10

// Style selects the error body shape.
type Style int

// Error body styles: the agent API nests the error object, the admin API
// flattens it (seed 000's shapes).
const (
	StyleAdmin Style = iota
	StyleAgent
)

// Request is one API call.
type Request struct {
	events.APIGatewayProxyRequest
	// Params holds the values of {name} path segments.
	Params map[string]string
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

// Response is what a handler answers.
type Response struct {
	Status  int
	Body    any
	Headers map[string]string
}

// JSON is a Response with a JSON body.
func JSON(status int, body any) Response { return Response{Status: status, Body: body} }

// HandlerFunc serves one route. A returned error becomes the JSON error body
// of its code (see keyseal.StatusOf).
type HandlerFunc func(ctx context.Context, r *Request) (Response, error)

// Route binds a method and a path pattern ("/admin/agents/{id}") to a
// handler.
type Route struct {
	Method  string
	Path    string
	Style   Style
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

// Routes returns the routes the router serves.
func (rt *Router) Routes() []Route { return rt.routes }

// Handle serves one API Gateway proxy event.
func (rt *Router) Handle(ctx context.Context, ev events.APIGatewayProxyRequest) (events.APIGatewayProxyResponse, error) {
	start := time.Now()
	route, params, allowed := rt.match(ev.HTTPMethod, ev.Path)
	style := StyleAdmin
	if strings.HasPrefix(ev.Path, "/agent/") {
		style = StyleAgent
	}
	var resp Response
	var err error
	switch {
	case route != nil:
		style = route.Style
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

func matchPath(pattern, path string) (map[string]string, bool) {
	ps := strings.Split(strings.Trim(pattern, "/"), "/")
	xs := strings.Split(strings.Trim(path, "/"), "/")
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

// errorResponse renders err in the route's style. 5xx bodies say only
// "internal error"; the real error is logged once here.
func (rt *Router) errorResponse(ctx context.Context, ev events.APIGatewayProxyRequest, style Style, err error, headers map[string]string) Response {
	code := keyseal.ErrorCode(err)
	status := keyseal.StatusOf(code)
	msg := keyseal.ErrorMessage(err)
	if code == keyseal.EINTERNAL {
		rt.log.ErrorContext(ctx, "internal error", "method", ev.HTTPMethod, "path", ev.Path, "err", err)
	}
	var e *keyseal.Error
	errors.As(err, &e)
	if headers == nil {
		headers = map[string]string{}
	}
	if e != nil {
		for k, v := range e.Header {
			headers[k] = v
		}
	}
	if style == StyleAgent {
		return Response{Status: status, Headers: headers, Body: map[string]any{"error": map[string]string{"type": code, "message": msg}}}
	}
	body := map[string]any{}
	if e != nil {
		for k, v := range e.Extra {
			body[k] = v
		}
	}
	body["error"] = code
	body["message"] = msg
	return Response{Status: status, Headers: headers, Body: body}
}

func encode(r Response) events.APIGatewayProxyResponse {
	out := events.APIGatewayProxyResponse{StatusCode: r.Status, Headers: map[string]string{
		"Content-Type": "application/json", "Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
	}}
	for k, v := range r.Headers {
		out.Headers[k] = v
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

// Decode reads a JSON body into v: at most MaxBody bytes, no unknown
// fields, one value. An empty body decodes as {} when allowEmpty.
func Decode(r *Request, v any, allowEmpty bool) error {
	body := []byte(r.Body)
	if r.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(r.Body)
		if err != nil {
			return keyseal.Errorf(keyseal.EINVALID, "body is not valid base64")
		}
		body = b
	}
	if len(body) > MaxBody {
		return keyseal.Errorf(keyseal.EINVALID, "request body is larger than %d bytes", MaxBody)
	}
	if strings.TrimSpace(string(body)) == "" {
		if allowEmpty {
			return nil
		}
		return keyseal.Errorf(keyseal.EINVALID, "request body is required (JSON)")
	}
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return keyseal.Errorf(keyseal.EINVALID, "malformed JSON body: %s", jsonProblem(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return keyseal.Errorf(keyseal.EINVALID, "malformed JSON body: unexpected data after the JSON value")
	}
	return nil
}

// jsonProblem describes a decode error without echoing the body.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q must be %s", te.Field, te.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return strings.TrimPrefix(err.Error(), "json: ")
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	}
	return "not a JSON object"
}
