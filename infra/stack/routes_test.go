package stack

import (
	"bytes"
	"encoding/json"
	"os"
	"sort"
	"strings"
	"testing"
)

// TestRoutesFileIsCanonical pins routes.json to the bytes the root
// module's generator writes: json.MarshalIndent of []Route with a 2-space
// indent, keys in struct order, "aliases": [] when there are none, and a
// trailing newline. A hand edit that drifts from that format fails here.
func TestRoutesFileIsCanonical(t *testing.T) {
	b, err := json.MarshalIndent(Routes, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	if !bytes.Equal(b, routesJSON) {
		t.Fatalf("routes.json is not in the canonical format; re-encoded it reads:\n%s", b)
	}
}

// TestRoutesNameExactlyTheHTTPFunctions: every function routes.json names
// has an fnSpec that serves HTTP, and every fnSpec that serves HTTP has at
// least one route.
func TestRoutesNameExactlyTheHTTPFunctions(t *testing.T) {
	specs := map[string]fnSpec{}
	for _, s := range fnSpecs {
		specs[s.name] = s
	}
	named := map[string]bool{}
	for _, r := range Routes {
		named[r.Function] = true
		s, ok := specs[r.Function]
		if !ok {
			t.Errorf("%s %s: function %q has no fnSpec", r.Method, r.Path, r.Function)
		} else if !s.http {
			t.Errorf("%s %s: function %q is not an HTTP function", r.Method, r.Path, r.Function)
		}
	}
	for _, s := range fnSpecs {
		if s.http && !named[s.name] {
			t.Errorf("function %q serves HTTP but no route in routes.json names it", s.name)
		}
	}
}

// TestFunctionFolders: the stack deploys exactly the Lambdas `make build`
// builds, one per folder under functions/.
func TestFunctionFolders(t *testing.T) {
	entries, err := os.ReadDir("../../functions")
	if err != nil {
		t.Fatal(err)
	}
	var folders []string
	for _, e := range entries {
		if e.IsDir() {
			folders = append(folders, e.Name())
		}
	}
	names := FunctionNames()
	sort.Strings(folders)
	sort.Strings(names)
	if strings.Join(folders, ",") != strings.Join(names, ",") {
		t.Fatalf("functions/ has %v, the stack deploys %v", folders, names)
	}
}

func TestParseRoutes(t *testing.T) {
	// route renders one route object; fields override the defaults.
	route := func(fields ...string) string {
		f := map[string]string{"method": `"GET"`, "path": `"/x"`, "function": `"health"`, "auth": `"none"`, "step_up": "false", "aliases": "[]"}
		for i := 0; i+1 < len(fields); i += 2 {
			f[fields[i]] = fields[i+1]
		}
		var parts []string
		for _, k := range []string{"method", "path", "function", "auth", "step_up", "aliases"} {
			if f[k] != "-" {
				parts = append(parts, `"`+k+`": `+f[k])
			}
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	table := func(routes ...string) string { return "[" + strings.Join(routes, ",") + "]" }

	t.Run("Valid", func(t *testing.T) {
		in := table(
			route("path", `"/a/{id}"`, "aliases", "-"),
			route("method", `"PUT"`, "path", `"/a/{id}/b"`, "function", `"admin-tenant-kms"`, "auth", `"admin"`, "step_up", "true",
				"aliases", `[{"method": "POST", "path": "/api/v1/b"}]`),
		)
		routes, err := ParseRoutes([]byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if len(routes) != 2 || routes[0].Aliases == nil || len(routes[0].Aliases) != 0 ||
			!routes[1].StepUp || routes[1].Aliases[0] != (Alias{Method: "POST", Path: "/api/v1/b"}) {
			t.Fatalf("parsed %+v", routes)
		}
	})

	t.Run("SlashAlias", func(t *testing.T) {
		// GET /console/ beside GET /console: API Gateway serves both from
		// one resource, so the alias parses and adds no resource.
		routes, err := ParseRoutes([]byte(table(route("path", `"/console"`, "aliases", `[{"method": "GET", "path": "/console/"}]`))))
		if err != nil {
			t.Fatal(err)
		}
		if !IsSlashAlias(routes[0], routes[0].Aliases[0]) {
			t.Fatalf("%+v: not a slash alias", routes[0])
		}
	})

	for _, c := range []struct{ name, in, want string }{
		{"SlashAliasOfAnotherPath", table(route("aliases", `[{"method": "GET", "path": "/y/"}]`)), `alias: path "/y/"`},
		{"SlashAliasOfAnotherMethod", table(route("aliases", `[{"method": "POST", "path": "/x/"}]`)), `alias: path "/x/"`},
		{"NotJSON", `[{`, "unexpected EOF"},
		{"WrongType", table(route("step_up", `"yes"`)), "cannot unmarshal"},
		{"UnknownField", table(route("aliases", `[], "stepup": true`)), `unknown field "stepup"`},
		{"DataAfterTheArray", table(route()) + " []", "data after the route array"},
		{"Empty", `[]`, "no routes"},
		{"UnknownFunction", table(route("function", `"sessions"`)), `unknown function "sessions"`},
		{"FunctionWithoutHTTP", table(route("function", `"verify-poller"`)), `"verify-poller" serves no HTTP`},
		{"UnknownAuth", table(route("auth", `"jwt"`)), `auth "jwt" is not none, agent or admin`},
		{"MissingAuth", table(route("auth", "-")), `auth "" is not`},
		{"StepUpWithoutAdmin", table(route("auth", `"agent"`, "step_up", "true")), `step-up needs admin auth, not "agent"`},
		{"LowercaseMethod", table(route("method", `"get"`)), `method "get" is not one of`},
		{"RelativePath", table(route("path", `"health"`)), `path "health"`},
		{"TrailingSlash", table(route("path", `"/health/"`)), `path "/health/"`},
		{"Query", table(route("path", `"/health?x=1"`)), `path "/health?x=1"`},
		{"EmptySegment", table(route("path", `"/a//b"`)), "empty segment"},
		{"PartVariable", table(route("path", `"/a/x{id}"`)), "a variable is a whole {segment}"},
		{"Duplicate", table(route(), route("function", `"session-issue"`)), "route 1: GET /x appears twice"},
		{"AliasOfAnotherRoute", table(route(), route("path", `"/y"`, "aliases", `[{"method": "GET", "path": "/x"}]`)),
			"route 1 (GET /y) alias: GET /x appears twice"},
		{"AliasMethod", table(route("aliases", `[{"method": "FETCH", "path": "/y"}]`)), `alias: method "FETCH"`},
		{"AliasPath", table(route("aliases", `[{"method": "GET", "path": "y"}]`)), `alias: path "y"`},
		{"SiblingVariables", table(route("path", `"/a/{id}"`), route("path", `"/a/{name}/b"`)), "{name} under /a, where the table already has {id}"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseRoutes([]byte(c.in))
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("ParseRoutes(%s): %v, want an error with %q", c.in, err, c.want)
			}
		})
	}
}

func TestBadEmbeddedTablePanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "routes.json: no routes") {
			t.Fatalf("recovered %v", r)
		}
	}()
	mustParseRoutes([]byte(`[]`))
}
