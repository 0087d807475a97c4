// Package app wires keyseal: configuration -> clients -> adapters ->
// services -> handler dependencies. Lambdas call NewAWS; the local server
// calls NewDev or NewLocalStack. Nothing here runs per request.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/keyseal/keyseal/shared/agents"
	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/awsconfig"
	"github.com/keyseal/keyseal/shared/awskms"
	"github.com/keyseal/keyseal/shared/config"
	"github.com/keyseal/keyseal/shared/dynamostore"
	"github.com/keyseal/keyseal/shared/events"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/metrics"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// App is a wired keyseal.
type App struct {
	Config  config.Config
	Log     *slog.Logger
	Store   keyseal.Store
	KMS     keyseal.Providers
	Tenants *tenantkms.Service
	Deps    *api.Deps
	closers []func() error
}

// Close releases what the app opened (the embedded store's file lock).
func (a *App) Close() error {
	var errs []error
	for _, c := range a.closers {
		errs = append(errs, c())
	}
	return errors.Join(errs...)
}

// Needs says which optional parts a process uses, so each Lambda requires
// only the configuration it reads.
type Needs struct {
	Admin  bool
	Events bool
}

// NewLogger returns keyseal's structured JSON logger.
func NewLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated by config.Load
	return slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: l}))
}

// NewAWS wires a Lambda: DynamoDB store, AWS KMS provider (with optional
// cross-account role), EventBridge, and CloudWatch metrics as EMF lines on
// stdout tagged with the function's name.
func NewAWS(ctx context.Context, getenv config.Getenv, needs Needs) (*App, error) {
	cfg, err := config.Load(getenv)
	if err == nil {
		err = cfg.RequireAWS()
	}
	if err == nil && needs.Events {
		err = cfg.RequireEvents()
	}
	if err == nil && needs.Admin {
		err = cfg.RequireAdmin()
	}
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	awsCfg, err := awsconfig.Load(ctx)
	if err != nil {
		return nil, err
	}
	clients := NewClients(awsCfg)
	store := dynamostore.New(clients.DynamoDB, cfg.Table)
	var ev keyseal.Events
	if needs.Events {
		ev = events.NewBridge(clients.EventBridge, cfg.EventBus)
	}
	var admins *auth.AdminVerifier
	if needs.Admin {
		if admins, err = NewAdminVerifier(cfg); err != nil {
			return nil, err
		}
	}
	log := NewLogger(cfg.LogLevel)
	emf := metrics.New(os.Stdout, cfg.Stage)
	if fn := getenv("AWS_LAMBDA_FUNCTION_NAME"); fn != "" { // set by the Lambda runtime
		emf = emf.With("function", fn)
	}
	return assemble(cfg, log, store, keyseal.Providers{keyseal.ProviderAWS: clients.KMSProvider()},
		keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: cfg.PlatformKeyID}, ev, admins, emf), nil
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

// Clients are the AWS clients keyseal uses, all from one aws.Config.
type Clients struct {
	Config      aws.Config
	DynamoDB    *dynamodb.Client
	KMS         *kms.Client
	STS         *sts.Client
	EventBridge *eventbridge.Client
}

// NewClients builds every AWS client from cfg.
func NewClients(cfg aws.Config) Clients {
	return Clients{Config: cfg, DynamoDB: dynamodb.NewFromConfig(cfg), KMS: kms.NewFromConfig(cfg),
		STS: sts.NewFromConfig(cfg), EventBridge: eventbridge.NewFromConfig(cfg)}
}

// KMSProvider returns the AWS KMS provider, assuming customer roles through
// STS when a key names one.
func (c Clients) KMSProvider() *awskms.Provider {
	return awskms.New(c.KMS, awskms.WithAssumeRole(awskms.RoleClients(c.Config, c.STS)))
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

// assemble builds the services. m receives the CloudWatch metrics; nil
// (the local server) emits none.
func assemble(cfg config.Config, log *slog.Logger, store keyseal.Store, providers keyseal.Providers, platform keyseal.KeyRef, ev keyseal.Events, admins *auth.AdminVerifier, m tenantkms.Metrics) *App {
	tenants := tenantkms.New(store, providers, ev, tenantkms.Options{CacheTTL: cfg.CacheTTL, KMSTimeout: cfg.KMSTimeout,
		PlatformKey: platform, Concurrency: cfg.PollConcurrency, Metrics: m, Log: log})
	return &App{Config: cfg, Log: log, Store: store, KMS: providers, Tenants: tenants, Deps: &api.Deps{
		Store: store, Tenants: tenants, Agents: &agents.Service{Store: store, Now: time.Now}, Admins: admins,
		StepUp:     &auth.StepUp{Store: store, MaxAge: cfg.StepUpMaxAge, ACRValues: cfg.StepUpACRValues, TTL: 120 * time.Second},
		SessionTTL: cfg.SessionTTL, Now: time.Now,
	}}
}
