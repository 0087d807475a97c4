package config_test

import (
	"strings"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/config"
)

func env(kv map[string]string) config.Getenv { return func(k string) string { return kv[k] } }

func TestDefaults(t *testing.T) {
	c, err := config.Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.CacheTTL != 5*time.Minute || c.SessionTTL != 5*time.Minute || c.PollInterval != 30*time.Second ||
		c.KMSTimeout != 5*time.Second || c.PollConcurrency != 64 || c.AdminTenantClaim != "tenant_id" ||
		c.StepUpMaxAge != 300*time.Second || len(c.StepUpACRValues) != 1 || c.StepUpACRValues[0] != "mfa" || c.LogLevel != "info" || c.Stage != "local" ||
		c.WebhookRetryScale != 1 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestValues(t *testing.T) {
	c, err := config.Load(env(map[string]string{"KEYSEAL_TMK_CACHE_TTL": "90s", "KEYSEAL_STEPUP_ACR_VALUES": "mfa, phr",
		"KEYSEAL_POLL_CONCURRENCY": "8", "KEYSEAL_LOG_LEVEL": "debug", "KEYSEAL_STAGE": "prod", "KEYSEAL_WEBHOOK_RETRY_SCALE": "0.01"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.CacheTTL != 90*time.Second || c.PollConcurrency != 8 || strings.Join(c.StepUpACRValues, " ") != "mfa phr" || c.Stage != "prod" ||
		c.WebhookRetryScale != 0.01 {
		t.Fatalf("values: %+v", c)
	}
}

// TestBadValuesNameTheVariable: every bad value is reported, each naming
// its variable, so an operator fixes them all in one go.
func TestBadValuesNameTheVariable(t *testing.T) {
	_, err := config.Load(env(map[string]string{
		"KEYSEAL_TMK_CACHE_TTL":    "five minutes",
		"KEYSEAL_SESSION_TTL":      "10m", // above the 5 min bound of BYOK sessions
		"KEYSEAL_POLL_CONCURRENCY": "0",
		"KEYSEAL_LOG_LEVEL":        "loud",
		"KEYSEAL_ADMIN_JWKS":       "{}",
		"KEYSEAL_ADMIN_JWKS_URL":   "https://idp/jwks",
		"KEYSEAL_STAGE":            "prod\n",
	}))
	for _, v := range []string{"0", "1.5", "-0.1", "NaN", "fast"} {
		if _, err := config.Load(env(map[string]string{"KEYSEAL_WEBHOOK_RETRY_SCALE": v})); err == nil || !strings.Contains(err.Error(), "KEYSEAL_WEBHOOK_RETRY_SCALE") {
			t.Errorf("KEYSEAL_WEBHOOK_RETRY_SCALE=%s: %v, want an error naming it", v, err)
		}
	}
	if err == nil {
		t.Fatal("bad configuration accepted")
	}
	for _, name := range []string{"KEYSEAL_TMK_CACHE_TTL", "KEYSEAL_SESSION_TTL", "KEYSEAL_POLL_CONCURRENCY", "KEYSEAL_LOG_LEVEL", "KEYSEAL_ADMIN_JWKS_URL", "KEYSEAL_STAGE"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

func TestRequired(t *testing.T) {
	c, _ := config.Load(env(nil))
	if err := c.RequireAWS(); err == nil || !strings.Contains(err.Error(), "KEYSEAL_TABLE") || !strings.Contains(err.Error(), "KEYSEAL_PLATFORM_KEY_ID") {
		t.Fatalf("RequireAWS: %v", err)
	}
	if err := c.RequireEvents(); err == nil || !strings.Contains(err.Error(), "KEYSEAL_EVENT_BUS") {
		t.Fatalf("RequireEvents: %v", err)
	}
	if err := c.RequireAdmin(); err == nil || !strings.Contains(err.Error(), "KEYSEAL_ADMIN_ISSUER") || !strings.Contains(err.Error(), "JWKS") {
		t.Fatalf("RequireAdmin: %v", err)
	}
	ok, _ := config.Load(env(map[string]string{"KEYSEAL_TABLE": "t", "KEYSEAL_PLATFORM_KEY_ID": "k", "KEYSEAL_EVENT_BUS": "b",
		"KEYSEAL_ADMIN_ISSUER": "i", "KEYSEAL_ADMIN_AUDIENCE": "a", "KEYSEAL_ADMIN_JWKS_URL": "https://idp/jwks"}))
	if ok.RequireAWS() != nil || ok.RequireEvents() != nil || ok.RequireAdmin() != nil {
		t.Fatal("complete configuration refused")
	}
}

// TestStageMustBeADimensionValue: the stage becomes a CloudWatch dimension
// value, so a value CloudWatch would refuse stops the process at start
// rather than silently losing every metric the alarms watch.
func TestStageMustBeADimensionValue(t *testing.T) {
	for _, stage := range []string{"   ", "prod\tEU", strings.Repeat("s", 256), "\xff"} {
		if _, err := config.Load(env(map[string]string{"KEYSEAL_STAGE": stage})); err == nil || !strings.Contains(err.Error(), "KEYSEAL_STAGE") {
			t.Errorf("KEYSEAL_STAGE=%q: %v, want an error naming it", stage, err)
		}
	}
	for _, stage := range []string{"dev", "staging-eu", "Prod EU"} {
		if c, err := config.Load(env(map[string]string{"KEYSEAL_STAGE": stage})); err != nil || c.Stage != stage {
			t.Errorf("KEYSEAL_STAGE=%q: %q, %v", stage, c.Stage, err)
		}
	}
}

// TestAuditSigningKeyID: the checkpoint key is required where the chain is
// appended to, and must be something KMS takes as a KeyId.
func TestAuditSigningKeyID(t *testing.T) {
	c, _ := config.Load(env(nil))
	if err := c.RequireAuditSigning(); err == nil || !strings.Contains(err.Error(), "KEYSEAL_AUDIT_SIGNING_KEY_ID") {
		t.Fatalf("RequireAuditSigning without the key: %v", err)
	}
	for _, good := range []string{"arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab",
		"arn:aws:kms:us-east-1:111122223333:alias/keyseal-prod-audit", "1234abcd-12ab-34cd-56ef-1234567890ab",
		"mrk-1234abcd12ab34cd56ef1234567890ab", "alias/keyseal-audit"} {
		c, err := config.Load(env(map[string]string{"KEYSEAL_AUDIT_SIGNING_KEY_ID": good}))
		if err != nil || c.AuditSigningKeyID != good || c.RequireAuditSigning() != nil {
			t.Errorf("KEYSEAL_AUDIT_SIGNING_KEY_ID=%q refused: %v", good, err)
		}
	}
	for _, bad := range []string{"key", "arn:aws:kms:eu-west-1:1111:key/x", "alias/", "alias/a b", "arn:aws:iam::111122223333:role/x"} {
		if _, err := config.Load(env(map[string]string{"KEYSEAL_AUDIT_SIGNING_KEY_ID": bad})); err == nil || !strings.Contains(err.Error(), "KEYSEAL_AUDIT_SIGNING_KEY_ID") {
			t.Errorf("KEYSEAL_AUDIT_SIGNING_KEY_ID=%q: %v, want an error naming it", bad, err)
		}
	}
}

// TestWebhookQueues: the webhook-deliver Lambda needs both queue URLs,
// each a queue URL, and two different queues.
func TestWebhookQueues(t *testing.T) {
	c, err := config.Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RequireWebhookQueues(); err == nil || !strings.Contains(err.Error(), "KEYSEAL_WEBHOOK_QUEUE_URL is required") ||
		!strings.Contains(err.Error(), "KEYSEAL_WEBHOOK_DLQ_URL is required") {
		t.Fatalf("missing queues: %v", err)
	}
	good := map[string]string{"KEYSEAL_WEBHOOK_QUEUE_URL": "https://sqs.eu-west-1.amazonaws.com/123456789012/keyseal-prod-webhooks",
		"KEYSEAL_WEBHOOK_DLQ_URL": "http://sqs.us-east-1.localhost.localstack.cloud:4566/000000000000/keyseal-dlq"}
	if c, err = config.Load(env(good)); err != nil || c.RequireWebhookQueues() != nil || c.WebhookQueueURL != good["KEYSEAL_WEBHOOK_QUEUE_URL"] {
		t.Fatalf("good queues: %v %+v", err, c)
	}
	for name, kv := range map[string]map[string]string{
		"not a URL":  {"KEYSEAL_WEBHOOK_QUEUE_URL": "keyseal-webhooks"},
		"an ARN":     {"KEYSEAL_WEBHOOK_DLQ_URL": "arn:aws:sqs:eu-west-1:123456789012:keyseal-dlq"},
		"same queue": {"KEYSEAL_WEBHOOK_QUEUE_URL": good["KEYSEAL_WEBHOOK_QUEUE_URL"], "KEYSEAL_WEBHOOK_DLQ_URL": good["KEYSEAL_WEBHOOK_QUEUE_URL"]},
	} {
		if _, err := config.Load(env(kv)); err == nil || !strings.Contains(err.Error(), "KEYSEAL_WEBHOOK_") {
			t.Errorf("%s accepted: %v", name, err)
		}
	}
}

// TestEventForwardingConfig: the bus ARN and organization id are checked
// for their shape at start, and the admin function's requirement names
// the bus ARN.
func TestEventForwardingConfig(t *testing.T) {
	for _, ok := range []string{"arn:aws:events:local:000000000000:event-bus/keyseal-dev", "arn:aws-cn:events:cn-north-1:999999999999:event-bus/b.c_d"} {
		if _, err := config.Load(env(map[string]string{"KEYSEAL_EVENT_BUS_ARN": ok})); err != nil {
			t.Errorf("%s refused: %v", ok, err)
		}
	}
	c, err := config.Load(env(map[string]string{"KEYSEAL_EVENT_BUS_ARN": "arn:aws:events:us-east-1:999999999999:event-bus/keyseal-prod-events",
		"KEYSEAL_EVENT_ORG_ID": "o-" + strings.Repeat("a1", 16)}))
	if err != nil || c.RequireEventForwarding() != nil || c.EventOrgID != "o-"+strings.Repeat("a1", 16) {
		t.Fatalf("good values: %v %+v", err, c)
	}
	if c, _ := config.Load(env(nil)); c.RequireEventForwarding() == nil || !strings.Contains(c.RequireEventForwarding().Error(), "KEYSEAL_EVENT_BUS_ARN") {
		t.Fatal("missing bus ARN accepted")
	}
	for name, bad := range map[string][]string{
		"KEYSEAL_EVENT_BUS_ARN": {"keyseal-prod-events", "arn:aws:sqs:us-east-1:999999999999:q", "arn:aws:events:us-east-1:9999:event-bus/x",
			"arn:aws:events:us-east-1:999999999999:rule/x", "arn:aws:events:us-east-1:999999999999:event-bus/", "arn:aws:events:US:999999999999:event-bus/x"},
		"KEYSEAL_EVENT_ORG_ID": {"o-short", "o-ABCDEFGHIJ", "r-a1b2c3d4e5", "o-" + strings.Repeat("a", 33)},
	} {
		for _, v := range bad {
			if _, err := config.Load(env(map[string]string{name: v})); err == nil || !strings.Contains(err.Error(), name) {
				t.Errorf("%s=%q: %v, want an error naming it", name, v, err)
			}
		}
	}
}

func TestPollWorker(t *testing.T) {
	for _, ok := range []string{"", "keyseal-prod-verify-poller-worker", "arn:aws:lambda:eu-west-1:111122223333:function:keyseal_w", "arn:aws:lambda:eu-west-1:111122223333:function:w:live"} {
		c, err := config.Load(env(map[string]string{"KEYSEAL_POLL_WORKER": ok}))
		if err != nil || c.PollWorker != ok {
			t.Errorf("KEYSEAL_POLL_WORKER=%q: %q, %v", ok, c.PollWorker, err)
		}
	}
	for _, bad := range []string{"has space", "arn:aws:s3:::bucket", "arn:aws:lambda:eu-west-1:1:layer:x", "w/../x", strings.Repeat("a", 141)} {
		if _, err := config.Load(env(map[string]string{"KEYSEAL_POLL_WORKER": bad})); err == nil || !strings.Contains(err.Error(), "KEYSEAL_POLL_WORKER") {
			t.Errorf("KEYSEAL_POLL_WORKER=%q: %v, want an error naming it", bad, err)
		}
	}
}
