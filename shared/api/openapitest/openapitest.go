// Package openapitest checks real answers against keyseal's OpenAPI
// document with kin-openapi (JSON Schema 2020-12 for a 3.1 document): the
// status must be one the operation documents and the body must match its
// schema. Tests install Transport in front of their HTTP client, so every
// request a handler test makes is checked too; only tests import it.
package openapitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
)

// Validator checks answers against one document.
type Validator struct {
	doc    *openapi3.T
	router routers.Router
	// prefixes are the first path segments the document's paths use: an
	// answer under one of them for a path the document lacks must be a
	// 404 or 405 error.
	prefixes map[string]bool

	mu sync.Mutex
	// seen records each operation's validated statuses.
	seen map[string]map[int]bool
}

// New loads and validates doc (JSON).
func New(doc []byte) (*Validator, error) {
	loader := openapi3.NewLoader()
	t, err := loader.LoadFromData(doc)
	if err != nil {
		return nil, fmt.Errorf("openapitest: load: %w", err)
	}
	if err := t.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("openapitest: the document is invalid: %w", err)
	}
	r, err := gorillamux.NewRouter(t)
	if err != nil {
		return nil, fmt.Errorf("openapitest: router: %w", err)
	}
	v := &Validator{doc: t, router: r, prefixes: map[string]bool{}, seen: map[string]map[int]bool{}}
	for path := range t.Paths.Map() {
		v.prefixes[firstSegment(path)] = true
	}
	return v, nil
}

func firstSegment(path string) string {
	seg, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return seg
}

// Covers reports whether path is in the document's part of the URL space
// (its first segment is one the document's paths use).
func (v *Validator) Covers(path string) bool { return v.prefixes[firstSegment(path)] }

// Check validates one answer to req. A path the document lacks must answer
// a 404 or 405 error body; a documented operation must answer a status it
// documents, with a body and headers matching it.
func (v *Validator) Check(req *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		if status != http.StatusNotFound && status != http.StatusMethodNotAllowed {
			return fmt.Errorf("%s %s is not in the document but answered %d (want 404 or 405): %s", req.Method, req.URL.Path, status, body)
		}
		var e map[string]any
		if json.Unmarshal(body, &e) != nil || e["error"] == nil {
			return fmt.Errorf("%s %s answered %d without an error body: %s", req.Method, req.URL.Path, status, body)
		}
		return nil
	}
	in := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
			Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc}},
		Status:  status,
		Header:  header,
		Options: &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	}
	in.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(req.Context(), in); err != nil {
		return fmt.Errorf("%s %s answered %d, not as openapi.json documents it: %v\nbody: %s", req.Method, req.URL.Path, status, err, cut(body))
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	id := route.Operation.OperationID
	if v.seen[id] == nil {
		v.seen[id] = map[int]bool{}
	}
	v.seen[id][status] = true
	return nil
}

func cut(b []byte) []byte {
	if len(b) > 2000 {
		return append(b[:2000:2000], "..."...)
	}
	return b
}

// Unsuccessful lists the document's operations no validated answer with a
// 2xx status was seen for.
func (v *Validator) Unsuccessful() []string {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []string
	for path, item := range v.doc.Paths.Map() {
		for method, op := range item.Operations() {
			ok := false
			for s := range v.seen[op.OperationID] {
				ok = ok || s/100 == 2
			}
			if !ok {
				out = append(out, fmt.Sprintf("%s %s (%s)", method, path, op.OperationID))
			}
		}
	}
	sort.Strings(out)
	return out
}

// Transport checks every answer through it whose path one of its
// validators Covers (the first that does), and fails the request (an
// error from RoundTrip, which the test's client reports) when the answer
// is not as documented.
type Transport struct {
	Base       http.RoundTripper
	Validators []*Validator
}

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	var v *Validator
	for _, c := range t.Validators {
		if c.Covers(req.URL.Path) {
			v = c
			break
		}
	}
	if v == nil {
		return base.RoundTrip(req)
	}
	resp, err := base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if err := v.Check(req, resp.StatusCode, resp.Header, body); err != nil {
		return nil, fmt.Errorf("openapitest: %w", err)
	}
	return resp, nil
}
