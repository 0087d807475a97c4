// Package app wires keyseal's Lambdas: configuration -> clients ->
// adapters -> services -> handler dependencies. Lambdas call MustAWS; the
// local server (shared/localserver) does its own dev and LocalStack wiring
// and shares Assemble, so no Lambda links the embedded store, the local
// KMS or the dev token issuer. Nothing here runs per request.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/keyseal/keyseal/shared/agents"
	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/auditkey"
	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/awsconfig"
	"github.com/keyseal/keyseal/shared/awskms"
	"github.com/keyseal/keyseal/shared/awskms/roles"
	"github.com/keyseal/keyseal/shared/config"
	"github.com/keyseal/keyseal/shared/dynamostore"
	"github.com/keyseal/keyseal/shared/internal/jsonlog"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/metrics"
	"github.com/keyseal/keyseal/shared/subscription"
	"github.com/keyseal/keyseal/shared/tenantkms"
	"github.com/keyseal/keyseal/shared/waiver"
	"github.com/keyseal/keyseal/shared/webhook"
)

// App is a wired keyseal.
type App struct {
	Config  config.Config
	Log     *slog.Logger
	Store   keyseal.Store
	Tenants *tenantkms.Service
	Deps    *api.Deps
	// AWS is the aws.Config the Lambda's clients were built from, for a
	// request only one Lambda makes (the poller's signed Invoke); the
	// zero value outside NewAWS.
	AWS aws.Config
	// Metrics receives the CloudWatch metrics (the tenant service's,
	// the poller's dispatch errors); nil emits none.
	Metrics tenantkms.Metrics
	closers []func() error
}

// OnClose registers a release for Close (the embedded store's file lock).
func (a *App) OnClose(fn func() error) { a.closers = append(a.closers, fn) }

// Close releases what the app opened.
func (a *App) Close() error {
	var errs []error
	for _, c := range a.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// Needs says which optional parts a process uses, so each Lambda requires
// only the configuration it reads. None publishes events: state changes
// write them to the outbox, and the event-publisher Lambda (package publisher)
// delivers them.
type Needs struct {
	Admin bool
	// Audit: the process appends to audit chains, so it signs checkpoints
	// with KEYSEAL_AUDIT_SIGNING_KEY_ID.
	Audit bool
	// EventForwarding: the process answers GET
	// /admin/tenant-kms/event-forwarding, so it needs KEYSEAL_EVENT_BUS_ARN.
	EventForwarding bool
	// Clouds builds the gcp-kms and azure-kv providers the configuration
	// enables (clouds.FromConfig). Nil: the process serves aws-kms only
	// and links neither the Google nor the Azure SDK, whatever
	// KEYSEAL_GCP_* and KEYSEAL_AZURE_* say; a tenant on another provider
	// then gets a "provider not configured" error, which never seals it
	// (keyseal.Providers), and the poller verifies it as usual.
	Clouds CloudWiring
}

// CloudWiring builds the non-AWS providers of a Lambda from its
// configuration and AWS clients (Secrets Manager holds the Azure secret).
type CloudWiring func(ctx context.Context, cfg config.Config, aws *Clients) (keyseal.Providers, error)

// NewLogger returns keyseal's structured JSON logger.
func NewLogger(level string) *slog.Logger { return jsonlog.New(level) }

// NewAWS wires a Lambda: DynamoDB store, AWS KMS provider (with optional
// cross-account role), GCP Cloud KMS and Azure Key Vault when configured
// and needs.Clouds is set, and CloudWatch metrics as EMF lines on stdout
// tagged with the function's name.
func NewAWS(ctx context.Context, getenv config.Getenv, needs Needs) (*App, error) {
	cfg, err := config.Load(getenv)
	if err == nil {
		err = cfg.RequireAWS()
	}
	if err == nil && needs.Admin {
		err = errors.Join(cfg.RequireAdmin(), cfg.RequireServicePrincipal())
	}
	if err == nil && needs.Audit {
		err = cfg.RequireAuditSigning()
	}
	if err == nil && needs.EventForwarding {
		err = cfg.RequireEventForwarding()
	}
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	awsCfg, err := awsconfig.FromEnv(getenv)
	if err != nil {
		return nil, err
	}
	clients := NewClients(awsCfg)
	log := NewLogger(cfg.LogLevel)
	var anchor *audit.Anchor
	if cfg.AuditSigningKeyID != "" {
		key := auditkey.NewKMS(clients.KMS, cfg.AuditSigningKeyID, cfg.KMSTimeout)
		if anchor, err = audit.NewAnchor(key, cfg.Stage, log); err != nil {
			return nil, fmt.Errorf("configuration: KEYSEAL_STAGE: %w", err)
		}
	}
	store := dynamostore.New(clients.DynamoDB, cfg.Table, dynamostore.WithAnchor(anchor))
	var admins *auth.AdminVerifier
	if needs.Admin {
		if admins, err = NewAdminVerifier(cfg); err != nil {
			return nil, err
		}
	}
	emf := metrics.New(os.Stdout, cfg.Stage)
	if fn := getenv("AWS_LAMBDA_FUNCTION_NAME"); fn != "" { // set by the Lambda runtime
		emf = emf.With("function", fn)
	}
	providers := NewProviders(&clients, nil)
	if needs.Clouds != nil {
		clouds, err := needs.Clouds(ctx, cfg, &clients)
		if err != nil {
			return nil, err
		}
		maps.Copy(providers, clouds)
	}
	a, err := Assemble(cfg, log, Parts{Store: store, Providers: providers,
		PlatformKey: keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: cfg.PlatformKeyID}, Anchor: anchor, Admins: admins, Metrics: emf})
	if err != nil {
		return nil, err
	}
	a.AWS = awsCfg
	return a, nil
}

// MustAWS is NewAWS for a Lambda's main: a configuration error is printed
// naming the function and the process exits, so the Lambda fails its init
// with the message in its log instead of serving half-configured.
func MustAWS(function string, needs Needs) *App {
	a, err := NewAWS(context.Background(), os.Getenv, needs)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", function, err)
		os.Exit(1)
	}
	return a
}

// Clients are the AWS clients the Lambdas use, all from one aws.Config.
// No Lambda wired here puts events (the event publisher has its own
// wiring), so there is no EventBridge client, and only package clouds
// reads the Azure secret, so there is no Secrets Manager client: linking
// a client costs its endpoint table and schemas at every cold start.
type Clients struct {
	Config   aws.Config
	DynamoDB *dynamodb.Client
	KMS      *kms.Client
	STS      *sts.Client
}

// NewClients builds every AWS client from cfg.
func NewClients(cfg aws.Config) Clients {
	return Clients{Config: cfg, DynamoDB: dynamodb.NewFromConfig(cfg), KMS: kms.NewFromConfig(cfg),
		STS: sts.NewFromConfig(cfg)}
}

// NewProviders builds the KMS providers a process serves, in one place:
// AWS KMS when it has AWS clients (assuming customer roles through STS when
// a key names one), and the local software KMS when given one (dev mode).
// GCP Cloud KMS and Azure Key Vault are built by package clouds and
// merged into the same map.
func NewProviders(aws *Clients, local keyseal.Provider) keyseal.Providers {
	p := keyseal.Providers{}
	if aws != nil {
		p[keyseal.ProviderAWS] = awskms.New(aws.KMS, awskms.WithAssumeRole(roles.Clients(aws.Config, aws.STS)))
	}
	if local != nil {
		p[keyseal.ProviderLocal] = local
	}
	return p
}

// NewAdminVerifier builds the admin JWT verifier from configuration.
func NewAdminVerifier(cfg config.Config) (*auth.AdminVerifier, error) {
	v, err := auth.NewAdminVerifier(auth.AdminConfig{JWKSURL: cfg.AdminJWKSURL, JWKS: []byte(cfg.AdminJWKS),
		Issuer: cfg.AdminIssuer, Audience: cfg.AdminAudience, TenantClaim: cfg.AdminTenantClaim})
	if err != nil {
		return nil, fmt.Errorf("configuration: admin JWT verifier: %w", err)
	}
	return v, nil
}

// Parts are what a process brings to Assemble: its adapters and, for
// Lambdas, the metrics sink.
type Parts struct {
	Store       keyseal.Store
	Providers   keyseal.Providers
	PlatformKey keyseal.KeyRef
	// Anchor signs and verifies audit checkpoints (the store it was given
	// to signs each append); nil where the process has no signing key.
	Anchor *audit.Anchor
	// Admins verifies admin JWTs; nil where no admin route is served.
	Admins *auth.AdminVerifier
	// Metrics receives the CloudWatch metrics; nil emits none.
	Metrics tenantkms.Metrics
	// FreshSignIn is the advice a too-old admin sign-in gets at step-up
	// (dev mode names its token route); "" for an identity provider's.
	FreshSignIn string
	// WebhookPolicy is the subscription URL policy: the zero Policy on
	// Lambdas, Policy{Dev: true} on the local server (http://127.0.0.1
	// and http://localhost admitted).
	WebhookPolicy webhook.Policy
}

// Assemble builds the services on p. The platform key's provider must be
// configured: a deployment that cannot wrap a new tenant's TMK fails at
// start, not at the first tenant.
func Assemble(cfg config.Config, log *slog.Logger, p Parts) (*App, error) {
	if err := p.Providers.Require(p.PlatformKey.Provider); err != nil {
		return nil, fmt.Errorf("configuration: platform key: %w", err)
	}
	waivers := waiver.NewService(p.Store, cfg.Waiver, time.Now)
	tenants := tenantkms.New(p.Store, p.Providers, tenantkms.Options{CacheTTL: cfg.CacheTTL, KMSTimeout: cfg.KMSTimeout,
		PlatformKey: p.PlatformKey, Concurrency: cfg.PollConcurrency, Metrics: p.Metrics, Waiver: waivers, Log: log})
	return &App{Config: cfg, Log: log, Store: p.Store, Tenants: tenants, Metrics: p.Metrics, Deps: &api.Deps{
		Tenants: tenants, Keys: p.Providers, Agents: &agents.Service{Store: p.Store, Now: time.Now},
		Audit: &audit.Service{Log: p.Store, Anchor: p.Anchor}, Admins: p.Admins, Health: p.Store,
		StepUp: &auth.StepUp{Tokens: p.Store, Audit: p.Store, MaxAge: cfg.StepUpMaxAge, ACRValues: cfg.StepUpACRValues,
			TTL: 120 * time.Second, FreshSignIn: p.FreshSignIn},
		Waiver: waivers, ServicePrincipal: cfg.ServicePrincipal,
		Webhooks: &subscription.Service{Store: p.Store, KMS: p.Providers, PlatformKey: p.PlatformKey,
			Policy: p.WebhookPolicy, Now: time.Now},
		GCPServiceAccount: cfg.GCP.ServiceAccount, AzureClientID: cfg.Azure.ClientID, AzureTenantID: cfg.Azure.TenantID,
		EventBusARN: cfg.EventBusARN, EventOrgID: cfg.EventOrgID,
		SessionTTL: cfg.SessionTTL, Now: time.Now,
	}}, nil
}
