package api

import (
	"fmt"
	"net/http"
	"reflect"

	"github.com/go-jose/go-jose/v4"

	"github.com/keyseal/keyseal/shared/agents"
	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/azurekv/azcli"
	"github.com/keyseal/keyseal/shared/gcpkms/gcpcli"
	"github.com/keyseal/keyseal/shared/internal/openapigen"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/session"
	"github.com/keyseal/keyseal/shared/subscription"
	"github.com/keyseal/keyseal/shared/tenantkms"
	"github.com/keyseal/keyseal/shared/waiver"
)

// This file describes each row of Table for the OpenAPI document
// (openapi.json): its bodies, as the exported Go types the handlers decode
// and encode, its parameters and its error statuses. generateOpenAPI fails
// when a row has no description or a description no row.

// AuditEntryFields is keyseal.AuditEntry without its MarshalJSON: the
// schema of an entry that decodes (a corrupt one is CorruptAuditEntry).
type AuditEntryFields keyseal.AuditEntry

type schema = openapigen.Schema

func ref(name string) schema { return schema{"$ref": "#/components/schemas/" + name} }

// Error status sets: every route can answer 400 (a path or query string
// that is not UTF-8) and 500; admin routes 401 and 403; routes that read
// the store 503 store_unavailable.
var (
	errsStore = []int{400, 500, 503}
	errsAdmin = []int{400, 401, 403, 500, 503}
)

func plus(base []int, more ...int) []int { return append(append([]int(nil), base...), more...) }

// keyBodySchema is the registration (and migration) body: {"provider",
// ...that provider's fields}, all strings. TestKeyBodySchemaMatchesProviders
// holds each variant to the fields its provider's ParseKey takes, and each
// example to its pattern and to ParseKey. The examples of gcp-kms and
// azure-kv are the dev cloud stand-ins' demo keys (make run-clouds).
var keyBodySchema = schema{
	"description": "A customer key: `provider` and that provider's fields (every member a string). `local` exists only in dev mode.",
	"oneOf": []any{
		keyVariant(keyseal.ProviderAWS, "key_arn", map[string]keyField{
			"key_arn": {"The KMS key ARN, arn:aws:kms:REGION:ACCOUNT:key/KEY_ID (a UUID or mrk-...); an alias ARN is refused with invalid_key_arn.",
				`^arn:aws(-cn|-us-gov)?:kms:[a-z0-9-]+:[0-9]{12}:key/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$`,
				"arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"},
			"role_arn":    {"A customer role keyseal assumes to reach the key (needs external_id).", "", ""},
			"external_id": {"The sts:ExternalId the role's trust policy requires (needs role_arn).", "", ""},
		}),
		keyVariant(keyseal.ProviderGCP, "key_name", map[string]keyField{
			"key_name": {"The CryptoKey name, projects/P/locations/L/keyRings/R/cryptoKeys/K.",
				`^projects/[a-z][a-z0-9.:-]{4,61}[a-z0-9]/locations/[a-z0-9-]{1,63}/keyRings/[a-zA-Z0-9_-]{1,63}/cryptoKeys/[a-zA-Z0-9_-]{1,63}$`,
				"projects/keyseal-dev/locations/global/keyRings/keyseal-dev/cryptoKeys/demo"},
			"service_account": {"A customer service account keyseal impersonates.", "", ""},
		}),
		keyVariant(keyseal.ProviderAzure, "key_url", map[string]keyField{
			"key_url": {"The Key Vault (or Managed HSM) key URL, https://VAULT.vault.azure.net/keys/NAME[/VERSION].",
				`^https://[a-z0-9]([a-z0-9-]{1,22}[a-z0-9])?\.(vault|managedhsm)\.(azure\.net|azure\.cn|usgovcloudapi\.net)/keys/[0-9A-Za-z-]{1,127}(/[0-9a-fA-F]{32})?/?$`,
				"https://keyseal-dev.vault.azure.net/keys/demo"},
			"azure_tenant_id": {"The customer's Entra tenant id (a GUID).", "", ""},
		}),
		keyVariant(keyseal.ProviderLocal, "key_id", map[string]keyField{
			"key_id": {"A local key id (dev mode: POST /dev/kms/keys makes one).", `^[A-Za-z0-9-]{1,64}$`, "local-0123456789abcdef"},
		}),
	},
}

// keyField is one member of a key body: what it is, the form keyseal
// accepts (a pattern, or none) and an example of it.
type keyField struct{ desc, pattern, example string }

func keyVariant(provider, required string, fields map[string]keyField) schema {
	props := schema{"provider": schema{"const": provider}}
	for name, f := range fields {
		p := schema{"type": "string", "description": f.desc}
		if f.pattern != "" {
			p["pattern"] = f.pattern
		}
		if f.example != "" {
			p["examples"] = []any{f.example}
		}
		props[name] = p
	}
	return schema{"type": "object", "title": provider, "required": []any{"provider", required},
		"properties": props, "additionalProperties": false}
}

// emptyBody is a body that may be absent or {}.
var emptyBody = schema{"type": "object", "additionalProperties": false, "maxProperties": 0}

func str(desc string) openapigen.Param {
	return openapigen.Param{Description: desc, Schema: schema{"type": "string"}}
}

var (
	tenantParam  = openapigen.Param{Description: "A tenant id: 1-64 letters, digits, - or _, starting with a letter or digit.", Schema: schema{"type": "string", "pattern": "^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$"}}
	agentIDParam = openapigen.Param{Description: "The agent's id (agent_id).", Schema: schema{"type": "string", "minLength": 1}}
	hookIDParam  = openapigen.Param{Description: "The webhook's id: wh_ and 16 hex digits.", Schema: schema{"type": "string", "minLength": 1}}
	versionParam = openapigen.Param{Description: "A TMK version number, 3 or v3.", Schema: schema{"type": "string", "pattern": "^v?[1-9][0-9]{0,5}$"}}
)

// opDocs describes each row of Table, by routeKey.
var opDocs = map[string]openapigen.Op{
	routeKey(http.MethodPost, "/agent/v1/session"): {ID: "issueSession", Tag: "agent", Summary: "Issue a session bundle",
		Description:   "A session token (a JWT signed with an Ed25519 key derived from the tenant's TMK) for the calling agent. Sealed or revoked tenant: 503 tenant_sealed.",
		RequestSchema: emptyBody, RequestOptional: true, AgentErrors: true,
		Responses: []openapigen.Response{{Status: 201, Description: "The session bundle.", Body: session.Bundle{}}},
		Errors:    plus(errsStore, 401, 404)},
	routeKey(http.MethodGet, "/agent/v1/jwks/{tenant_id}"): {ID: "getJWKS", Tag: "agent", Summary: "Public keys that verify a tenant's session tokens",
		Description: "One Ed25519 key per non-revoked TMK version (kid names tenant and version).",
		PathParams:  map[string]openapigen.Param{"tenant_id": tenantParam}, AgentErrors: true,
		Responses: []openapigen.Response{{Status: 200, Description: "The JWK set.", Body: jose.JSONWebKeySet{},
			Headers: map[string]string{"Cache-Control": "public, max-age=30"}}},
		Errors: plus(errsStore, 404)},
	routeKey(http.MethodGet, "/health"): {ID: "getHealth", Tag: "service", Summary: "Service liveness and its store",
		Responses: []openapigen.Response{
			{Status: 200, Description: "Live, and the store answers.", Body: HealthResponse{}},
			{Status: 503, Description: "Degraded: the store does not answer.", Body: HealthResponse{}}},
		Errors: []int{400, 500}},
	routeKey(http.MethodGet, "/console"): {ID: "getConsole", Tag: "console", Summary: "The admin console's page",
		Description: "Static, no auth: the page calls the admin routes with the token the admin gives it. Every answer carries a strict Content-Security-Policy.",
		Responses:   []openapigen.Response{{Status: 200, Description: "The page.", ContentType: "text/html"}},
		Errors:      []int{500}},
	routeKey(http.MethodGet, "/console/{asset}"): {ID: "getConsoleAsset", Tag: "console", Summary: "The console's script or style sheet",
		PathParams: map[string]openapigen.Param{"asset": {Description: "console.js or console.css.", Schema: schema{"type": "string"}}},
		Responses:  []openapigen.Response{{Status: 200, Description: "The asset (JavaScript or CSS).", ContentType: "text/*"}},
		Errors:     []int{404, 500}},
	routeKey(http.MethodGet, "/openapi.json"): {ID: "getOpenAPI", Tag: "service", Summary: "This document",
		Responses: []openapigen.Response{{Status: 200, Description: "The OpenAPI 3.1 document of every route.",
			Schema: schema{"type": "object", "required": []any{"openapi", "info", "paths"}}}},
		Errors: []int{400, 500}},

	routeKey(http.MethodGet, "/admin/tenant-kms"): {ID: "getTenantKMS", Tag: "tenant-kms", Summary: "The tenant's KMS configuration and seal state",
		Responses: []openapigen.Response{{Status: 200, Description: "The config row.", Body: TenantView{}}},
		Errors:    plus(errsAdmin, 404)},
	routeKey(http.MethodPut, "/admin/tenant-kms"): {ID: "registerKey", Tag: "tenant-kms", Summary: "Register (activate) BYOK with a customer key",
		Description:   "Checks, in order: the key's form (400 invalid_key_arn, invalid_key_name, invalid_key_url), the legal waiver (409), an existing key (409 byok_key_exists), a live wrap and unwrap (422 cannot_access_cmk with reason and the grant to make). Every live TMK version is then re-wrapped under the key in one transaction.",
		RequestSchema: keyBodySchema,
		Responses:     []openapigen.Response{{Status: 200, Description: "The config row, now on the customer key.", Body: TenantView{}}},
		Errors:        plus(errsAdmin, 404, 409, 422)},
	routeKey(http.MethodDelete, "/admin/tenant-kms"): {ID: "deregisterKey", Tag: "tenant-kms", Summary: "Leave BYOK: re-wrap the TMK under the platform key",
		Description: "Needs the customer key to still unwrap (sealed: 503 tenant_sealed, nothing changed). Not on BYOK: 404.",
		Responses:   []openapigen.Response{{Status: 200, Description: "The config row, back on the platform key.", Body: TenantView{}}},
		Errors:      plus(errsAdmin, 404, 409)},
	routeKey(http.MethodGet, "/admin/tenant-kms/health"): {ID: "getKMSHealth", Tag: "tenant-kms", Summary: "Live BYOK probe: wrap and unwrap now",
		Description: "200 whatever the verdict: status healthy, degraded or unhealthy, the latency and its class, and on failure a diagnosis and the commands that fix it. At most one live probe per tenant per second (cached: true).",
		Responses:   []openapigen.Response{{Status: 200, Description: "The probe's result.", Body: tenantkms.Health{}}},
		Errors:      plus(errsAdmin, 404)},
	routeKey(http.MethodPost, "/admin/tenant-kms/unseal"): {ID: "unseal", Tag: "tenant-kms", Summary: "Force an unseal attempt now (seed 000)",
		Description:   "Not sealed: 409 not_sealed. Sealed and a live wrap and unwrap work: 200 and a critical byok.kms.unseal entry. Still failing: 502 unseal_failed with reason access_denied or unreachable. Active version revoked: 409 tenant_revoked.",
		RequestSchema: emptyBody, RequestOptional: true,
		Responses: []openapigen.Response{{Status: 200, Description: "Unsealed.", Body: UnsealResponse{}}},
		Errors:    plus(errsAdmin, 404, 409, 502)},
	routeKey(http.MethodPost, "/admin/tenant-kms/rotate"): {ID: "rotate", Tag: "tenant-kms", Summary: "Rotate the TMK (tmk, dek) or re-wrap it (rewrap)",
		Request: RotateRequest{},
		Responses: []openapigen.Response{{Status: 200, Description: "Rotated.", Body: RotateResponse{},
			Links: map[string]openapigen.Link{"revoke": {OperationID: "revokeVersion", Parameters: map[string]string{"v": "$response.body#/active_version"}}}}},
		Errors: plus(errsAdmin, 404, 409)},
	routeKey(http.MethodPost, "/admin/tenant-kms/versions/{v}/revoke"): {ID: "revokeVersion", Tag: "tenant-kms", Summary: "Crypto-erase one TMK version",
		Description: "Deletes the version's wrapped blob (irreversible). Wrong confirm: 400; unknown version: 404; already revoked: 409 already_revoked. Revoking the active version revokes the tenant until a tmk rotation.",
		PathParams:  map[string]openapigen.Param{"v": versionParam},
		Request:     RevokeRequest{},
		Responses:   []openapigen.Response{{Status: 200, Description: "Revoked.", Body: RevokeResponse{}}},
		Errors:      plus(errsAdmin, 404, 409)},
	routeKey(http.MethodPost, "/admin/tenant-kms/migrate"): {ID: "migrateKey", Tag: "tenant-kms", Summary: "Move to a new customer key in one transaction",
		Description:   "The new key is live-tested (422 cannot_access_cmk with key: new), every live version unwrapped with the old key (503 tenant_sealed) and re-wrapped under the new one; nothing changes when either fails. The waiver gates it like registration.",
		RequestSchema: keyBodySchema,
		Responses:     []openapigen.Response{{Status: 200, Description: "The config row, on the new key.", Body: TenantView{}}},
		Errors:        plus(errsAdmin, 404, 409, 422)},
	routeKey(http.MethodGet, "/admin/tenant-kms/event-forwarding"): {ID: "getEventForwarding", Tag: "tenant-kms", Summary: "The rule and role that forward the customer's KMS events to keyseal",
		Description: "For the tenant's active aws-kms key: keyseal's bus, the customer-side EventBridge rule (the KMS CloudTrail calls and native events of that key), the IAM role it assumes, and both as a CloudFormation template with its deploy command. Other providers and platform keys: 409 not_forwardable (the poll covers them).",
		Responses:   []openapigen.Response{{Status: 200, Description: "What the customer deploys in the key's account and region.", Body: EventForwarding{}}},
		Errors:      plus(errsAdmin, 404, 409)},
	routeKey(http.MethodGet, "/admin/tenant-kms/key-policy"): {ID: "getKeyPolicy", Tag: "tenant-kms", Summary: "What the customer grants keyseal on a key",
		Description: "AWS (and local): the key policy statements; GCP: the IAM bindings; Azure: the role assignment; each with the commands for the key named by the query (else the registered key, else placeholders).",
		Query: []openapigen.Param{
			{Name: "provider", Description: "The provider (default: the registered key's, else aws-kms).", Schema: schema{"type": "string", "enum": []any{keyseal.ProviderAWS, keyseal.ProviderGCP, keyseal.ProviderAzure, keyseal.ProviderLocal}}},
			withName("key_arn", str("aws-kms: the key ARN.")), withName("role_arn", str("aws-kms: the role keyseal assumes.")),
			withName("external_id", str("aws-kms: the role's ExternalId.")), withName("key_name", str("gcp-kms: the CryptoKey name.")),
			withName("service_account", str("gcp-kms: the service account keyseal impersonates.")), withName("key_url", str("azure-kv: the key URL.")),
			withName("azure_tenant_id", str("azure-kv: the customer's Entra tenant id.")), withName("key_id", str("local: the key id.")),
		},
		Responses: []openapigen.Response{{Status: 200, Description: "The grant, by provider.", OneOf: []any{AWSKeyPolicy{}, gcpcli.Grant{}, azcli.Grant{}}}},
		Errors:    plus(errsAdmin, 422)},
	routeKey(http.MethodGet, "/admin/tenant-kms/legal-waiver"): {ID: "getWaiver", Tag: "waiver", Summary: "The current legal waiver",
		Responses: []openapigen.Response{{Status: 200, Description: "Its version, text and SHA-256.", Body: waiver.Waiver{}}},
		Errors:    errsAdmin},
	routeKey(http.MethodPost, "/admin/tenant-kms/legal-waiver"): {ID: "acknowledgeWaiver", Tag: "waiver", Summary: "Acknowledge the current waiver",
		Request:   WaiverAckRequest{},
		Responses: []openapigen.Response{{Status: 200, Description: "The tenant's standing.", Body: waiver.Status{}}},
		Errors:    errsAdmin},
	routeKey(http.MethodGet, "/admin/tenant-kms/legal-waiver/status"): {ID: "getWaiverStatus", Tag: "waiver", Summary: "The tenant's waiver standing",
		Responses: []openapigen.Response{{Status: 200, Description: "Acknowledged or not, by whom, when.", Body: waiver.Status{}}},
		Errors:    errsAdmin},
	routeKey(http.MethodPost, "/admin/auth/step-up"): {ID: "issueStepUp", Tag: "auth", Summary: "Issue a step-up token",
		Description:   "Only for an admin JWT with a recent strong sign-in (auth_time within KEYSEAL_STEPUP_MAX_AGE, acr or amr mfa); otherwise 401 insufficient_user_authentication with an RFC 9470 WWW-Authenticate challenge.",
		RequestSchema: emptyBody, RequestOptional: true,
		Responses: []openapigen.Response{{Status: 200, Description: "A token for X-Keyseal-StepUp: 120 s, single use.", Body: StepUpResponse{}}},
		Errors:    errsAdmin},
	routeKey(http.MethodPost, "/admin/agents"): {ID: "createAgent", Tag: "agents", Summary: "Create an agent key",
		Description: "The key is in the answer only this once. Creating the first agent provisions the tenant.",
		Request:     CreateAgentRequest{},
		Responses: []openapigen.Response{{Status: 201, Description: "The agent and its key.", Body: agents.Created{},
			Links: map[string]openapigen.Link{"revoke": {OperationID: "revokeAgent", Parameters: map[string]string{"id": "$response.body#/agent_id"}}}}},
		Errors: plus(errsAdmin, 409)},
	routeKey(http.MethodGet, "/admin/agents"): {ID: "listAgents", Tag: "agents", Summary: "The tenant's agents",
		Responses: []openapigen.Response{{Status: 200, Description: "Every agent, revoked ones included.", Body: AgentList{}}},
		Errors:    errsAdmin},
	routeKey(http.MethodDelete, "/admin/agents/{id}"): {ID: "revokeAgent", Tag: "agents", Summary: "Revoke an agent key",
		PathParams: map[string]openapigen.Param{"id": agentIDParam},
		Responses:  []openapigen.Response{{Status: 200, Description: "Revoked (sessions already issued run to exp).", Body: AgentRevoked{}}},
		Errors:     plus(errsAdmin, 404, 409)},
	routeKey(http.MethodGet, "/admin/audit"): {ID: "listAudit", Tag: "audit", Summary: "Audit chain entries, newest first",
		Query: []openapigen.Param{
			{Name: "limit", Description: "1-500 (default 50).", Schema: schema{"type": "integer", "minimum": 1, "maximum": audit.MaxPage}},
			{Name: "action", Description: "Only entries of this action (e.g. byok.kms.unseal).", Schema: schema{"type": "string"}},
			{Name: "cursor", Description: "The next_cursor of the previous page.", Schema: schema{"type": "integer", "minimum": 1}},
		},
		Responses: []openapigen.Response{{Status: 200, Description: "A page of entries.", Body: audit.Page{}}},
		Errors:    errsAdmin},
	routeKey(http.MethodGet, "/admin/audit/verify"): {ID: "verifyAudit", Tag: "audit", Summary: "Recompute the chain and check the head's signature",
		Responses: []openapigen.Response{{Status: 200, Description: "Valid, or the first bad seq and why.", Body: audit.Result{}}},
		Errors:    errsAdmin},
	routeKey(http.MethodPost, "/admin/audit/verify"): {ID: "verifyCheckpoint", Tag: "audit", Summary: "Does the chain extend a checkpoint saved earlier?",
		Request:   CheckpointVerifyRequest{},
		Responses: []openapigen.Response{{Status: 200, Description: "valid, and reason (truncated, rewritten, bad_signature, unknown_origin, ...) when not.", Body: audit.Result{}}},
		Errors:    errsAdmin},
	routeKey(http.MethodGet, "/admin/audit/checkpoint"): {ID: "getCheckpoint", Tag: "audit", Summary: "The latest signed checkpoint (C2SP signed note)",
		Responses: []openapigen.Response{{Status: 200, Description: "The signed note and what it commits to.", Body: audit.Signed{}}},
		Errors:    plus(errsAdmin, 404)},
	routeKey(http.MethodGet, "/admin/audit/checkpoint-key"): {ID: "getCheckpointKey", Tag: "audit", Summary: "The key that verifies checkpoints",
		Responses: []openapigen.Response{{Status: 200, Description: "The note verifier key.", Body: audit.KeyInfo{}}},
		Errors:    errsAdmin},
	routeKey(http.MethodPost, "/admin/webhooks"): {ID: "createWebhook", Tag: "webhooks", Summary: "Subscribe an https endpoint to events",
		Description: "The signing secret (Standard Webhooks) is in the answer only this once.",
		Request:     CreateWebhookRequest{},
		Responses: []openapigen.Response{{Status: 201, Description: "The subscription and its secret.", Body: subscription.Created{},
			Links: webhookLinks}},
		Errors: plus(errsAdmin, 409)},
	routeKey(http.MethodGet, "/admin/webhooks"): {ID: "listWebhooks", Tag: "webhooks", Summary: "The tenant's webhook subscriptions",
		Responses: []openapigen.Response{{Status: 200, Description: "Every subscription (never a secret).", Body: WebhookList{}}},
		Errors:    errsAdmin},
	routeKey(http.MethodDelete, "/admin/webhooks/{id}"): {ID: "deleteWebhook", Tag: "webhooks", Summary: "Delete a subscription",
		PathParams: map[string]openapigen.Param{"id": hookIDParam},
		Responses:  []openapigen.Response{{Status: 204, Description: "Deleted."}},
		Errors:     plus(errsAdmin, 404)},
	routeKey(http.MethodPost, "/admin/webhooks/{id}/rotate-secret"): {ID: "rotateWebhookSecret", Tag: "webhooks", Summary: "A new signing secret (the old one signs for 24 h more)",
		PathParams: map[string]openapigen.Param{"id": hookIDParam}, RequestSchema: emptyBody, RequestOptional: true,
		Responses: []openapigen.Response{{Status: 200, Description: "The new secret, shown once.", Body: subscription.Rotated{}}},
		Errors:    plus(errsAdmin, 404)},
	routeKey(http.MethodPost, "/admin/webhooks/{id}/test"): {ID: "testWebhook", Tag: "webhooks", Summary: "Queue a webhook.test event for one subscription",
		PathParams: map[string]openapigen.Param{"id": hookIDParam}, RequestSchema: emptyBody, RequestOptional: true,
		Responses: []openapigen.Response{{Status: 202, Description: "Queued.", Body: WebhookTestQueued{}}},
		Errors:    plus(errsAdmin, 404, 409)},
	routeKey(http.MethodGet, "/admin/webhooks/{id}/deliveries"): {ID: "listDeliveries", Tag: "webhooks", Summary: "Recent delivery attempts, newest first",
		PathParams: map[string]openapigen.Param{"id": hookIDParam},
		Query:      []openapigen.Param{{Name: "limit", Description: "1-100 (default 20).", Schema: schema{"type": "integer", "minimum": 1, "maximum": subscription.MaxDeliveries}}},
		Responses:  []openapigen.Response{{Status: 200, Description: "The attempts.", Body: DeliveryList{}}},
		Errors:     plus(errsAdmin, 404)},
}

func withName(name string, p openapigen.Param) openapigen.Param { p.Name = name; return p }

// webhookLinks: what a new subscription's id feeds.
var webhookLinks = func() map[string]openapigen.Link {
	id := map[string]string{"id": "$response.body#/id"}
	return map[string]openapigen.Link{
		"delete": {OperationID: "deleteWebhook", Parameters: id}, "rotateSecret": {OperationID: "rotateWebhookSecret", Parameters: id},
		"test": {OperationID: "testWebhook", Parameters: id}, "deliveries": {OperationID: "listDeliveries", Parameters: id},
	}
}()

// errorDescriptions say when each code is answered (docs/contract.md §3).
var errorDescriptions = map[string]string{
	keyseal.EINVALID:        "malformed JSON, an unknown or duplicate member, invalid UTF-8, a body over 64 KiB, or a value out of range (the message names the member, never its value)",
	keyseal.EKEYARN:         "key_arn is not a KMS key ARN (or is an alias ARN); expected_format says the form",
	keyseal.EKEYURL:         "key_url is not a Key Vault key URL; expected_format says the form",
	keyseal.EKEYNAME:        "key_name is not a Cloud KMS CryptoKey name; expected_format says the form",
	keyseal.EUNAUTHORIZED:   "missing or invalid credentials (agent key or admin JWT)",
	keyseal.ESTEPUP:         "the step-up token (X-Keyseal-StepUp) is missing, unknown, expired, spent or another admin's",
	keyseal.EINSUFFICIENT:   "step-up needs a recent multi-factor sign-in (see WWW-Authenticate)",
	keyseal.EFORBIDDEN:      "the admin JWT lacks the keyseal:admin role",
	keyseal.ENOTFOUND:       "no such route, resource or version",
	keyseal.ETENANT:         "the tenant has no TMK yet",
	keyseal.EMETHOD:         "the path does not take this method (see Allow)",
	keyseal.ECONFLICT:       "a concurrent change, or the resource is already in that state",
	keyseal.ENOTSEALED:      "unseal on a tenant that is not sealed",
	keyseal.EKEYEXISTS:      "a customer key is already registered (key_id); migrate, or deregister first",
	keyseal.EREVOKED:        "the tenant's active TMK version is revoked",
	keyseal.EREVOKEDVERSION: "the version is already revoked",
	keyseal.EWAIVER:         "the legal waiver is not acknowledged (waiver_version)",
	keyseal.EWAIVERREACK:    "an older waiver version is acknowledged; acknowledge the current one (waiver_version)",
	keyseal.ECMKACCESS:      "a live wrap and unwrap with the key failed (reason; required_key_policy or required_grant)",
	keyseal.EPROVIDER:       "the provider is not configured on this server (supported_providers)",
	keyseal.EINTERNAL:       "internal error (the message says nothing more)",
	keyseal.EUNSEALFAILED:   "the unseal's live check still fails (reason access_denied or unreachable)",
	keyseal.ESEALED:         "the tenant is sealed (or revoked): no session, no key change",
	keyseal.EKMSUNAVAILABLE: "the KMS did not answer in time",
	keyseal.EUNAVAILABLE:    "the store throttles or fails (Retry-After)",
}

// openAPIDoc is the document's input: every row of Table with its
// description. It fails on a row without one, or one without a row.
func openAPIDoc() (openapigen.Doc, error) {
	d := openapigen.Doc{
		Title:   "keyseal",
		Version: "1",
		Description: "keyseal's API: agents' session bundles, and the admin API of a tenant's customer-managed key (BYOK), " +
			"its seal state, rotation, audit chain and webhooks. Generated from the route table (shared/api/routes.go) and the " +
			"exported Go types; served at GET /openapi.json. Agent errors are {\"error\": {\"type\", \"message\"}}, admin errors " +
			"{\"error\", \"message\", ...}. The seed 004 paths under /api/v1/byok/ are aliases.",
		StepUpHeader:      auth.StepUpHeader,
		ErrorStatus:       statusByCode,
		ErrorDescriptions: errorDescriptions,
		Schemas: map[reflect.Type]openapigen.Schema{
			reflect.TypeFor[keyseal.AuditEntry](): {"oneOf": []any{ref("AuditEntryFields"), ref("CorruptAuditEntry")}},
			reflect.TypeFor[jose.JSONWebKeySet](): ref("JWKSet"),
		},
		Names: map[reflect.Type]string{
			reflect.TypeFor[gcpcli.Grant]():           "GCPGrant",
			reflect.TypeFor[azcli.Grant]():            "AzureGrant",
			reflect.TypeFor[agents.Created]():         "AgentCreated",
			reflect.TypeFor[subscription.Created]():   "WebhookCreated",
			reflect.TypeFor[subscription.Rotated]():   "WebhookSecretRotated",
			reflect.TypeFor[waiver.Status]():          "WaiverStatus",
			reflect.TypeFor[audit.Page]():             "AuditPage",
			reflect.TypeFor[audit.Result]():           "AuditVerifyResult",
			reflect.TypeFor[audit.Signed]():           "AuditCheckpoint",
			reflect.TypeFor[audit.KeyInfo]():          "AuditCheckpointKey",
			reflect.TypeFor[tenantkms.Health]():       "KMSHealth",
			reflect.TypeFor[tenantkms.HealthChecks](): "KMSHealthChecks",
			reflect.TypeFor[session.Bundle]():         "SessionBundle",
		},
		Components: map[string]openapigen.Schema{
			"CorruptAuditEntry": {"type": "object", "description": "A stored entry that cannot be decoded: only its seq is known.",
				"required": []any{"seq", "corrupt"}, "additionalProperties": false,
				"properties": schema{"seq": schema{"type": "integer"}, "corrupt": schema{"const": true}}},
			"JWKSet": {"type": "object", "required": []any{"keys"}, "additionalProperties": false,
				"properties": schema{"keys": schema{"type": "array", "items": schema{
					"type": "object", "required": []any{"kty", "crv", "x", "kid", "alg", "use"}, "additionalProperties": false,
					"properties": schema{"kty": schema{"const": "OKP"}, "crv": schema{"const": "Ed25519"}, "x": schema{"type": "string"},
						"kid": schema{"type": "string"}, "alg": schema{"const": "EdDSA"}, "use": schema{"const": "sig"}}}}}},
		},
		Reflect: []any{AuditEntryFields{}},
		Patches: map[string]func(openapigen.Schema){
			"WaiverAckRequest": func(s openapigen.Schema) {
				s["properties"].(schema)["acknowledged"] = schema{"const": true}
			},
			"CreateWebhookRequest": func(s openapigen.Schema) {
				types := []any{}
				for _, e := range keyseal.EventTypes {
					types = append(types, e)
				}
				s["properties"].(schema)["events"].(schema)["items"] = schema{"enum": types}
			},
		},
		Tags: []openapigen.Tag{
			{Name: "agent", Description: "The agent API (agent key)."},
			{Name: "service", Description: "Liveness and this document (no auth)."},
			{Name: "tenant-kms", Description: "The tenant's customer key, seal state, rotation and revocation."},
			{Name: "waiver", Description: "The legal waiver BYOK registration needs."},
			{Name: "auth", Description: "Step-up tokens for privileged calls."},
			{Name: "agents", Description: "Agent keys."},
			{Name: "audit", Description: "The audit hash chain and its signed checkpoints."},
			{Name: "webhooks", Description: "Webhook subscriptions (Standard Webhooks signing)."},
		},
	}
	seen := map[string]bool{}
	for _, r := range Table {
		k := routeKey(r.Method, r.Path)
		op, ok := opDocs[k]
		if !ok {
			return d, fmt.Errorf("route %s has no description in opDocs (openapi_doc_test.go)", k)
		}
		seen[k] = true
		op.Method, op.Path, op.Auth, op.StepUp = r.Method, r.Path, string(r.Auth), r.StepUp
		for _, a := range r.Aliases {
			op.Aliases = append(op.Aliases, [2]string{a.Method, a.Path})
		}
		d.Ops = append(d.Ops, op)
	}
	for k := range opDocs {
		if !seen[k] {
			return d, fmt.Errorf("opDocs describes %s, which is not in Table", k)
		}
	}
	return d, nil
}
