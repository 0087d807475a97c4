//go:build integration

package app_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keyseal/keyseal/localstack/standin"
	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/app"
	"github.com/keyseal/keyseal/shared/auth"
	"github.com/keyseal/keyseal/shared/devissuer"
	"github.com/keyseal/keyseal/shared/dynamostore"
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
	a, err := app.NewAWS(ctx, func(k string) string { return env[k] }, app.Needs{Admin: true})
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
