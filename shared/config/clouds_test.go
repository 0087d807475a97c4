package config_test

import (
	"strings"
	"testing"

	"github.com/keyseal/keyseal/shared/config"
)

const wifConfig = `{"type": "external_account", "audience": "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/aws",
 "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
 "service_account_impersonation_url": "https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/keyseal@acme-prod.iam.gserviceaccount.com:generateAccessToken",
 "credential_source": {"environment_id": "aws1"}}`

func TestCloudsOffByDefault(t *testing.T) {
	c, err := config.Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.GCP.Enabled() || c.Azure.Enabled() {
		t.Fatalf("clouds on without configuration: %+v %+v", c.GCP, c.Azure)
	}
}

// TestGCPServiceAccountFromCredentials: the member customers grant is read
// from the federation config, so an operator sets one variable.
func TestGCPServiceAccountFromCredentials(t *testing.T) {
	c, err := config.Load(env(map[string]string{"KEYSEAL_GCP_CREDENTIALS": wifConfig}))
	if err != nil {
		t.Fatal(err)
	}
	if !c.GCP.Enabled() || c.GCP.ServiceAccount != "keyseal@acme-prod.iam.gserviceaccount.com" {
		t.Fatalf("gcp: %+v", c.GCP.ServiceAccount)
	}
	key := `{"type": "service_account", "client_email": "ks@p-1.iam.gserviceaccount.com", "private_key": "-----BEGIN PRIVATE KEY-----secret"}`
	if c, err = config.Load(env(map[string]string{"KEYSEAL_GCP_CREDENTIALS": key})); err != nil || c.GCP.ServiceAccount != "ks@p-1.iam.gserviceaccount.com" {
		t.Fatalf("key file: %v %q", err, c.GCP.ServiceAccount)
	}
}

// TestBadCloudConfig: each mistake names its variable and never echoes a
// credential.
func TestBadCloudConfig(t *testing.T) {
	const secretish = "-----BEGIN PRIVATE KEY-----MII"
	for name, tc := range map[string]struct {
		env  map[string]string
		want string
	}{
		"not json":        {map[string]string{"KEYSEAL_GCP_CREDENTIALS": `{"private_key": "` + secretish}, "KEYSEAL_GCP_CREDENTIALS: not a JSON object"},
		"wrong type":      {map[string]string{"KEYSEAL_GCP_CREDENTIALS": `{"type": "api_key"}`}, `type "api_key"`},
		"no account":      {map[string]string{"KEYSEAL_GCP_CREDENTIALS": `{"type": "authorized_user"}`}, "KEYSEAL_GCP_SERVICE_ACCOUNT is required"},
		"bad account":     {map[string]string{"KEYSEAL_GCP_CREDENTIALS": wifConfig, "KEYSEAL_GCP_SERVICE_ACCOUNT": "keyseal@gmail.com"}, "KEYSEAL_GCP_SERVICE_ACCOUNT="},
		"azure no id":     {map[string]string{"KEYSEAL_AZURE_TENANT_ID": "72f988bf-86f1-41af-91ab-2d7cd011db47"}, "KEYSEAL_AZURE_CLIENT_ID is required"},
		"azure no secret": {map[string]string{"KEYSEAL_AZURE_CLIENT_ID": "11111111-2222-3333-4444-555555555555", "KEYSEAL_AZURE_TENANT_ID": "72f988bf-86f1-41af-91ab-2d7cd011db47"}, "KEYSEAL_AZURE_CLIENT_SECRET_ARN is required"},
		"azure both": {map[string]string{"KEYSEAL_AZURE_CLIENT_ID": "11111111-2222-3333-4444-555555555555", "KEYSEAL_AZURE_TENANT_ID": "72f988bf-86f1-41af-91ab-2d7cd011db47",
			"KEYSEAL_AZURE_CLIENT_SECRET": secretish, "KEYSEAL_AZURE_CLIENT_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:keyseal/azure-AbCdEf"}, "only one of"},
		"azure bad ids": {map[string]string{"KEYSEAL_AZURE_CLIENT_ID": "keyseal", "KEYSEAL_AZURE_TENANT_ID": "contoso.onmicrosoft.com", "KEYSEAL_AZURE_CLIENT_SECRET": secretish}, "KEYSEAL_AZURE_TENANT_ID="},
		"azure bad arn": {map[string]string{"KEYSEAL_AZURE_CLIENT_ID": "11111111-2222-3333-4444-555555555555", "KEYSEAL_AZURE_TENANT_ID": "72f988bf-86f1-41af-91ab-2d7cd011db47",
			"KEYSEAL_AZURE_CLIENT_SECRET_ARN": "keyseal/azure"}, "want a Secrets Manager secret ARN"},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := config.Load(env(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), secretish) {
				t.Fatalf("a credential reached the error: %v", err)
			}
		})
	}
}

func TestAzureConfigured(t *testing.T) {
	c, err := config.Load(env(map[string]string{"KEYSEAL_AZURE_CLIENT_ID": "11111111-2222-3333-4444-555555555555", "KEYSEAL_AZURE_TENANT_ID": "72f988bf-86f1-41af-91ab-2d7cd011db47",
		"KEYSEAL_AZURE_CLIENT_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:keyseal/azure-AbCdEf"}))
	if err != nil || !c.Azure.Enabled() {
		t.Fatalf("%v %+v", err, c.Azure)
	}
}
