package localserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyseal/keyseal/shared/app"
	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/auditkey"
	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/awsconfig/defaultchain"
	"github.com/keyseal/keyseal/shared/boltstore"
	"github.com/keyseal/keyseal/shared/buspolicy"
	"github.com/keyseal/keyseal/shared/config"
	"github.com/keyseal/keyseal/shared/devissuer"
	"github.com/keyseal/keyseal/shared/dynamostore"
	"github.com/keyseal/keyseal/shared/events"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/localkms"
	"github.com/keyseal/keyseal/shared/outbox"
	"github.com/keyseal/keyseal/shared/webhook"
)

// Local modes of the local server.
const (
	ModeDev        = "dev"
	ModeLocalStack = "localstack"
)

// Dev admin token issuer and audience (dev and LocalStack modes only).
const (
	DevIssuer   = "keyseal-dev"
	DevAudience = "keyseal-admin"
)

// DevServicePrincipal is the key policy's principal when
// KEYSEAL_SERVICE_PRINCIPAL is unset locally: the root of LocalStack's
// default account (LocalStack enforces no key policy anyway).
const DevServicePrincipal = "arn:aws:iam::000000000000:root"

// DemoWaiverEmail is who acknowledges the legal waiver for the demo tenant,
// so dev mode starts registered; POST /dev/legal-waiver rehearses a new
// version.
const DemoWaiverEmail = "dev-admin@keyseal.example"

// Local is what the local server needs beside the App: the dev admin token
// issuer, where the outbox drain delivers events, and per mode the local
// KMS (dev) or the AWS clients (LocalStack).
type Local struct {
	Mode     string
	Issuer   *devissuer.Issuer
	LocalKMS *localkms.Provider
	AWS      *AWSClients
	// Clouds, with KEYSEAL_DEV_CLOUDS=1, are the GCP and Azure stand-ins
	// behind the gcp-kms and azure-kv providers (both modes).
	Clouds *Clouds
	// Events receives what the outbox drain publishes: the log in dev
	// mode, the event bus in LocalStack mode. Tests may wrap it before
	// Start.
	Events outbox.Sink
	// Push (KEYSEAL_DEV_PUSH, default on): a local key's state change
	// through the dev route also emits its CloudTrail-shaped event into
	// the in-process key-events handler (push.go).
	Push bool
	// Delivery, in dev mode, delivers webhooks from the durable queue in
	// the embedded store (delivery.go); nil in LocalStack mode, where the
	// outbox goes to the bus.
	Delivery *Delivery
}

// freshSignIn is the step-up advice of the local server, which has no
// identity provider to sign in at again.
const freshSignIn = "get a fresh admin token with POST /dev/admin-token and retry"

// Wire wires the local server. Dev mode: embedded store and local KMS
// under dataDir, no network. LocalStack mode: DynamoDB store and AWS KMS
// against the endpoints in AWS_ENDPOINT_URL*, creating the table, platform
// key and event bus when missing. Both verify admin JWTs from a dev issuer
// whose key lives in dataDir. Neither emits CloudWatch metrics: no agent
// reads the local server's stdout, and an EMF line every poll interval would
// bury the log a developer reads (the sweep's figures are in its stats).
func Wire(ctx context.Context, getenv config.Getenv, mode, dataDir string) (*app.App, *Local, error) {
	cfg, err := config.Load(getenv)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration: %w", err)
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("data dir: %w", err)
	}
	issuer, err := devissuer.New(filepath.Join(dataDir, "dev-admin-issuer.json"), DevIssuer, DevAudience)
	if err != nil {
		return nil, nil, err
	}
	cfg.AdminJWKS, cfg.AdminJWKSURL, cfg.AdminIssuer, cfg.AdminAudience = string(issuer.JWKS()), "", DevIssuer, DevAudience
	if cfg.ServicePrincipal == "" {
		cfg.ServicePrincipal = DevServicePrincipal
	}
	admins, err := app.NewAdminVerifier(cfg)
	if err != nil {
		return nil, nil, err
	}
	// Both modes sign checkpoints with a key file beside the dev issuer's:
	// LocalStack 4.13.1's KMS has no Ed25519 keys (ECC_NIST_EDWARDS25519),
	// so the KMS key of AWS (shared/auditkey.KMS) is tested against a fake.
	auditKey, err := auditkey.OpenFile(filepath.Join(dataDir, "audit-signing-key.json"))
	if err != nil {
		return nil, nil, err
	}
	withClouds, err := CloudsEnabled(getenv)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration: %w", err)
	}
	push, err := PushEnabled(getenv)
	if err != nil {
		return nil, nil, fmt.Errorf("configuration: %w", err)
	}
	log := app.NewLogger(cfg.LogLevel)
	l := &Local{Mode: mode, Issuer: issuer, Push: push}
	if withClouds {
		if l.Clouds, err = StartClouds(dataDir); err != nil {
			return nil, nil, err
		}
	}
	a, err := wireMode(ctx, cfg, log, l, admins, auditKey, mode, dataDir)
	if err != nil {
		if l.Clouds != nil {
			l.Clouds.Close()
		}
		return nil, nil, err
	}
	if l.Clouds != nil {
		a.OnClose(l.Clouds.Close)
	}
	return a, l, nil
}

// withClouds adds the cloud stand-ins' providers, when there are any, to
// the providers of app.NewProviders.
func (l *Local) withClouds(p keyseal.Providers) keyseal.Providers {
	if l.Clouds != nil {
		for name, c := range l.Clouds.Providers() {
			p[name] = c
		}
	}
	return p
}

// wireMode assembles the app of one mode into l.
func wireMode(ctx context.Context, cfg config.Config, log *slog.Logger, l *Local, admins *auth.AdminVerifier, auditKey *auditkey.File,
	mode, dataDir string) (*app.App, error) {
	switch mode {
	case ModeDev:
		anchor, err := audit.NewAnchor(auditKey, cfg.Stage, log)
		if err != nil {
			return nil, fmt.Errorf("configuration: KEYSEAL_STAGE: %w", err)
		}
		store, err := boltstore.Open(filepath.Join(dataDir, "keyseal.db"), boltstore.WithAnchor(anchor))
		if err != nil {
			return nil, err
		}
		lk, err := localkms.Open(filepath.Join(dataDir, "local-kms.json"))
		if err != nil {
			store.Close()
			return nil, err
		}
		platform, err := devPlatformKey(filepath.Join(dataDir, "platform-key-id"), lk)
		if err != nil {
			store.Close()
			return nil, err
		}
		l.LocalKMS = lk
		l.Events = events.Log{Logger: log}
		a, err := app.Assemble(cfg, log, app.Parts{Store: store, Providers: l.withClouds(app.NewProviders(nil, lk)), PlatformKey: platform,
			Anchor: anchor, Admins: admins, FreshSignIn: freshSignIn, WebhookPolicy: webhook.Policy{Dev: true}})
		if err != nil {
			store.Close()
			return nil, err
		}
		a.OnClose(store.Close)
		devForwarding(a, cfg)
		l.Delivery = &Delivery{Queue: store, Log: log, Deliverer: &webhook.Deliverer{
			Client:        webhook.NewClient(webhook.Policy{Dev: true}, webhook.ClientOptions{RetryScale: cfg.WebhookRetryScale}),
			Subscriptions: a.Deps.Webhooks, Store: store, Log: log}}
		return a, nil
	case ModeLocalStack:
		awsCfg, err := defaultchain.Load(ctx)
		if err != nil {
			return nil, err
		}
		clients := AWSClients{Clients: app.NewClients(awsCfg), EventBridge: eventbridge.NewFromConfig(awsCfg)}
		l.AWS = &clients
		if cfg.Table == "" {
			cfg.Table = "keyseal-local"
		}
		if cfg.EventBus == "" {
			cfg.EventBus = "keyseal-local"
		}
		if err := dynamostore.CreateTable(ctx, clients.DynamoDB, cfg.Table); err != nil {
			return nil, fmt.Errorf("create table %s: %w", cfg.Table, err)
		}
		if cfg.PlatformKeyID == "" {
			if cfg.PlatformKeyID, err = EnsureKey(ctx, clients.KMS, "alias/keyseal-platform"); err != nil {
				return nil, err
			}
		}
		if err := ensureBus(ctx, clients.EventBridge, cfg.EventBus); err != nil {
			return nil, err
		}
		anchor, err := audit.NewAnchor(auditKey, cfg.Stage, log)
		if err != nil {
			return nil, fmt.Errorf("configuration: KEYSEAL_STAGE: %w", err)
		}
		store := dynamostore.New(clients.DynamoDB, cfg.Table, dynamostore.WithAnchor(anchor))
		// The bus-policy function's reconcile, run after each tenant key
		// event the drain publishes (LocalStack runs no Lambda).
		reconcile := &buspolicy.Reconciler{Index: store, Client: clients.EventBridge, Bus: cfg.EventBus, OrgID: cfg.EventOrgID, Log: log}
		l.Events = &ReconcileSink{Sink: events.NewBridge(clients.EventBridge, cfg.EventBus), Reconciler: reconcile, Log: log}
		a, err := app.Assemble(cfg, log, app.Parts{Store: store,
			Providers: l.withClouds(app.NewProviders(&clients.Clients, nil)), PlatformKey: keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: cfg.PlatformKeyID},
			Anchor: anchor, Admins: admins, FreshSignIn: freshSignIn, WebhookPolicy: webhook.Policy{Dev: true}})
		if err != nil {
			return nil, err
		}
		if err := localStackForwarding(ctx, a, clients.EventBridge, cfg.EventBus); err != nil {
			return nil, err
		}
		return a, nil
	}
	return nil, fmt.Errorf("unknown mode %q: want %s or %s", mode, ModeDev, ModeLocalStack)
}

// AWSClients are the Lambdas' AWS clients plus the EventBridge client the
// local server uses in LocalStack mode (the bus, its rules, the outbox
// drain's PutEvents).
type AWSClients struct {
	app.Clients
	EventBridge *eventbridge.Client
}

// devPlatformKey returns the dev platform key, creating it on first start.
func devPlatformKey(path string, lk *localkms.Provider) (keyseal.KeyRef, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		id, err := lk.CreateKey()
		if err != nil {
			return keyseal.KeyRef{}, err
		}
		if err := os.WriteFile(path, []byte(id+"\n"), 0o600); err != nil {
			return keyseal.KeyRef{}, err
		}
		return keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: id}, nil
	}
	if err != nil {
		return keyseal.KeyRef{}, err
	}
	return keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: strings.TrimSpace(string(b))}, nil
}

// EnsureKey returns the ARN of the symmetric key behind alias, creating key
// and alias when missing (LocalStack mode and tests).
func EnsureKey(ctx context.Context, c *kms.Client, alias string) (string, error) {
	if out, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(alias)}); err == nil {
		return aws.ToString(out.KeyMetadata.Arn), nil
	} else if !errors.As(err, new(*kmstypes.NotFoundException)) {
		return "", fmt.Errorf("describe %s: %w", alias, err)
	}
	out, err := c.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("keyseal " + alias)})
	if err != nil {
		return "", fmt.Errorf("create key: %w", err)
	}
	if _, err := c.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(alias), TargetKeyId: out.KeyMetadata.KeyId}); err != nil {
		return "", fmt.Errorf("create alias %s: %w", alias, err)
	}
	return aws.ToString(out.KeyMetadata.Arn), nil
}

func ensureBus(ctx context.Context, c *eventbridge.Client, name string) error {
	if name == "default" {
		return nil
	}
	_, err := c.CreateEventBus(ctx, &eventbridge.CreateEventBusInput{Name: aws.String(name)})
	if err != nil && !errors.As(err, new(*ebtypes.ResourceAlreadyExistsException)) {
		return fmt.Errorf("create event bus %s: %w", name, err)
	}
	return nil
}
