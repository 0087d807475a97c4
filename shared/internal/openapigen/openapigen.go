// Package openapigen writes keyseal's OpenAPI 3.1 documents from a list of
// operations whose request and response bodies are Go types: their JSON
// Schemas (2020-12) are reflected with github.com/invopop/jsonschema, the
// way encoding/json writes them (a field without omitempty is required, a
// pointer may be null, a struct refuses unknown members). Only tests import
// it: they regenerate the committed documents (go test -update) and fail
// when a committed one is stale, so no Lambda links the reflector.
package openapigen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/invopop/jsonschema"
)

// Auth kinds of an operation (api.Auth's values).
const (
	AuthNone  = "none"
	AuthAgent = "agent"
	AuthAdmin = "admin"
)

// Security scheme names of the document.
const (
	SchemeAgent  = "agentKey"
	SchemeAdmin  = "adminJWT"
	SchemeStepUp = "stepUp"
)

// Doc is one document.
type Doc struct {
	Title, Version, Description string
	// StepUpHeader is the header a step-up token travels in.
	StepUpHeader string
	Ops          []Op
	// ErrorStatus maps every error code to its HTTP status.
	ErrorStatus map[string]int
	// ErrorDescriptions say in a sentence when a code is answered.
	ErrorDescriptions map[string]string
	// Schemas replace the reflected schema of a Go type (one written by
	// a custom MarshalJSON, or a third-party type): the generator refuses
	// a json.Marshaler it has no entry for.
	Schemas map[reflect.Type]Schema
	// Names rename the component of a Go type (two packages' types of one
	// name, or a clearer name).
	Names map[reflect.Type]string
	// Components are schemas written out, and Reflect Go types reflected,
	// into components.schemas beside the operations' own.
	Components map[string]Schema
	Reflect    []any
	// Patches refine a reflected component with what a Go type cannot
	// say (an enum from a list of constants, a const), by component name.
	Patches map[string]func(Schema)
	// Tags describe the tags the operations use, in this order.
	Tags []Tag
}

// Tag is a group of operations.
type Tag struct{ Name, Description string }

// Schema is a JSON Schema written as a Go value.
type Schema = map[string]any

// Op is one route: its method and path, its aliases (the same operation
// at another method and path), who may call it, and its bodies.
type Op struct {
	Method, Path string
	Aliases      [][2]string // {method, path}
	ID           string
	Tag          string
	Summary      string
	Description  string
	Auth         string
	StepUp       bool
	// PathParams describe each {name} of Path.
	PathParams map[string]Param
	Query      []Param
	// Request is the body's Go type (a zero value), or RequestSchema a
	// schema written out; RequestOptional lets the body be empty.
	Request         any
	RequestSchema   Schema
	RequestOptional bool
	Responses       []Response
	// Errors are the error statuses the operation answers; each takes the
	// document's error schema of that status (every code of it).
	Errors []int
	// AgentErrors: the error bodies take the agent API's shape.
	AgentErrors bool
}

// Param is a path or query parameter.
type Param struct {
	Name, Description string
	Schema            Schema
	Required          bool
}

// Response is one success (or documented non-error) answer.
type Response struct {
	Status      int
	Description string
	// Body is the Go type of the JSON body (a zero value), or Schema a
	// schema written out; neither: no body, or with ContentType a body of
	// that type the document does not describe (an HTML page).
	Body   any
	Schema Schema
	// OneOf: the body is one of these Go types.
	OneOf       []any
	ContentType string // default application/json
	Headers     map[string]string
	// Links name operations this answer feeds (OpenAPI links: what a
	// client, or a stateful fuzzer, calls next with a value from it).
	Links map[string]Link
}

// Link is an OpenAPI link: the operation and its parameters as runtime
// expressions ("$response.body#/id").
type Link struct {
	OperationID string
	Parameters  map[string]string
}

// Generate returns the document, indented JSON with sorted keys (the same
// bytes for the same input).
func Generate(d Doc) ([]byte, error) {
	g := &gen{doc: d, schemas: Schema{}, named: map[string]reflect.Type{}}
	paths := Schema{}
	ids := map[string]bool{}
	for _, op := range d.Ops {
		at := append([][2]string{{op.Method, op.Path}}, op.Aliases...)
		for i, mp := range at {
			o := op
			if i > 0 {
				// An alias is seed 004's path for the route, or the same
				// path with a trailing slash (the console's page).
				suffix, why := "Seed004", "seed 004's path"
				if mp[1] == op.Path+"/" {
					suffix, why = "Slash", "with a trailing slash"
				}
				o.ID = op.ID + suffix
				if len(op.Aliases) > 1 {
					o.ID += fmt.Sprint(i)
				}
				o.Description = strings.TrimSpace(fmt.Sprintf("Alias of `%s %s` (%s), served by the same handler with the same auth.\n\n%s", op.Method, op.Path, why, op.Description))
			}
			if ids[o.ID] {
				return nil, fmt.Errorf("operationId %s used twice", o.ID)
			}
			ids[o.ID] = true
			item, _ := paths[mp[1]].(Schema)
			if item == nil {
				item = Schema{}
				paths[mp[1]] = item
			}
			method := strings.ToLower(mp[0])
			if item[method] != nil {
				return nil, fmt.Errorf("%s %s described twice", mp[0], mp[1])
			}
			built, err := g.operation(o, mp[1])
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", mp[0], mp[1], err)
			}
			item[method] = built
		}
	}
	for name, s := range d.Components {
		g.schemas[name] = s
	}
	for _, v := range d.Reflect {
		g.reflect(v, false)
	}
	for name, patch := range d.Patches {
		s, ok := g.schemas[name].(Schema)
		if !ok {
			return nil, fmt.Errorf("patch of %s: no such component", name)
		}
		patch(s)
	}
	g.errorComponents()
	if g.err != nil {
		return nil, g.err
	}
	tags := []any{}
	for _, t := range d.Tags {
		tags = append(tags, Schema{"name": t.Name, "description": t.Description})
	}
	out := Schema{
		"openapi":           "3.1.0",
		"jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
		"info":              Schema{"title": d.Title, "version": d.Version, "description": d.Description},
		"tags":              tags,
		"paths":             paths,
		"components": Schema{
			"schemas":   g.schemas,
			"responses": g.responses,
			"securitySchemes": Schema{
				SchemeAgent: Schema{"type": "http", "scheme": "bearer",
					"description": "An agent key (created by an admin with POST /admin/agents, shown once): `Authorization: Bearer <agent key>`."},
				SchemeAdmin: Schema{"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
					"description": "An admin JWT from the operator's identity provider (RS256, ES256 or EdDSA; issuer, audience and JWKS configured; role keyseal:admin in roles or scope). Missing or invalid: 401 unauthorized; without the role: 403 forbidden."},
				SchemeStepUp: Schema{"type": "apiKey", "in": "header", "name": d.StepUpHeader,
					"description": "A step-up token from POST /admin/auth/step-up (120 s, single use, bound to the admin's subject and tenant). Missing, expired, spent or foreign: 401 step_up_required."},
			},
		},
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

type gen struct {
	doc       Doc
	schemas   Schema
	responses Schema
	named     map[string]reflect.Type
	err       error
}

var pathParam = regexp.MustCompile(`\{([^}]+)\}`)

func (g *gen) operation(op Op, path string) (Schema, error) {
	o := Schema{"operationId": op.ID, "summary": op.Summary, "tags": []any{op.Tag}}
	if op.Description != "" {
		o["description"] = op.Description
	}
	switch op.Auth {
	case AuthNone:
		o["security"] = []any{}
	case AuthAgent:
		o["security"] = []any{Schema{SchemeAgent: []any{}}}
	case AuthAdmin:
		req := Schema{SchemeAdmin: []any{}}
		if op.StepUp {
			req[SchemeStepUp] = []any{}
		}
		o["security"] = []any{req}
	default:
		return nil, fmt.Errorf("unknown auth %q", op.Auth)
	}
	var params []any
	for _, m := range pathParam.FindAllStringSubmatch(path, -1) {
		p, ok := op.PathParams[m[1]]
		if !ok {
			return nil, fmt.Errorf("path parameter {%s} is not described", m[1])
		}
		s := p.Schema
		if s == nil {
			s = Schema{"type": "string", "minLength": 1}
		}
		params = append(params, Schema{"name": m[1], "in": "path", "required": true, "description": p.Description, "schema": s})
	}
	for _, p := range op.Query {
		params = append(params, Schema{"name": p.Name, "in": "query", "required": p.Required, "description": p.Description, "schema": p.Schema})
	}
	if params != nil {
		o["parameters"] = params
	}
	if op.Request != nil || op.RequestSchema != nil {
		s := op.RequestSchema
		if s == nil {
			s = g.reflect(op.Request, true)
		}
		o["requestBody"] = Schema{"required": !op.RequestOptional,
			"content": Schema{"application/json": Schema{"schema": s}}}
	}
	resps := Schema{}
	for _, r := range op.Responses {
		rs := Schema{"description": r.Description}
		s := r.Schema
		if s == nil && r.Body != nil {
			s = g.reflect(r.Body, false)
		}
		if s == nil && r.OneOf != nil {
			var alts []any
			for _, v := range r.OneOf {
				alts = append(alts, g.reflect(v, false))
			}
			s = Schema{"oneOf": alts}
		}
		switch {
		case s != nil:
			ct := r.ContentType
			if ct == "" {
				ct = "application/json"
			}
			rs["content"] = Schema{ct: Schema{"schema": s}}
		case r.ContentType != "":
			// A body of that type, with no schema (an HTML page).
			rs["content"] = Schema{r.ContentType: Schema{}}
		}
		if len(r.Links) > 0 {
			ls := Schema{}
			for name, l := range r.Links {
				params := Schema{}
				for k, v := range l.Parameters {
					params[k] = v
				}
				ls[name] = Schema{"operationId": l.OperationID, "parameters": params}
			}
			rs["links"] = ls
		}
		if len(r.Headers) > 0 {
			hs := Schema{}
			for name, desc := range r.Headers {
				hs[name] = Schema{"description": desc, "schema": Schema{"type": "string"}}
			}
			rs["headers"] = hs
		}
		resps[fmt.Sprint(r.Status)] = rs
	}
	for _, status := range op.Errors {
		if resps[fmt.Sprint(status)] != nil {
			return nil, fmt.Errorf("status %d both a response and an error", status)
		}
		if !g.errorStatus(status) {
			return nil, fmt.Errorf("no error code answers status %d", status)
		}
		style := "Admin"
		if op.AgentErrors {
			style = "Agent"
		}
		resps[fmt.Sprint(status)] = Schema{"$ref": fmt.Sprintf("#/components/responses/%sError%d", style, status)}
	}
	o["responses"] = resps
	return o, nil
}

// errorStatus reports whether some error code answers status.
func (g *gen) errorStatus(status int) bool {
	for _, s := range g.doc.ErrorStatus {
		if s == status {
			return true
		}
	}
	return false
}

// errorComponents writes the error body schemas, one per style and status
// with that status's codes as the enum of the code member, and a response
// for each.
func (g *gen) errorComponents() {
	byStatus := map[int][]string{}
	for code, status := range g.doc.ErrorStatus {
		byStatus[status] = append(byStatus[status], code)
	}
	g.responses = Schema{}
	g.schemas["AdminError"] = Schema{
		"type":        "object",
		"description": "An admin API error: the code, a message in words, and the extra members some codes carry (reason, waiver_version, key_id, expected_format, required_key_policy, required_grant, supported_providers, ...). 5xx messages never carry internals.",
		"required":    []any{"error", "message"},
		"properties": Schema{
			"error":   Schema{"type": "string"},
			"message": Schema{"type": "string"},
		},
	}
	g.schemas["AgentError"] = Schema{
		"type":                 "object",
		"description":          "An agent API error: {\"error\": {\"type\": code, \"message\"}}.",
		"required":             []any{"error"},
		"additionalProperties": false,
		"properties": Schema{"error": Schema{
			"type": "object", "required": []any{"type", "message"}, "additionalProperties": false,
			"properties": Schema{"type": Schema{"type": "string"}, "message": Schema{"type": "string"}},
		}},
	}
	for status, codes := range byStatus {
		sort.Strings(codes)
		enum := make([]any, len(codes))
		var lines []string
		for i, c := range codes {
			enum[i] = c
			line := "- `" + c + "`"
			if d := g.doc.ErrorDescriptions[c]; d != "" {
				line += ": " + d
			}
			lines = append(lines, line)
		}
		desc := fmt.Sprintf("Error codes answered with %d:\n%s", status, strings.Join(lines, "\n"))
		g.schemas[fmt.Sprintf("AdminError%d", status)] = Schema{
			"description": desc,
			"allOf":       []any{Schema{"$ref": "#/components/schemas/AdminError"}},
			"properties":  Schema{"error": Schema{"enum": enum}},
		}
		g.schemas[fmt.Sprintf("AgentError%d", status)] = Schema{
			"description": desc,
			"allOf":       []any{Schema{"$ref": "#/components/schemas/AgentError"}},
			"properties":  Schema{"error": Schema{"properties": Schema{"type": Schema{"enum": enum}}}},
		}
		for _, style := range []string{"Admin", "Agent"} {
			name := fmt.Sprintf("%sError%d", style, status)
			r := Schema{"description": desc,
				"content": Schema{"application/json": Schema{"schema": Schema{"$ref": "#/components/schemas/" + name}}}}
			switch status {
			case 401:
				r["headers"] = Schema{"WWW-Authenticate": Schema{"schema": Schema{"type": "string"},
					"description": "With insufficient_user_authentication: the RFC 9470 challenge (acr_values, max_age)."}}
			case 405:
				r["headers"] = Schema{"Allow": Schema{"schema": Schema{"type": "string"}, "description": "The methods the path takes."}}
			case 503:
				r["headers"] = Schema{"Retry-After": Schema{"schema": Schema{"type": "string"},
					"description": "With store_unavailable: seconds to wait before retrying."}}
			}
			g.responses[name] = r
		}
	}
}

var (
	timeType      = reflect.TypeFor[time.Time]()
	marshalerType = reflect.TypeFor[json.Marshaler]()
)

// reflect returns the schema of v's type: a $ref to a component for a
// named struct, the schema inline otherwise. request: a pointer is the
// handler's way to tell a missing member from a zero one, so it is not
// documented as nullable.
func (g *gen) reflect(v any, request bool) Schema {
	t := reflect.TypeOf(v)
	r := &jsonschema.Reflector{
		Anonymous:      true,
		DoNotReference: false,
		Namer:          func(t reflect.Type) string { return g.name(t, request) },
		Mapper: func(t reflect.Type) *jsonschema.Schema {
			if s, ok := g.doc.Schemas[t]; ok {
				return toInvopop(s)
			}
			return nil
		},
	}
	s := r.ReflectFromType(t)
	root := mustMap(s)
	defs, _ := root["$defs"].(Schema)
	delete(root, "$defs")
	delete(root, "$schema")
	rewriteRefs(root)
	for name, def := range defs {
		rewriteRefs(def)
		if dt, ok := g.named[name]; ok {
			g.checkMarshalers(dt)
			if !request {
				nullablePointers(dt, def.(Schema))
			}
		}
		if prev, ok := g.schemas[name]; ok && !reflect.DeepEqual(prev, def) {
			g.fail(fmt.Errorf("schema %s reflected two ways", name))
		}
		g.schemas[name] = def
	}
	return root
}

// name is a component's name: the type's own; the request and response
// forms of one type differ (nullable pointers), so a request type's name
// says so. Two types of one name from different packages fail.
func (g *gen) name(t reflect.Type, request bool) string {
	if _, ok := g.doc.Schemas[t]; ok || t.Name() == "" || t == timeType || t.Kind() != reflect.Struct {
		return ""
	}
	n := t.Name()
	if alt, ok := g.doc.Names[t]; ok {
		n = alt
	}
	if request && !strings.HasSuffix(n, "Request") {
		n += "Request"
	}
	if prev, ok := g.named[n]; ok && prev != t {
		g.fail(fmt.Errorf("types %v and %v are both named %s: add one to Doc.Schemas or rename it", prev, t, n))
	}
	g.named[n] = t
	return n
}

func (g *gen) fail(err error) {
	if g.err == nil {
		g.err = err
	}
}

// checkMarshalers fails on a field whose type writes its own JSON: its
// reflected schema would describe the Go fields, not what is sent.
func (g *gen) checkMarshalers(t reflect.Type) {
	if t.Implements(marshalerType) || reflect.PointerTo(t).Implements(marshalerType) {
		if _, ok := g.doc.Schemas[t]; !ok && t != timeType {
			g.fail(fmt.Errorf("%v has its own MarshalJSON: give its schema in Doc.Schemas", t))
		}
	}
	for i := range t.NumField() {
		f := t.Field(i)
		ft := f.Type
		for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice || ft.Kind() == reflect.Map {
			ft = ft.Elem()
		}
		if _, ok := g.doc.Schemas[ft]; ok || ft == timeType || f.Tag.Get("json") == "-" {
			continue
		}
		if ft.Implements(marshalerType) || reflect.PointerTo(ft).Implements(marshalerType) {
			g.fail(fmt.Errorf("%v.%s: %v has its own MarshalJSON: give its schema in Doc.Schemas", t, f.Name, ft))
		}
		if f.Anonymous && ft.Kind() == reflect.Struct {
			g.checkMarshalers(ft)
		}
	}
}

// nullablePointers lets each pointer member of t that encoding/json writes
// as null (a nil pointer without omitempty) be null in def.
func nullablePointers(t reflect.Type, def Schema) {
	props, _ := def["properties"].(Schema)
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" && opts == "" || !f.IsExported() && !f.Anonymous {
			continue
		}
		if f.Anonymous && name == "" {
			et := f.Type
			if et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if et.Kind() == reflect.Struct {
				nullablePointers(et, def)
			}
			continue
		}
		if name == "" {
			name = f.Name
		}
		if f.Type.Kind() != reflect.Pointer || strings.Contains(","+opts+",", ",omitempty,") || strings.Contains(","+opts+",", ",omitzero,") {
			continue
		}
		if p, ok := props[name].(Schema); ok {
			props[name] = Schema{"anyOf": []any{p, Schema{"type": "null"}}}
		}
	}
}

func toInvopop(s Schema) *jsonschema.Schema {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	var out jsonschema.Schema
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return &out
}

func mustMap(s *jsonschema.Schema) Schema {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	var out Schema
	if err := json.Unmarshal(b, &out); err != nil {
		panic(err)
	}
	return out
}

// rewriteRefs points the reflector's #/$defs/ references at the
// document's components.
func rewriteRefs(v any) {
	switch x := v.(type) {
	case Schema:
		if ref, ok := x["$ref"].(string); ok {
			x["$ref"] = strings.Replace(ref, "#/$defs/", "#/components/schemas/", 1)
		}
		for _, e := range x {
			rewriteRefs(e)
		}
	case []any:
		for _, e := range x {
			rewriteRefs(e)
		}
	}
}
