package app_test

import (
	"context"
	"log/slog"
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/keyseal/keyseal/shared/app"
	"github.com/keyseal/keyseal/shared/app/deliverer"
	"github.com/keyseal/keyseal/shared/app/publisher"
	"github.com/keyseal/keyseal/shared/config"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/memstore"
)

// TestNewAWSNamesMissingConfiguration: a Lambda started without its
// settings fails its init with every missing variable named, instead of
// serving half-configured.
func TestNewAWSNamesMissingConfiguration(t *testing.T) {
	env := map[string]string{"KEYSEAL_TMK_CACHE_TTL": "forever"}
	_, err := app.NewAWS(context.Background(), func(k string) string { return env[k] }, app.Needs{Admin: true})
	if err == nil {
		t.Fatal("NewAWS accepted an empty configuration")
	}
	// A bad value is reported first, on its own.
	if !strings.Contains(err.Error(), "KEYSEAL_TMK_CACHE_TTL") {
		t.Fatalf("error does not name the bad variable: %v", err)
	}
	delete(env, "KEYSEAL_TMK_CACHE_TTL")
	_, err = app.NewAWS(context.Background(), func(k string) string { return env[k] }, app.Needs{Admin: true})
	if err == nil {
		t.Fatal("NewAWS accepted an empty configuration")
	}
	for _, name := range []string{"KEYSEAL_TABLE", "KEYSEAL_PLATFORM_KEY_ID"} {
		if !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
	env["KEYSEAL_TABLE"], env["KEYSEAL_PLATFORM_KEY_ID"] = "t", "k"
	_, err = app.NewAWS(context.Background(), func(k string) string { return env[k] }, app.Needs{Admin: true})
	for _, name := range []string{"KEYSEAL_ADMIN_ISSUER", "KEYSEAL_ADMIN_AUDIENCE", "JWKS", "KEYSEAL_SERVICE_PRINCIPAL"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("error does not name %s: %v", name, err)
		}
	}
}

// TestNewPublisherNeedsTheBus: the event publisher needs only the bus, and
// says so when it is missing.
func TestNewPublisherNeedsTheBus(t *testing.T) {
	_, err := publisher.New(context.Background(), func(string) string { return "" })
	if err == nil || !strings.Contains(err.Error(), "KEYSEAL_EVENT_BUS") {
		t.Fatalf("NewPublisher without a bus: %v", err)
	}
	env := map[string]string{"KEYSEAL_EVENT_BUS": "keyseal-dev", "AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}
	for k, v := range env {
		t.Setenv(k, v)
	}
	if h, err := publisher.New(context.Background(), func(k string) string { return env[k] }); err != nil || h.Sink == nil {
		t.Fatalf("NewPublisher: %v", err)
	}
}

// TestLambdasLinkNoLocalWiring: no Lambda binary contains the embedded
// store, the local software KMS or the dev token issuer; those belong to
// the local server alone. Nor the OpenAPI generator and validator: the
// admin Lambda serves the committed document, tests alone make and check
// it.
func TestLambdasLinkNoLocalWiring(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/keyseal/keyseal/functions/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	for _, banned := range []string{"go.etcd.io/bbolt", "github.com/keyseal/keyseal/shared/boltstore",
		"github.com/keyseal/keyseal/shared/localkms", "github.com/keyseal/keyseal/shared/devissuer",
		"github.com/keyseal/keyseal/shared/localserver", "github.com/keyseal/keyseal/shared/memstore",
		"github.com/keyseal/keyseal/shared/internal/openapigen", "github.com/keyseal/keyseal/shared/api/openapitest",
		"github.com/invopop/jsonschema", "github.com/getkin/kin-openapi/openapi3"} {
		if slices.Contains(deps, banned) {
			t.Errorf("a Lambda links %s", banned)
		}
	}
	if !slices.Contains(deps, "github.com/keyseal/keyseal/shared/dynamostore") {
		t.Fatal("go list output does not look like the Lambdas' dependencies")
	}
}

// TestAssembleNeedsThePlatformProvider: a process that cannot wrap a new
// tenant's TMK fails at start, naming the provider, instead of at the
// first tenant.
func TestAssembleNeedsThePlatformProvider(t *testing.T) {
	_, err := app.Assemble(config.Config{}, slog.New(slog.DiscardHandler), app.Parts{
		Store: memstore.New(), Providers: keyseal.Providers{},
		PlatformKey: keyseal.KeyRef{Provider: keyseal.ProviderAWS, KeyID: "arn:aws:kms:us-east-1:111122223333:key/x"}})
	if err == nil || !strings.Contains(err.Error(), `"aws-kms" is not configured`) {
		t.Fatalf("Assemble without the platform key's provider: %v", err)
	}
}

// TestCloudSDKsOnlyWhereServed: the Lambdas that serve tenants on any
// provider link the gcp-kms and azure-kv providers and their SDKs; the
// event publisher (no KMS), the webhook deliverer (the platform key only)
// and key-events (AWS key ARNs only) link neither. No Lambda links gRPC
// or the protobuf runtime: the Cloud KMS client that brought them cost
// about 3 ms of every cold start (gcp-kms speaks REST). Nor the SDK's
// Secrets Manager client: the Azure client secret is read by package
// secretvalue's own GetSecretValue, saving that client's package init.
func TestCloudSDKsOnlyWhereServed(t *testing.T) {
	cloud := []string{"golang.org/x/oauth2/google", "golang.org/x/oauth2/clientcredentials",
		"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys", "github.com/keyseal/keyseal/shared/gcpkms",
		"github.com/keyseal/keyseal/shared/azurekv"}
	never := []string{"google.golang.org/grpc", "google.golang.org/protobuf/proto", "cloud.google.com/go/kms/apiv1",
		"github.com/Azure/azure-sdk-for-go/sdk/azidentity", "github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential",
		"github.com/aws/aws-sdk-go-v2/service/secretsmanager"}
	deps := func(fn string) []string {
		out, err := exec.Command("go", "list", "-deps", "github.com/keyseal/keyseal/functions/"+fn).CombinedOutput()
		if err != nil {
			t.Fatalf("go list: %v\n%s", err, out)
		}
		return strings.Fields(string(out))
	}
	serves := map[string]bool{"session-issue": true, "admin-tenant-kms": true, "unseal": true, "health": true, "verify-poller": true, "verify-poller-worker": true,
		"key-events": false, "event-publisher": false, "webhook-deliver": false, "bus-policy": false}
	for fn, want := range serves {
		linked := deps(fn)
		for _, pkg := range cloud {
			if got := slices.Contains(linked, pkg); got != want {
				t.Errorf("%s links %s: %v, want %v", fn, pkg, got, want)
			}
		}
		for _, pkg := range never {
			if slices.Contains(linked, pkg) {
				t.Errorf("%s links %s", fn, pkg)
			}
		}
	}
	if !slices.Contains(deps("event-publisher"), "github.com/keyseal/keyseal/shared/awsconfig") {
		t.Fatal("go list output does not look like the Lambdas' dependencies")
	}
	// Only the two functions that call EventBridge link its client (its
	// package init is about 0.45 ms).
	for fn := range serves {
		want := fn == "event-publisher" || fn == "bus-policy"
		if got := slices.Contains(deps(fn), "github.com/aws/aws-sdk-go-v2/service/eventbridge"); got != want {
			t.Errorf("%s links the EventBridge client: %v, want %v", fn, got, want)
		}
	}
	// No Lambda links the SDK's Lambda client: the poller hand-sends its
	// one Invoke (shared/poller/lambdainvoke), saving its package init.
	for fn := range serves {
		if slices.Contains(deps(fn), "github.com/aws/aws-sdk-go-v2/service/lambda") {
			t.Errorf("%s links the SDK's Lambda client", fn)
		}
	}
	// No Lambda links the SDK's config chain (awsconfig.FromEnv instead),
	// and only those that assume customer roles link STS.
	for fn, assumesRoles := range serves {
		assumesRoles = assumesRoles || fn == "key-events"
		linked := deps(fn)
		if slices.Contains(linked, "github.com/aws/aws-sdk-go-v2/config") {
			t.Errorf("%s links the SDK's config.LoadDefaultConfig chain", fn)
		}
		if got := slices.Contains(linked, "github.com/aws/aws-sdk-go-v2/service/sts"); got != assumesRoles {
			t.Errorf("%s links STS: %v, want %v", fn, got, assumesRoles)
		}
	}
}

// TestCloudBuildTagsDropTheSDKs: with -tags keyseal_nogcp the Lambdas
// that serve every provider link neither Google's auth library nor
// shared/gcpkms; with keyseal_noazure neither the Azure SDK, shared/azurekv
// nor the reader of its client secret (shared/awsconfig/secretvalue); with
// both (make build's dev variant) none of them, and each tag alone leaves
// the other provider linked.
func TestCloudBuildTagsDropTheSDKs(t *testing.T) {
	google := []string{"golang.org/x/oauth2/google", "github.com/keyseal/keyseal/shared/gcpkms"}
	azure := []string{"golang.org/x/oauth2/clientcredentials", "github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys",
		"github.com/keyseal/keyseal/shared/azurekv", "github.com/keyseal/keyseal/shared/awsconfig/secretvalue"}
	deps := func(tags, fn string) []string {
		out, err := exec.Command("go", "list", "-deps", "-tags", tags, "github.com/keyseal/keyseal/functions/"+fn).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -tags %s: %v\n%s", tags, err, out)
		}
		if !slices.Contains(strings.Fields(string(out)), "github.com/keyseal/keyseal/shared/app/clouds") {
			t.Fatalf("%s does not link shared/app/clouds: not a Lambda that serves every provider?", fn)
		}
		return strings.Fields(string(out))
	}
	check := func(tags, fn string, wantGoogle, wantAzure bool) {
		linked := deps(tags, fn)
		for _, pkg := range google {
			if got := slices.Contains(linked, pkg); got != wantGoogle {
				t.Errorf("-tags %s: %s links %s: %v, want %v", tags, fn, pkg, got, wantGoogle)
			}
		}
		for _, pkg := range azure {
			if got := slices.Contains(linked, pkg); got != wantAzure {
				t.Errorf("-tags %s: %s links %s: %v, want %v", tags, fn, pkg, got, wantAzure)
			}
		}
	}
	for _, fn := range []string{"session-issue", "admin-tenant-kms", "unseal", "health", "verify-poller", "verify-poller-worker"} {
		check("lambda.norpc,keyseal_nogcp,keyseal_noazure", fn, false, false)
	}
	check("lambda.norpc,keyseal_nogcp", "session-issue", false, true)
	check("lambda.norpc,keyseal_noazure", "session-issue", true, false)
}

// TestNewWebhookDeliverNeedsTheQueues: the webhook-deliver Lambda needs
// the table, the platform key, the audit signing key and both queues,
// and links no Google or Azure SDK (it unseals secrets under the platform
// key only, an AWS KMS key).
func TestNewWebhookDeliverNeedsTheQueues(t *testing.T) {
	_, err := deliverer.New(context.Background(), func(string) string { return "" })
	for _, v := range []string{"KEYSEAL_TABLE", "KEYSEAL_PLATFORM_KEY_ID"} {
		if err == nil || !strings.Contains(err.Error(), v) {
			t.Fatalf("NewWebhookDeliver without %s: %v", v, err)
		}
	}
	env := map[string]string{"KEYSEAL_TABLE": "keyseal-dev", "KEYSEAL_PLATFORM_KEY_ID": "alias/keyseal-dev-platform",
		"KEYSEAL_AUDIT_SIGNING_KEY_ID": "alias/keyseal-dev-audit", "AWS_REGION": "us-east-1",
		"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "secret"}
	_, err = deliverer.New(context.Background(), func(k string) string { return env[k] })
	if err == nil || !strings.Contains(err.Error(), "KEYSEAL_WEBHOOK_QUEUE_URL") || !strings.Contains(err.Error(), "KEYSEAL_WEBHOOK_DLQ_URL") {
		t.Fatalf("NewWebhookDeliver without queues: %v", err)
	}
	env["KEYSEAL_WEBHOOK_QUEUE_URL"] = "https://sqs.us-east-1.amazonaws.com/123456789012/keyseal-dev-webhooks"
	env["KEYSEAL_WEBHOOK_DLQ_URL"] = "https://sqs.us-east-1.amazonaws.com/123456789012/keyseal-dev-webhooks-dlq"
	for k, v := range env {
		t.Setenv(k, v)
	}
	d, err := deliverer.New(context.Background(), func(k string) string { return env[k] })
	if err != nil || d.Deliverer == nil || d.QueueURL != env["KEYSEAL_WEBHOOK_QUEUE_URL"] || d.DLQURL != env["KEYSEAL_WEBHOOK_DLQ_URL"] {
		t.Fatalf("NewWebhookDeliver: %v %+v", err, d)
	}
	out, err := exec.Command("go", "list", "-deps", "github.com/keyseal/keyseal/functions/webhook-deliver").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range []string{"golang.org/x/oauth2/google", "github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys", "github.com/keyseal/keyseal/shared/gcpkms"} {
		if slices.Contains(strings.Fields(string(out)), pkg) {
			t.Errorf("webhook-deliver links %s", pkg)
		}
	}
}
