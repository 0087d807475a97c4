package api

import (
	"context"
	"errors"
	"net/http"

	"github.com/keyseal/keyseal/shared/awskms"
	"github.com/keyseal/keyseal/shared/azurekv/azcli"
	"github.com/keyseal/keyseal/shared/gcpkms/gcpcli"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// WaiverView is a tenant's waiver standing on its config row.
type WaiverView struct {
	Acknowledged             bool `json:"acknowledged"`
	RequiresReacknowledgment bool `json:"requires_reacknowledgment"`
}

// WaiverAckRequest is the body of POST /admin/tenant-kms/legal-waiver.
type WaiverAckRequest struct {
	Acknowledged   bool   `json:"acknowledged"`
	AcknowledgedBy string `json:"acknowledged_by" jsonschema:"format=email"`
}

// getWaiver serves GET /admin/tenant-kms/legal-waiver: the current text.
func (d *Deps) getWaiver(_ context.Context, _ *Request) (Response, error) {
	return JSON(http.StatusOK, d.Waiver.Current()), nil
}

// ackWaiver serves POST /admin/tenant-kms/legal-waiver:
// {"acknowledged": true, "acknowledged_by": "<email>"}. Admin only (seed
// 004's curl carries no step-up); the entry names the admin's subject.
func (d *Deps) ackWaiver(ctx context.Context, r *Request) (Response, error) {
	var in WaiverAckRequest
	if err := Decode(r, &in, false); err != nil {
		return Response{}, err
	}
	if !in.Acknowledged {
		return Response{}, keyseal.Errorf(keyseal.EINVALID, `acknowledged must be true: read GET /admin/tenant-kms/legal-waiver and send {"acknowledged": true, "acknowledged_by": "<email>"}`)
	}
	st, err := d.Waiver.Acknowledge(ctx, r.Admin.TenantID, in.AcknowledgedBy, r.Admin.Actor())
	if err != nil {
		return Response{}, err
	}
	return JSON(http.StatusOK, st), nil
}

// waiverStatus serves GET /admin/tenant-kms/legal-waiver/status.
func (d *Deps) waiverStatus(ctx context.Context, r *Request) (Response, error) {
	st, err := d.Waiver.Status(ctx, r.Admin.TenantID)
	if err != nil {
		return Response{}, err
	}
	return JSON(http.StatusOK, st), nil
}

// keyPolicyProvider is the query parameter of GET
// /admin/tenant-kms/key-policy naming the provider; the others name a key
// of it.
const keyPolicyProvider = "provider"

// AWSKeyPolicy is the aws-kms (and dev-mode local) answer of GET
// /admin/tenant-kms/key-policy: the key policy statements, as before, with
// the provider, and the CLI steps to apply them when a key was named.
type AWSKeyPolicy struct {
	Provider string `json:"provider"`
	awskms.KeyPolicy
	Commands []string `json:"commands,omitempty"`
}

// keyPolicy serves GET /admin/tenant-kms/key-policy: what the customer
// grants keyseal on a key of ?provider= (default: the provider of the
// tenant's registered customer key, else aws-kms). The other query
// parameters name a key of that provider, validated by its ParseKey
// (key_arn and role_arn for aws-kms, key_name and service_account for
// gcp-kms, key_url for azure-kv) to fill the commands in; without them the
// registered key of that provider is used, else placeholders. An unknown
// provider, a malformed key or another provider's field is 400; a known
// provider this server lacks is 422 provider_not_configured.
func (d *Deps) keyPolicy(ctx context.Context, r *Request) (Response, error) {
	provider := r.QueryStringParameters[keyPolicyProvider]
	fields := map[string]string{}
	for name, v := range r.QueryStringParameters {
		if name != keyPolicyProvider {
			fields[name] = v
		}
	}
	registered, err := d.registeredKey(ctx, r.Admin.TenantID)
	if err != nil {
		return Response{}, err
	}
	explicit := provider != ""
	if !explicit {
		provider = registered.Provider
		if provider == "" {
			provider = keyseal.ProviderAWS
		}
	}
	var key keyseal.KeyRef
	if len(fields) == 0 && registered.Provider == provider {
		key = registered
	}
	// Without either, this is the answer it always was (the AWS
	// statements, on any server); asked for a provider or a key, the
	// server must have that provider.
	if explicit || len(fields) > 0 {
		p, err := d.Keys.Lookup(provider)
		if err != nil {
			return Response{}, err
		}
		if len(fields) > 0 {
			if key, err = p.ParseKey(fields); err != nil {
				return Response{}, err
			}
		}
	}
	return JSON(http.StatusOK, d.grant(r.Admin.TenantID, provider, key)), nil
}

// registeredKey is the tenant's registered customer key; zero for a
// tenant without one (or no tenant yet).
func (d *Deps) registeredKey(ctx context.Context, tenantID string) (keyseal.KeyRef, error) {
	if d.Tenants == nil {
		return keyseal.KeyRef{}, nil
	}
	t, _, err := d.Tenants.Tenant(ctx, tenantID)
	switch {
	case keyseal.ErrorCode(err) == keyseal.ETENANT:
		return keyseal.KeyRef{}, nil
	case err != nil:
		return keyseal.KeyRef{}, err
	case !t.BYOK:
		return keyseal.KeyRef{}, nil
	}
	return t.Key, nil
}

// grant is what the customer grants keyseal for provider, filled in with
// key when it is set: the key policy statements (aws-kms, local), the IAM
// bindings (gcp-kms), the role assignment (azure-kv).
func (d *Deps) grant(tenantID, provider string, key keyseal.KeyRef) any {
	switch provider {
	case keyseal.ProviderGCP:
		return gcpcli.GrantFor(d.GCPServiceAccount, key)
	case keyseal.ProviderAzure:
		return azcli.GrantFor(d.AzureClientID, d.AzureTenantID, key)
	}
	out := AWSKeyPolicy{Provider: provider, KeyPolicy: awskms.PolicyFor(d.awsPrincipal(key), tenantID)}
	if provider == keyseal.ProviderAWS && key.KeyID != "" {
		for _, step := range awskms.Remedies(key, keyseal.ReasonAccessDenied) {
			out.Commands = append(out.Commands, step.Command)
		}
	}
	return out
}

// awsPrincipal is the principal that calls KMS for key: the customer's
// role when keyseal assumes one, else keyseal's own.
func (d *Deps) awsPrincipal(key keyseal.KeyRef) string {
	if role := key.Access[awskms.AccessRoleARN]; role != "" {
		return role
	}
	return d.ServicePrincipal
}

// withKeyPolicy adds the grant to a cannot_access_cmk answer: for an AWS
// (or dev-mode local) key the key policy statements as
// required_key_policy, for the principal that calls KMS; for a GCP or
// Azure key the bindings or role assignment as required_grant (the answer
// of GET /admin/tenant-kms/key-policy for that key).
func (d *Deps) withKeyPolicy(err error, tenantID string, key keyseal.KeyRef) error {
	e, ok := errors.AsType[*keyseal.Error](err)
	if !ok || e.Code != keyseal.ECMKACCESS {
		return err
	}
	var out *keyseal.Error
	hint := ""
	switch key.Provider {
	case keyseal.ProviderAWS, keyseal.ProviderLocal:
		out = e.With("required_key_policy", awskms.PolicyFor(d.awsPrincipal(key), tenantID))
		hint = "; the statements to add to the key policy are in required_key_policy (also GET /admin/tenant-kms/key-policy)"
	case keyseal.ProviderGCP, keyseal.ProviderAzure:
		out = e.With("required_grant", d.grant(tenantID, key.Provider, key))
		hint = "; the grant to make is in required_grant (also GET /admin/tenant-kms/key-policy?provider=" + key.Provider + ")"
	default:
		return err
	}
	if e.Extra["reason"] == keyseal.ReasonAccessDenied {
		out.Message += hint
	}
	return out
}
