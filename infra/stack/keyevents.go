package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awseventstargets"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// KeyAPIEvents are the KMS API calls whose CloudTrail records push sealing
// acts on: shared/keyevents.APIEvents, in the same order (that package's
// TestRuleMatchesParser keeps the two in step; infra is its own module).
var KeyAPIEvents = []string{
	"DisableKey", "ScheduleKeyDeletion", "PutKeyPolicy", "RevokeGrant", "RetireGrant",
	"DeleteImportedKeyMaterial", "DisconnectCustomKeyStore",
	"EnableKey", "CancelKeyDeletion", "ConnectCustomKeyStore",
}

// KeyEvents routes the KMS events customers forward to keyseal's bus to
// the key-events function: one rule for the CloudTrail records of the
// KMS API calls, one for KMS's own deletion and key material expiry
// events (an EventBridge pattern cannot say "this detail-type with these
// names, or those detail-types" without $or, which CDK's pattern type
// does not model). The bus's resource policy admitting the customers'
// accounts is buspolicy.go's.
type KeyEvents struct {
	constructs.Construct
	APICalls, Lifecycle awsevents.Rule
}

// NewKeyEvents creates both rules on the bus, targeting FnKeyEvents.
func NewKeyEvents(scope constructs.Construct, id string, c Config, ev *Events, fns *Functions) *KeyEvents {
	s := constructs.NewConstruct(scope, jsii.String(id))
	target := awseventstargets.NewLambdaFunction(fns.ByName[FnKeyEvents], &awseventstargets.LambdaFunctionProps{
		// An event is a hint worth acting on within seconds; one older
		// than two minutes is older than the poll that covers it.
		RetryAttempts: jsii.Number(2),
		MaxEventAge:   awscdk.Duration_Minutes(jsii.Number(2)),
	})
	apiCalls := awsevents.NewRule(s, jsii.String("ApiCalls"), &awsevents.RuleProps{
		RuleName:    jsii.String(c.Prefix("key-api-calls")),
		Description: jsii.String("keyseal push sealing: forwarded CloudTrail records of KMS key changes"),
		EventBus:    ev.Bus,
		EventPattern: &awsevents.EventPattern{
			Source:     jsii.Strings("aws.kms"),
			DetailType: jsii.Strings("AWS API Call via CloudTrail"),
			Detail: &map[string]any{
				"eventSource": []string{"kms.amazonaws.com"},
				"eventName":   KeyAPIEvents,
			},
		},
	})
	apiCalls.AddTarget(target)
	lifecycle := awsevents.NewRule(s, jsii.String("Lifecycle"), &awsevents.RuleProps{
		RuleName:    jsii.String(c.Prefix("key-lifecycle")),
		Description: jsii.String("keyseal push sealing: forwarded KMS key deletion and key material expiry"),
		EventBus:    ev.Bus,
		EventPattern: &awsevents.EventPattern{
			Source:     jsii.Strings("aws.kms"),
			DetailType: jsii.Strings("KMS CMK Deletion", "KMS Imported Key Material Expiration"),
		},
	})
	lifecycle.AddTarget(target)
	return &KeyEvents{Construct: s, APICalls: apiCalls, Lifecycle: lifecycle}
}
