package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Poller schedules the verify/unseal poller.
//
// Why a rate(1 minute) rule whose invocation sweeps twice, 30 s apart,
// rather than a Step Functions wait loop: EventBridge rules fire at most
// once a minute, and docs/contract.md §4 wants a 30 s cadence. One rule and one
// function give that cadence with nothing billed per state transition and
// no long-running execution to keep alive or restart; reserved concurrency
// 1 and the function's 75 s timeout keep invocations from overlapping, and
// the service's lock keeps the two sweeps of one invocation apart.
type Poller struct {
	constructs.Construct
	Rule awsevents.Rule
}

// NewPoller creates the schedule rule targeting the poller function. Its
// constant input is the shard list: operators split tenants over several
// rules (each with its own function) once one invocation cannot sweep
// them all in time.
func NewPoller(scope constructs.Construct, id string, c Config, fns *Functions) *Poller {
	s := constructs.NewConstruct(scope, jsii.String(id))
	rule := awsevents.NewRule(s, jsii.String("Schedule"), &awsevents.RuleProps{
		RuleName:    jsii.String(c.Prefix("poller")),
		Description: jsii.String("keyseal verify/unseal poller: every minute, two sweeps 30 s apart"),
		Schedule:    awsevents.Schedule_Rate(awscdk.Duration_Minutes(jsii.Number(1))),
	})
	rule.AddTarget(awseventstargets.NewLambdaFunction(fns.ByName[FnPoller], &awseventstargets.LambdaFunctionProps{
		// A failed invocation is not retried: the next minute's sweep
		// does the same work, and a retry could overlap it.
		RetryAttempts: jsii.Number(0),
	}))
	return &Poller{Construct: s, Rule: rule}
}
