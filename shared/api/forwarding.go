package api

import (
	"context"
	"net/http"
	"strings"

	"github.com/keyseal/keyseal/shared/buspolicy/policydoc"
	"github.com/keyseal/keyseal/shared/keyevents"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// EventForwarding is the answer of GET /admin/tenant-kms/event-forwarding:
// what the customer deploys in their key's account and region so its KMS
// events reach keyseal's bus, and how keyseal's bus admits that account.
type EventForwarding struct {
	Provider string `json:"provider"`
	keyevents.Forwarding
	Admission Admission `json:"admission"`
}

// Admission says how keyseal's bus policy admits the key's account:
// "account" (a statement per account, StatementID, put within a minute of
// the registration by the bus policy reconcile), "organization" (one
// statement for OrganizationID) or "own_account" (the key is in keyseal's
// own account, whose events need no statement). Admitted is the bus policy's current
// answer where this server may read it (the local server); the admin
// Lambda may not (only the reconcile function reads and writes the bus
// policy), so there it is absent.
type Admission struct {
	Mode           string `json:"mode"`
	StatementID    string `json:"statement_id,omitempty"`
	OrganizationID string `json:"organization_id,omitempty"`
	Admitted       *bool  `json:"admitted,omitempty"`
}

// Admission modes.
const (
	AdmissionAccount      = "account"
	AdmissionOrganization = "organization"
	AdmissionOwnAccount   = "own_account"
)

// eventForwarding serves GET /admin/tenant-kms/event-forwarding for the
// tenant's active key. Only aws-kms keys have events to forward: a tenant
// on gcp-kms or azure-kv, or on the platform key, gets 409
// not_forwardable saying why (the poll covers those).
func (d *Deps) eventForwarding(ctx context.Context, r *Request) (Response, error) {
	t, _, err := d.Tenants.Tenant(ctx, r.Admin.TenantID)
	if err != nil {
		return Response{}, err
	}
	if !t.BYOK {
		return Response{}, keyseal.Errorf(keyseal.ENOTFORWARDABLE,
			"the tenant has no customer key (its TMK is under keyseal's platform key): register an aws-kms key first")
	}
	keyARN, ok := d.forwardedKeyARN(t.Key)
	if !ok {
		return Response{}, keyseal.Errorf(keyseal.ENOTFORWARDABLE,
			"the tenant's key is %s: only AWS KMS keys have events to forward; the poll (every 30 s) verifies this key", t.Key.Provider).
			With("provider", t.Key.Provider)
	}
	if d.EventBusARN == "" {
		// The admin Lambda refuses to start without it (config.RequireEventForwarding).
		return Response{}, keyseal.Errorf(keyseal.EINTERNAL, "KEYSEAL_EVENT_BUS_ARN unset")
	}
	out := EventForwarding{Provider: t.Key.Provider, Forwarding: keyevents.ForwardingFor(keyARN, d.EventBusARN)}
	yes := true
	switch {
	case out.Account == arnAccount(d.EventBusARN):
		// The bus's own account needs no statement.
		out.Admission = Admission{Mode: AdmissionOwnAccount, Admitted: &yes}
	case d.EventOrgID != "":
		out.Admission = Admission{Mode: AdmissionOrganization, OrganizationID: d.EventOrgID}
	default:
		out.Admission = Admission{Mode: AdmissionAccount, StatementID: policydoc.StatementID(out.Account)}
	}
	if d.BusPolicy != nil && out.Admission.Mode == AdmissionAccount {
		// Best effort: a failed read leaves the field out, never fails
		// the answer (the rule and role are what the customer needs).
		if policy, err := d.BusPolicy(ctx); err == nil {
			if admitted, err := policydoc.Admits(policy, out.Account); err == nil {
				out.Admission.Admitted = &admitted
			}
		}
	}
	return JSON(http.StatusOK, out), nil
}

// forwardedKeyARN is the key ARN the customer's KMS events name for key:
// an aws-kms key's id is its ARN; ForwardKeyARN maps others where a
// server has them (dev mode's local keys).
func (d *Deps) forwardedKeyARN(key keyseal.KeyRef) (string, bool) {
	if d.ForwardKeyARN != nil {
		if arn, ok := d.ForwardKeyARN(key); ok {
			return arn, true
		}
	}
	if key.Provider == keyseal.ProviderAWS && keyevents.IsKeyARN(key.KeyID) {
		return key.KeyID, true
	}
	return "", false
}

// arnAccount is the account field of an ARN, "" when malformed.
func arnAccount(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return ""
	}
	return parts[4]
}
