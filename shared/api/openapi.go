package api

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"net/http"
	"sync"
)

// openAPIDocument is the OpenAPI 3.1 document of Table, generated from the
// route table and the exported request and response types by
// openapi_doc_test.go (go test ./shared/api -run Golden -update rewrites
// it; TestOpenAPIGolden fails when it is stale).
//
//go:embed openapi.json
var openAPIDocument []byte

// openAPICompact is the document as served: the same JSON, compacted on
// the first request (not at init: most of a Lambda's cold starts never
// serve it).
var openAPICompact = sync.OnceValue(func() json.RawMessage {
	var b bytes.Buffer
	if err := json.Compact(&b, openAPIDocument); err != nil {
		panic("api: openapi.json is not JSON: " + err.Error())
	}
	return b.Bytes()
})

// OpenAPIDocument returns the OpenAPI 3.1 document of every route in
// Table (indented JSON), what GET /openapi.json serves.
func OpenAPIDocument() []byte { return bytes.Clone(openAPIDocument) }

// openAPI serves GET /openapi.json, without auth: the document describes
// the API, never a tenant's data.
func (d *Deps) openAPI(context.Context, *Request) (Response, error) {
	resp := JSON(http.StatusOK, openAPICompact())
	resp.Headers = map[string]string{"Cache-Control": "public, max-age=300"}
	return resp, nil
}
