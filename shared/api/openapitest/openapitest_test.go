package openapitest_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyseal/keyseal/shared/api/openapitest"
)

const doc = `{
  "openapi": "3.1.0",
  "info": {"title": "t", "version": "1"},
  "paths": {
    "/admin/thing": {"get": {"operationId": "getThing", "responses": {
      "200": {"description": "ok", "content": {"application/json": {"schema": {
        "type": "object", "required": ["n"], "additionalProperties": false,
        "properties": {"n": {"type": "integer"}, "at": {"anyOf": [{"type": "string"}, {"type": "null"}]}}}}}},
      "404": {"description": "no", "content": {"application/json": {"schema": {"type": "object", "required": ["error"]}}}}}}}
  }
}`

// TestTransport: a documented answer passes; a body off its schema, an
// undocumented status, or an unknown documented-prefix path answering
// other than a 404/405 error fails the request; paths outside the
// document pass unchecked.
func TestTransport(t *testing.T) {
	v, err := openapitest.New([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	answers := map[string]struct {
		status int
		body   string
	}{
		"/admin/thing?ok":      {200, `{"n": 1, "at": null}`},
		"/admin/thing?extra":   {200, `{"n": 1, "x": 2}`},
		"/admin/thing?type":    {200, `{"n": "1"}`},
		"/admin/thing?status":  {409, `{"error": "conflict"}`},
		"/admin/thing?missing": {404, `{"error": "not_found"}`},
		"/admin/nope":          {404, `{"error": "not_found"}`},
		"/admin/nope?200":      {200, `{}`},
		"/elsewhere":           {500, `not json`},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := answers[r.URL.RequestURI()]
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(a.status)
		io.WriteString(w, a.body)
	}))
	defer srv.Close()
	c := &http.Client{Transport: &openapitest.Transport{Validators: []*openapitest.Validator{v}}}
	for uri, wantOK := range map[string]bool{
		"/admin/thing?ok": true, "/admin/thing?extra": false, "/admin/thing?type": false, "/admin/thing?status": false,
		"/admin/thing?missing": true, "/admin/nope": true, "/admin/nope?200": false, "/elsewhere": true,
	} {
		resp, err := c.Get(srv.URL + uri)
		if resp != nil {
			resp.Body.Close()
		}
		if (err == nil) != wantOK {
			t.Errorf("%s: err %v, want ok %v", uri, err, wantOK)
		}
		if err != nil && !strings.Contains(err.Error(), "openapitest") {
			t.Errorf("%s: %v", uri, err)
		}
	}
	if got := v.Unsuccessful(); len(got) != 0 {
		t.Errorf("getThing answered 200, Unsuccessful says %v", got)
	}
}
