package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Keys holds keyseal's platform key: it wraps the TMKs of tenants that have
// not registered their own CMK.
type Keys struct {
	constructs.Construct
	Platform awskms.Key
}

// NewKeys creates the platform key with yearly rotation.
func NewKeys(scope constructs.Construct, id string, c Config) *Keys {
	s := constructs.NewConstruct(scope, jsii.String(id))
	k := awskms.NewKey(s, jsii.String("Platform"), &awskms.KeyProps{
		Description:       jsii.String("keyseal " + c.Name + " platform key: wraps TMKs of tenants without BYOK"),
		Alias:             jsii.String("alias/" + c.Prefix("platform")),
		EnableKeyRotation: jsii.Bool(true),
		RemovalPolicy:     c.RemovalPolicy(),
	})
	return &Keys{Construct: s, Platform: k}
}

// Events is the EventBridge bus for tenant.kms.* events.
type Events struct {
	constructs.Construct
	Bus awsevents.EventBus
}

// NewEvents creates the bus. Subscribers (SIEM, paging, webhooks relays) add
// their own rules on it.
func NewEvents(scope constructs.Construct, id string, c Config) *Events {
	s := constructs.NewConstruct(scope, jsii.String(id))
	bus := awsevents.NewEventBus(s, jsii.String("Bus"), &awsevents.EventBusProps{EventBusName: jsii.String(c.Prefix("events"))})
	return &Events{Construct: s, Bus: bus}
}
