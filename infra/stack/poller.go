package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
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
//
// When one invocation cannot sweep every tenant in 15 s, the scheduled
// invocation fans the 16 poll shards out to asynchronous invocations of
// FnPollWorker (shared/poller says why async invokes, not SQS or a Step
// Functions Map). The worker is a function of its own rather than the
// poller invoking itself: its grant names another function (no
// self-reference for CDK to resolve), its reserved concurrency is the
// groups', not 1, and it holds no lambda:InvokeFunction.
type Poller struct {
	constructs.Construct
	Rule awsevents.Rule
}

// PollWorkers is the worker's reserved concurrency: every group but the
// dispatcher's own, when the plan has one group per shard.
const PollWorkers = 15

// NewPoller creates the schedule rule targeting the poller function and
// wires its fan-out: the worker's name in KEYSEAL_POLL_WORKER,
// lambda:InvokeFunction on exactly the worker (its unqualified ARN: no
// version or alias), and the worker's asynchronous invocation settings.
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
	dispatcher, worker := fns.ByName[FnPoller], fns.ByName[FnPollWorker]
	dispatcher.AddEnvironment(jsii.String("KEYSEAL_POLL_WORKER"), worker.FunctionName(), nil)
	dispatcher.AddToRolePolicy(statement([]string{"lambda:InvokeFunction"}, []*string{worker.FunctionArn()}, nil))
	worker.ConfigureAsyncInvoke(&awslambda.EventInvokeConfigOptions{
		// No retry and no event older than a minute (the least Lambda
		// allows): the next minute's dispatch does the same work, and a
		// late event would sweep into it (the worker drops one anyway).
		RetryAttempts: jsii.Number(0),
		MaxEventAge:   awscdk.Duration_Seconds(jsii.Number(60)),
	})
	return &Poller{Construct: s, Rule: rule}
}
