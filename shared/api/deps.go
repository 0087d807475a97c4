package api

import (
	"time"

	"github.com/keyseal/keyseal/shared/agents"
	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/keyseal"
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
	// ServicePrincipal is the principal the key policy names
	// (KEYSEAL_SERVICE_PRINCIPAL).
	ServicePrincipal string
	SessionTTL       time.Duration
	Now              func() time.Time
}
