package localserver_test

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"testing"

	"github.com/keyseal/keyseal/shared/localserver"
	"github.com/keyseal/keyseal/shared/tenantkms"

	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/api/openapitest"
)

// TestMain puts the OpenAPI validator in front of http.DefaultClient, so
// every request a test here makes to a documented path fails when its
// answer is not as openapi.json (or, for /dev, openapi-dev.json) documents
// it. A whole-package run (no -run) then also fails unless every
// documented operation answered a 2xx at least once: the tests cover each
// route's success.
func TestMain(m *testing.M) {
	flag.Parse()
	var vs []*openapitest.Validator
	for _, doc := range [][]byte{api.OpenAPIDocument(), localserver.DevOpenAPIDocument()} {
		v, err := openapitest.New(doc)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		vs = append(vs, v)
	}
	http.DefaultClient.Transport = &openapitest.Transport{Validators: vs}
	code := m.Run()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && !testing.Short() {
		var missing []string
		for _, v := range vs {
			missing = append(missing, v.Unsuccessful()...)
		}
		if len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "openapi: no test saw a validated 2xx answer of %d operations:\n", len(missing))
			for _, m := range missing {
				fmt.Fprintln(os.Stderr, "  "+m)
			}
			code = 1
		}
	}
	os.Exit(code)
}

// TestOpenAPIServedAndRest: the local server serves the document at GET
// /openapi.json without auth, and the operations no other test here drives
// to success answer as documented: list and revoke an agent, unseal a
// sealed tenant, leave BYOK.
func TestOpenAPIServedAndRest(t *testing.T) {
	s := devServer(t, t.TempDir(), nil)
	r := do(t, s, http.MethodGet, "/openapi.json", nil, "")
	if r.status != http.StatusOK || r.body["openapi"] != "3.1.0" {
		t.Fatalf("GET /openapi.json: %d %.200s", r.status, r.raw)
	}
	var want map[string]any
	if err := json.Unmarshal(api.OpenAPIDocument(), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(r.body, want) {
		t.Fatal("GET /openapi.json is not api.OpenAPIDocument")
	}

	admin := bearer(s.Credentials.AdminToken)
	list := do(t, s, http.MethodGet, "/admin/agents", admin, "")
	if list.status != http.StatusOK || len(list.body["agents"].([]any)) != 1 {
		t.Fatalf("list agents: %d %s", list.status, list.raw)
	}
	if r := do(t, s, http.MethodDelete, "/admin/agents/"+s.Credentials.AgentID, admin, ""); r.status != http.StatusOK || r.body["revoked"] != true {
		t.Fatalf("revoke agent: %d %s", r.status, r.raw)
	}

	key := s.Credentials.KMSKeyID
	if r := do(t, s, http.MethodPost, "/dev/kms/keys/"+key+"/state", nil, `{"state":"disabled"}`); r.status != http.StatusOK {
		t.Fatalf("disable: %d %s", r.status, r.raw)
	}
	if _, err := s.App.Tenants.Sweep(context.Background(), tenantkms.AllShards()); err != nil {
		t.Fatal(err)
	}
	if r := do(t, s, http.MethodPost, "/dev/kms/keys/"+key+"/state", nil, `{"state":"enabled"}`); r.status != http.StatusOK {
		t.Fatalf("enable: %d %s", r.status, r.raw)
	}
	if r := do(t, s, http.MethodPost, "/admin/tenant-kms/unseal", stepUpHeaders(t, s), ""); r.status != http.StatusOK || r.body["unsealed"] != true {
		t.Fatalf("unseal: %d %s", r.status, r.raw)
	}
	if r := do(t, s, http.MethodDelete, "/admin/tenant-kms", stepUpHeaders(t, s), ""); r.status != http.StatusOK || r.body["byok"] != false {
		t.Fatalf("deregister: %d %s", r.status, r.raw)
	}
}
