package stack_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/keyseal/keyseal/infra/stack"
)

// TestWebhookDelivery: the bus rule sends keyseal's catalogue and
// webhook.test to an encrypted queue, whose redrive policy ends in a
// 14-day dead-letter queue; the webhook-deliver function reads the queue
// with partial batch responses and bounded concurrency, its visibility
// timeout is 6 times the function's, its SQS grants name the right queue
// each, and the DLQ has an alarm on the alarm topic.
func TestWebhookDelivery(t *testing.T) {
	for _, env := range envs {
		t.Run(env, func(t *testing.T) {
			tpl := synth(t, env)
			var queue, dlq string
			for id, q := range tpl.ofType("AWS::SQS::Queue") {
				switch name := q.Properties["QueueName"]; name {
				case "keyseal-" + env + "-webhooks":
					queue = id
				case "keyseal-" + env + "-webhooks-dlq":
					dlq = id
				default:
					t.Fatalf("unexpected queue %v", name)
				}
				if q.Properties["SqsManagedSseEnabled"] != true {
					t.Errorf("%s: not encrypted: %v", id, q.Properties)
				}
			}
			if queue == "" || dlq == "" {
				t.Fatalf("queues: %q %q", queue, dlq)
			}
			fnID := tpl.functionIDs(t)[stack.FnDeliver]
			fn := tpl.Resources[fnID].Properties
			q, d := tpl.Resources[queue].Properties, tpl.Resources[dlq].Properties
			if d["MessageRetentionPeriod"] != float64(14*24*3600) {
				t.Errorf("DLQ retention %v, want 14 days", d["MessageRetentionPeriod"])
			}
			if timeout, _ := fn["Timeout"].(float64); timeout == 0 || q["VisibilityTimeout"] != 6*timeout {
				t.Errorf("visibility timeout %v, want 6 x the function's %v", q["VisibilityTimeout"], fn["Timeout"])
			}
			redrive := `{"deadLetterTargetArn":{"Fn::GetAtt":["` + dlq + `","Arn"]},"maxReceiveCount":10}`
			if got := jsonString(q["RedrivePolicy"]); got != redrive || stack.DeliverMaxReceiveCount != 10 {
				t.Errorf("redrive %s, want %s", got, redrive)
			}

			// The rule: keyseal's bus, source keyseal, the catalogue.
			var rule string
			for id, r := range tpl.ofType("AWS::Events::Rule") {
				if r.Properties["EventPattern"] == nil || r.Properties["EventPattern"].(map[string]any)["source"] != nil &&
					jsonString(r.Properties["EventPattern"].(map[string]any)["source"]) == `["aws.kms"]` { // the key-events rules: TestKeyEventRules
					continue
				}
				if strings.Contains(jsonString(r.Properties["Targets"]), tpl.functionIDs(t)[stack.FnBusPolicy]) { // TestBusPolicyPerAccount
					continue
				}
				rule = id
				p := r.Properties
				pattern := p["EventPattern"].(map[string]any)
				if jsonString(pattern["source"]) != `["keyseal"]` || jsonString(pattern["detail-type"]) != jsonString(stack.DeliveredTypes) ||
					!slices.Contains(stack.DeliveredTypes, "webhook.test") || !slices.Contains(stack.DeliveredTypes, "tenant.kms.sealed") {
					t.Errorf("pattern %s", jsonString(pattern))
				}
				if got := tpl.resolve(p["EventBusName"]); !strings.HasPrefix(jsonString(got), `"${EventsBus`) {
					t.Errorf("rule on bus %v", got)
				}
				targets := jsonString(p["Targets"])
				if !strings.Contains(targets, `"Arn":{"Fn::GetAtt":["`+queue+`","Arn"]}`) ||
					!strings.Contains(targets, `"DeadLetterConfig":{"Arn":{"Fn::GetAtt":["`+dlq+`","Arn"]}}`) {
					t.Errorf("rule targets %s", targets)
				}
			}
			if rule == "" {
				t.Fatal("no webhook rule")
			}
			// EventBridge may send to the queue, for this rule only.
			allowed := false
			for _, p := range tpl.ofType("AWS::SQS::QueuePolicy") {
				doc := jsonString(p.Properties["PolicyDocument"])
				if strings.Contains(jsonString(p.Properties["Queues"]), queue) && strings.Contains(doc, `"Service":"events.amazonaws.com"`) &&
					strings.Contains(doc, `"sqs:SendMessage"`) && strings.Contains(doc, `"aws:SourceArn":{"Fn::GetAtt":["`+rule+`","Arn"]}`) {
					allowed = true
				}
			}
			if !allowed {
				t.Error("no queue policy lets the rule send to the queue")
			}

			// The event source mapping.
			found := false
			for _, m := range tpl.ofType("AWS::Lambda::EventSourceMapping") {
				p := m.Properties
				if jsonString(p["EventSourceArn"]) != `{"Fn::GetAtt":["`+queue+`","Arn"]}` {
					continue
				}
				found = true
				if tpl.functionIn(tpl.functionIDs(t), p["FunctionName"]) != stack.FnDeliver || p["BatchSize"] != float64(10) ||
					jsonString(p["FunctionResponseTypes"]) != `["ReportBatchItemFailures"]` ||
					jsonString(p["ScalingConfig"]) != `{"MaximumConcurrency":5}` {
					t.Errorf("mapping %s", jsonString(p))
				}
			}
			if !found {
				t.Fatal("no event source mapping on the webhook queue")
			}

			// Each SQS grant names its queue: consume and send on the
			// queue, send only on the DLQ; no other function has any.
			roleOf := map[string]string{}
			for name, id := range tpl.functionIDs(t) {
				roleOf[tpl.Resources[id].Properties["Role"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)] = name
			}
			var grants []string
			for _, p := range tpl.ofType("AWS::IAM::Policy") {
				for _, s := range p.Properties["PolicyDocument"].(map[string]any)["Statement"].([]any) {
					st := s.(map[string]any)
					if !strings.Contains(jsonString(st["Action"]), "sqs:") {
						continue
					}
					for _, r := range p.Properties["Roles"].([]any) {
						grants = append(grants, roleOf[r.(map[string]any)["Ref"].(string)]+" "+jsonString(st["Action"])+" on "+jsonString(st["Resource"]))
					}
				}
			}
			slices.Sort(grants)
			want := []string{
				stack.FnDeliver + ` "sqs:SendMessage" on {"Fn::GetAtt":["` + dlq + `","Arn"]}`,
				stack.FnDeliver + ` ["sqs:ReceiveMessage","sqs:DeleteMessage","sqs:ChangeMessageVisibility","sqs:GetQueueAttributes","sqs:SendMessage"] on {"Fn::GetAtt":["` + queue + `","Arn"]}`,
			}
			slices.Sort(want)
			if jsonString(grants) != jsonString(want) {
				t.Errorf("SQS grants\n got  %v\n want %v", grants, want)
			}

			// The DLQ alarm, on the alarm topic.
			alarmed := false
			for _, a := range tpl.ofType("AWS::CloudWatch::Alarm") {
				p := a.Properties
				if p["Namespace"] != "AWS/SQS" {
					continue
				}
				alarmed = true
				if p["MetricName"] != "ApproximateNumberOfMessagesVisible" || p["Threshold"] != float64(0) ||
					p["ComparisonOperator"] != "GreaterThanThreshold" ||
					jsonString(p["Dimensions"]) != `[{"Name":"QueueName","Value":{"Fn::GetAtt":["`+dlq+`","QueueName"]}}]` ||
					!strings.Contains(jsonString(p["AlarmActions"]), "AlarmsTopic") {
					t.Errorf("DLQ alarm %s", jsonString(p))
				}
			}
			if !alarmed {
				t.Error("no alarm on the webhook DLQ")
			}
		})
	}
}
