//go:build !keyseal_noazure

package clouds

import (
	"context"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/keyseal/keyseal/shared/app"
	"github.com/keyseal/keyseal/shared/awsconfig/secretvalue"
	"github.com/keyseal/keyseal/shared/azurekv"
	"github.com/keyseal/keyseal/shared/config"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// azureOptions are the Entra credential and azkeys pipeline options
// (WithAzureOptions).
type azureOptions struct {
	identity *azurekv.EntraOptions
	keys     *azkeys.ClientOptions
}

// WithAzureOptions replaces the Entra credential options (authority,
// transport) and the azkeys pipeline options (azurekv.ClientOptions when
// nil).
func WithAzureOptions(identity *azurekv.EntraOptions, keys *azkeys.ClientOptions) Option {
	return func(o *cloudOptions) { o.azure = azureOptions{identity, keys} }
}

// newAzure is the real azkeys client with keyseal's app registration: a
// client-secret credential per Entra tenant (the key's azure_tenant_id,
// else cfg.TenantID), the secret read now from Secrets Manager (or the
// local KEYSEAL_AZURE_CLIENT_SECRET) and again when Entra refuses it.
func newAzure(ctx context.Context, a config.Azure, clients *app.Clients, o azureOptions) (keyseal.Provider, error) {
	cc := azurekv.CredentialsConfig{ClientID: a.ClientID, HomeTenant: a.TenantID, Options: o.identity}
	if a.ClientSecretARN != "" {
		if clients == nil {
			return nil, fmt.Errorf("KEYSEAL_AZURE_CLIENT_SECRET_ARN=%s: no AWS configuration to read it with", a.ClientSecretARN)
		}
		sm := secretvalue.New(clients.Config)
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

// SecretsManagerAPI is the slice of Secrets Manager keyseal uses: a
// secret's current string. Package secretvalue sends that one call
// itself, without the SDK's Secrets Manager client, whose package init
// every cold start of the Lambdas serving Azure would pay.
type SecretsManagerAPI interface {
	GetSecretString(ctx context.Context, secretID string) (string, error)
}

var _ SecretsManagerAPI = (*secretvalue.Client)(nil)

// secretReader reads the Azure client secret from its Secrets Manager
// secret (the AWSCURRENT version). The secret string is either the client
// secret itself or a JSON object {"client_secret": "..."} (the shape the
// console's key/value editor makes); errors name the ARN, never the value.
func secretReader(sm SecretsManagerAPI, arn string) azurekv.SecretSource {
	return func(ctx context.Context) (string, error) {
		s, err := sm.GetSecretString(ctx, arn)
		if err != nil {
			return "", err
		}
		return ParseClientSecret(s)
	}
}
