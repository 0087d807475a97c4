package api

import (
	"bytes"
	"context"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
)

var update = flag.Bool("update", false, "rewrite infra/stack/routes.json from Table")

// goldenPath is the copy of Table the CDK app (its own Go module) embeds.
var goldenPath = filepath.Join("..", "..", "infra", "stack", "routes.json")

// TestRoutesGolden fails when the CDK app's copy of the route table
// differs from Table: run `go test ./shared/api -run Golden -update` and
// commit both.
func TestRoutesGolden(t *testing.T) {
	want := GoldenRoutes()
	if *update {
		if err := os.WriteFile(goldenPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs from api.Table: run go test ./shared/api -run Golden -update\n got: %s\nwant: %s", goldenPath, got, want)
	}
}

// TestTableHandlers: binding every Lambda's handler set matches Table
// row for row (bind panics on a row without a handler or a handler
// without a row), no method and path (aliases included) appears twice,
// and every row names a function under functions/ and a known auth kind.
func TestTableHandlers(t *testing.T) {
	d := &Deps{}
	want := 0
	for _, r := range Table {
		want += 1 + len(r.Aliases)
	}
	if got := len(d.AllRoutes()); got != want {
		t.Fatalf("the handler sets bind %d routes, Table has %d", got, want)
	}
	seen := map[string]bool{}
	for _, r := range Table {
		k := routeKey(r.Method, r.Path)
		for _, p := range append([]Alias{{r.Method, r.Path}}, r.Aliases...) {
			if seen[routeKey(p.Method, p.Path)] {
				t.Errorf("%s %s served twice", p.Method, p.Path)
			}
			seen[routeKey(p.Method, p.Path)] = true
		}
		if _, err := os.Stat(filepath.Join("..", "..", "functions", r.Function, "main.go")); err != nil {
			t.Errorf("route %s: function %s: %v", k, r.Function, err)
		}
		switch r.Auth {
		case AuthNone, AuthAgent, AuthAdmin:
		default:
			t.Errorf("route %s: unknown auth %q", k, r.Auth)
		}
		if r.StepUp && r.Auth != AuthAdmin {
			t.Errorf("route %s: step-up needs admin auth", k)
		}
		if r.Auth == AuthAgent && !strings.HasPrefix(r.Path, "/agent/") {
			t.Errorf("route %s: agent routes live under /agent/ (their errors take the agent shape)", k)
		}
	}
}

// TestBindRefusesDrift: a row without a handler, or a handler without a
// row, stops the process at start rather than serving a table that lies.
func TestBindRefusesDrift(t *testing.T) {
	d := &Deps{}
	ok := func(context.Context, *Request) (Response, error) { return Response{}, nil }
	for name, hs := range map[string]map[string]HandlerFunc{
		"missing handler": {},
		"extra handler":   {routeKey(http.MethodGet, "/health"): ok, routeKey(http.MethodGet, "/healthz"): ok},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: bind did not panic", name)
				}
			}()
			d.bind(FnHealth, hs)
		}()
	}
}

// TestStepUpGuard: a step-up route whose handler answers success without
// consuming the token is refused (500), and a handler consuming a token on
// a route the table does not mark step_up fails.
func TestStepUpGuard(t *testing.T) {
	d := &Deps{}
	ok := func(context.Context, *Request) (Response, error) { return JSON(http.StatusOK, struct{}{}), nil }
	spend := func(ctx context.Context, r *Request) (Response, error) {
		if err := r.ConsumeStepUp(ctx); err != nil {
			return Response{}, err
		}
		return JSON(http.StatusOK, struct{}{}), nil
	}
	r := &Request{APIGatewayProxyRequest: events.APIGatewayProxyRequest{}}
	if _, err := d.guard(RouteSpec{StepUp: true, Auth: AuthNone}, ok)(context.Background(), r); err != errStepUpSkipped {
		t.Fatalf("step-up route without consuming: err %v, want errStepUpSkipped", err)
	}
	if _, err := d.guard(RouteSpec{Auth: AuthNone}, spend)(context.Background(), &Request{}); err == nil {
		t.Fatal("consuming a step-up token on a route without step-up succeeded")
	}
}
