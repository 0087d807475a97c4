package keyevents_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/keyseal/keyseal/shared/keyevents"
)

const (
	testKey = "arn:aws:kms:eu-west-1:210987654321:key/4f7c2a9e-1b3d-4e8f-a6c5-0d9e8b7a6f51"
	testBus = "arn:aws:events:us-east-1:999999999999:event-bus/keyseal-prod-events"
)

// TestForwardingTemplate: the CloudFormation template parses, holds the
// role and the rule, and the rule targets keyseal's bus through the role,
// whose only permission is PutEvents on that bus and which only
// EventBridge, for this account, may assume.
func TestForwardingTemplate(t *testing.T) {
	f := keyevents.ForwardingFor(testKey, testBus)
	if f.Account != "210987654321" || f.Region != "eu-west-1" || f.EventBusARN != testBus {
		t.Fatalf("forwarding %+v", f)
	}
	var tpl struct {
		Resources map[string]struct {
			Type       string          `json:"Type"`
			Properties json.RawMessage `json:"Properties"`
		} `json:"Resources"`
	}
	if err := json.Unmarshal([]byte(f.CloudFormation), &tpl); err != nil {
		t.Fatalf("template is not JSON: %v", err)
	}
	if len(tpl.Resources) != 2 || tpl.Resources["ForwardRole"].Type != "AWS::IAM::Role" || tpl.Resources["ForwardRule"].Type != "AWS::Events::Rule" {
		t.Fatalf("resources %+v", tpl.Resources)
	}
	var rule struct {
		EventBusName string         `json:"EventBusName"`
		EventPattern map[string]any `json:"EventPattern"`
		Targets      []struct {
			Arn     string         `json:"Arn"`
			RoleArn map[string]any `json:"RoleArn"`
		} `json:"Targets"`
	}
	if err := json.Unmarshal(tpl.Resources["ForwardRule"].Properties, &rule); err != nil {
		t.Fatal(err)
	}
	if rule.EventBusName != "default" || len(rule.Targets) != 1 || rule.Targets[0].Arn != testBus {
		t.Fatalf("rule %+v", rule)
	}
	if ref, _ := json.Marshal(rule.Targets[0].RoleArn); string(ref) != `{"Fn::GetAtt":["ForwardRole","Arn"]}` {
		t.Fatalf("target role %s", ref)
	}
	if !strings.Contains(mustJSON(t, rule.EventPattern), testKey) {
		t.Fatal("the template's pattern does not name the key")
	}
	var role struct {
		AssumeRolePolicyDocument struct {
			Statement []struct {
				Principal map[string]string            `json:"Principal"`
				Action    string                       `json:"Action"`
				Condition map[string]map[string]string `json:"Condition"`
			} `json:"Statement"`
		} `json:"AssumeRolePolicyDocument"`
		Policies []struct {
			PolicyDocument struct {
				Statement []struct {
					Effect, Action, Resource string
				} `json:"Statement"`
			} `json:"PolicyDocument"`
		} `json:"Policies"`
	}
	if err := json.Unmarshal(tpl.Resources["ForwardRole"].Properties, &role); err != nil {
		t.Fatal(err)
	}
	trust := role.AssumeRolePolicyDocument.Statement
	if len(trust) != 1 || trust[0].Principal["Service"] != "events.amazonaws.com" || trust[0].Action != "sts:AssumeRole" ||
		trust[0].Condition["StringEquals"]["aws:SourceAccount"] != "210987654321" {
		t.Fatalf("trust policy %+v", trust)
	}
	if len(role.Policies) != 1 || len(role.Policies[0].PolicyDocument.Statement) != 1 {
		t.Fatalf("policies %+v", role.Policies)
	}
	if st := role.Policies[0].PolicyDocument.Statement[0]; st.Effect != "Allow" || st.Action != "events:PutEvents" || st.Resource != testBus {
		t.Fatalf("role permission %+v", st)
	}
	if !strings.Contains(f.Deploy, "--region eu-west-1") || !strings.Contains(f.Deploy, "CAPABILITY_IAM") {
		t.Fatalf("deploy command %q", f.Deploy)
	}
}

// TestEventPatternNamesWhatParseReads: the pattern lists every API call
// the parser acts on and the two native detail types, and narrows each to
// the key by ARN (and by bare id in requestParameters, as CloudTrail
// often records it). Whether it matches events is tested against
// EventBridge's own matcher in LocalStack (localstack/suite, forwarding_test.go).
func TestEventPatternNamesWhatParseReads(t *testing.T) {
	p := keyevents.EventPattern(testKey)
	or := p["$or"].([]any)
	trail := or[0].(map[string]any)["detail"].(map[string]any)
	if !slices.Equal(trail["eventName"].([]string), keyevents.APIEvents) {
		t.Fatalf("eventName %v", trail["eventName"])
	}
	s := mustJSON(t, p)
	for _, want := range []string{`"ARN":["` + testKey + `"]`, `"keyId":["` + testKey + `","4f7c2a9e-1b3d-4e8f-a6c5-0d9e8b7a6f51"]`,
		`"detail-type":["KMS CMK Deletion","KMS Imported Key Material Expiration"],"resources":["` + testKey + `"]`} {
		if !strings.Contains(s, want) {
			t.Errorf("pattern lacks %s:\n%s", want, s)
		}
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
