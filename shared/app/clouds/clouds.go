// Package clouds builds the gcp-kms and azure-kv providers of the
// Lambdas that serve them (app.Needs.Clouds = FromConfig). It is apart
// from package app so that a Lambda that never needs them (key-events:
// the events it gets name AWS key ARNs) links neither the Google nor the
// Azure SDK: about 16 MB of binary and 3 ms of package init (gRPC,
// protobuf registries, the Google auth and transport packages).
package clouds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	kms "cloud.google.com/go/kms/apiv1"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"google.golang.org/api/option"

	"github.com/keyseal/keyseal/shared/app"
	"github.com/keyseal/keyseal/shared/azurekv"
	"github.com/keyseal/keyseal/shared/config"
	"github.com/keyseal/keyseal/shared/gcpkms"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// Option adjusts how Providers reaches Google and Azure; tests
// and the local server point it at stand-ins. Production passes none.
type Option func(*cloudOptions)

type cloudOptions struct {
	gcp      []option.ClientOption
	identity *azidentity.ClientSecretCredentialOptions
	keys     *azkeys.ClientOptions
}

// WithGCPOptions adds options to every Cloud KMS client (endpoint,
// transport); keyseal's credentials are still the configured ones.
func WithGCPOptions(opts ...option.ClientOption) Option {
	return func(o *cloudOptions) { o.gcp = append(o.gcp, opts...) }
}

// WithAzureOptions replaces the Entra credential options (authority,
// transport) and the azkeys pipeline options (azurekv.ClientOptions when
// nil).
func WithAzureOptions(identity *azidentity.ClientSecretCredentialOptions, keys *azkeys.ClientOptions) Option {
	return func(o *cloudOptions) { o.identity, o.keys = identity, keys }
}

// gcpCredentialTypes maps the credentials JSON's type to the typed option
// that loads only that type (config.Load accepted no other).
var gcpCredentialTypes = map[string]option.CredentialsType{
	"external_account":             option.ExternalAccount,
	"service_account":              option.ServiceAccount,
	"impersonated_service_account": option.ImpersonatedServiceAccount,
	"authorized_user":              option.AuthorizedUser,
}

// FromConfig is Providers without options: what app.Needs.Clouds takes.
func FromConfig(ctx context.Context, cfg config.Config, aws *app.Clients) (keyseal.Providers, error) {
	return Providers(ctx, cfg, aws)
}

// Providers builds the gcp-kms and azure-kv providers cfg enables
// (none when neither is): keyseal's own identity in each cloud, read
// once at start, so a missing or malformed credential fails the process
// at init, naming the setting, never its value. aws supplies the AWS
// configuration of the Secrets Manager client that reads the Azure
// client secret (built here: no other Lambda code links that client).
func Providers(ctx context.Context, cfg config.Config, aws *app.Clients, opts ...Option) (keyseal.Providers, error) {
	var o cloudOptions
	for _, opt := range opts {
		opt(&o)
	}
	p := keyseal.Providers{}
	if cfg.GCP.Enabled() {
		g, err := newGCP(ctx, cfg.GCP, o.gcp)
		if err != nil {
			return nil, fmt.Errorf("configuration: KEYSEAL_GCP_CREDENTIALS: %w", err)
		}
		p[keyseal.ProviderGCP] = g
	}
	if cfg.Azure.Enabled() {
		a, err := newAzure(ctx, cfg.Azure, aws, o)
		if err != nil {
			return nil, fmt.Errorf("configuration: %w", err)
		}
		p[keyseal.ProviderAzure] = a
	}
	return p, nil
}

// newGCP is the real Cloud KMS client on keyseal's credentials JSON,
// loaded with the option restricted to the type the JSON declares, and
// impersonation (for keys naming a service_account) based on the same
// credentials. Each call sets its own no-retry option (gcpkms), so
// KEYSEAL_KMS_TIMEOUT bounds it.
func newGCP(ctx context.Context, g config.GCP, extra []option.ClientOption) (*gcpkms.Provider, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal([]byte(g.Credentials), &head); err != nil {
		return nil, errors.New("not a credentials JSON object")
	}
	typ, ok := gcpCredentialTypes[head.Type]
	if !ok {
		return nil, fmt.Errorf("credential type %q is not accepted", head.Type)
	}
	creds := option.WithAuthCredentialsJSON(typ, []byte(g.Credentials))
	kmsOpts := append([]option.ClientOption{creds}, extra...)
	client, err := kms.NewKeyManagementClient(ctx, kmsOpts...)
	if err != nil {
		// The auth library's parse errors name fields, not their values.
		return nil, fmt.Errorf("building the Cloud KMS client from the %s credentials: %w", head.Type, err)
	}
	return gcpkms.New(client, gcpkms.WithServiceAccounts(gcpkms.ServiceAccountClients(ctx, []option.ClientOption{creds}, extra)),
		gcpkms.WithIdentity(g.ServiceAccount)), nil
}

// newAzure is the real azkeys client with keyseal's app registration: a
// client-secret credential per Entra tenant (the key's azure_tenant_id,
// else cfg.TenantID), the secret read now from Secrets Manager (or the
// local KEYSEAL_AZURE_CLIENT_SECRET) and again when Entra refuses it.
func newAzure(ctx context.Context, a config.Azure, clients *app.Clients, o cloudOptions) (*azurekv.Provider, error) {
	cc := azurekv.CredentialsConfig{ClientID: a.ClientID, HomeTenant: a.TenantID, Options: o.identity}
	if a.ClientSecretARN != "" {
		if clients == nil {
			return nil, fmt.Errorf("KEYSEAL_AZURE_CLIENT_SECRET_ARN=%s: no AWS configuration to read it with", a.ClientSecretARN)
		}
		sm := secretsmanager.NewFromConfig(clients.Config)
		cc.Secret, cc.Where, cc.Reread = secretReader(sm, a.ClientSecretARN), "KEYSEAL_AZURE_CLIENT_SECRET_ARN="+a.ClientSecretARN, true
	} else {
		secret := a.ClientSecret
		cc.Secret = func(context.Context) (string, error) { return secret, nil }
		cc.Where = "KEYSEAL_AZURE_CLIENT_SECRET"
	}
	creds, err := azurekv.NewCredentials(ctx, cc)
	if err != nil {
		return nil, err
	}
	keys := o.keys
	if keys == nil {
		keys = azurekv.ClientOptions()
	}
	return azurekv.New(azurekv.SDKClients(creds.For, keys), azurekv.WithIdentity(a.ClientID)), nil
}

// SecretsManagerAPI is the slice of Secrets Manager keyseal uses.
type SecretsManagerAPI interface {
	GetSecretValue(ctx context.Context, in *secretsmanager.GetSecretValueInput, opts ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

var _ SecretsManagerAPI = (*secretsmanager.Client)(nil)

// secretReader reads the Azure client secret from its Secrets Manager
// secret (the AWSCURRENT version). The secret string is either the client
// secret itself or a JSON object {"client_secret": "..."} (the shape the
// console's key/value editor makes); errors name the ARN, never the value.
func secretReader(sm SecretsManagerAPI, arn string) azurekv.SecretSource {
	return func(ctx context.Context) (string, error) {
		out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
		if err != nil {
			return "", fmt.Errorf("GetSecretValue: %w", err)
		}
		return ParseClientSecret(aws.ToString(out.SecretString))
	}
}

// ParseClientSecret returns the client secret of a secret string: the
// string itself, or the client_secret field of a JSON object.
func ParseClientSecret(s string) (string, error) {
	if len(s) == 0 || s[0] != '{' {
		return s, nil
	}
	var v struct {
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(s), &v); err != nil || v.ClientSecret == "" {
		return "", errors.New(`the secret is a JSON object without a "client_secret" string: want the client secret itself, or {"client_secret": "..."}`)
	}
	return v.ClientSecret, nil
}
