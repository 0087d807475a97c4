package stack

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
)

// Clouds is keyseal's own identity in GCP and Azure for one environment
// (optional context keys; the providers stay off without them). None of
// it is a secret: GCP is a workload-identity-federation config (the
// Lambdas exchange their AWS role for a Google token, no Google key), and
// Azure's client secret stays in Secrets Manager, named by its ARN.
type Clouds struct {
	// GCPCredentials is the external-account JSON object itself, inline
	// in cdk.json (`gcloud iam workload-identity-pools create-cred-config
	// ... --aws`); it becomes KEYSEAL_GCP_CREDENTIALS.
	GCPCredentials json.RawMessage `json:"gcpCredentials"`
	// GCPServiceAccount is the account customers grant; it may be left
	// out when the config impersonates one (service_account_impersonation_url).
	GCPServiceAccount string `json:"gcpServiceAccount"`
	// Azure app registration: client id, its home tenant, and the full ARN
	// (with its six-character suffix) of the secret holding its client secret.
	AzureClientID        string `json:"azureClientId"`
	AzureTenantID        string `json:"azureTenantId"`
	AzureClientSecretARN string `json:"azureClientSecretArn"`
}

var (
	guidPattern      = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	saPattern        = regexp.MustCompile(`^[a-z0-9-]{1,63}@[a-z0-9-]+\.iam\.gserviceaccount\.com$`)
	secretARNPattern = regexp.MustCompile(`^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+-[A-Za-z0-9]{6}$`)
)

// env is the KEYSEAL_* environment of the KMS-calling functions.
func (c Clouds) env() map[string]string {
	e := map[string]string{}
	if len(c.GCPCredentials) > 0 {
		var b bytes.Buffer
		_ = json.Compact(&b, c.GCPCredentials) // checked by check
		e["KEYSEAL_GCP_CREDENTIALS"] = b.String()
		if c.GCPServiceAccount != "" {
			e["KEYSEAL_GCP_SERVICE_ACCOUNT"] = c.GCPServiceAccount
		}
	}
	if c.AzureClientID != "" {
		e["KEYSEAL_AZURE_CLIENT_ID"] = c.AzureClientID
		e["KEYSEAL_AZURE_TENANT_ID"] = c.AzureTenantID
		e["KEYSEAL_AZURE_CLIENT_SECRET_ARN"] = c.AzureClientSecretARN
	}
	return e
}

// check fails synth on a malformed value, naming the key; a Lambda would
// otherwise fail its init after the deploy.
func (c Clouds) check() []string {
	var errs []string
	if len(c.GCPCredentials) > 0 {
		var wif struct {
			Type          string `json:"type"`
			Impersonation string `json:"service_account_impersonation_url"`
			Source        struct {
				EnvironmentID string `json:"environment_id"`
			} `json:"credential_source"`
		}
		switch err := json.Unmarshal(c.GCPCredentials, &wif); {
		case err != nil:
			errs = append(errs, "gcpCredentials: want the external-account JSON object inline")
		case wif.Type != "external_account" || !strings.HasPrefix(wif.Source.EnvironmentID, "aws"):
			// A service_account key would be a long-lived private key in
			// plain text in the template and the function's configuration.
			errs = append(errs, fmt.Sprintf("gcpCredentials: type %q: want an external_account config with an AWS credential_source (workload identity federation), never a service account key", wif.Type))
		case wif.Impersonation == "" && c.GCPServiceAccount == "":
			errs = append(errs, "gcpServiceAccount is required: the federation config impersonates no service account, and customers grant one")
		}
	} else if c.GCPServiceAccount != "" {
		errs = append(errs, "gcpServiceAccount is set without gcpCredentials")
	}
	if c.GCPServiceAccount != "" && !saPattern.MatchString(c.GCPServiceAccount) {
		errs = append(errs, fmt.Sprintf("gcpServiceAccount %q: want NAME@PROJECT.iam.gserviceaccount.com", c.GCPServiceAccount))
	}
	if c.AzureClientID == "" && c.AzureTenantID == "" && c.AzureClientSecretARN == "" {
		return errs
	}
	if !guidPattern.MatchString(c.AzureClientID) {
		errs = append(errs, fmt.Sprintf("azureClientId %q: want the app registration's application (client) id, a GUID", c.AzureClientID))
	}
	if !guidPattern.MatchString(c.AzureTenantID) {
		errs = append(errs, fmt.Sprintf("azureTenantId %q: want keyseal's Entra tenant id, a GUID", c.AzureTenantID))
	}
	if !secretARNPattern.MatchString(c.AzureClientSecretARN) {
		errs = append(errs, fmt.Sprintf("azureClientSecretArn %q: want the secret's full ARN, arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME-XXXXXX (the six-character suffix included, so the grant names exactly it)", c.AzureClientSecretARN))
	}
	return errs
}

// checkBuild fails synth when Lambdas under assetDir were built without
// a provider this environment configures: `make build` records each
// function's go build tags in bin/<function>/tags, and keyseal_nogcp
// (keyseal_noazure) leaves the provider out of the binary, which would
// then fail its init after the deploy. A function without the file (a
// build by hand) is not checked here; its init still refuses.
func (c Clouds) checkBuild(env, assetDir string) []string {
	files, _ := filepath.Glob(filepath.Join(assetDir, "*", "tags"))
	var noGCP, noAzure []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		tags := strings.FieldsFunc(string(b), func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\t' })
		fn := filepath.Base(filepath.Dir(f))
		if len(c.GCPCredentials) > 0 && slices.Contains(tags, "keyseal_nogcp") {
			noGCP = append(noGCP, fn)
		}
		if c.AzureClientID != "" && slices.Contains(tags, "keyseal_noazure") {
			noAzure = append(noAzure, fn)
		}
	}
	var errs []string
	for _, miss := range []struct {
		fns      []string
		tag, key string
	}{{noGCP, "keyseal_nogcp", "gcpCredentials"}, {noAzure, "keyseal_noazure", "azureClientId"}} {
		if len(miss.fns) > 0 {
			sort.Strings(miss.fns)
			errs = append(errs, fmt.Sprintf("%s is set but %s/{%s} was built with -tags %s, without that provider: run make build ENV=%s (make synth, diff and deploy ENV=%s build first)",
				miss.key, assetDir, strings.Join(miss.fns, ","), miss.tag, env, env))
		}
	}
	return errs
}
