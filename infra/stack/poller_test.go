package stack_test

import (
	"strings"
	"testing"

	"github.com/keyseal/keyseal/infra/stack"
)

// TestPollerFanOut: the scheduled poller is told the worker's name and
// may invoke exactly that function (its unqualified ARN); no other role
// holds any lambda: action; the worker runs the poller's sweeps with its
// own reserved concurrency, and its asynchronous invocations are never
// retried nor kept past a minute; the schedule starts the poller alone.
func TestPollerFanOut(t *testing.T) {
	for _, env := range envs {
		t.Run(env, func(t *testing.T) {
			tpl := synth(t, env)
			ids := tpl.functionIDs(t)
			dispatcher, worker := tpl.Resources[ids[stack.FnPoller]].Properties, tpl.Resources[ids[stack.FnPollWorker]].Properties
			denv := dispatcher["Environment"].(map[string]any)["Variables"].(map[string]any)
			wenv := worker["Environment"].(map[string]any)["Variables"].(map[string]any)
			if got := jsonString(denv["KEYSEAL_POLL_WORKER"]); got != `{"Ref":"`+ids[stack.FnPollWorker]+`"}` {
				t.Errorf("poller KEYSEAL_POLL_WORKER = %s, want the worker's name", got)
			}
			if wenv["KEYSEAL_POLL_WORKER"] != nil {
				t.Errorf("the worker would fan out itself: KEYSEAL_POLL_WORKER = %v", wenv["KEYSEAL_POLL_WORKER"])
			}
			if denv["KEYSEAL_POLL_INTERVAL"] != "30s" || wenv["KEYSEAL_POLL_INTERVAL"] != "30s" {
				t.Errorf("poll intervals %v / %v, want 30s", denv["KEYSEAL_POLL_INTERVAL"], wenv["KEYSEAL_POLL_INTERVAL"])
			}
			if dispatcher["ReservedConcurrentExecutions"] != float64(1) || worker["ReservedConcurrentExecutions"] != float64(stack.PollWorkers) ||
				stack.PollWorkers != 15 || worker["Timeout"] != float64(75) {
				t.Errorf("reserved concurrency %v / %v (want 1 / 15), worker timeout %v",
					dispatcher["ReservedConcurrentExecutions"], worker["ReservedConcurrentExecutions"], worker["Timeout"])
			}

			dispatcherRole := dispatcher["Role"].(map[string]any)["Fn::GetAtt"].([]any)[0].(string)
			invokes := 0
			for id, p := range tpl.ofType("AWS::IAM::Policy") {
				for _, s := range p.Properties["PolicyDocument"].(map[string]any)["Statement"].([]any) {
					st := s.(map[string]any)
					acts := jsonString(st["Action"])
					if !strings.Contains(acts, "lambda:") {
						continue
					}
					roles := jsonString(p.Properties["Roles"])
					if acts != `"lambda:InvokeFunction"` || jsonString(st["Resource"]) != `{"Fn::GetAtt":["`+ids[stack.FnPollWorker]+`","Arn"]}` ||
						roles != `[{"Ref":"`+dispatcherRole+`"}]` || st["Condition"] != nil {
						t.Errorf("policy %s on %s: %s on %s, want lambda:InvokeFunction on the worker's ARN, for the poller only",
							id, roles, acts, jsonString(st["Resource"]))
					}
					invokes++
				}
			}
			if invokes != 1 {
				t.Errorf("%d lambda: statements, want 1", invokes)
			}

			configs := tpl.ofType("AWS::Lambda::EventInvokeConfig")
			if len(configs) != 1 {
				t.Fatalf("%d EventInvokeConfigs, want the worker's", len(configs))
			}
			for _, c := range configs {
				p := c.Properties
				if jsonString(p["FunctionName"]) != `{"Ref":"`+ids[stack.FnPollWorker]+`"}` || p["MaximumRetryAttempts"] != float64(0) ||
					p["MaximumEventAgeInSeconds"] != float64(60) || p["Qualifier"] != "$LATEST" {
					t.Errorf("async invoke config %s", jsonString(p))
				}
			}

			for _, r := range tpl.ofType("AWS::Events::Rule") {
				if targets := jsonString(r.Properties["Targets"]); strings.Contains(targets, ids[stack.FnPollWorker]) {
					t.Errorf("a rule targets the worker: %s", targets)
				}
			}
		})
	}
}
