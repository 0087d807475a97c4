//go:build integration

package app_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/keyseal/keyseal/localstack/standin"
	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/app"
	"github.com/keyseal/keyseal/shared/app/clouds"
	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/azurekv/azurekvfake"
	"github.com/keyseal/keyseal/shared/azurekv/entrafake"
	"github.com/keyseal/keyseal/shared/config"
	"github.com/keyseal/keyseal/shared/devissuer"
	"github.com/keyseal/keyseal/shared/dynamostore"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/localserver"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// TestLambdaWiringOnLocalStack builds the app exactly as the Lambdas' main
// does (NewAWS from environment variables) against LocalStack and DynamoDB
// Local, and serves a session and a health check through the Lambdas'
// routers.
func TestLambdaWiringOnLocalStack(t *testing.T) {
	ctx := context.Background()
	table := standin.Name("keyseal-wiring-")
	if err := dynamostore.CreateTable(ctx, standin.DynamoDB(t), table); err != nil {
		t.Fatal(err)
	}
	platform, err := localserver.EnsureKey(ctx, standin.KMS(t), "alias/keyseal-wiring-platform")
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := devissuer.New(filepath.Join(t.TempDir(), "issuer.json"), "https://idp.test/", "keyseal-admin")
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"KEYSEAL_TABLE": table, "KEYSEAL_PLATFORM_KEY_ID": platform, "KEYSEAL_EVENT_BUS": "default",
		"KEYSEAL_ADMIN_JWKS": string(issuer.JWKS()), "KEYSEAL_ADMIN_ISSUER": "https://idp.test/", "KEYSEAL_ADMIN_AUDIENCE": "keyseal-admin", "KEYSEAL_SERVICE_PRINCIPAL": "arn:aws:iam::000000000000:root",
		"KEYSEAL_STAGE": "it", "KEYSEAL_LOG_LEVEL": "error",
	}
	// The AWS_* variables (region, credentials, endpoints) are the
	// stand-ins' from the process environment, as a Lambda's are.
	a, err := app.NewAWS(ctx, func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return os.Getenv(k)
	}, app.Needs{Admin: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Tenants.Provision(ctx, "acme", tenantkms.ActorSystem); err != nil {
		t.Fatal(err)
	}
	agent, err := a.Deps.Agents.Create(ctx, "acme", "wiring", tenantkms.ActorSystem)
	if err != nil {
		t.Fatal(err)
	}
	session := api.NewRouter(a.Log, a.Deps.SessionRoutes())
	resp, _ := session.Handle(ctx, events.APIGatewayProxyRequest{HTTPMethod: "POST", Path: "/agent/v1/session",
		Headers: map[string]string{"Authorization": "Bearer " + agent.Key}})
	if resp.StatusCode != 201 {
		t.Fatalf("session through the Lambda wiring: %d %s", resp.StatusCode, resp.Body)
	}
	admin, err := issuer.Mint(devissuer.Claims{Subject: "alice", TenantID: "acme", TTL: time.Hour, Roles: []string{auth.AdminRole}})
	if err != nil {
		t.Fatal(err)
	}
	adminRouter := api.NewRouter(a.Log, a.Deps.AdminRoutes())
	resp, _ = adminRouter.Handle(ctx, events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/admin/audit/verify",
		Headers: map[string]string{"Authorization": "Bearer " + admin}})
	if resp.StatusCode != 200 {
		t.Fatalf("admin through the Lambda wiring: %d %s", resp.StatusCode, resp.Body)
	}
	health := api.NewRouter(a.Log, a.Deps.HealthRoutes())
	resp, _ = health.Handle(ctx, events.APIGatewayProxyRequest{HTTPMethod: "GET", Path: "/health"})
	if resp.StatusCode != 200 {
		t.Fatalf("health: %d %s", resp.StatusCode, resp.Body)
	}
}

// TestAzureSecretFromLocalStackSecretsManager: the Azure client secret is
// read from LocalStack's real Secrets Manager by ARN through the wiring
// NewAWS uses, the credential built from it gets tokens from the Entra
// fake (which takes only that secret), and a secret that does not exist
// stops the process at start naming its ARN.
func TestAzureSecretFromLocalStackSecretsManager(t *testing.T) {
	ctx := context.Background()
	clients := app.NewClients(standin.Config(t))
	const secret = "LocalStack~Client.Secret"
	out, err := secretsmanager.NewFromConfig(clients.Config).CreateSecret(ctx, &secretsmanager.CreateSecretInput{
		Name: aws.String(standin.Name("keyseal-azure-")), SecretString: aws.String(`{"client_secret":"` + secret + `"}`)})
	if err != nil {
		t.Fatal(err)
	}
	entra, kv := entrafake.New(t, secret), azurekvfake.New(t)
	cfg := config.Config{Azure: config.Azure{ClientID: "11111111-2222-3333-4444-555555555555",
		TenantID: "00000000-0000-0000-0000-000000000000", ClientSecretARN: aws.ToString(out.ARN)}}
	p, err := clouds.Providers(ctx, cfg, &clients, clouds.WithAzureOptions(entra.Options(), kv.ClientOptions()))
	if err != nil {
		t.Fatal(err)
	}
	key := keyseal.KeyRef{Provider: keyseal.ProviderAzure, KeyID: kv.MustCreateKey(t, "https://acme.vault.azure.net", "tmk")}
	if _, err := p[keyseal.ProviderAzure].Wrap(ctx, key, []byte("tmk"), nil); err != nil {
		t.Fatalf("Wrap with the credential from Secrets Manager: %v", err)
	}
	if entra.Requests() == 0 {
		t.Fatal("no token was requested")
	}
	cfg.Azure.ClientSecretARN += "-missing"
	_, err = clouds.Providers(ctx, cfg, &clients)
	if err == nil || !strings.Contains(err.Error(), cfg.Azure.ClientSecretARN) || strings.Contains(err.Error(), secret) {
		t.Fatalf("a missing secret: %v", err)
	}
}
