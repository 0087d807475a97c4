//go:build integration

package suite

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyseal/keyseal/localstack/faultproxy"
)

// health reads seed 004's GET /api/v1/byok/health as the tenant's admin.
func (e *env) health(t tenant) *reply {
	e.tb.Helper()
	return e.call(http.MethodGet, "/api/v1/byok/health", e.adminToken(t.ID, "alice"), "", nil).want(http.StatusOK)
}

func (r *reply) checks() map[string]any {
	c, _ := r.body["checks"].(map[string]any)
	return c
}

func (r *reply) remediation() string {
	steps, _ := r.body["remediation"].([]any)
	var b strings.Builder
	for _, s := range steps {
		m, _ := s.(map[string]any)
		a, _ := m["action"].(string)
		c, _ := m["command"].(string)
		b.WriteString(a + ": " + c + "\n")
	}
	return b.String()
}

// TestHealthKeyStates: with the real AWS KMS provider, the health probe
// reads key_state from DescribeKey and answers a disabled key, a key
// pending deletion and a revoked key policy with seed 004's commands for
// that key ARN; the probe seals nothing (the poller does).
func TestHealthKeyStates(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()

	ok := e.newTenant()
	r := e.health(ok)
	if c := r.checks(); c["cmk_accessible"] != true || c["tmk_valid"] != true || c["key_state"] != "Enabled" ||
		r.body["sealed"] != false || r.body["cached"] != false || r.body["checked_at"] == nil {
		t.Fatalf("healthy tenant: %s", r)
	}
	// A second call is the first probe's answer marked cached, or (past
	// its second) a new probe: never the old one passed off as live.
	if again := e.health(ok); (again.body["cached"] == true) != (again.body["checked_at"] == r.body["checked_at"]) {
		t.Fatalf("second call %s after %s", again, r)
	}

	for _, c := range []struct {
		name, keyState, reason string
		cut                    func(tenant)
		want                   []string
	}{
		{"disabled", "Disabled", "key_disabled", func(tn tenant) {
			if _, err := e.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(tn.KeyID)}); err != nil {
				t.Fatal(err)
			}
		}, []string{"enable-key: aws kms enable-key --key-id %s --region "}},
		{"pending_deletion", "PendingDeletion", "key_pending_deletion", func(tn tenant) {
			if _, err := e.kms.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: aws.String(tn.KeyID), PendingWindowInDays: aws.Int32(7)}); err != nil {
				t.Fatal(err)
			}
		}, []string{"cancel-key-deletion: aws kms cancel-key-deletion --key-id %s", "enable-key: aws kms enable-key --key-id %s"}},
		// LocalStack enforces no key policy: the proxy answers
		// AccessDeniedException, DescribeKey included.
		{"access_denied", "Unknown", "access_denied", func(tn tenant) { e.proxy.Set(tn.KeyID, faultproxy.Deny) },
			[]string{"get-key-policy: aws kms get-key-policy --key-id %s", "re-apply-key-policy:", "put-key-policy --key-id %s"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			tn := e.newTenant()
			c.cut(tn)
			r := e.health(tn)
			if r.body["status"] != "unhealthy" || r.body["reason"] != c.reason || r.checks()["key_state"] != c.keyState ||
				r.checks()["cmk_accessible"] != false || r.checks()["tmk_valid"] != false || r.str("diagnosis") == "" {
				t.Fatalf("health: %s", r)
			}
			if r.region() == "" || !strings.Contains(r.remediation(), "--region "+r.region()) {
				t.Fatalf("remediation does not name the key's region %q:\n%s", r.region(), r.remediation())
			}
			for _, w := range c.want {
				w = strings.ReplaceAll(w, "%s", tn.KeyARN)
				if !strings.Contains(r.remediation(), w) {
					t.Errorf("remediation lacks %q:\n%s", w, r.remediation())
				}
			}
			if v := e.tenantKMS(tn); v.Status != "active" {
				t.Fatalf("the probe sealed the tenant: %+v", v)
			}
		})
	}
	e.proxy.Clear()
}

// region is the region of the health answer's key ARN.
func (r *reply) region() string {
	parts := strings.SplitN(r.str("key_id"), ":", 5)
	if len(parts) < 5 {
		return ""
	}
	return parts[3]
}

// TestHealthLatencyClasses: the fault proxy delays the tenant's KMS calls;
// the probe reports the slower of wrap and unwrap and its class, and a
// high or critical class degrades. Each delay is a lower bound; the bands
// above them leave LocalStack's own time room.
func TestHealthLatencyClasses(t *testing.T) {
	e := newEnv(t, nil)
	for _, c := range []struct {
		delay         time.Duration
		class, status string
	}{
		{110 * time.Millisecond, "elevated", "healthy"},
		{220 * time.Millisecond, "high", "degraded"},
		{600 * time.Millisecond, "critical", "degraded"},
	} {
		t.Run(c.class, func(t *testing.T) {
			tn := e.newTenant() // a tenant each: one live probe per tenant per second
			e.proxy.SetDelay(tn.KeyID, c.delay)
			defer e.proxy.SetDelay(tn.KeyID, 0)
			r := e.health(tn)
			ms, _ := r.body["latency_ms"].(float64)
			if ms < float64(c.delay.Milliseconds()) || r.body["latency_class"] != c.class || r.body["status"] != c.status ||
				r.checks()["key_state"] != "Enabled" {
				t.Fatalf("delay %v: %s", c.delay, r)
			}
			if c.status == "degraded" && (r.str("diagnosis") == "" || !strings.Contains(r.remediation(), "service-quotas")) {
				t.Fatalf("degraded without diagnosis or remediation: %s", r)
			}
		})
	}
}
