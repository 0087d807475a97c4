package stack_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-cdk-go/awscdk/v2"

	"github.com/keyseal/keyseal/infra/stack"
)

const (
	wifConfig = `{"type":"external_account","audience":"//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/aws/providers/keyseal",
		"subject_token_type":"urn:ietf:params:aws:token-type:aws4_request","token_url":"https://sts.googleapis.com/v1/token",
		"service_account_impersonation_url":"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/keyseal@keyseal-prod.iam.gserviceaccount.com:generateAccessToken",
		"credential_source":{"environment_id":"aws1","regional_cred_verification_url":"https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"}}`
	azureSecretARN = "arn:aws:secretsmanager:us-east-1:111122223333:secret:keyseal-dev-azure-AbC123"
)

// withClouds is the repo's dev context with the cloud keys added.
func withClouds(t *testing.T, clouds map[string]any) any {
	t.Helper()
	ctx := cdkContext(t).(map[string]any)
	b, _ := json.Marshal(ctx)
	var copied map[string]any
	_ = json.Unmarshal(b, &copied)
	dev := copied["dev"].(map[string]any)
	for k, v := range clouds {
		dev[k] = v
	}
	return copied
}

func cloudKeys() map[string]any {
	var wif any
	_ = json.Unmarshal([]byte(wifConfig), &wif)
	return map[string]any{"gcpCredentials": wif, "gcpServiceAccount": "keyseal@keyseal-prod.iam.gserviceaccount.com",
		"azureClientId": "11111111-2222-3333-4444-555555555555", "azureTenantId": "66666666-7777-8888-9999-000000000000",
		"azureClientSecretArn": azureSecretARN}
}

// TestCloudIdentity: with GCP and Azure configured, exactly the functions
// that call KMS get keyseal's cloud identity in their environment and may
// read the Azure client secret — that one secret, nothing else of Secrets
// Manager; the event publisher gets neither.
func TestCloudIdentity(t *testing.T) {
	cfg, err := stack.LoadConfig(withClouds(t, cloudKeys()), "dev", assets(t))
	if err != nil {
		t.Fatal(err)
	}
	tpl := toTemplate(t, stack.New(awscdk.NewApp(nil), cfg))
	kmsFns := map[string]bool{stack.FnSession: true, stack.FnAdmin: true, stack.FnUnseal: true, stack.FnHealth: true, stack.FnPoller: true, stack.FnPollWorker: true}
	cloudEnv := []string{"KEYSEAL_GCP_CREDENTIALS", "KEYSEAL_GCP_SERVICE_ACCOUNT", "KEYSEAL_AZURE_CLIENT_ID", "KEYSEAL_AZURE_TENANT_ID", "KEYSEAL_AZURE_CLIENT_SECRET_ARN"}
	for fn, id := range tpl.functionIDs(t) {
		vars := tpl.Resources[id].Properties["Environment"].(map[string]any)["Variables"].(map[string]any)
		for _, k := range cloudEnv {
			if _, ok := vars[k]; ok != kmsFns[fn] {
				t.Errorf("%s: %s set=%v, want %v", fn, k, ok, kmsFns[fn])
			}
		}
		if kmsFns[fn] {
			var got map[string]any
			if err := json.Unmarshal([]byte(vars["KEYSEAL_GCP_CREDENTIALS"].(string)), &got); err != nil || got["type"] != "external_account" {
				t.Errorf("%s: KEYSEAL_GCP_CREDENTIALS is not the config: %v", fn, err)
			}
			if vars["KEYSEAL_AZURE_CLIENT_SECRET_ARN"] != azureSecretARN {
				t.Errorf("%s: secret ARN %v", fn, vars["KEYSEAL_AZURE_CLIENT_SECRET_ARN"])
			}
		}
	}
	statements, actions := tpl.rolePolicies(t)
	want := "secretsmanager:GetSecretValue on " + azureSecretARN
	for _, fn := range stack.FunctionNames() {
		var got []string
		for _, s := range statements[fn] {
			if strings.Contains(s, "secretsmanager") {
				got = append(got, s)
			}
		}
		if kmsFns[fn] && (len(got) != 1 || got[0] != want) {
			t.Errorf("%s: Secrets Manager statements %v, want exactly %q", fn, got, want)
		}
		if !kmsFns[fn] && len(got) > 0 {
			t.Errorf("%s calls no KMS but may read %v", fn, got)
		}
		for _, a := range actions[fn] {
			if strings.HasPrefix(a, "secretsmanager:") && a != "secretsmanager:GetSecretValue" {
				t.Errorf("%s: extra action %s", fn, a)
			}
		}
	}
	// Without the keys nothing of it is there (TestLeastPrivilege holds
	// every statement of the repo's environments).
	for _, s := range synth(t, "dev").Resources {
		if b, _ := json.Marshal(s); strings.Contains(string(b), "secretsmanager") || strings.Contains(string(b), "KEYSEAL_GCP_") {
			t.Fatalf("the dev stack without cloud keys has cloud settings: %s", b)
		}
	}
}

// TestCloudConfigErrors: a malformed cloud setting fails synth naming its
// key; a service account key is refused (it would be a plain-text private
// key in the template).
func TestCloudConfigErrors(t *testing.T) {
	cases := map[string]struct {
		key  string
		val  any
		want string
	}{
		"service account key":       {"gcpCredentials", map[string]any{"type": "service_account", "private_key": "x"}, "never a service account key"},
		"credentials not an object": {"gcpCredentials", "creds.json", "gcpCredentials"},
		"service account":           {"gcpServiceAccount", "keyseal@gmail.com", "gcpServiceAccount"},
		"client id":                 {"azureClientId", "keyseal", "azureClientId"},
		"tenant id":                 {"azureTenantId", "contoso.onmicrosoft.com", "azureTenantId"},
		"partial secret ARN":        {"azureClientSecretArn", "arn:aws:secretsmanager:us-east-1:111122223333:secret:keyseal-dev-azure", "six-character suffix"},
		"secret name, not ARN":      {"azureClientSecretArn", "keyseal-dev-azure", "azureClientSecretArn"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			keys := cloudKeys()
			keys[c.key] = c.val
			_, err := stack.LoadConfig(withClouds(t, keys), "dev", "bin")
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("LoadConfig: %v, want an error mentioning %q", err, c.want)
			}
		})
	}
	if _, err := stack.LoadConfig(withClouds(t, map[string]any{"azureClientId": "11111111-2222-3333-4444-555555555555"}), "dev", "bin"); err == nil || !strings.Contains(err.Error(), "azureTenantId") {
		t.Fatalf("Azure without tenant and secret: %v", err)
	}
}

// TestSynthRefusesABuildWithoutAConfiguredProvider: when make build
// recorded -tags keyseal_nogcp (keyseal_noazure) for a function and the
// environment configures GCP (Azure), LoadConfig fails naming the key,
// the tag and the command that rebuilds; a build with both providers, or
// an environment configuring neither, passes.
func TestSynthRefusesABuildWithoutAConfiguredProvider(t *testing.T) {
	tagged := func(tags string) string {
		dir := assets(t)
		for _, fn := range stack.FunctionNames() {
			if err := os.WriteFile(filepath.Join(dir, fn, "tags"), []byte(tags+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	awsOnly := tagged("lambda.norpc,keyseal_nogcp,keyseal_noazure")
	_, err := stack.LoadConfig(withClouds(t, cloudKeys()), "dev", awsOnly)
	for _, want := range []string{"gcpCredentials", "-tags keyseal_nogcp", "azureClientId", "-tags keyseal_noazure", "make build ENV=dev", stack.FnSession} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("GCP and Azure configured, AWS-only build: %v, want it to name %q", err, want)
		}
	}
	gcpOnly := map[string]any{"gcpCredentials": cloudKeys()["gcpCredentials"], "gcpServiceAccount": cloudKeys()["gcpServiceAccount"]}
	if _, err := stack.LoadConfig(withClouds(t, gcpOnly), "dev", tagged("lambda.norpc,keyseal_noazure")); err != nil {
		t.Errorf("GCP configured, build without Azure: %v", err)
	}
	if _, err := stack.LoadConfig(withClouds(t, gcpOnly), "dev", tagged("lambda.norpc,keyseal_nogcp")); err == nil || strings.Contains(err.Error(), "azureClientId") {
		t.Errorf("GCP configured, build without GCP: %v", err)
	}
	if _, err := stack.LoadConfig(withClouds(t, cloudKeys()), "dev", tagged("lambda.norpc")); err != nil {
		t.Errorf("full build: %v", err)
	}
	if _, err := stack.LoadConfig(cdkContext(t), "dev", awsOnly); err != nil {
		t.Errorf("neither configured, AWS-only build: %v", err)
	}
}
