//go:build integration

// Package suite is keyseal's integration tier: the local server runs the
// Lambda handlers in process with the DynamoDB store and the AWS KMS
// provider, against LocalStack (KMS, EventBridge, SQS, STS) and DynamoDB
// Local, with a fault proxy between keyseal and KMS for the failures
// LocalStack cannot produce (access denied, partitions, outages). Run it with
// `make test`, which starts the stand-ins and exports their endpoints.
package suite

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/keyseal/keyseal/localstack/faultproxy"
	"github.com/keyseal/keyseal/localstack/standin"
	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/client"
	"github.com/keyseal/keyseal/shared/devissuer"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/localserver"
	"github.com/keyseal/keyseal/shared/poller"
)

// env is one running keyseal (local server, LocalStack mode) with its own
// table, event bus and SQS queue subscribed to the bus.
type env struct {
	tb       testing.TB
	srv      *localserver.Server
	proxy    *faultproxy.Proxy
	kms      *kms.Client // straight to LocalStack, for the customer's side
	ddb      *dynamodb.Client
	sqs      *sqs.Client
	table    string
	queueURL string
	poller   *poller.Handler

	mu       sync.Mutex
	received []busEvent
}

// busEvent is the part of an EventBridge event delivered to SQS the tests
// look at.
type busEvent struct {
	DetailType string `json:"detail-type"`
	Source     string `json:"source"`
	Detail     struct {
		// ID is keyseal's event id, the same on every redelivery: what a
		// consumer deduplicates on (EventBridge's own envelope id is new
		// for every put).
		ID       string `json:"id"`
		Type     string `json:"type"`
		TenantID string `json:"tenant_id"`
		Time     string `json:"time"`
		Data     struct {
			Reason  string `json:"reason"`  // tenant.kms.sealed
			Trigger string `json:"trigger"` // tenant.kms.unsealed
		} `json:"data"`
	} `json:"detail"`
}

// newEnv starts keyseal in LocalStack mode with settings overriding the
// test defaults (manual sweeps: the in-process poller is parked at 1h).
func newEnv(tb testing.TB, settings map[string]string) *env {
	tb.Helper()
	ctx := context.Background()
	localstack := standin.LocalStack(tb)
	standin.DynamoDBEndpoint(tb)

	proxy, err := faultproxy.New(localstack)
	if err != nil {
		tb.Fatal(err)
	}
	proxyURL, err := proxy.Start("127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { proxy.Close() })

	e := &env{tb: tb, proxy: proxy, kms: standin.KMS(tb), ddb: standin.DynamoDB(tb), sqs: standin.SQS(tb),
		table: standin.Name("keyseal-it-")}

	vars := map[string]string{
		"KEYSEAL_TABLE":          e.table,
		"KEYSEAL_EVENT_BUS":      e.table,
		"KEYSEAL_POLL_INTERVAL":  "1h",
		"KEYSEAL_KMS_TIMEOUT":    "2s",
		"KEYSEAL_TMK_CACHE_TTL":  "5m",
		"KEYSEAL_LOG_LEVEL":      "warn",
		"AWS_ENDPOINT_URL_KMS":   proxyURL, // keyseal reaches KMS only through the proxy
		"AWS_ENDPOINT_URL":       localstack,
		"KEYSEAL_SESSION_TTL":    "5m",
		"KEYSEAL_STEPUP_MAX_AGE": "300s",
	}
	for k, v := range settings {
		vars[k] = v
	}
	// awsconfig reads endpoints from the process environment.
	tb.Setenv("AWS_ENDPOINT_URL_KMS", vars["AWS_ENDPOINT_URL_KMS"])
	if ep, ok := settings["AWS_ENDPOINT_URL_DYNAMODB"]; ok {
		// keyseal reaches the store through a proxy (storeFaults); e.ddb,
		// made above, still goes straight to DynamoDB Local.
		tb.Setenv("AWS_ENDPOINT_URL_DYNAMODB", ep)
	}
	a, l, err := localserver.Wire(ctx, func(k string) string { return vars[k] }, localserver.ModeLocalStack, tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	srv, err := localserver.Start(ctx, a, l, localserver.Options{Addr: "127.0.0.1:0", DataDir: tb.TempDir()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		srv.Close()
		a.Close()
	})
	e.srv = srv
	e.poller = &poller.Handler{Tenants: a.Tenants, Sweeps: 1, Log: a.Log}
	e.subscribe(ctx)
	return e
}

// subscribe routes every keyseal event on the env's bus to a fresh SQS
// queue, the way an operator would observe tenant.kms.* events.
func (e *env) subscribe(ctx context.Context) {
	tb := e.tb
	q, err := e.sqs.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(e.table)})
	if err != nil {
		tb.Fatal(err)
	}
	e.queueURL = aws.ToString(q.QueueUrl)
	attrs, err := e.sqs.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		tb.Fatal(err)
	}
	eb := standin.EventBridge(tb)
	rule := e.table + "-all"
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(rule), EventBusName: aws.String(e.table),
		EventPattern: aws.String(`{"source":["keyseal"]}`)}); err != nil {
		tb.Fatal(err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(rule), EventBusName: aws.String(e.table),
		Targets: []ebtypes.Target{{Id: aws.String("sqs"), Arn: aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)])}}}); err != nil {
		tb.Fatal(err)
	}
}

// sweep runs one poll the way the verify-poller Lambda does.
func (e *env) sweep() {
	e.tb.Helper()
	res, err := e.poller.Handle(context.Background(), json.RawMessage(`{}`))
	if err != nil || len(res.Sweeps) != 1 {
		e.tb.Fatalf("sweep: %v %+v", err, res)
	}
}

// awaitEvent drains the queue until an event of typ for tenantID arrives,
// or fails after a generous deadline (delivery is asynchronous).
func (e *env) awaitEvent(typ, tenantID string) busEvent {
	e.tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		e.mu.Lock()
		for _, ev := range e.received {
			if ev.DetailType == typ && ev.Detail.TenantID == tenantID {
				e.mu.Unlock()
				return ev
			}
		}
		e.mu.Unlock()
		if time.Now().After(deadline) {
			e.tb.Fatalf("no %s event for tenant %s arrived on the SQS target", typ, tenantID)
		}
		e.receive()
	}
}

// receive takes what the SQS target holds (waiting up to 1 s) into
// e.received.
func (e *env) receive() {
	e.tb.Helper()
	out, err := e.sqs.ReceiveMessage(context.Background(), &sqs.ReceiveMessageInput{QueueUrl: aws.String(e.queueURL),
		MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
	if err != nil {
		e.tb.Fatal(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, m := range out.Messages {
		var ev busEvent
		if err := json.Unmarshal([]byte(aws.ToString(m.Body)), &ev); err != nil {
			e.tb.Fatalf("event body %q: %v", aws.ToString(m.Body), err)
		}
		e.received = append(e.received, ev)
	}
}

// awaitOutboxEmpty waits until the drain has acked every outbox event (it
// acks right after the put the SQS target saw), or fails after a generous
// deadline.
func (e *env) awaitOutboxEmpty() {
	e.tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		left, err := e.srv.App.Store.ListOutbox(context.Background(), 0)
		if err != nil {
			e.tb.Fatal(err)
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			e.tb.Fatalf("%d outbox events never drained", len(left))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// tenant is a BYOK tenant registered through the admin API.
type tenant struct {
	ID       string
	KeyARN   string
	KeyID    string
	AgentKey string
}

// newTenant creates a customer key in LocalStack, registers it for a new
// tenant through PUT /admin/tenant-kms and creates an agent.
func (e *env) newTenant() tenant {
	e.tb.Helper()
	ctx := context.Background()
	k, err := e.kms.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("customer CMK for a keyseal test")})
	if err != nil {
		e.tb.Fatal(err)
	}
	t := tenant{ID: standin.Name("t-"), KeyARN: aws.ToString(k.KeyMetadata.Arn), KeyID: aws.ToString(k.KeyMetadata.KeyId)}
	admin := e.admin(t.ID)
	e.acknowledgeWaiver(admin)
	must(admin.Register(ctx, e.stepUpWith(admin), "aws-kms", map[string]string{"key_arn": t.KeyARN}))(e.tb)
	t.AgentKey = must(admin.CreateAgent(ctx, "worker"))(e.tb).Key
	return t
}

// must returns v, failing tb on err: must(c.Call(ctx))(tb).
func must[T any](v T, err error) func(tb testing.TB) T {
	return func(tb testing.TB) T {
		tb.Helper()
		if err != nil {
			tb.Fatal(err)
		}
		return v
	}
}

// wantAPIError checks err is the API's error code with status and a
// message.
func wantAPIError(tb testing.TB, err error, status int, code string) *client.Error {
	tb.Helper()
	ae, ok := errors.AsType[*client.Error](err)
	if !ok || ae.Status != status || ae.Code != code || ae.Message == "" {
		tb.Fatalf("want %d %s with a message, got %v", status, code, err)
	}
	return ae
}

// api is the typed client of the local server calling as token (an admin
// JWT, an agent key, or "" for none).
func (e *env) api(token string) *client.Client {
	return client.MustNew(e.srv.URL, token)
}

// admin is the typed client as alice, a fresh MFA admin of tenantID.
func (e *env) admin(tenantID string) *client.Client {
	return e.api(e.adminToken(tenantID, "alice"))
}

// acknowledgeWaiver acknowledges the current legal waiver as the admin's
// tenant, which registration and migration require.
func (e *env) acknowledgeWaiver(admin *client.Client) {
	e.tb.Helper()
	must(admin.AcknowledgeWaiver(context.Background(), client.WaiverAck{AcknowledgedBy: "legal@customer.example"}))(e.tb)
}

// adminToken mints an admin JWT fit for step-up (fresh auth, acr mfa).
func (e *env) adminToken(tenantID, subject string) string {
	return e.mint(devissuer.Claims{Subject: subject, TenantID: tenantID, TTL: time.Hour, AuthTime: time.Now(),
		ACR: "mfa", AMR: []string{"pwd", "mfa"}, Roles: []string{"keyseal:admin"}})
}

func (e *env) mint(c devissuer.Claims) string {
	e.tb.Helper()
	tok, err := e.srv.Local.Issuer.Mint(c)
	if err != nil {
		e.tb.Fatal(err)
	}
	return tok
}

// stepUp gets a fresh step-up token for the admin token.
func (e *env) stepUp(admin string) string {
	e.tb.Helper()
	return e.stepUpWith(e.api(admin))
}

// stepUpWith gets a fresh step-up token as the admin client.
func (e *env) stepUpWith(admin *client.Client) string {
	e.tb.Helper()
	return must(admin.StepUp(context.Background()))(e.tb).StepUpToken
}

// session asks for a session bundle as the tenant's agent (raw: the tests
// check the agent error bodies).
func (e *env) session(t tenant) *reply {
	return e.call(http.MethodPost, "/agent/v1/session", t.AgentKey, "", map[string]any{})
}

// tenantKMS reads GET /admin/tenant-kms.
func (e *env) tenantKMS(t tenant) api.TenantView {
	e.tb.Helper()
	return must(e.admin(t.ID).TenantKMS(context.Background()))(e.tb)
}

// auditEntries lists a tenant's audit entries with action (newest first).
func (e *env) auditEntries(t tenant, action string) []keyseal.AuditEntry {
	e.tb.Helper()
	return must(e.admin(t.ID).Audit(context.Background(), client.AuditQuery{Action: action, Limit: 100}))(e.tb).Entries
}

// str is *s, "" for nil (an optional string of api.TenantView).
func str(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// reply is an HTTP response with its JSON body decoded.
type reply struct {
	tb     testing.TB
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// call sends a JSON request to the local server. body may be nil, a string
// (sent raw) or any JSON-encodable value.
func (e *env) call(method, path, bearer, stepUp string, body any) *reply {
	e.tb.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, err := json.Marshal(b)
		if err != nil {
			e.tb.Fatal(err)
		}
		rd = bytes.NewReader(buf)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		e.tb.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if stepUp != "" {
		req.Header.Set(auth.StepUpHeader, stepUp)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.tb.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		e.tb.Fatal(err)
	}
	r := &reply{tb: e.tb, status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			e.tb.Fatalf("%s %s: body is not a JSON object: %q", method, path, raw)
		}
	}
	return r
}

func (r *reply) want(status int) *reply {
	r.tb.Helper()
	if r.status != status {
		r.tb.Fatalf("status %d, want %d; body %s", r.status, status, r.raw)
	}
	return r
}

func (r *reply) str(key string) string {
	r.tb.Helper()
	s, ok := r.body[key].(string)
	if !ok {
		r.tb.Fatalf("field %q missing or not a string in %s", key, r.raw)
	}
	return s
}

// adminError checks an admin API error body: {"error": code, "message": ...}.
func (r *reply) adminError(status int, code string) *reply {
	r.tb.Helper()
	r.want(status)
	if r.body["error"] != code || r.body["message"] == "" || r.body["message"] == nil {
		r.tb.Fatalf("want admin error %q with a message, got %s", code, r.raw)
	}
	return r
}

// agentError checks an agent API error body: {"error": {"type", "message"}}.
func (r *reply) agentError(status int, typ string) *reply {
	r.tb.Helper()
	r.want(status)
	e, _ := r.body["error"].(map[string]any)
	if e == nil || e["type"] != typ || e["message"] == "" {
		r.tb.Fatalf("want agent error %q with a message, got %s", typ, r.raw)
	}
	return r
}

func (r *reply) String() string { return fmt.Sprintf("%d %s", r.status, r.raw) }
