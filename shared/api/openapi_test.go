package api

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/getkin/kin-openapi/openapi3"

	"github.com/keyseal/keyseal/shared/api/openapitest"
	"github.com/keyseal/keyseal/shared/awskms"
	"github.com/keyseal/keyseal/shared/azurekv"
	"github.com/keyseal/keyseal/shared/gcpkms"
	"github.com/keyseal/keyseal/shared/internal/openapigen"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/localkms"
)

const openAPIPath = "openapi.json"

// TestOpenAPIGolden fails when openapi.json (embedded and served) is not
// what the route table and the Go types generate: run
// `go test ./shared/api -run Golden -update` and commit it.
func TestOpenAPIGolden(t *testing.T) {
	d, err := openAPIDoc()
	if err != nil {
		t.Fatal(err)
	}
	want, err := openapigen.Generate(d)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := openapigen.Generate(d); !bytes.Equal(again, want) {
		t.Fatal("two generations of the document differ: it must be deterministic")
	}
	if *update {
		if err := os.WriteFile(openAPIPath, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(openAPIDocument, want) {
		t.Fatalf("shared/api/openapi.json is stale: run go test ./shared/api -run Golden -update and commit it")
	}
}

// TestOpenAPIMatchesTable: the committed document names exactly the
// methods and paths of Table (aliases included), with each row's auth and
// step-up, and it is a valid OpenAPI 3.1 document.
func TestOpenAPIMatchesTable(t *testing.T) {
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(openAPIDocument)
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	if !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi %s, want 3.1", doc.OpenAPI)
	}
	want := map[string]RouteSpec{}
	for _, r := range Table {
		want[routeKey(r.Method, r.Path)] = r
		for _, a := range r.Aliases {
			want[routeKey(a.Method, a.Path)] = r
		}
	}
	got := map[string]*openapi3.Operation{}
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			got[routeKey(method, path)] = op
		}
	}
	for k, r := range want {
		op, ok := got[k]
		if !ok {
			t.Errorf("route %s is not in openapi.json", k)
			continue
		}
		var schemes []string
		if op.Security != nil {
			for _, req := range *op.Security {
				for name := range req {
					schemes = append(schemes, name)
				}
			}
		}
		slices.Sort(schemes)
		wantSchemes := map[Auth][]string{AuthNone: nil, AuthAgent: {openapigen.SchemeAgent}, AuthAdmin: {openapigen.SchemeAdmin}}[r.Auth]
		if r.StepUp {
			wantSchemes = []string{openapigen.SchemeAdmin, openapigen.SchemeStepUp}
		}
		if op.Security == nil || !slices.Equal(schemes, wantSchemes) {
			t.Errorf("route %s: security %v, want %v", k, schemes, wantSchemes)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("openapi.json names %s, which is not in Table", k)
		}
	}
}

// TestOpenAPIErrorCodes: every error code is in the document under its
// status, and no other.
func TestOpenAPIErrorCodes(t *testing.T) {
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties struct {
					Error struct {
						Enum []string `json:"enum"`
					} `json:"error"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPIDocument, &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for name, s := range doc.Components.Schemas {
		status, ok := strings.CutPrefix(name, "AdminError")
		if !ok || status == "" {
			continue
		}
		for _, code := range s.Properties.Error.Enum {
			var n int
			if err := json.Unmarshal([]byte(status), &n); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got[code] = n
		}
	}
	for code, status := range statusByCode {
		if got[code] != status {
			t.Errorf("code %s: status %d in openapi.json, want %d", code, got[code], status)
		}
	}
	if len(got) != len(statusByCode) {
		t.Errorf("openapi.json has %d codes, statusByCode %d", len(got), len(statusByCode))
	}
}

// TestOpenAPIServed: GET /openapi.json answers the document without auth.
func TestOpenAPIServed(t *testing.T) {
	d := &Deps{}
	rt := NewRouter(slog.New(slog.DiscardHandler), d.AdminRoutes())
	resp, _ := rt.Handle(context.Background(), events.APIGatewayProxyRequest{HTTPMethod: http.MethodGet, Path: "/openapi.json"})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /openapi.json: %d %s", resp.StatusCode, resp.Body)
	}
	var a, b any
	if err := json.Unmarshal([]byte(resp.Body), &a); err != nil {
		t.Fatal(err)
	}
	_ = json.Unmarshal(openAPIDocument, &b)
	if !jsonEqual(a, b) {
		t.Fatal("GET /openapi.json is not openapi.json")
	}
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// TestKeyBodySchemaMatchesProviders holds the registration body's
// hand-written variants to the providers' ParseKey: each variant's members
// are exactly the fields its provider takes (each is accepted as a member;
// another is refused as one it does not take).
func TestKeyBodySchemaMatchesProviders(t *testing.T) {
	providers := map[string]keyseal.Provider{
		keyseal.ProviderAWS: &awskms.Provider{}, keyseal.ProviderGCP: &gcpkms.Provider{},
		keyseal.ProviderAzure: &azurekv.Provider{}, keyseal.ProviderLocal: &localkms.Provider{},
	}
	variants := keyBodySchema["oneOf"].([]any)
	if len(variants) != len(providers) {
		t.Fatalf("%d variants for %d providers", len(variants), len(providers))
	}
	takes := func(p keyseal.Provider, field string) bool {
		_, err := p.ParseKey(map[string]string{field: "x"})
		msg := keyseal.ErrorMessage(err)
		return !strings.Contains(msg, "does not take") && !strings.Contains(msg, "takes only") && !strings.Contains(msg, "not "+field)
	}
	for _, v := range variants {
		props := v.(schema)["properties"].(schema)
		name := props["provider"].(schema)["const"].(string)
		p := providers[name]
		if p == nil {
			t.Fatalf("variant for unknown provider %s", name)
		}
		for field := range props {
			if field != "provider" && !takes(p, field) {
				t.Errorf("%s: the schema has %s, which ParseKey refuses", name, field)
			}
		}
		for field, p := range props {
			ps := p.(schema)
			pattern, _ := ps["pattern"].(string)
			examples, _ := ps["examples"].([]any)
			for _, ex := range examples {
				if pattern != "" && !regexp.MustCompile(pattern).MatchString(ex.(string)) {
					t.Errorf("%s: example %s of %s does not match its pattern", name, ex, field)
				}
				if _, err := providers[name].ParseKey(map[string]string{field: ex.(string)}); err != nil {
					t.Errorf("%s: ParseKey refuses the example %s of %s: %v", name, ex, field, err)
				}
			}
		}
		for _, other := range []string{"key_arn", "role_arn", "external_id", "key_name", "service_account", "key_url", "azure_tenant_id", "key_id", "unknown_member"} {
			if _, ok := props[other]; !ok && takes(p, other) {
				t.Errorf("%s: ParseKey takes %s, which the schema lacks", name, other)
			}
		}
	}
}

var (
	docValidatorOnce sync.Once
	docValidator     *openapitest.Validator
	docValidatorErr  error
)

// checkAnswer validates a handler's answer, called directly, against
// openapi.json as if method path?query had been sent.
func checkAnswer(t *testing.T, method, path string, query map[string]string, status int, body []byte) {
	t.Helper()
	docValidatorOnce.Do(func() { docValidator, docValidatorErr = openapitest.New(openAPIDocument) })
	if docValidatorErr != nil {
		t.Fatal(docValidatorErr)
	}
	q := url.Values{}
	for k, v := range query {
		q.Set(k, v)
	}
	req := httptest.NewRequest(method, path+"?"+q.Encode(), nil)
	h := http.Header{"Content-Type": {"application/json"}}
	if err := docValidator.Check(req, status, h, body); err != nil {
		t.Fatal(err)
	}
}
