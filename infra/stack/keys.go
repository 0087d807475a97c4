package stack

import (
	"github.com/aws/aws-cdk-go/awscdk/v2/awsevents"
	"github.com/aws/aws-cdk-go/awscdk/v2/awskms"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// Keys holds keyseal's platform key, which wraps the TMKs of tenants that
// have not registered their own CMK, and the audit signing key.
type Keys struct {
	constructs.Construct
	Platform awskms.Key
	// AuditSigning signs the audit chain's checkpoints (Ed25519): the key
	// is outside the table, so whoever can write the table cannot forge a
	// checkpoint (docs/contract.md §7).
	AuditSigning awskms.Key
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
	// CDK v2.215.0 predates KMS's Ed25519 keys, so the L2 is made as a
	// signing key and its key spec overridden to ECC_NIST_EDWARDS25519
	// (signing algorithm ED25519_SHA_512, pure Ed25519: what a C2SP
	// signed note carries). Asymmetric keys do not rotate; the verifier key
	// an auditor saved stays valid for the life of the stack.
	audit := awskms.NewKey(s, jsii.String("AuditSigning"), &awskms.KeyProps{
		Description:   jsii.String("keyseal " + c.Name + " audit checkpoint signing key (Ed25519)"),
		Alias:         jsii.String("alias/" + c.Prefix("audit-signing")),
		KeySpec:       awskms.KeySpec_ECC_NIST_P256,
		KeyUsage:      awskms.KeyUsage_SIGN_VERIFY,
		RemovalPolicy: c.RemovalPolicy(),
	})
	audit.Node().DefaultChild().(awskms.CfnKey).AddPropertyOverride(jsii.String("KeySpec"), jsii.String(AuditKeySpec))
	return &Keys{Construct: s, Platform: k, AuditSigning: audit}
}

// AuditKeySpec is the audit signing key's KMS key spec.
const AuditKeySpec = "ECC_NIST_EDWARDS25519"

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
