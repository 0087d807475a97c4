package stack

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"strings"
)

// routesJSON is the golden copy of keyseal's one route table. The root
// module owns the table (shared/api) and a test there writes this file, so
// the API Gateway routes cannot drift from the Lambdas' routers.
//
//go:embed routes.json
var routesJSON []byte

// Route is one API route and the Lambda whose router serves it. Auth and
// StepUp are what the handler enforces (API Gateway authorizes nothing:
// the Lambdas do); the stack reads only the method, path, function and
// aliases, and checks the rest so a bad table fails at synth.
type Route struct {
	Method   string  `json:"method"`
	Path     string  `json:"path"`
	Function string  `json:"function"`
	Auth     string  `json:"auth"` // "none", "agent" or "admin"
	StepUp   bool    `json:"step_up"`
	Aliases  []Alias `json:"aliases"`
}

// Alias is another method and path served by the same handler as its
// route (seed 004's /api/v1/byok/... paths).
type Alias struct {
	Method string `json:"method"`
	Path   string `json:"path"`
}

// Routes are the routes keyseal serves, from routes.json. API Gateway sends
// everything else to no Lambda at all (403 from API Gateway), so a route
// exists only where a handler does.
var Routes = mustParseRoutes(routesJSON)

func mustParseRoutes(b []byte) []Route {
	routes, err := ParseRoutes(b)
	if err != nil {
		panic("infra/stack/routes.json: " + err.Error())
	}
	return routes
}

var (
	methods = map[string]bool{"GET": true, "POST": true, "PUT": true, "PATCH": true, "DELETE": true, "HEAD": true, "OPTIONS": true}
	auths   = map[string]bool{"none": true, "agent": true, "admin": true}
)

// ParseRoutes decodes a route table in the format of routes.json and
// rejects what API Gateway or the stack could not serve: unknown fields,
// methods, functions or auth kinds; malformed or duplicate method+path
// pairs (aliases included); step-up on a non-admin route; two differently
// named path variables under one parent.
func ParseRoutes(b []byte) ([]Route, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var routes []Route
	if err := dec.Decode(&routes); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("data after the route array")
	}
	if len(routes) == 0 {
		return nil, fmt.Errorf("no routes")
	}
	serves := map[string]bool{}
	for _, s := range fnSpecs {
		serves[s.name] = s.http
	}
	seen := map[string]bool{}
	variables := map[string]string{} // parent path -> its {variable} segment
	add := func(method, path string) error {
		if !methods[method] {
			return fmt.Errorf("method %q is not one of GET, POST, PUT, PATCH, DELETE, HEAD, OPTIONS", method)
		}
		if err := checkPath(path, variables); err != nil {
			return err
		}
		if seen[method+" "+path] {
			return fmt.Errorf("%s %s appears twice", method, path)
		}
		seen[method+" "+path] = true
		return nil
	}
	for i := range routes {
		r := &routes[i]
		if err := add(r.Method, r.Path); err != nil {
			return nil, fmt.Errorf("route %d: %w", i, err)
		}
		http, ok := serves[r.Function]
		if !ok {
			return nil, fmt.Errorf("route %d (%s %s): unknown function %q", i, r.Method, r.Path, r.Function)
		}
		if !http {
			return nil, fmt.Errorf("route %d (%s %s): function %q serves no HTTP", i, r.Method, r.Path, r.Function)
		}
		if !auths[r.Auth] {
			return nil, fmt.Errorf("route %d (%s %s): auth %q is not none, agent or admin", i, r.Method, r.Path, r.Auth)
		}
		if r.StepUp && r.Auth != "admin" {
			return nil, fmt.Errorf("route %d (%s %s): step-up needs admin auth, not %q", i, r.Method, r.Path, r.Auth)
		}
		for _, a := range r.Aliases {
			if IsSlashAlias(*r, a) {
				// API Gateway routes path/ to path's own resource.
				if seen[a.Method+" "+a.Path] {
					return nil, fmt.Errorf("route %d (%s %s) alias: %s %s appears twice", i, r.Method, r.Path, a.Method, a.Path)
				}
				seen[a.Method+" "+a.Path] = true
				continue
			}
			if err := add(a.Method, a.Path); err != nil {
				return nil, fmt.Errorf("route %d (%s %s) alias: %w", i, r.Method, r.Path, err)
			}
		}
		if r.Aliases == nil {
			r.Aliases = []Alias{}
		}
	}
	return routes, nil
}

// IsSlashAlias reports whether a is r's own path with a trailing slash
// (GET /console/ beside GET /console). API Gateway REST serves such a
// request from the resource without the slash and keeps the slash in the
// event's path, so the alias needs, and can have, no resource of its own.
func IsSlashAlias(r Route, a Alias) bool {
	return a.Method == r.Method && r.Path != "/" && a.Path == r.Path+"/"
}

// checkPath accepts /a/b/{c}: no empty segments, no trailing slash, braces
// only around a whole segment, and one variable name per parent (API
// Gateway allows a single variable child per resource).
func checkPath(path string, variables map[string]string) error {
	if path == "/" {
		return nil
	}
	if !strings.HasPrefix(path, "/") || strings.HasSuffix(path, "/") || strings.ContainsAny(path, "?#") {
		return fmt.Errorf("path %q: want /segment/..., no trailing slash or query", path)
	}
	segs := strings.Split(path[1:], "/")
	for i, seg := range segs {
		parent := "/" + strings.Join(segs[:i], "/")
		variable := strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") && len(seg) > 2
		switch {
		case seg == "":
			return fmt.Errorf("path %q: empty segment", path)
		case !variable && strings.ContainsAny(seg, "{}"):
			return fmt.Errorf("path %q: segment %q: a variable is a whole {segment}", path, seg)
		case variable:
			if prev, ok := variables[parent]; ok && prev != seg {
				return fmt.Errorf("path %q: %s under %s, where the table already has %s", path, seg, parent, prev)
			}
			variables[parent] = seg
		}
	}
	return nil
}
