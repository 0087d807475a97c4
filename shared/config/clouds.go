package config

import (
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"

	"github.com/keyseal/keyseal/shared/internal/lazyre"
)

// gcpCredentialTypes are the Google credentials JSON types keyseal takes.
var gcpCredentialTypes = []string{"external_account", "service_account", "impersonated_service_account", "authorized_user"}

// gcpServiceAccount is a service account email.
var gcpServiceAccount = lazyre.New(`^[a-z0-9-]{1,63}@[a-z0-9-]+\.iam\.gserviceaccount\.com$`)

// load checks the credentials JSON and fills ServiceAccount from it when
// it is unset. The JSON itself is never echoed in an error: it may hold a
// private key.
func (g *GCP) load() []error {
	var errs []error
	if g.Credentials != "" {
		var c struct {
			Type                           string `json:"type"`
			ClientEmail                    string `json:"client_email"`
			ServiceAccountImpersonationURL string `json:"service_account_impersonation_url"`
		}
		if err := json.Unmarshal([]byte(g.Credentials), &c); err != nil {
			errs = append(errs, fmt.Errorf("KEYSEAL_GCP_CREDENTIALS: not a JSON object (%s): want the content of a Google credentials file, such as the external-account config of workload identity federation", jsonProblem(err)))
		} else if !slices.Contains(gcpCredentialTypes, c.Type) {
			errs = append(errs, fmt.Errorf("KEYSEAL_GCP_CREDENTIALS: type %q: want one of %s", c.Type, strings.Join(gcpCredentialTypes, ", ")))
		} else if g.ServiceAccount == "" {
			g.ServiceAccount = c.ClientEmail
			if u := c.ServiceAccountImpersonationURL; u != "" {
				g.ServiceAccount = impersonatedAccount(u)
			}
		}
	}
	if g.ServiceAccount != "" && !gcpServiceAccount.MatchString(g.ServiceAccount) {
		errs = append(errs, fmt.Errorf("KEYSEAL_GCP_SERVICE_ACCOUNT=%q: want a service account email (NAME@PROJECT.iam.gserviceaccount.com)", g.ServiceAccount))
	}
	if g.Credentials != "" && g.ServiceAccount == "" && len(errs) == 0 {
		errs = append(errs, fmt.Errorf("KEYSEAL_GCP_SERVICE_ACCOUNT is required: the credentials name no service account, and customers grant one"))
	}
	return errs
}

// impersonatedAccount is the email in an external account's
// service_account_impersonation_url
// (https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/EMAIL:generateAccessToken).
func impersonatedAccount(u string) string {
	p, err := url.Parse(u)
	if err != nil {
		return ""
	}
	_, rest, ok := strings.Cut(p.Path, "/serviceAccounts/")
	if !ok {
		return ""
	}
	email, _, _ := strings.Cut(rest, ":")
	return email
}

func jsonProblem(err error) string {
	// A syntax error's message quotes no input; anything else is named
	// generically so no credential byte reaches a log.
	if se, ok := err.(*json.SyntaxError); ok {
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	}
	return "not an object of the expected fields"
}

// guid is an Entra tenant or application id.
var guid = lazyre.New(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// secretARN is a Secrets Manager secret ARN.
var secretARN = lazyre.New(`^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+$`)

func (a Azure) check() []error {
	if !a.Enabled() {
		if a.TenantID != "" || a.ClientSecretARN != "" || a.ClientSecret != "" {
			return []error{fmt.Errorf("KEYSEAL_AZURE_CLIENT_ID is required when any other KEYSEAL_AZURE_* variable is set")}
		}
		return nil
	}
	var errs []error
	if !guid.MatchString(a.ClientID) {
		errs = append(errs, fmt.Errorf("KEYSEAL_AZURE_CLIENT_ID=%q: want the app registration's application (client) id, a GUID", a.ClientID))
	}
	if !guid.MatchString(a.TenantID) {
		errs = append(errs, fmt.Errorf("KEYSEAL_AZURE_TENANT_ID=%q: want keyseal's Entra tenant id, a GUID", a.TenantID))
	}
	switch {
	case a.ClientSecretARN == "" && a.ClientSecret == "":
		errs = append(errs, fmt.Errorf("KEYSEAL_AZURE_CLIENT_SECRET_ARN is required with KEYSEAL_AZURE_CLIENT_ID (the Secrets Manager secret holding the app's client secret; KEYSEAL_AZURE_CLIENT_SECRET for local runs)"))
	case a.ClientSecretARN != "" && a.ClientSecret != "":
		errs = append(errs, fmt.Errorf("set only one of KEYSEAL_AZURE_CLIENT_SECRET_ARN and KEYSEAL_AZURE_CLIENT_SECRET"))
	case a.ClientSecretARN != "" && !secretARN.MatchString(a.ClientSecretARN):
		errs = append(errs, fmt.Errorf("KEYSEAL_AZURE_CLIENT_SECRET_ARN=%q: want a Secrets Manager secret ARN (arn:aws:secretsmanager:REGION:ACCOUNT:secret:NAME)", a.ClientSecretARN))
	}
	return errs
}
