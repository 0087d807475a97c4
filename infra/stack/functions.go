package stack

import (
	"path/filepath"

	"github.com/aws/aws-cdk-go/awscdk/v2"
	"github.com/aws/aws-cdk-go/awscdk/v2/awsiam"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslambda"
	"github.com/aws/aws-cdk-go/awscdk/v2/awslogs"
	"github.com/aws/constructs-go/constructs/v10"
	"github.com/aws/jsii-runtime-go"
)

// The Lambdas, named after their folders under functions/.
const (
	FnSession = "session-issue"
	FnAdmin   = "admin-tenant-kms"
	FnUnseal  = "unseal"
	FnHealth  = "health"
	FnPoller  = "verify-poller"
	// FnPollWorker sweeps the shard groups the scheduled poller
	// dispatches to it (the fan-out, poller.go).
	FnPollWorker = "verify-poller-worker"
	// FnPublisher delivers the outbox from the table's stream to the bus.
	FnPublisher = "event-publisher"
	// FnDeliver delivers webhooks from the webhook queue (webhooks.go).
	FnDeliver = "webhook-deliver"
	// FnKeyEvents verifies the tenants of a key a forwarded KMS event
	// names (push sealing, keyevents.go).
	FnKeyEvents = "key-events"
	// FnBusPolicy keeps keyseal's bus policy admitting the customers'
	// accounts (buspolicy.go).
	FnBusPolicy = "bus-policy"
)

// access is what one function may do; every grant below is derived from it,
// so a function gets exactly the table, key and bus actions it uses.
type access struct {
	// store: "write" (reads and transactional writes), "read" (GetItem,
	// Query and DescribeTable on the table: the health Lambda's liveness
	// ping and its read-only BYOK probe) or "stream" (reads the table's
	// stream, never the table: the event publisher) or "deliver" (the
	// write actions on the table alone, not its poll index: the webhook
	// deliverer reads subscriptions and records attempts, and disabling
	// one on 410 Gone appends to the audit chain) or "index" (a Scan of
	// the key-ref index alone: the bus policy reconcile).
	store string
	// unsealSecrets: the function unseals webhook signing secrets: Decrypt
	// with the platform key, only with the signing secrets' encryption
	// context, and no customer key.
	unsealSecrets bool
	// kms: the function wraps/unwraps TMKs (platform key and customers'
	// CMKs, possibly through a customer role).
	kms bool
	// events: the function puts events to the bus. Only the publisher
	// does: every other function writes its events to the outbox, in the
	// transaction of the change they announce.
	events bool
	admin  bool
	// audit: the function appends to audit chains, so it signs checkpoints
	// with the audit signing key (kms:Sign; kms:GetPublicKey for the note
	// key hash every signature line carries, and for verifying).
	audit bool
	// keyIndex: the function's table reads go through the key-ref index
	// (tenants by customer key), not the poll-shard index.
	keyIndex bool
	// forwarding: the function answers GET
	// /admin/tenant-kms/event-forwarding, which names the bus's ARN.
	forwarding bool
	// clouds: the function serves every provider, so it gets keyseal's
	// GCP and Azure identity (and the Azure secret). key-events does not:
	// its events name AWS keys, and it links neither cloud SDK.
	clouds bool
	// busPolicy: the function reconciles the bus's resource policy with
	// the key-ref index: it scans that index (store "index") and
	// describes the bus and puts and removes its permissions, on keyseal's
	// bus only.
	busPolicy bool
}

type fnSpec struct {
	name    string
	timeout float64 // seconds
	// http: the function is an API Gateway proxy target, so routes.json
	// names it; the poller runs on a schedule only.
	http   bool
	access access
}

var fnSpecs = []fnSpec{
	{FnSession, 10, true, access{store: "write", kms: true, clouds: true, audit: true}},
	{FnAdmin, 20, true, access{store: "write", kms: true, clouds: true, admin: true, audit: true, forwarding: true}},
	{FnUnseal, 20, true, access{store: "write", kms: true, clouds: true, admin: true, audit: true}},
	// The BYOK probe (GET /admin/tenant-kms/health) is this function's
	// (docs/contract.md §3): it wraps and unwraps with the tenant's key and
	// describes it, so it has the KMS grants, but it never writes: no table
	// write, no audit signing key. Up to three KMS calls of one timeout each.
	{FnHealth, 20, true, access{store: "read", kms: true, clouds: true, admin: true}},
	// Two sweeps 30 s apart plus the second sweep's run: see
	// shared/poller for why one invocation sweeps twice.
	{FnPoller, 75, false, access{store: "write", kms: true, clouds: true, audit: true}},
	// The same sweeps over the shards it is given, ending with their
	// minute (shared/poller).
	{FnPollWorker, 75, false, access{store: "write", kms: true, clouds: true, audit: true}},
	// A batch is at most publisherBatch events, one PutEvents call.
	{FnPublisher, 30, false, access{store: "stream", events: true}},
	// One batch: up to deliverBatch messages at once, each fanned out to
	// at most 20 subscriptions at once, each attempt bounded by the
	// client's 15 s; 60 s leaves room for KMS and the table. The queue's
	// visibility timeout is 6 times this (webhooks.go).
	{FnDeliver, deliverTimeout, false, access{store: "deliver", unsealSecrets: true, audit: true}},
	// What the poller does for one tenant, for the tenants of one key:
	// one check (three KMS timeouts) plus at most the limiter's one
	// second of deferral.
	{FnKeyEvents, 20, false, access{store: "write", kms: true, audit: true, keyIndex: true}},
	// One scan of the key-ref index, one DescribeEventBus, and a
	// PutPermission or RemovePermission per changed account.
	{FnBusPolicy, 60, false, access{store: "index", busPolicy: true}},
}

// FunctionNames are the Lambdas' names (their folders under functions/),
// in the order the stack creates them.
func FunctionNames() []string {
	names := make([]string, len(fnSpecs))
	for i, s := range fnSpecs {
		names[i] = s.name
	}
	return names
}

// Functions are keyseal's Lambdas with their permissions.
type Functions struct {
	constructs.Construct
	ByName map[string]awslambda.Function
}

// NewFunctions creates the Lambdas from bin/<name>/bootstrap (arm64,
// provided.al2023, built by `make build`), with the environment of docs/contract.md §8,
// X-Ray tracing and a log group each.
func NewFunctions(scope constructs.Construct, id string, c Config, data *Data, keys *Keys, ev *Events) *Functions {
	s := constructs.NewConstruct(scope, jsii.String(id))
	f := &Functions{Construct: s, ByName: map[string]awslambda.Function{}}
	for _, spec := range fnSpecs {
		env := map[string]*string{
			"KEYSEAL_STAGE":     jsii.String(c.Name),
			"KEYSEAL_LOG_LEVEL": jsii.String("info"),
		}
		if spec.access.store == "index" {
			env["KEYSEAL_TABLE"] = data.Table.TableName()
		}
		if spec.access.store != "stream" && spec.access.store != "index" {
			env["KEYSEAL_TABLE"] = data.Table.TableName()
			// Set for every function of the table: config validation
			// wants it, and health proves the configuration is whole.
			env["KEYSEAL_PLATFORM_KEY_ID"] = keys.Platform.KeyArn()
		}
		if spec.access.kms {
			// docs/contract.md §8 defaults, spelled out so an operator sees them on
			// the function: the TMK cache bound, the BYOK session bound and
			// the per-call KMS timeout.
			env["KEYSEAL_TMK_CACHE_TTL"] = jsii.String("5m")
			env["KEYSEAL_SESSION_TTL"] = jsii.String("5m")
			env["KEYSEAL_KMS_TIMEOUT"] = jsii.String("5s")
		}
		if spec.access.clouds {
			// keyseal's GCP and Azure identity, only where those providers
			// are served.
			for k, v := range c.Clouds.env() {
				env[k] = jsii.String(v)
			}
		}
		if spec.access.events || spec.access.busPolicy {
			env["KEYSEAL_EVENT_BUS"] = ev.Bus.EventBusName()
		}
		if spec.access.forwarding {
			env["KEYSEAL_EVENT_BUS_ARN"] = ev.Bus.EventBusArn()
		}
		if (spec.access.forwarding || spec.access.busPolicy) && c.EventOrgID != "" {
			env["KEYSEAL_EVENT_ORG_ID"] = jsii.String(c.EventOrgID)
		}
		if spec.access.audit {
			env["KEYSEAL_AUDIT_SIGNING_KEY_ID"] = keys.AuditSigning.KeyArn()
		}
		if spec.access.admin {
			env["KEYSEAL_ADMIN_JWKS_URL"] = jsii.String(c.AdminJWKSURL)
			env["KEYSEAL_ADMIN_ISSUER"] = jsii.String(c.AdminIssuer)
			env["KEYSEAL_ADMIN_AUDIENCE"] = jsii.String(c.AdminAudience)
			env["KEYSEAL_ADMIN_TENANT_CLAIM"] = jsii.String(c.AdminTenantClaim)
			env["KEYSEAL_STEPUP_ACR_VALUES"] = jsii.String(c.StepUpACRValues)
			// The principal customers grant in their key policy
			// (GET /admin/tenant-kms/key-policy): this account's root,
			// not a function's role. The key policy then defers to this
			// account's IAM, where only the KMS functions' roles may use a
			// customer key, and only with keyseal's encryption context
			// (grant, below). A role ARN would bind every customer's key
			// policy to one function's role, and a key policy naming a
			// role that a redeploy replaced keeps the old role's id: the
			// keys would stop working. KEYSEAL_WAIVER_FILE is not set: the
			// waiver text is the one compiled into the binary, versioned
			// with the code.
			env["KEYSEAL_SERVICE_PRINCIPAL"] = awscdk.Fn_Join(jsii.String(""), &[]*string{
				jsii.String("arn:"), awscdk.Aws_PARTITION(), jsii.String(":iam::"), awscdk.Aws_ACCOUNT_ID(), jsii.String(":root")})
		}
		if spec.name == FnPoller || spec.name == FnPollWorker {
			env["KEYSEAL_POLL_INTERVAL"] = jsii.String("30s")
		}
		logs := awslogs.NewLogGroup(s, jsii.String(spec.name+"-logs"), &awslogs.LogGroupProps{
			LogGroupName:  jsii.String("/aws/lambda/" + c.Prefix(spec.name)),
			Retention:     c.Retention(),
			RemovalPolicy: c.RemovalPolicy(),
		})
		props := &awslambda.FunctionProps{
			FunctionName: jsii.String(c.Prefix(spec.name)),
			Runtime:      awslambda.Runtime_PROVIDED_AL2023(),
			Architecture: awslambda.Architecture_ARM_64(),
			Handler:      jsii.String("bootstrap"),
			Code:         awslambda.Code_FromAsset(jsii.String(filepath.Join(c.AssetDir, spec.name)), nil),
			MemorySize:   jsii.Number(256),
			Timeout:      awscdk.Duration_Seconds(jsii.Number(spec.timeout)),
			Tracing:      awslambda.Tracing_ACTIVE,
			Environment:  &env,
			LogGroup:     logs,
		}
		switch spec.name {
		case FnPoller:
			// One poller at a time: sweeps never overlap across invocations.
			props.ReservedConcurrentExecutions = jsii.Number(1)
		case FnPollWorker:
			// At most one invocation per group the dispatcher does not sweep
			// itself: 16 shards, so 15. A duplicate delivery beyond it is
			// throttled and then dropped as stale (its minute is over).
			props.ReservedConcurrentExecutions = jsii.Number(PollWorkers)
		}
		if spec.name == FnBusPolicy {
			// One reconcile at a time, so a run that read the index before
			// a deregistration can never put back the statement the next
			// run removed; the invocations waiting meanwhile are queued
			// and retried by Lambda's asynchronous invocation.
			props.ReservedConcurrentExecutions = jsii.Number(1)
		}
		fn := awslambda.NewFunction(s, jsii.String(spec.name), props)
		grant(fn, spec.access, c, data, keys, ev)
		if spec.access.clouds && c.AzureClientSecretARN != "" {
			// The Azure client secret, read at init and again when Entra
			// refuses it: this one secret (its full ARN), by the functions
			// that serve the Azure provider only. It is encrypted under the account's
			// aws/secretsmanager key, whose policy lets Secrets Manager
			// decrypt for any caller allowed GetSecretValue, so no kms
			// grant is needed; a secret under a customer managed key is
			// not supported (its key policy would have to name these roles).
			fn.AddToRolePolicy(statement([]string{"secretsmanager:GetSecretValue"}, []*string{jsii.String(c.AzureClientSecretARN)}, nil))
		}
		f.ByName[spec.name] = fn
	}
	return f
}

// customerKeys is every KMS key ARN in every account and region (aliases
// excluded), the resource of the customer-key statements.
const customerKeys = "arn:aws:kms:*:*:key/*"

// grant gives fn exactly the actions its access needs.
func grant(fn awslambda.Function, a access, c Config, data *Data, keys *Keys, ev *Events) {
	table := data.Table.TableArn()
	indexName := PollIndex
	if a.keyIndex {
		indexName = KeyIndex
	}
	index := awscdk.Fn_Join(jsii.String(""), &[]*string{table, jsii.String("/index/" + indexName)})
	switch a.store {
	case "index":
		// The whole key-ref index, read as one Scan (KeysInUse): one small
		// item per BYOK tenant, keys only; nothing of the table itself.
		keyRef := awscdk.Fn_Join(jsii.String(""), &[]*string{table, jsii.String("/index/" + KeyIndex)})
		fn.AddToRolePolicy(statement([]string{"dynamodb:Scan"}, []*string{keyRef}, nil))
	case "read":
		fn.AddToRolePolicy(statement([]string{"dynamodb:GetItem", "dynamodb:Query", "dynamodb:DescribeTable"}, []*string{table}, nil))
	case "stream":
		// What a DynamoDB event source mapping polls with, on this
		// table's stream only. CDK's DynamoEventSource would also grant
		// ListStreams on "*"; the mapping is built by hand for that.
		fn.AddToRolePolicy(statement([]string{"dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
			"dynamodb:ListStreams"}, []*string{data.Table.TableStreamArn()}, nil))
	case "deliver":
		fn.AddToRolePolicy(statement([]string{"dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem",
			"dynamodb:ConditionCheckItem", "dynamodb:DescribeTable"}, []*string{table}, nil))
	case "write":
		// TransactWriteItems is authorised per item as PutItem/UpdateItem/
		// ConditionCheckItem; there is no delete: the audit chain is
		// append-only and nothing else is removed.
		fn.AddToRolePolicy(statement([]string{"dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem",
			"dynamodb:ConditionCheckItem", "dynamodb:DescribeTable"}, []*string{table, index}, nil))
	}
	if a.kms {
		fn.AddToRolePolicy(statement([]string{"kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"}, []*string{keys.Platform.KeyArn()}, nil))
		// Customers' CMKs live in their accounts and are named at
		// registration, so the resource is every key (key ARNs only, never
		// alias/*), but only with keyseal's own encryption context: this
		// role cannot use a customer's key for anything but wrapping keyseal
		// TMKs. The customer's key policy is the other half of the grant.
		//
		// And only keys in other accounts than keyseal's own. The platform
		// key has its statement above; without this, the role could also
		// use every other key of this account whose key policy defers to
		// IAM (CDK's default does), such as another stage's platform key
		// where stages share an account: dev's Lambdas could then unwrap
		// prod's TMKs, whose encryption context names keyseal:tenant too.
		// A tenant key inside keyseal's account would not be BYOK anyway.
		otherAccounts := map[string]any{"aws:ResourceAccount": awscdk.Aws_ACCOUNT_ID()}
		fn.AddToRolePolicy(statement([]string{"kms:Encrypt", "kms:Decrypt"}, []*string{jsii.String(customerKeys)},
			map[string]any{
				"ForAnyValue:StringEquals": map[string]any{"kms:EncryptionContextKeys": "keyseal:tenant"},
				"StringNotEquals":          otherAccounts,
			}))
		// DescribeKey (shared/awskms calls it to tell a disabled key from one
		// pending deletion after KMSInvalidStateException) supports no
		// kms:EncryptionContext* condition keys, only kms:CallerAccount and
		// kms:ViaService besides the global ones (AWS KMS permissions
		// reference): its request has no encryption context, so the
		// condition above would never match and would deny it. What is left
		// to scope it: key ARNs only, in other accounts.
		fn.AddToRolePolicy(statement([]string{"kms:DescribeKey"}, []*string{jsii.String(customerKeys)},
			map[string]any{"StringNotEquals": otherAccounts}))
		// Cross-account access through a customer's role, only with an
		// ExternalId (the confused-deputy guard).
		fn.AddToRolePolicy(statement([]string{"sts:AssumeRole"}, []*string{jsii.String("arn:aws:iam::*:role/*")},
			map[string]any{"Null": map[string]any{"sts:ExternalId": "false"}}))
	}
	if a.unsealSecrets {
		// shared/subscription seals each secret under the platform key
		// with keyseal:purpose = webhook_secret in its context.
		fn.AddToRolePolicy(statement([]string{"kms:Decrypt"}, []*string{keys.Platform.KeyArn()},
			map[string]any{"StringEquals": map[string]any{"kms:EncryptionContext:keyseal:purpose": "webhook_secret"}}))
	}
	if a.events {
		fn.AddToRolePolicy(statement([]string{"events:PutEvents"}, []*string{ev.Bus.EventBusArn()}, nil))
	}
	if a.busPolicy {
		// DescribeEventBus, PutPermission and RemovePermission authorise
		// on the event-bus resource: this bus only. In organization mode
		// the stack's statement admits everyone, and the reconcile only
		// removes per-account statements left from before: no
		// PutPermission.
		actions := []string{"events:DescribeEventBus", "events:PutPermission", "events:RemovePermission"}
		if c.EventOrgID != "" {
			actions = []string{"events:DescribeEventBus", "events:RemovePermission"}
		}
		fn.AddToRolePolicy(statement(actions, []*string{ev.Bus.EventBusArn()}, nil))
	}
	if a.audit {
		fn.AddToRolePolicy(statement([]string{"kms:Sign", "kms:GetPublicKey"}, []*string{keys.AuditSigning.KeyArn()}, nil))
	}
}

func statement(actions []string, resources []*string, conditions map[string]any) awsiam.PolicyStatement {
	acts := make([]*string, len(actions))
	for i, a := range actions {
		acts[i] = jsii.String(a)
	}
	props := &awsiam.PolicyStatementProps{Actions: &acts, Resources: &resources}
	if conditions != nil {
		props.Conditions = &conditions
	}
	return awsiam.NewPolicyStatement(props)
}
