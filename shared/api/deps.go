package api

import (
	"context"
	"time"

	"github.com/keyseal/keyseal/shared/agents"
	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/subscription"
	"github.com/keyseal/keyseal/shared/tenantkms"
	"github.com/keyseal/keyseal/shared/waiver"
)

// Deps are the services the handlers call; handlers reach storage only
// through them. Each Lambda fills what its routes use.
type Deps struct {
	Tenants *tenantkms.Service
	// Keys parses registration fields with the provider they name.
	Keys   keyseal.Providers
	Agents *agents.Service
	Audit  *audit.Service
	Admins *auth.AdminVerifier
	StepUp *auth.StepUp
	// Health is what GET /health pings (the store).
	Health keyseal.Pinger
	// Waiver serves the legal waiver and gates register and migrate.
	Waiver *waiver.Service
	// Webhooks manages webhook subscriptions (/admin/webhooks).
	Webhooks *subscription.Service
	// ServicePrincipal is the principal the key policy names
	// (KEYSEAL_SERVICE_PRINCIPAL).
	ServicePrincipal string
	// GCPServiceAccount is keyseal's own Google service account, the
	// member gcp-kms grants name (KEYSEAL_GCP_SERVICE_ACCOUNT).
	GCPServiceAccount string
	// AzureClientID and AzureTenantID are keyseal's app registration, the
	// assignee of azure-kv role assignments (KEYSEAL_AZURE_CLIENT_ID,
	// KEYSEAL_AZURE_TENANT_ID).
	AzureClientID string
	AzureTenantID string
	// EventBusARN is keyseal's bus, the target of the customers'
	// forwarding rules (KEYSEAL_EVENT_BUS_ARN); EventOrgID the AWS
	// Organization the bus admits, if any (KEYSEAL_EVENT_ORG_ID).
	EventBusARN string
	EventOrgID  string
	// ForwardKeyARN, when set, maps a tenant key of another provider to
	// the key ARN its KMS events name (dev mode's local keys); aws-kms
	// keys are their own ARN.
	ForwardKeyARN func(keyseal.KeyRef) (string, bool)
	// BusPolicy, when set, reads keyseal's bus policy, so the forwarding
	// answer says whether it admits the account (the local server; the
	// admin Lambda has no DescribeEventBus).
	BusPolicy  func(context.Context) (string, error)
	SessionTTL time.Duration
	Now        func() time.Time
}
