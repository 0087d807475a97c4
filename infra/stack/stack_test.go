package stack_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/assertions"
	"github.com/aws/jsii-runtime-go"

	"github.com/keyseal/keyseal/infra/stack"
)

// cdkContext is the repo's real cdk.json context, so the tests check the
// settings operators deploy with.
func cdkContext(t *testing.T) any {
	t.Helper()
	b, err := os.ReadFile("../../cdk.json")
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Context map[string]any `json:"context"`
	}
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return c.Context[stack.ContextKey]
}

// assets makes a stand-in bin/ with a bootstrap per function, so the tests
// do not need `make build`.
func assets(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, fn := range stack.FunctionNames() {
		if err := os.MkdirAll(filepath.Join(dir, fn), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, fn, "bootstrap"), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// template is a synthesized stack as plain JSON.
type template struct {
	Resources map[string]resource
	Outputs   map[string]any
}

type resource struct {
	Type           string
	Properties     map[string]any
	DeletionPolicy string
}

var (
	synthMu sync.Mutex
	synthed = map[string]template{}
)

// synth builds the stack of env once per test binary (jsii is slow to
// start; the stacks are immutable).
func synth(t *testing.T, env string) template {
	t.Helper()
	synthMu.Lock()
	defer synthMu.Unlock()
	if tpl, ok := synthed[env]; ok {
		return tpl
	}
	cfg, err := stack.LoadConfig(cdkContext(t), env, assets(t))
	if err != nil {
		t.Fatal(err)
	}
	tpl := toTemplate(t, stack.New(awscdk.NewApp(nil), cfg))
	synthed[env] = tpl
	return tpl
}

func toTemplate(t *testing.T, st awscdk.Stack) template {
	t.Helper()
	b, err := json.Marshal(assertions.Template_FromStack(st, nil).ToJSON())
	if err != nil {
		t.Fatal(err)
	}
	var tpl template
	if err := json.Unmarshal(b, &tpl); err != nil {
		t.Fatal(err)
	}
	return tpl
}

func (tpl template) ofType(typ string) map[string]resource {
	out := map[string]resource{}
	for id, r := range tpl.Resources {
		if r.Type == typ {
			out[id] = r
		}
	}
	return out
}

// functionIDs maps a function's folder name to its logical id.
func (tpl template) functionIDs(t *testing.T) map[string]string {
	t.Helper()
	ids := map[string]string{}
	for id, r := range tpl.ofType("AWS::Lambda::Function") {
		name, _ := r.Properties["FunctionName"].(string)
		for _, fn := range stack.FunctionNames() {
			if strings.HasSuffix(name, "-"+fn) {
				ids[fn] = id
			}
		}
	}
	if len(ids) != len(stack.FunctionNames()) {
		t.Fatalf("want %d functions, found %v", len(stack.FunctionNames()), ids)
	}
	return ids
}

func jsonString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

var envs = []string{"dev", "staging", "prod"}

// methodTargets walks API Gateway's resource tree in the template and maps
// each method ("GET /admin/agents/{id}") to the function its Lambda proxy
// integration invokes.
func (tpl template) methodTargets(t *testing.T) map[string]string {
	t.Helper()
	fnIDs := tpl.functionIDs(t)
	resources := tpl.ofType("AWS::ApiGateway::Resource")
	var pathOf func(ref any) string
	pathOf = func(ref any) string {
		m, _ := ref.(map[string]any)
		if _, isRoot := m["Fn::GetAtt"]; isRoot {
			return ""
		}
		id, _ := m["Ref"].(string)
		r, ok := resources[id]
		if !ok {
			t.Fatalf("unknown resource %v", ref)
		}
		return pathOf(r.Properties["ParentId"]) + "/" + r.Properties["PathPart"].(string)
	}
	got := map[string]string{}
	for _, m := range tpl.ofType("AWS::ApiGateway::Method") {
		integ, _ := m.Properties["Integration"].(map[string]any)
		if integ["Type"] != "AWS_PROXY" {
			t.Fatalf("method %v is not a Lambda proxy integration", m.Properties)
		}
		got[m.Properties["HttpMethod"].(string)+" "+pathOf(m.Properties["ResourceId"])] = tpl.functionIn(fnIDs, integ["Uri"])
	}
	return got
}

// invokeGrants maps each stage's lambda:InvokeFunction grant to API Gateway
// ("GET /agent/v1/jwks/*": path variables are wildcards there) to its
// function. Without the grant a wired method answers 500.
func (tpl template) invokeGrants(t *testing.T) map[string]string {
	t.Helper()
	fnIDs := tpl.functionIDs(t)
	got := map[string]string{}
	for _, p := range tpl.ofType("AWS::Lambda::Permission") {
		if p.Properties["Principal"] != "apigateway.amazonaws.com" {
			continue
		}
		src := resolve(p.Properties["SourceArn"])
		if strings.Contains(src, "/test-invoke-stage/") {
			continue // the console's test button
		}
		// arn:...:${RestApi}/${Stage}/METHOD/path
		i := strings.LastIndex(src, "}/")
		if i < 0 {
			t.Fatalf("source ARN %s", src)
		}
		method, path, _ := strings.Cut(src[i+2:], "/")
		got[method+" /"+path] = tpl.functionIn(fnIDs, p.Properties["FunctionName"])
	}
	return got
}

// functionIn names the function whose logical id ref mentions.
func (tpl template) functionIn(fnIDs map[string]string, ref any) string {
	s := jsonString(ref)
	for fn, id := range fnIDs {
		if strings.Contains(s, `"`+id+`"`) {
			return fn
		}
	}
	return ""
}

// routeTargets is what API Gateway should serve for routes: each route and
// each of its aliases to the route's function, keyed by method and path;
// with wildcards, the same keyed as invokeGrants keys them.
func routeTargets(routes []stack.Route) (methods, grants map[string]string) {
	methods, grants = map[string]string{}, map[string]string{}
	variable := regexp.MustCompile(`\{[^/]+\}`)
	for _, r := range routes {
		pairs := append([]stack.Alias{{Method: r.Method, Path: r.Path}}, r.Aliases...)
		for _, p := range pairs {
			if stack.IsSlashAlias(r, p) {
				continue // API Gateway serves it from r's own resource
			}
			methods[p.Method+" "+p.Path] = r.Function
			grants[p.Method+" "+variable.ReplaceAllString(p.Path, "*")] = r.Function
		}
	}
	return methods, grants
}

// TestEveryRouteReachesItsFunction checks each method's path, verb, target
// Lambda and invoke grant against routes.json, the one route table
// (docs/contract.md §3): no route missing, none extra.
func TestEveryRouteReachesItsFunction(t *testing.T) {
	tpl := synth(t, "dev")
	methods, grants := routeTargets(stack.Routes)
	if got := tpl.methodTargets(t); jsonString(got) != jsonString(methods) {
		t.Fatalf("routes:\n got %s\nwant %s", jsonString(got), jsonString(methods))
	}
	if got := tpl.invokeGrants(t); jsonString(got) != jsonString(grants) {
		t.Fatalf("invoke grants:\n got %s\nwant %s", jsonString(got), jsonString(grants))
	}
	// Seed 004's curl commands name these paths: each must be in the API,
	// on the function of the route it aliases.
	got := tpl.methodTargets(t)
	for key, fn := range map[string]string{
		"GET /api/v1/byok/health":      stack.FnHealth,
		"GET /admin/tenant-kms/health": stack.FnHealth,
		"GET /api/v1/byok/keys":        stack.FnAdmin,
		"POST /api/v1/byok/keys":       stack.FnAdmin,
		"DELETE /api/v1/byok/keys":     stack.FnAdmin,
		"GET /api/v1/byok/audit":       stack.FnAdmin,
	} {
		if got[key] != fn {
			t.Errorf("%s reaches %q, want %q", key, got[key], fn)
		}
	}
}

// TestAliasesReachTheirRoutesFunction wires a test-only table, routes.json
// plus aliases (seed 004's, and one made up on a route of another Lambda),
// and checks each alias reaches its route's function like the route does.
func TestAliasesReachTheirRoutesFunction(t *testing.T) {
	aliases := map[string][]stack.Alias{
		"GET /admin/tenant-kms":          {{Method: "GET", Path: "/api/v1/byok/keys"}},
		"PUT /admin/tenant-kms":          {{Method: "POST", Path: "/api/v1/byok/keys"}},
		"DELETE /admin/tenant-kms":       {{Method: "DELETE", Path: "/api/v1/byok/keys"}},
		"POST /agent/v1/session":         {{Method: "POST", Path: "/api/v1/agent/session"}, {Method: "PUT", Path: "/agent/v1/session"}},
		"GET /agent/v1/jwks/{tenant_id}": {{Method: "GET", Path: "/api/v1/jwks/{tenant_id}"}},
	}
	var routes []stack.Route
	for _, r := range stack.Routes {
		r.Aliases = aliases[r.Method+" "+r.Path]
		delete(aliases, r.Method+" "+r.Path)
		routes = append(routes, r)
	}
	if len(aliases) != 0 {
		t.Fatalf("aliases of routes routes.json lacks: %v", aliases)
	}
	b, err := json.Marshal(routes)
	if err != nil {
		t.Fatal(err)
	}
	if routes, err = stack.ParseRoutes(b); err != nil {
		t.Fatal(err)
	}

	cfg, err := stack.LoadConfig(cdkContext(t), "dev", assets(t))
	if err != nil {
		t.Fatal(err)
	}
	st := awscdk.NewStack(awscdk.NewApp(nil), jsii.String("aliases"), nil)
	data, keys, events := stack.NewData(st, "Data", cfg), stack.NewKeys(st, "Keys", cfg), stack.NewEvents(st, "Events", cfg)
	stack.NewAPI(st, "Api", cfg, stack.NewFunctions(st, "Functions", cfg, data, keys, events), routes)
	tpl := toTemplate(t, st)

	got, gotGrants := tpl.methodTargets(t), tpl.invokeGrants(t)
	for key, fn := range map[string]string{
		"GET /api/v1/byok/keys":        stack.FnAdmin,
		"POST /api/v1/byok/keys":       stack.FnAdmin,
		"DELETE /api/v1/byok/keys":     stack.FnAdmin,
		"POST /api/v1/agent/session":   stack.FnSession,
		"PUT /agent/v1/session":        stack.FnSession,
		"GET /api/v1/jwks/{tenant_id}": stack.FnSession,
	} {
		if got[key] != fn {
			t.Errorf("alias %s reaches %q, want %q", key, got[key], fn)
		}
	}
	if gotGrants["GET /api/v1/jwks/*"] != stack.FnSession {
		t.Errorf("alias GET /api/v1/jwks/{tenant_id}: no invoke grant to %s: %v", stack.FnSession, gotGrants)
	}
	methods, grants := routeTargets(routes)
	if len(methods) != len(stack.Routes)+6 || jsonString(got) != jsonString(methods) {
		t.Fatalf("routes with aliases:\n got %s\nwant %s", jsonString(got), jsonString(methods))
	}
	if jsonString(gotGrants) != jsonString(grants) {
		t.Fatalf("invoke grants with aliases:\n got %s\nwant %s", jsonString(gotGrants), jsonString(grants))
	}
}

func TestFunctions(t *testing.T) {
	tpl := synth(t, "dev")
	fnIDs := tpl.functionIDs(t)
	for fn, id := range fnIDs {
		p := tpl.Resources[id].Properties
		env := p["Environment"].(map[string]any)["Variables"].(map[string]any)
		if p["Runtime"] != "provided.al2023" || jsonString(p["Architectures"]) != `["arm64"]` || p["Handler"] != "bootstrap" ||
			jsonString(p["TracingConfig"]) != `{"Mode":"Active"}` {
			t.Errorf("%s: runtime/arch/handler/tracing: %v", fn, p)
		}
		// The publisher reads the stream, never the table; the bus
		// policy reconcile reads the table's key-ref index, no key.
		publisher, busPolicy := fn == stack.FnPublisher, fn == stack.FnBusPolicy
		if (env["KEYSEAL_TABLE"] != nil) == publisher || (env["KEYSEAL_PLATFORM_KEY_ID"] != nil) == (publisher || busPolicy) {
			t.Errorf("%s: table %v, platform key %v", fn, env["KEYSEAL_TABLE"] != nil, env["KEYSEAL_PLATFORM_KEY_ID"] != nil)
		}
		if env["KEYSEAL_STAGE"] == nil {
			t.Errorf("%s lacks KEYSEAL_STAGE", fn)
		}
		// Health verifies admins too: GET /admin/tenant-kms/health is its.
		admin := fn == stack.FnAdmin || fn == stack.FnUnseal || fn == stack.FnHealth
		if (env["KEYSEAL_ADMIN_JWKS_URL"] != nil) != admin || (env["KEYSEAL_ADMIN_ISSUER"] != nil) != admin {
			t.Errorf("%s: admin settings present=%v, want %v", fn, env["KEYSEAL_ADMIN_ISSUER"] != nil, admin)
		}
		// Admin functions name keyseal's account root as the key policy's
		// principal; the waiver text is the binary's own everywhere.
		principal := `{"Fn::Join":["",["arn:",{"Ref":"AWS::Partition"},":iam::",{"Ref":"AWS::AccountId"},":root"]]}`
		if got := jsonString(env["KEYSEAL_SERVICE_PRINCIPAL"]); (got == principal) != admin || (env["KEYSEAL_SERVICE_PRINCIPAL"] != nil) != admin {
			t.Errorf("%s: KEYSEAL_SERVICE_PRINCIPAL = %s, want %s: %v", fn, got, principal, admin)
		}
		if env["KEYSEAL_WAIVER_FILE"] != nil {
			t.Errorf("%s: KEYSEAL_WAIVER_FILE set; the stack ships the embedded waiver", fn)
		}
		// The deliverer calls no tenant's KMS: only the KMS functions
		// spell out the TMK cache and session bounds.
		deliver := fn == stack.FnDeliver
		if (env["KEYSEAL_WEBHOOK_QUEUE_URL"] != nil) != deliver || (env["KEYSEAL_WEBHOOK_DLQ_URL"] != nil) != deliver {
			t.Errorf("%s: webhook queue URLs present=%v, want %v", fn, env["KEYSEAL_WEBHOOK_QUEUE_URL"] != nil, deliver)
		}
		if !publisher && !deliver && !busPolicy && (env["KEYSEAL_TMK_CACHE_TTL"] != "5m" || env["KEYSEAL_SESSION_TTL"] != "5m") {
			t.Errorf("%s: cache and session TTLs %v %v, want 5m", fn, env["KEYSEAL_TMK_CACHE_TTL"], env["KEYSEAL_SESSION_TTL"])
		}
		// Only the publisher puts events (the rest write the outbox); the
		// bus policy reconcile names the bus too, and the admin function
		// its ARN (the event-forwarding route).
		if (env["KEYSEAL_EVENT_BUS"] != nil) != (publisher || busPolicy) {
			t.Errorf("%s: KEYSEAL_EVENT_BUS present=%v, want %v", fn, env["KEYSEAL_EVENT_BUS"] != nil, publisher || busPolicy)
		}
		if got := jsonString(env["KEYSEAL_EVENT_BUS_ARN"]); (env["KEYSEAL_EVENT_BUS_ARN"] != nil) != (fn == stack.FnAdmin) ||
			(fn == stack.FnAdmin && !strings.Contains(got, `"Fn::GetAtt":["EventsBus`)) {
			t.Errorf("%s: KEYSEAL_EVENT_BUS_ARN = %s", fn, got)
		}
		if env["KEYSEAL_EVENT_ORG_ID"] != nil {
			t.Errorf("%s: KEYSEAL_EVENT_ORG_ID set without eventOrgId", fn)
		}
		if (env["KEYSEAL_AUDIT_SIGNING_KEY_ID"] != nil) != appendsAudit[fn] {
			t.Errorf("%s: KEYSEAL_AUDIT_SIGNING_KEY_ID presence wrong", fn)
		}
	}
	poller := tpl.Resources[fnIDs[stack.FnPoller]].Properties
	if poller["ReservedConcurrentExecutions"] != float64(1) || poller["Timeout"] != float64(75) {
		t.Fatalf("poller: concurrency %v timeout %v, want 1 and 75", poller["ReservedConcurrentExecutions"], poller["Timeout"])
	}
}

// TestEventPublisher: the table streams NEW_IMAGE to the publisher, whose
// mapping passes only outbox INSERTs, retries failed records (reported
// one by one) for as long as the stream keeps them, and bisects a failing
// batch.
func TestEventPublisher(t *testing.T) {
	for _, env := range envs {
		t.Run(env, func(t *testing.T) {
			tpl := synth(t, env)
			for _, tb := range tpl.ofType("AWS::DynamoDB::Table") {
				if got := jsonString(tb.Properties["StreamSpecification"]); got != `{"StreamViewType":"NEW_IMAGE"}` {
					t.Fatalf("stream %s", got)
				}
			}
			maps := map[string]resource{}
			for id, m := range tpl.ofType("AWS::Lambda::EventSourceMapping") {
				if tpl.resolve(m.Properties["EventSourceArn"]) != "<AWS::SQS::Queue>" { // the webhook queue's: TestWebhookDelivery
					maps[id] = m
				}
			}
			if len(maps) != 1 {
				t.Fatalf("%d event source mappings, want 1", len(maps))
			}
			for _, m := range maps {
				p := m.Properties
				got := map[string]any{}
				for k, v := range p {
					got[k] = tpl.resolve(v)
				}
				fn := tpl.functionIn(tpl.functionIDs(t), p["FunctionName"])
				want := map[string]any{
					"BatchSize": float64(10), "BisectBatchOnFunctionError": true, "MaximumRetryAttempts": float64(10000),
					"MaximumRecordAgeInSeconds": float64(86400), "FunctionResponseTypes": []any{"ReportBatchItemFailures"},
					"StartingPosition": "TRIM_HORIZON", "EventSourceArn": "<AWS::DynamoDB::Table StreamArn>",
					"FilterCriteria": map[string]any{"Filters": []any{map[string]any{
						"Pattern": `{"dynamodb":{"Keys":{"pk":{"S":[{"prefix":"outbox#"}]}}},"eventName":["INSERT"]}`}}},
				}
				if fn != stack.FnPublisher {
					t.Fatalf("mapping targets %q, want %s", fn, stack.FnPublisher)
				}
				delete(got, "FunctionName")
				delete(got, "Tags")
				if jsonString(got) != jsonString(want) {
					t.Fatalf("mapping\n got  %s\n want %s", jsonString(got), jsonString(want))
				}
			}
		})
	}
}

func TestPollerSchedule(t *testing.T) {
	tpl := synth(t, "dev")
	rules := map[string]resource{}
	for id, r := range tpl.ofType("AWS::Events::Rule") {
		// The webhook rule's: TestWebhookDelivery; the bus policy's: TestBusPolicyPerAccount.
		if r.Properties["EventPattern"] == nil && !strings.Contains(jsonString(r.Properties["Targets"]), tpl.functionIDs(t)[stack.FnBusPolicy]) {
			rules[id] = r
		}
	}
	if len(rules) != 1 {
		t.Fatalf("%d rules, want 1", len(rules))
	}
	for _, r := range rules {
		targets := jsonString(r.Properties["Targets"])
		if r.Properties["ScheduleExpression"] != "rate(1 minute)" || !strings.Contains(targets, tpl.functionIDs(t)[stack.FnPoller]) {
			t.Fatalf("schedule %v targets %s", r.Properties["ScheduleExpression"], targets)
		}
	}
}

func TestTable(t *testing.T) {
	for _, env := range envs {
		t.Run(env, func(t *testing.T) {
			tables := synth(t, env).ofType("AWS::DynamoDB::Table")
			if len(tables) != 1 {
				t.Fatalf("%d tables", len(tables))
			}
			for _, tb := range tables {
				p := tb.Properties
				if p["BillingMode"] != "PAY_PER_REQUEST" || jsonString(p["TimeToLiveSpecification"]) != `{"AttributeName":"ttl","Enabled":true}` {
					t.Fatalf("billing/TTL: %v", p)
				}
				if jsonString(p["KeySchema"]) != `[{"AttributeName":"pk","KeyType":"HASH"},{"AttributeName":"sk","KeyType":"RANGE"}]` {
					t.Fatalf("key schema %s", jsonString(p["KeySchema"]))
				}
				gsi := jsonString(p["GlobalSecondaryIndexes"])
				if !strings.Contains(gsi, `"IndexName":"poll-shard"`) || !strings.Contains(gsi, `"ProjectionType":"KEYS_ONLY"`) ||
					!strings.Contains(gsi, `{"AttributeName":"poll_shard","KeyType":"HASH"},{"AttributeName":"tenant_id","KeyType":"RANGE"}`) {
					t.Fatalf("poll index %s", gsi)
				}
				if !strings.Contains(gsi, `{"IndexName":"key-ref","KeySchema":[{"AttributeName":"key_ref","KeyType":"HASH"},{"AttributeName":"tenant_id","KeyType":"RANGE"}],"Projection":{"ProjectionType":"KEYS_ONLY"}}`) {
					t.Fatalf("key index %s", gsi)
				}
				pitr := jsonString(p["PointInTimeRecoverySpecification"]) == `{"PointInTimeRecoveryEnabled":true}`
				protected := p["DeletionProtectionEnabled"] == true
				if pitr != (env != "dev") || protected != (env == "prod") {
					t.Fatalf("PITR %v deletion protection %v", pitr, protected)
				}
				if (tb.DeletionPolicy == "Retain") != (env == "prod") {
					t.Fatalf("deletion policy %q", tb.DeletionPolicy)
				}
			}
		})
	}
}

// resolve renders a template value with CloudFormation's intrinsics
// spelled out readably: a resource's ARN as <its type>, a Ref as
// ${name}, an empty-separator Fn::Join as the concatenation; maps and
// lists resolve member by member.
func (tpl template) resolve(v any) any {
	switch x := v.(type) {
	case map[string]any:
		if att, ok := x["Fn::GetAtt"].([]any); ok && len(att) == 2 && att[1] == "Arn" {
			return "<" + tpl.Resources[att[0].(string)].Type + ">"
		}
		if att, ok := x["Fn::GetAtt"].([]any); ok && len(att) == 2 {
			return "<" + tpl.Resources[att[0].(string)].Type + " " + fmt.Sprint(att[1]) + ">"
		}
		if ref, ok := x["Ref"].(string); ok {
			return "${" + ref + "}"
		}
		if join, ok := x["Fn::Join"].([]any); ok && join[0] == "" {
			var b strings.Builder
			for _, part := range join[1].([]any) {
				fmt.Fprint(&b, tpl.resolve(part))
			}
			return b.String()
		}
		out := map[string]any{}
		for k, e := range x {
			out[k] = tpl.resolve(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = tpl.resolve(e)
		}
		return out
	}
	return v
}

// resolve is template.resolve for values that name no resource.
func resolve(v any) string {
	s, _ := template{}.resolve(v).(string)
	return s
}

// strings of an IAM Action or Resource (one string or a list), sorted.
func sortedStrings(v any) []string {
	var out []string
	switch x := v.(type) {
	case string:
		out = []string{x}
	case []any:
		for _, e := range x {
			out = append(out, fmt.Sprint(e))
		}
	}
	sort.Strings(out)
	return out
}

// rolePolicies reads every inline IAM statement in the template, per
// function, in the form "actions on resources [if conditions]", and the
// union of each function's actions. A policy on a role that is no
// function's fails the test.
func (tpl template) rolePolicies(t *testing.T) (statements, actions map[string][]string) {
	t.Helper()
	roleOf := map[string]string{}
	for fn, id := range tpl.functionIDs(t) {
		att := tpl.Resources[id].Properties["Role"].(map[string]any)["Fn::GetAtt"].([]any)
		roleOf[att[0].(string)] = fn
	}
	statements, actions = map[string][]string{}, map[string][]string{}
	seen := map[string]map[string]bool{}
	for id, p := range tpl.ofType("AWS::IAM::Policy") {
		for _, ref := range p.Properties["Roles"].([]any) {
			role, _ := ref.(map[string]any)["Ref"].(string)
			fn, ok := roleOf[role]
			if !ok {
				t.Errorf("policy %s is on role %v, which is no function's", id, ref)
				continue
			}
			if seen[fn] == nil {
				seen[fn] = map[string]bool{}
			}
			doc := p.Properties["PolicyDocument"].(map[string]any)
			for _, s := range doc["Statement"].([]any) {
				st := tpl.resolve(s).(map[string]any)
				for k := range st {
					if k != "Effect" && k != "Action" && k != "Resource" && k != "Condition" {
						t.Errorf("%s: statement with %s: %s", fn, k, jsonString(st))
					}
				}
				if st["Effect"] != "Allow" {
					t.Errorf("%s: statement with effect %v", fn, st["Effect"])
				}
				acts := sortedStrings(st["Action"])
				line := strings.Join(acts, ",") + " on " + strings.Join(sortedStrings(st["Resource"]), ",")
				if st["Condition"] != nil {
					line += " if " + jsonString(st["Condition"])
				}
				statements[fn] = append(statements[fn], line)
				for _, a := range acts {
					if !seen[fn][a] {
						seen[fn][a] = true
						actions[fn] = append(actions[fn], a)
					}
				}
			}
		}
	}
	for fn := range statements {
		sort.Strings(statements[fn])
		sort.Strings(actions[fn])
	}
	return statements, actions
}

// TestLeastPrivilege checks, for each function, the exact set of IAM
// actions its role may use and every statement granting them: resources
// and conditions (keyseal's encryption context on customers' keys, keys of
// other accounts only, AssumeRole only with an ExternalId).
func TestLeastPrivilege(t *testing.T) {
	tpl := synth(t, "prod")
	for id, r := range tpl.ofType("AWS::IAM::Role") {
		// Only the two narrow logging policies CDK attaches are allowed.
		arns := jsonString(r.Properties["ManagedPolicyArns"])
		arns = strings.ReplaceAll(arns, "/service-role/AWSLambdaBasicExecutionRole", "")
		arns = strings.ReplaceAll(arns, "/service-role/AmazonAPIGatewayPushToCloudWatchLogs", "")
		if strings.Contains(arns, ":iam::aws:policy/") {
			t.Errorf("role %s has another managed policy: %s", id, jsonString(r.Properties["ManagedPolicyArns"]))
		}
	}

	const (
		table       = "<AWS::DynamoDB::Table>"
		platformKey = "<AWS::KMS::Key>"
		bus         = "<AWS::Events::EventBus>"
		tableStream = "<AWS::DynamoDB::Table StreamArn>"
		otherAcct   = `"StringNotEquals":{"aws:ResourceAccount":"${AWS::AccountId}"}`
	)
	// Tracing: Active makes CDK add the X-Ray actions to every role.
	xray := []string{"xray:PutTelemetryRecords", "xray:PutTraceSegments"}
	store := []string{"dynamodb:ConditionCheckItem", "dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:UpdateItem"}
	kmsActions := append(append(append([]string{}, store...), "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt",
		"kms:GetPublicKey", "kms:Sign", "sts:AssumeRole"), xray...)
	kmsStatements := []string{
		// The audit signing key (TestAuditSigningKey checks it is that key).
		"kms:GetPublicKey,kms:Sign on " + platformKey,
		strings.Join(store, ",") + " on " + table + "," + table + "/index/poll-shard",
		`kms:Decrypt,kms:Encrypt on arn:aws:kms:*:*:key/* if {"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":"keyseal:tenant"},` + otherAcct + `}`,
		"kms:Decrypt,kms:DescribeKey,kms:Encrypt on " + platformKey,
		`kms:DescribeKey on arn:aws:kms:*:*:key/* if {` + otherAcct + `}`,
		`sts:AssumeRole on arn:aws:iam::*:role/* if {"Null":{"sts:ExternalId":"false"}}`,
		strings.Join(xray, ",") + " on *",
	}
	keyEventsStatements := append([]string{}, kmsStatements...)
	keyEventsStatements[1] = strings.Join(store, ",") + " on " + table + "," + table + "/index/key-ref"
	// Health reads the table (the BYOK probe reads the tenant row and its
	// versions) and uses the keys like the others, but writes nothing and
	// signs nothing.
	healthActions := append([]string{"dynamodb:DescribeTable", "dynamodb:GetItem", "dynamodb:Query",
		"kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "sts:AssumeRole"}, xray...)
	healthStatements := []string{
		"dynamodb:DescribeTable,dynamodb:GetItem,dynamodb:Query on " + table,
		kmsStatements[2], kmsStatements[3], kmsStatements[4], kmsStatements[5], kmsStatements[6],
	}
	// The publisher reads the table's stream (what its event source
	// mapping polls with) and puts to the bus: nothing of the table
	// itself, no key.
	stream := []string{"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator", "dynamodb:ListStreams"}
	// The webhook deliverer: its queue (the event source, hiding jobs
	// not due, sending retries) and the DLQ's send (TestWebhookDelivery
	// tells the two queues apart); the table without its index; the
	// platform key to decrypt signing secrets only; the audit key (a 410
	// Gone disables a subscription, audited). No customer key, no STS.
	queue := "<AWS::SQS::Queue>"
	deliverStore := strings.Join(store, ",") + " on " + table
	deliverSecrets := `kms:Decrypt on ` + platformKey + ` if {"StringEquals":{"kms:EncryptionContext:keyseal:purpose":"webhook_secret"}}`
	deliverQueue := "sqs:ChangeMessageVisibility,sqs:DeleteMessage,sqs:GetQueueAttributes,sqs:ReceiveMessage,sqs:SendMessage on " + queue
	wantActions := map[string][]string{
		stack.FnDeliver: append(append(append([]string{}, store...), "kms:Decrypt", "kms:GetPublicKey", "kms:Sign",
			"sqs:ChangeMessageVisibility", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:SendMessage"), xray...),
		stack.FnPublisher: append(append(append([]string{}, stream...), "events:PutEvents"), xray...),
		stack.FnHealth:    healthActions,
		stack.FnSession:   kmsActions, stack.FnAdmin: kmsActions, stack.FnUnseal: kmsActions, stack.FnPollWorker: kmsActions,
		// The scheduled poller also starts the worker (TestPollerFanOut:
		// that function only).
		stack.FnPoller:    append(append([]string{}, kmsActions...), "lambda:InvokeFunction"),
		stack.FnKeyEvents: kmsActions,
		stack.FnBusPolicy: append([]string{"dynamodb:Scan", "events:DescribeEventBus", "events:PutPermission", "events:RemovePermission"}, xray...),
	}
	wantStatements := map[string][]string{
		stack.FnDeliver:   {deliverStore, deliverSecrets, kmsStatements[0], deliverQueue, "sqs:SendMessage on " + queue, strings.Join(xray, ",") + " on *"},
		stack.FnPublisher: {strings.Join(stream, ",") + " on " + tableStream, "events:PutEvents on " + bus, strings.Join(xray, ",") + " on *"},
		stack.FnHealth:    healthStatements,
		stack.FnSession:   kmsStatements, stack.FnAdmin: kmsStatements, stack.FnUnseal: kmsStatements, stack.FnPollWorker: kmsStatements,
		stack.FnPoller: append(append([]string{}, kmsStatements...), "lambda:InvokeFunction on <AWS::Lambda::Function>"),
		// What the poller may do, with the key-ref index in place of the
		// poll-shard one: it finds tenants by key, never lists a shard.
		stack.FnKeyEvents: keyEventsStatements,
		// The bus policy reconcile: the key-ref index alone, read whole,
		// and the permissions of keyseal's bus, nothing else of either.
		stack.FnBusPolicy: {"dynamodb:Scan on " + table + "/index/key-ref",
			"events:DescribeEventBus,events:PutPermission,events:RemovePermission on " + bus, strings.Join(xray, ",") + " on *"},
	}

	statements, actions := tpl.rolePolicies(t)
	for _, fn := range stack.FunctionNames() {
		if missing, extra := diff(actions[fn], wantActions[fn]); len(missing)+len(extra) > 0 {
			t.Errorf("%s: actions lack %v, have extra %v", fn, missing, extra)
		}
		if missing, extra := diff(statements[fn], wantStatements[fn]); len(missing)+len(extra) > 0 {
			t.Errorf("%s: statements\n lack  %s\n extra %s", fn, strings.Join(missing, "\n       "), strings.Join(extra, "\n       "))
		}
	}
}

// diff returns what want has and got lacks, and what got has beyond want
// (both sorted lists; duplicates count).
func diff(got, want []string) (missing, extra []string) {
	count := map[string]int{}
	for _, w := range want {
		count[w]++
	}
	for _, g := range got {
		count[g]--
	}
	for _, k := range sortedKeys(count) {
		for ; count[k] > 0; count[k]-- {
			missing = append(missing, k)
		}
		for ; count[k] < 0; count[k]++ {
			extra = append(extra, k)
		}
	}
	return missing, extra
}

func sortedKeys(m map[string]int) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// TestAuditSigningKey: the checkpoint key is an Ed25519 signing key of its
// own, and exactly the functions that append to the audit chain may sign
// with it (and read its public key); they are told which key it is.
func TestAuditSigningKey(t *testing.T) {
	tpl := synth(t, "prod")
	var auditKey string
	for id, k := range tpl.ofType("AWS::KMS::Key") {
		if k.Properties["KeySpec"] == stack.AuditKeySpec {
			if auditKey != "" || k.Properties["KeyUsage"] != "SIGN_VERIFY" {
				t.Fatalf("audit key %s: %v (another: %q)", id, k.Properties, auditKey)
			}
			auditKey = id
		}
	}
	if auditKey == "" {
		t.Fatalf("no KMS key with key spec %s", stack.AuditKeySpec)
	}
	if _, ok := tpl.Outputs["AuditSigningKeyArn"]; !ok {
		t.Error("no AuditSigningKeyArn output")
	}
	fnIDs := tpl.functionIDs(t)
	roleOf := map[string]string{}
	for fn, id := range fnIDs {
		roleOf[tpl.Resources[id].Properties["Role"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)] = fn
		env := tpl.Resources[id].Properties["Environment"].(map[string]any)["Variables"].(map[string]any)
		want := appendsAudit[fn]
		if got := jsonString(env["KEYSEAL_AUDIT_SIGNING_KEY_ID"]); (got == `{"Fn::GetAtt":["`+auditKey+`","Arn"]}`) != want {
			t.Errorf("%s: KEYSEAL_AUDIT_SIGNING_KEY_ID = %s, want the audit key's ARN: %v", fn, got, want)
		}
	}
	signers := map[string]bool{}
	for _, p := range tpl.ofType("AWS::IAM::Policy") {
		for _, s := range p.Properties["PolicyDocument"].(map[string]any)["Statement"].([]any) {
			st := s.(map[string]any)
			acts := jsonString(st["Action"])
			if !strings.Contains(acts, "kms:Sign") && !strings.Contains(acts, "kms:GetPublicKey") {
				continue
			}
			if res := jsonString(st["Resource"]); acts != `["kms:Sign","kms:GetPublicKey"]` || res != `{"Fn::GetAtt":["`+auditKey+`","Arn"]}` {
				t.Errorf("signing statement %s on %s, want kms:Sign and kms:GetPublicKey on the audit key only", acts, res)
			}
			for _, r := range p.Properties["Roles"].([]any) {
				signers[roleOf[r.(map[string]any)["Ref"].(string)]] = true
			}
		}
	}
	for _, fn := range stack.FunctionNames() {
		if signers[fn] != appendsAudit[fn] {
			t.Errorf("%s may sign checkpoints: %v", fn, signers[fn])
		}
	}
}

// appendsAudit are the functions that append to audit chains, and so sign
// checkpoints: not health (reads only) and not the event publisher (it
// only forwards the outbox).
var appendsAudit = map[string]bool{stack.FnSession: true, stack.FnAdmin: true, stack.FnUnseal: true, stack.FnPoller: true,
	stack.FnPollWorker: true, // it seals and unseals as the poller does
	stack.FnKeyEvents:  true, // a pushed verify seals and unseals as the poller does
	stack.FnDeliver:    true} // disabling a subscription on 410 Gone is audited

func TestAlarms(t *testing.T) {
	for _, env := range envs {
		t.Run(env, func(t *testing.T) {
			tpl := synth(t, env)
			got := map[string]string{}
			for _, a := range tpl.ofType("AWS::CloudWatch::Alarm") {
				p := a.Properties
				if p["Namespace"] == "AWS/SQS" { // the webhook DLQ's: TestWebhookDelivery
					continue
				}
				if p["Namespace"] != "keyseal" || jsonString(p["Dimensions"]) != `[{"Name":"Stage","Value":"`+env+`"}]` || len(jsonString(p["AlarmActions"])) < 5 {
					t.Fatalf("alarm %v", p)
				}
				got[p["MetricName"].(string)] = p["Statistic"].(string) + ">" + jsonString(p["Threshold"])
				// A poller fan-out invoke that failed: any in 5 minutes; a
				// minute without fan-out reports nothing, which is fine.
				if p["MetricName"] == "PollDispatchErrors" && (p["Period"] != 300.0 || p["EvaluationPeriods"] != 1.0 ||
					p["ComparisonOperator"] != "GreaterThanThreshold" || p["TreatMissingData"] != "notBreaching" || len(jsonString(p["OKActions"])) < 5) {
					t.Errorf("PollDispatchErrors alarm %v", p)
				}
			}
			want := map[string]string{"SealedTenants": "Maximum>0", "KMSLatency": "Average>200", "KMSFailures": "Sum>10", "KeyRotationAgeDays": "Maximum>90",
				"KeyDeliveryFailures": "Sum>0", "PollDispatchErrors": "Sum>0"}
			if jsonString(got) != jsonString(want) {
				t.Fatalf("alarms %v, want %v", got, want)
			}
			subs := tpl.ofType("AWS::SNS::Subscription")
			if (len(subs) == 1) != (env != "dev") {
				t.Fatalf("%d email subscriptions", len(subs))
			}
		})
	}
}

func TestPerEnvironmentSettings(t *testing.T) {
	retention := map[string]float64{"dev": 14, "staging": 30, "prod": 365}
	for _, env := range envs {
		tpl := synth(t, env)
		for id, lg := range tpl.ofType("AWS::Logs::LogGroup") {
			if lg.Properties["RetentionInDays"] != retention[env] {
				t.Errorf("%s %s: retention %v, want %v", env, id, lg.Properties["RetentionInDays"], retention[env])
			}
		}
		for id, k := range tpl.ofType("AWS::KMS::Key") {
			// The asymmetric audit key cannot rotate (the verifier key
			// auditors saved stays valid); the platform key must.
			rotates := k.Properties["KeySpec"] != stack.AuditKeySpec
			if (k.Properties["EnableKeyRotation"] == true) != rotates || (k.DeletionPolicy == "Retain") != (env == "prod") {
				t.Errorf("%s key %s: rotation %v deletion policy %q", env, id, k.Properties["EnableKeyRotation"], k.DeletionPolicy)
			}
		}
		for _, s := range tpl.ofType("AWS::ApiGateway::Stage") {
			if s.Properties["StageName"] != env || s.Properties["AccessLogSetting"] == nil {
				t.Errorf("%s stage: %v", env, s.Properties)
			}
		}
		if _, ok := tpl.Outputs["ApiUrl"]; !ok {
			t.Errorf("%s: no ApiUrl output", env)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	ctx := cdkContext(t)
	if _, err := stack.LoadConfig(ctx, "qa", "bin"); err == nil || !strings.Contains(err.Error(), "dev, prod, staging") {
		t.Fatalf("unknown env: %v", err)
	}
	if _, err := stack.LoadConfig(nil, "dev", "bin"); err == nil {
		t.Fatal("missing context accepted")
	}
	bad := map[string]any{"dev": map[string]any{"region": "us-east-1", "logRetentionDays": 13}}
	if _, err := stack.LoadConfig(bad, "dev", "bin"); err == nil || !strings.Contains(err.Error(), "adminIssuer") {
		t.Fatalf("missing admin settings: %v", err)
	}
	typo := map[string]any{"dev": map[string]any{"region": "us-east-1", "logRetention": 14}}
	if _, err := stack.LoadConfig(typo, "dev", "bin"); err == nil || !strings.Contains(err.Error(), "logRetention") {
		t.Fatalf("unknown field: %v", err)
	}
	names := stack.Environments(ctx)
	sort.Strings(names)
	if strings.Join(names, ",") != "dev,prod,staging" {
		t.Fatalf("environments %v", names)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	jsii.Close()
	os.Exit(code)
}

// TestKeyEventRules: push sealing's two rules sit on keyseal's bus, match
// the forwarded KMS events shared/keyevents acts on (and nothing else),
// and target the key-events function with a short retry window.
func TestKeyEventRules(t *testing.T) {
	tpl := synth(t, "prod")
	fn := tpl.functionIDs(t)[stack.FnKeyEvents]
	want := map[string]string{
		`{"detail":{"eventName":` + jsonString(stack.KeyAPIEvents) + `,"eventSource":["kms.amazonaws.com"]},"detail-type":["AWS API Call via CloudTrail"],"source":["aws.kms"]}`: "api",
		`{"detail-type":["KMS CMK Deletion","KMS Imported Key Material Expiration"],"source":["aws.kms"]}`:                                                                       "lifecycle",
	}
	found := map[string]bool{}
	for id, r := range tpl.ofType("AWS::Events::Rule") {
		targets := jsonString(r.Properties["Targets"])
		if !strings.Contains(targets, fn) {
			continue
		}
		pattern := jsonString(r.Properties["EventPattern"])
		name, ok := want[pattern]
		if !ok {
			t.Errorf("rule %s targets key-events with pattern %s", id, pattern)
			continue
		}
		found[name] = true
		if got := tpl.resolve(r.Properties["EventBusName"]); !strings.HasPrefix(jsonString(got), `"${EventsBus`) {
			t.Errorf("rule %s on bus %v, want keyseal's", id, got)
		}
		if !strings.Contains(targets, `"RetryPolicy":{"MaximumEventAgeInSeconds":120,"MaximumRetryAttempts":2}`) {
			t.Errorf("rule %s targets %s", id, targets)
		}
	}
	if len(found) != 2 {
		t.Fatalf("key-events rules found: %v, want api and lifecycle", found)
	}
	perms := 0
	for _, p := range tpl.ofType("AWS::Lambda::Permission") {
		if strings.Contains(jsonString(p.Properties["FunctionName"]), fn) {
			perms++
			if p.Properties["Principal"] != "events.amazonaws.com" || p.Properties["Action"] != "lambda:InvokeFunction" {
				t.Errorf("key-events permission %s", jsonString(p.Properties))
			}
		}
	}
	if perms != 2 {
		t.Errorf("%d invoke permissions on key-events, want one per rule", perms)
	}
}
