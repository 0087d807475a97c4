package keyevents

import (
	"encoding/json"
	"strings"
)

// Forwarding is what a customer deploys in their key's account and region
// so that key's KMS events reach keyseal's bus: an EventBridge rule on the
// account's default bus (where CloudTrail and KMS deliver them), narrowed
// to the one key, targeting keyseal's bus through an IAM role that may
// only put events there (GET /admin/tenant-kms/event-forwarding).
type Forwarding struct {
	KeyARN  string `json:"key_arn"`
	Account string `json:"account"`
	Region  string `json:"region"`
	// EventBusARN is keyseal's bus, the rule's target.
	EventBusARN string `json:"event_bus_arn"`
	Rule        Rule   `json:"rule"`
	Role        Role   `json:"role"`
	// CloudFormation is a template (JSON) holding the rule and the role,
	// ready for `aws cloudformation deploy` in Account and Region.
	CloudFormation string `json:"cloudformation"`
	// Deploy is the command deploying CloudFormation saved to a file.
	Deploy string `json:"deploy"`
}

// Rule is the customer-side EventBridge rule.
type Rule struct {
	// EventBusName is the bus the rule listens on: the account's default
	// bus, where CloudTrail's management events and KMS's own arrive.
	EventBusName string         `json:"event_bus_name"`
	EventPattern map[string]any `json:"event_pattern"`
	// TargetARN is keyseal's bus; the role is the one below.
	TargetARN string `json:"target_arn"`
}

// Role is the IAM role the rule assumes to put events on keyseal's bus.
type Role struct {
	TrustPolicy map[string]any `json:"trust_policy"`
	Policy      map[string]any `json:"policy"`
}

// ForwardingFor builds the rule, role and template forwarding keyARN's
// events to busARN. keyARN must satisfy IsKeyARN.
func ForwardingFor(keyARN, busARN string) Forwarding {
	parts := strings.SplitN(keyARN, ":", 6)
	region, account := parts[3], parts[4]
	f := Forwarding{KeyARN: keyARN, Account: account, Region: region, EventBusARN: busARN,
		Rule: Rule{EventBusName: "default", EventPattern: EventPattern(keyARN), TargetARN: busARN},
		Role: Role{TrustPolicy: trustPolicy(account), Policy: putEventsPolicy(busARN)}}
	f.CloudFormation = template(f)
	f.Deploy = "aws cloudformation deploy --region " + region + " --stack-name keyseal-kms-events-" + stackSuffix(keyARN) +
		" --template-file keyseal-kms-events.json --capabilities CAPABILITY_IAM"
	return f
}

// EventPattern matches exactly the events Parse acts on that name keyARN:
// the CloudTrail records of the APIEvents calls naming it in
// detail.resources or detail.requestParameters.keyId (as the ARN or the
// bare key id CloudTrail often records, in the key's account), and KMS's own deletion and key
// material expiry events, which name it in resources. The custom key
// store calls name no key, so they are not forwarded: the poll covers
// them.
func EventPattern(keyARN string) map[string]any {
	keyID := keyARN[strings.LastIndex(keyARN, "/")+1:]
	account := strings.SplitN(keyARN, ":", 6)[4]
	return map[string]any{
		"source": []string{SourceKMS},
		// The key's account: a bare key id is unique only within it.
		"account": []string{account},
		"$or": []any{
			map[string]any{
				"detail-type": []string{DetailCloudTrail},
				"detail": map[string]any{
					"eventSource": []string{"kms.amazonaws.com"},
					"eventName":   APIEvents,
					"$or": []any{
						map[string]any{"resources": map[string]any{"ARN": []string{keyARN}}},
						map[string]any{"requestParameters": map[string]any{"keyId": []string{keyARN, keyID}}},
					},
				},
			},
			map[string]any{
				"detail-type": []string{DetailDeletion, DetailMaterialExpiry},
				"resources":   []string{keyARN},
			},
		},
	}
}

// trustPolicy lets EventBridge assume the role for this account's rules
// only (aws:SourceAccount: the confused-deputy guard).
func trustPolicy(account string) map[string]any {
	return map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect":    "Allow",
			"Principal": map[string]any{"Service": "events.amazonaws.com"},
			"Action":    "sts:AssumeRole",
			"Condition": map[string]any{"StringEquals": map[string]any{"aws:SourceAccount": account}},
		}},
	}
}

// putEventsPolicy allows putting events on keyseal's bus and nothing else.
func putEventsPolicy(busARN string) map[string]any {
	return map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect":   "Allow",
			"Action":   "events:PutEvents",
			"Resource": busARN,
		}},
	}
}

// template is the CloudFormation template of f: the role (its name left
// to CloudFormation, so two keys' stacks in one account never collide)
// and the rule targeting keyseal's bus through it.
func template(f Forwarding) string {
	t := map[string]any{
		"AWSTemplateFormatVersion": "2010-09-09",
		"Description":              "keyseal push sealing: forward the KMS events of " + f.KeyARN + " to keyseal's event bus",
		"Resources": map[string]any{
			"ForwardRole": map[string]any{
				"Type": "AWS::IAM::Role",
				"Properties": map[string]any{
					"Description":              "Lets EventBridge put this account's KMS events on keyseal's bus",
					"AssumeRolePolicyDocument": f.Role.TrustPolicy,
					"Policies": []any{map[string]any{
						"PolicyName":     "keyseal-put-events",
						"PolicyDocument": f.Role.Policy,
					}},
				},
			},
			"ForwardRule": map[string]any{
				"Type": "AWS::Events::Rule",
				"Properties": map[string]any{
					"Description":  "keyseal push sealing: KMS events of one key to keyseal",
					"EventBusName": f.Rule.EventBusName,
					"EventPattern": f.Rule.EventPattern,
					"State":        "ENABLED",
					"Targets": []any{map[string]any{
						"Id":      "keyseal",
						"Arn":     f.EventBusARN,
						"RoleArn": map[string]any{"Fn::GetAtt": []string{"ForwardRole", "Arn"}},
					}},
				},
			},
		},
		"Outputs": map[string]any{
			"RuleArn": map[string]any{"Value": map[string]any{"Fn::GetAtt": []string{"ForwardRule", "Arn"}}},
			"RoleArn": map[string]any{"Value": map[string]any{"Fn::GetAtt": []string{"ForwardRole", "Arn"}}},
		},
	}
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		panic(err) // unreachable: maps, slices and strings only
	}
	return string(b)
}

// stackSuffix names the stack after the key, so each key has its own.
func stackSuffix(keyARN string) string {
	id := keyARN[strings.LastIndex(keyARN, "/")+1:]
	if len(id) > 12 {
		id = id[:12]
	}
	return strings.TrimRight(id, "-")
}
