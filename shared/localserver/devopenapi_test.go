package localserver_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/http"
	"os"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/internal/openapigen"
	"github.com/keyseal/keyseal/shared/localserver"
	"github.com/keyseal/keyseal/shared/waiver"
)

var update = flag.Bool("update", false, "rewrite openapi-dev.json")

type schema = openapigen.Schema

var keyIDParam = openapigen.Param{Description: "The key's id, URL-escaped (a GCP key name or an Azure key URL with each slash as %2F).",
	Schema: schema{"type": "string", "minLength": 1}}

// devOps describes each /dev route of a dev-mode server with the cloud
// stand-ins (all of them).
var devOps = []openapigen.Op{
	{Method: http.MethodPost, Path: "/dev/admin-token", ID: "devAdminToken", Tag: "dev", Auth: openapigen.AuthNone,
		Summary:     "A fresh admin JWT (one hour) for a tenant, fit for step-up",
		Description: "There is no identity provider locally: this mints the admin token the dev issuer signs. Served in dev and LocalStack modes, on loopback only.",
		Request:     localserver.DevAdminTokenRequest{}, RequestOptional: true,
		Responses: []openapigen.Response{{Status: 200, Description: "The token.", Body: localserver.DevAdminToken{}}},
		Errors:    []int{400, 500}},
	{Method: http.MethodPost, Path: "/dev/legal-waiver", ID: "devPublishWaiver", Tag: "dev", Auth: openapigen.AuthNone,
		Summary:   "Publish a new legal waiver version in this process",
		Request:   localserver.DevWaiverRequest{},
		Responses: []openapigen.Response{{Status: 200, Description: "The waiver now current.", Body: waiver.Waiver{}}},
		Errors:    []int{400, 500}},
	{Method: http.MethodPost, Path: "/dev/kms/keys", ID: "devCreateKey", Tag: "dev", Auth: openapigen.AuthNone,
		Summary: "A new enabled key (local, or in a cloud stand-in)",
		Request: localserver.DevCreateKeyRequest{}, RequestOptional: true,
		Responses: []openapigen.Response{{Status: 201, Description: "The key to register.", Body: localserver.DevKey{}}},
		Errors:    []int{400, 422, 500}},
	{Method: http.MethodPost, Path: "/dev/kms/keys/{key_id}/state", ID: "devKeyState", Tag: "dev", Auth: openapigen.AuthNone,
		Summary:    "Put a key in a state that rehearses a seal trigger",
		PathParams: map[string]openapigen.Param{"key_id": keyIDParam},
		Request:    localserver.DevKeyStateRequest{},
		Responses:  []openapigen.Response{{Status: 200, Description: "The key's new state.", Body: localserver.DevKeyState{}}},
		Errors:     []int{400, 404, 500}},
	{Method: http.MethodPost, Path: "/dev/kms/keys/{key_id}/latency", ID: "devKeyLatency", Tag: "dev", Auth: openapigen.AuthNone,
		Summary:    "Delay a key's wraps and unwraps (0 removes it)",
		PathParams: map[string]openapigen.Param{"key_id": keyIDParam},
		Request:    localserver.DevKeyLatencyRequest{},
		Responses:  []openapigen.Response{{Status: 200, Description: "The key's latency.", Body: localserver.DevKeyLatency{}}},
		Errors:     []int{400, 404, 500}},
	{Method: http.MethodGet, Path: "/dev/openapi.json", ID: "devOpenAPI", Tag: "dev", Auth: openapigen.AuthNone,
		Summary:   "This document, cut to the /dev routes this server serves",
		Responses: []openapigen.Response{{Status: 200, Description: "The OpenAPI 3.1 document.", Schema: schema{"type": "object", "required": []any{"openapi", "paths"}}}},
		Errors:    []int{400, 500}},
}

func devDoc() openapigen.Doc {
	return openapigen.Doc{
		Title: "keyseal local server: dev routes", Version: "1",
		Description: "The /dev routes of the local server (make run), absent from the Lambdas and their document (GET /openapi.json). " +
			"LocalStack mode serves only /dev/admin-token, /dev/legal-waiver and this document. No auth: the server listens on loopback.",
		StepUpHeader: "X-Keyseal-StepUp", Ops: devOps, ErrorStatus: api.ErrorStatuses(),
		Names: map[reflect.Type]string{reflect.TypeFor[waiver.Waiver](): "Waiver"},
		Tags:  []openapigen.Tag{{Name: "dev", Description: "Dev-mode rehearsal routes."}},
	}
}

// TestDevOpenAPIGolden fails when openapi-dev.json is not what devOps
// generates: go test ./shared/localserver -run Golden -update.
func TestDevOpenAPIGolden(t *testing.T) {
	want, err := openapigen.Generate(devDoc())
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile("openapi-dev.json", want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if !bytes.Equal(localserver.DevOpenAPIDocument(), want) {
		t.Fatal("shared/localserver/openapi-dev.json is stale: run go test ./shared/localserver -run Golden -update and commit it")
	}
}

// TestDevOpenAPIMatchesRoutes: GET /dev/openapi.json of a dev-mode server
// with the cloud stand-ins names exactly the /dev routes it serves (every
// one the document has), and those routes answer as documented (the
// validator of TestMain checks each answer of the package's tests).
func TestDevOpenAPIMatchesRoutes(t *testing.T) {
	s := devServer(t, t.TempDir(), map[string]string{"KEYSEAL_DEV_CLOUDS": "1"})
	r := do(t, s, http.MethodGet, "/dev/openapi.json", nil, "")
	if r.status != http.StatusOK {
		t.Fatalf("GET /dev/openapi.json: %d %s", r.status, r.raw)
	}
	got := opsOf(t, []byte(r.raw))
	want := opsOf(t, localserver.DevOpenAPIDocument())
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("served dev document has %v, openapi-dev.json %v", got, want)
	}
	// Every documented operation is served: a request to each gets an
	// answer of its own, not the router's 404 for an unknown route.
	for _, op := range got {
		method, path, _ := strings.Cut(op, " ")
		path = strings.ReplaceAll(path, "{key_id}", s.Credentials.KMSKeyID)
		res := do(t, s, strings.ToUpper(method), path, nil, "{}")
		if res.status == http.StatusNotFound && strings.Contains(res.raw, "no route") || res.status == http.StatusMethodNotAllowed {
			t.Errorf("%s %s is documented but not served: %d %s", method, path, res.status, res.raw)
		}
	}
}

func opsOf(t *testing.T, doc []byte) []string {
	t.Helper()
	var d struct {
		Paths map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(doc, &d); err != nil {
		t.Fatal(err)
	}
	var out []string
	for path, item := range d.Paths {
		for method := range item {
			out = append(out, method+" "+path)
		}
	}
	sort.Strings(out)
	return out
}
