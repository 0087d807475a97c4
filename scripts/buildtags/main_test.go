package main

import (
	"os"
	"slices"
	"strings"
	"testing"
)

// fixture is a cdk.json with one environment per case, shaped as the
// repo's (the context infra/stack.LoadConfig reads).
const fixture = `{
  "app": "cd infra && go run .",
  "context": {
    "keyseal:environments": {
      "aws": {"region": "us-east-1", "adminJwksUrl": "https://idp/.well-known/jwks.json"},
      "gcp": {"region": "us-east-1", "gcpCredentials": {"type": "external_account", "credential_source": {"environment_id": "aws1"}},
              "gcpServiceAccount": "keyseal@p.iam.gserviceaccount.com"},
      "gcp-sa-only": {"gcpServiceAccount": "keyseal@p.iam.gserviceaccount.com"},
      "azure": {"azureClientId": "11111111-2222-3333-4444-555555555555", "azureTenantId": "11111111-2222-3333-4444-555555555555",
                "azureClientSecretArn": "arn:aws:secretsmanager:us-east-1:111122223333:secret:keyseal-azure-AbCdEf"},
      "azure-tenant-only": {"azureTenantId": "11111111-2222-3333-4444-555555555555"},
      "both": {"gcpCredentials": {"type": "external_account"}, "azureClientId": "11111111-2222-3333-4444-555555555555"}
    }
  }
}`

// TestTags: an environment gets keyseal_nogcp (keyseal_noazure) exactly
// when it sets none of the GCP (Azure) keys; any one of them, even alone
// (synth then names what is missing), keeps the provider in the build.
func TestTags(t *testing.T) {
	for env, want := range map[string]string{
		"aws":               "lambda.norpc,keyseal_nogcp,keyseal_noazure",
		"gcp":               "lambda.norpc,keyseal_noazure",
		"gcp-sa-only":       "lambda.norpc,keyseal_noazure",
		"azure":             "lambda.norpc,keyseal_nogcp",
		"azure-tenant-only": "lambda.norpc,keyseal_nogcp",
		"both":              "lambda.norpc",
	} {
		got, err := Tags([]byte(fixture), env)
		if err != nil || strings.Join(got, ",") != want {
			t.Errorf("Tags(%s) = %v, %v; want %s", env, got, err, want)
		}
	}
}

// TestTagsErrors: an unknown environment is an error listing the known
// ones; a file without the context is an error, never "no tags".
func TestTagsErrors(t *testing.T) {
	if _, err := Tags([]byte(fixture), "qa"); err == nil || !strings.Contains(err.Error(), `"qa"`) || !strings.Contains(err.Error(), "aws, azure, azure-tenant-only, both, gcp, gcp-sa-only") {
		t.Errorf("unknown environment: %v", err)
	}
	for _, bad := range []string{`{}`, `{"context": {}}`, `not json`, `{"context": {"keyseal:environments": []}}`} {
		if tags, err := Tags([]byte(bad), "dev"); err == nil {
			t.Errorf("Tags(%s) = %v, want an error", bad, tags)
		}
	}
}

// TestRepoDev: the repo's dev environment configures neither cloud, so
// make build's default (ENV=dev) is the AWS-only variant that the
// cold-start harness measures first.
func TestRepoDev(t *testing.T) {
	raw, err := os.ReadFile("../../cdk.json")
	if err != nil {
		t.Fatal(err)
	}
	tags, err := Tags(raw, "dev")
	if err != nil || !slices.Contains(tags, TagNoGCP) || !slices.Contains(tags, TagNoAzure) {
		t.Errorf("dev: %v, %v", tags, err)
	}
}
