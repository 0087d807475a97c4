package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// OrgStatementID is the bus policy statement of organization mode; the
// reconcile never touches it (its statements begin keyseal-account-).
const OrgStatementID = "keyseal-organization"

// BusPolicy admits the customers' accounts to put their forwarded KMS
// events on keyseal's bus (push sealing).
//
// Per-account mode (no eventOrgId): the statements are not CloudFormation
// resources, because the accounts are data (the tenants' registered keys),
// not configuration. The bus-policy function reconciles them with the
// key-ref index (shared/buspolicy): a rule invokes it on every
// tenant.kms.registered, migrated and deregistered event, which the
// outbox publishes seconds after the change commits, so an account is
// admitted within seconds of its first tenant registering (EventBridge
// retries a cross-account delivery for 24 hours on the sender's side, so
// the events of that moment are not lost either), and removed when its
// last tenant leaves; a 10-minute schedule repairs a run that failed all
// its retries. Reserved concurrency 1 serialises the runs (functions.go).
//
// Organization mode (eventOrgId): one statement, defined here, admits
// every account of the organization (aws:PrincipalOrgID), which a policy
// of per-account statements cannot do past its size limit (10,240
// characters by default: 46 accounts for a bus named keyseal-prod-events); the reconcile then removes
// any per-account statement left from before and adds none.
type BusPolicy struct {
	constructs.Construct
	OnChange, Schedule awsevents.Rule
	// Org is the organization statement; nil in per-account mode.
	Org awsevents.CfnEventBusPolicy
}

// NewBusPolicy creates the reconcile's two triggers and, in organization
// mode, the organization statement.
func NewBusPolicy(scope constructs.Construct, id string, c Config, ev *Events, fns *Functions) *BusPolicy {
	s := constructs.NewConstruct(scope, jsii.String(id))
	fn := fns.ByName[FnBusPolicy]
	onChange := awsevents.NewRule(s, jsii.String("OnChange"), &awsevents.RuleProps{
		RuleName:    jsii.String(c.Prefix("bus-policy-on-change")),
		Description: jsii.String("keyseal: reconcile the bus policy when a tenant registers, migrates or leaves a customer key"),
		EventBus:    ev.Bus,
		EventPattern: &awsevents.EventPattern{
			Source:     jsii.Strings("keyseal"),
			DetailType: jsii.Strings("tenant.kms.registered", "tenant.kms.migrated", "tenant.kms.deregistered"),
		},
	})
	onChange.AddTarget(awseventstargets.NewLambdaFunction(fn, &awseventstargets.LambdaFunctionProps{
		RetryAttempts: jsii.Number(10),
		MaxEventAge:   awscdk.Duration_Hours(jsii.Number(1)),
	}))
	schedule := awsevents.NewRule(s, jsii.String("Schedule"), &awsevents.RuleProps{
		RuleName:    jsii.String(c.Prefix("bus-policy-schedule")),
		Description: jsii.String("keyseal: reconcile the bus policy every 10 minutes (repairs a missed run)"),
		Schedule:    awsevents.Schedule_Rate(awscdk.Duration_Minutes(jsii.Number(10))),
	})
	// The next run does the same work: no retry of a failed one.
	schedule.AddTarget(awseventstargets.NewLambdaFunction(fn, &awseventstargets.LambdaFunctionProps{RetryAttempts: jsii.Number(0)}))
	bp := &BusPolicy{Construct: s, OnChange: onChange, Schedule: schedule}
	if c.EventOrgID != "" {
		bp.Org = awsevents.NewCfnEventBusPolicy(s, jsii.String("Organization"), &awsevents.CfnEventBusPolicyProps{
			EventBusName: ev.Bus.EventBusName(),
			StatementId:  jsii.String(OrgStatementID),
			Statement: map[string]any{
				"Sid":       OrgStatementID,
				"Effect":    "Allow",
				"Principal": "*",
				"Action":    "events:PutEvents",
				"Resource":  ev.Bus.EventBusArn(),
				"Condition": map[string]any{"StringEquals": map[string]any{"aws:PrincipalOrgID": c.EventOrgID}},
			},
		})
	}
	return bp
}
