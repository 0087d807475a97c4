package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// New composes keyseal for one environment.
func New(scope constructs.Construct, c Config) awscdk.Stack {
	props := &awscdk.StackProps{
		StackName:   jsii.String("keyseal-" + c.Name),
		Description: jsii.String("keyseal BYOK key custody (" + c.Name + ")"),
	}
	if c.Account != "" || c.Region != "" {
		props.Env = &awscdk.Environment{Region: jsii.String(c.Region)}
		if c.Account != "" {
			props.Env.Account = jsii.String(c.Account)
		}
	}
	st := awscdk.NewStack(scope, jsii.String("keyseal-"+c.Name), props)
	awscdk.Tags_Of(st).Add(jsii.String("app"), jsii.String("keyseal"), nil)
	awscdk.Tags_Of(st).Add(jsii.String("environment"), jsii.String(c.Name), nil)

	data := NewData(st, "Data", c)
	keys := NewKeys(st, "Keys", c)
	events := NewEvents(st, "Events", c)
	fns := NewFunctions(st, "Functions", c, data, keys, events)
	api := NewAPI(st, "Api", c, fns, Routes)
	NewPoller(st, "Poller", c, fns)
	NewKeyEvents(st, "KeyEvents", c, events, fns)
	NewBusPolicy(st, "BusPolicy", c, events, fns)
	NewEventPublisher(st, "EventPublisher", data, fns)
	alarms := NewAlarms(st, "Alarms", c)
	hooks := NewWebhooks(st, "Webhooks", c, events, fns, alarms)

	awscdk.NewCfnOutput(st, jsii.String("ApiUrl"), &awscdk.CfnOutputProps{Value: api.Rest.Url(),
		Description: jsii.String("Base URL of the agent and admin API")})
	awscdk.NewCfnOutput(st, jsii.String("TableName"), &awscdk.CfnOutputProps{Value: data.Table.TableName()})
	awscdk.NewCfnOutput(st, jsii.String("EventBusName"), &awscdk.CfnOutputProps{Value: events.Bus.EventBusName()})
	awscdk.NewCfnOutput(st, jsii.String("EventBusArn"), &awscdk.CfnOutputProps{Value: events.Bus.EventBusArn(),
		Description: jsii.String("The bus customers forward their KMS events to (GET /admin/tenant-kms/event-forwarding)")})
	awscdk.NewCfnOutput(st, jsii.String("WebhookDLQUrl"), &awscdk.CfnOutputProps{Value: hooks.DLQ.QueueUrl(),
		Description: jsii.String("Dead-letter queue of webhook deliveries")})
	awscdk.NewCfnOutput(st, jsii.String("PlatformKeyArn"), &awscdk.CfnOutputProps{Value: keys.Platform.KeyArn()})
	awscdk.NewCfnOutput(st, jsii.String("AuditSigningKeyArn"), &awscdk.CfnOutputProps{Value: keys.AuditSigning.KeyArn()})
	return st
}
