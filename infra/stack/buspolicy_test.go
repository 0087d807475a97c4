package stack_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"

	"github.com/keyseal/keyseal/infra/stack"
)

// TestBusPolicyPerAccount: without an organization id, the reconcile runs
// on the tenant key events of keyseal's bus and on a 10-minute schedule,
// one at a time, and the stack itself defines no bus policy statement
// (the reconcile owns them).
func TestBusPolicyPerAccount(t *testing.T) {
	tpl := synth(t, "prod")
	fnID := tpl.functionIDs(t)[stack.FnBusPolicy]
	if p := tpl.Resources[fnID].Properties; p["ReservedConcurrentExecutions"] != float64(1) {
		t.Fatalf("bus-policy concurrency %v, want 1", p["ReservedConcurrentExecutions"])
	}
	if n := len(tpl.ofType("AWS::Events::EventBusPolicy")); n != 0 {
		t.Fatalf("%d bus policy statements in per-account mode, want none", n)
	}
	var onChange, schedule int
	for id, r := range tpl.ofType("AWS::Events::Rule") {
		if !strings.Contains(jsonString(r.Properties["Targets"]), fnID) {
			continue
		}
		switch {
		case r.Properties["ScheduleExpression"] == "rate(10 minutes)":
			schedule++
		case jsonString(r.Properties["EventPattern"]) == `{"detail-type":["tenant.kms.registered","tenant.kms.migrated","tenant.kms.deregistered"],"source":["keyseal"]}`:
			onChange++
			if got := tpl.resolve(r.Properties["EventBusName"]); !strings.HasPrefix(jsonString(got), `"${EventsBus`) {
				t.Errorf("rule %s on bus %v, want keyseal's", id, got)
			}
		default:
			t.Errorf("rule %s targets bus-policy: %s", id, jsonString(r.Properties))
		}
	}
	if onChange != 1 || schedule != 1 {
		t.Fatalf("bus-policy rules: %d on change, %d scheduled; want 1 and 1", onChange, schedule)
	}
	if out := jsonString(tpl.Outputs["EventBusArn"]); !strings.Contains(out, `"Fn::GetAtt":["EventsBus`) {
		t.Fatalf("EventBusArn output %s", out)
	}
}

// TestBusPolicyOrganization: with eventOrgId the stack defines one
// statement admitting the organization (aws:PrincipalOrgID), the
// reconcile may only remove per-account statements, and the admin and
// reconcile functions are told the organization.
func TestBusPolicyOrganization(t *testing.T) {
	cfg, err := stack.LoadConfig(withClouds(t, map[string]any{"eventOrgId": "o-a1b2c3d4e5"}), "dev", assets(t))
	if err != nil {
		t.Fatal(err)
	}
	tpl := toTemplate(t, stack.New(awscdk.NewApp(nil), cfg))
	policies := tpl.ofType("AWS::Events::EventBusPolicy")
	if len(policies) != 1 {
		t.Fatalf("%d bus policy statements, want 1", len(policies))
	}
	for _, p := range policies {
		b, _ := json.Marshal(tpl.resolve(p.Properties["Statement"]))
		st := strings.NewReplacer(`\u003c`, "<", `\u003e`, ">").Replace(string(b))
		want := `{"Action":"events:PutEvents","Condition":{"StringEquals":{"aws:PrincipalOrgID":"o-a1b2c3d4e5"}},"Effect":"Allow","Principal":"*","Resource":"<AWS::Events::EventBus>","Sid":"keyseal-organization"}`
		if st != want || p.Properties["StatementId"] != stack.OrgStatementID || !strings.HasPrefix(jsonString(tpl.resolve(p.Properties["EventBusName"])), `"${EventsBus`) {
			t.Fatalf("organization statement %s on %v, want %s", st, p.Properties["EventBusName"], want)
		}
	}
	_, actions := tpl.rolePolicies(t)
	if got := strings.Join(actions[stack.FnBusPolicy], ","); got != "dynamodb:Scan,events:DescribeEventBus,events:RemovePermission,xray:PutTelemetryRecords,xray:PutTraceSegments" {
		t.Fatalf("bus-policy actions in organization mode: %s", got)
	}
	for fn, id := range tpl.functionIDs(t) {
		env := tpl.Resources[id].Properties["Environment"].(map[string]any)["Variables"].(map[string]any)
		want := fn == stack.FnAdmin || fn == stack.FnBusPolicy
		if (env["KEYSEAL_EVENT_ORG_ID"] == "o-a1b2c3d4e5") != want {
			t.Errorf("%s: KEYSEAL_EVENT_ORG_ID = %v", fn, env["KEYSEAL_EVENT_ORG_ID"])
		}
	}
}

// TestBusPolicyOrgIDShape: a malformed organization id fails synth with a
// message naming the key.
func TestBusPolicyOrgIDShape(t *testing.T) {
	for _, bad := range []string{"o-short", "O-A1B2C3D4E5", "123456789012", "o-a1b2c3d4e5 ", "r-a1b2c3d4e5"} {
		_, err := stack.LoadConfig(withClouds(t, map[string]any{"eventOrgId": bad}), "dev", "bin")
		if err == nil || !strings.Contains(err.Error(), "eventOrgId") || !strings.Contains(err.Error(), "Organization id") {
			t.Errorf("eventOrgId %q: %v", bad, err)
		}
	}
}
