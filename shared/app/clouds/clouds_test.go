//go:build !keyseal_nogcp && !keyseal_noazure

package clouds_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/keyseal/keyseal/shared/app"
	"github.com/keyseal/keyseal/shared/app/clouds"
	"github.com/keyseal/keyseal/shared/azurekv/azurekvfake"
	"github.com/keyseal/keyseal/shared/azurekv/entrafake"
	"github.com/keyseal/keyseal/shared/config"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// gcpCredentials are one credentials JSON of each type keyseal accepts;
// none is used to call Google here.
func gcpCredentials(t *testing.T) map[string]string {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	sa, _ := json.Marshal(map[string]string{"type": "service_account", "project_id": "keyseal-prod", "private_key_id": "abc",
		"private_key": pemKey, "client_email": "keyseal@keyseal-prod.iam.gserviceaccount.com", "client_id": "1",
		"token_uri": "https://oauth2.googleapis.com/token"})
	return map[string]string{
		"external_account": `{"type":"external_account","audience":"//iam.googleapis.com/projects/123/locations/global/workloadIdentityPools/aws/providers/keyseal",
			"subject_token_type":"urn:ietf:params:aws:token-type:aws4_request","token_url":"https://sts.googleapis.com/v1/token",
			"service_account_impersonation_url":"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/keyseal@keyseal-prod.iam.gserviceaccount.com:generateAccessToken",
			"credential_source":{"environment_id":"aws1","region_url":"http://169.254.169.254/latest/meta-data/placement/availability-zone",
			"url":"http://169.254.169.254/latest/meta-data/iam/security-credentials","regional_cred_verification_url":"https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15"}}`,
		"service_account": string(sa),
		"impersonated_service_account": `{"type":"impersonated_service_account",
			"service_account_impersonation_url":"https://iamcredentials.googleapis.com/v1/projects/-/serviceAccounts/keyseal@keyseal-prod.iam.gserviceaccount.com:generateAccessToken",
			"source_credentials":{"type":"authorized_user","client_id":"c","client_secret":"s","refresh_token":"r"}}`,
		"authorized_user": `{"type":"authorized_user","client_id":"c.apps.googleusercontent.com","client_secret":"s","refresh_token":"r"}`,
	}
}

// TestProvidersGCPEachCredentialType: each accepted credentials JSON
// builds the real Cloud KMS client (nothing is fetched at start), and a
// JSON that is not a complete credential of its type fails naming the
// setting, with no byte of it in the error.
func TestProvidersGCPEachCredentialType(t *testing.T) {
	for typ, creds := range gcpCredentials(t) {
		t.Run(typ, func(t *testing.T) {
			p, err := clouds.Providers(context.Background(), config.Config{GCP: config.GCP{Credentials: creds}}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if p[keyseal.ProviderGCP] == nil || p[keyseal.ProviderAzure] != nil || len(p) != 1 {
				t.Fatalf("providers %v: want gcp-kms only", p)
			}
		})
	}
	broken := `{"type":"service_account","client_email":"keyseal@keyseal-prod.iam.gserviceaccount.com","private_key":"TOPSECRET-not-a-pem"}`
	_, err := clouds.Providers(context.Background(), config.Config{GCP: config.GCP{Credentials: broken}}, nil)
	if err == nil || !strings.Contains(err.Error(), "KEYSEAL_GCP_CREDENTIALS") || strings.Contains(err.Error(), "TOPSECRET") {
		t.Fatalf("a broken service account key: %v", err)
	}
	if p, err := clouds.Providers(context.Background(), config.Config{}, nil); err != nil || len(p) != 0 {
		t.Fatalf("nothing configured: %v %v", p, err)
	}
}

// fakeSecretsManager answers GetSecretValue (the JSON 1.1 protocol the
// real SDK client speaks) from secrets, ResourceNotFoundException for any
// other id.
func fakeSecretsManager(t *testing.T, secrets map[string]string) *app.Clients {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ SecretId string }
		b, _ := io.ReadAll(r.Body)
		_ = json.Unmarshal(b, &in)
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if r.Header.Get("X-Amz-Target") != "secretsmanager.GetSecretValue" {
			w.WriteHeader(400)
			return
		}
		v, ok := secrets[in.SecretId]
		if !ok {
			w.WriteHeader(400)
			fmt.Fprint(w, `{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}`)
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"ARN": in.SecretId, "Name": "keyseal-azure", "SecretString": v, "VersionId": "v1"})
	}))
	t.Cleanup(srv.Close)
	return &app.Clients{Config: aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL),
		Credentials: credentials.NewStaticCredentialsProvider("AKID", "SECRET", "")}}
}

const (
	azureApp    = "11111111-2222-3333-4444-555555555555"
	azureTenant = "00000000-0000-0000-0000-000000000000" // the tenant the Key Vault fake's challenge names
	secretARN   = "arn:aws:secretsmanager:us-east-1:111122223333:secret:keyseal-azure-AbCdEf"
	clientSec   = "Cl1ent~Secret.Value"
)

// TestProvidersAzureSecretFromSecretsManager: the client secret is
// read from Secrets Manager (plain, or {"client_secret": ...}), and the
// provider wraps and unwraps through keyseal's Entra credential (the Entra fake takes
// only that secret) and azkeys; a missing secret is a startup error
// naming the ARN, never a value.
func TestProvidersAzureSecretFromSecretsManager(t *testing.T) {
	for name, stored := range map[string]string{"plain": clientSec, "json": `{"client_secret":"` + clientSec + `"}`} {
		t.Run(name, func(t *testing.T) {
			entra, kv := entrafake.New(t, clientSec), azurekvfake.New(t)
			cfg := config.Config{Azure: config.Azure{ClientID: azureApp, TenantID: azureTenant, ClientSecretARN: secretARN}}
			p, err := clouds.Providers(context.Background(), cfg, fakeSecretsManager(t, map[string]string{secretARN: stored}),
				clouds.WithAzureOptions(entra.Options(), kv.ClientOptions()))
			if err != nil {
				t.Fatal(err)
			}
			az := p[keyseal.ProviderAzure]
			if az == nil || len(p) != 1 {
				t.Fatalf("providers %v: want azure-kv only", p)
			}
			key := keyseal.KeyRef{Provider: keyseal.ProviderAzure, KeyID: kv.MustCreateKey(t, "https://acme.vault.azure.net", "tmk")}
			ec := map[string]string{"keyseal:tenant": "acme"}
			w, err := az.Wrap(context.Background(), key, []byte("tmk"), ec)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := az.Unwrap(context.Background(), key, w, ec); err != nil || string(got) != "tmk" {
				t.Fatalf("Unwrap = %q, %v", got, err)
			}
			if entra.Requests() == 0 {
				t.Fatal("no token was requested from Entra")
			}
		})
	}
	for name, secrets := range map[string]map[string]string{
		"missing":                 {},
		"json without the secret": {secretARN: `{"password":"` + clientSec + `"}`},
		"empty":                   {secretARN: ""},
	} {
		t.Run(name, func(t *testing.T) {
			cfg := config.Config{Azure: config.Azure{ClientID: azureApp, TenantID: azureTenant, ClientSecretARN: secretARN}}
			_, err := clouds.Providers(context.Background(), cfg, fakeSecretsManager(t, secrets))
			if err == nil || !strings.Contains(err.Error(), secretARN) || strings.Contains(err.Error(), clientSec) {
				t.Fatalf("Providers with a %s secret: %v", name, err)
			}
		})
	}
}

// TestProvidersAzureLocalSecret: KEYSEAL_AZURE_CLIENT_SECRET needs no
// Secrets Manager; a refusal of it names that variable.
func TestProvidersAzureLocalSecret(t *testing.T) {
	entra, kv := entrafake.New(t, "another-secret"), azurekvfake.New(t)
	cfg := config.Config{Azure: config.Azure{ClientID: azureApp, TenantID: azureTenant, ClientSecret: clientSec}}
	p, err := clouds.Providers(context.Background(), cfg, nil, clouds.WithAzureOptions(entra.Options(), kv.ClientOptions()))
	if err != nil {
		t.Fatal(err)
	}
	key := keyseal.KeyRef{Provider: keyseal.ProviderAzure, KeyID: kv.MustCreateKey(t, "https://acme.vault.azure.net", "tmk")}
	_, err = p[keyseal.ProviderAzure].Wrap(context.Background(), key, []byte("tmk"), nil)
	ke := keyseal.ClassifyKMS(err)
	if ke.Terminal || ke.Code != keyseal.CodeOwnCredentialsRejected || !strings.Contains(ke.Error(), "KEYSEAL_AZURE_CLIENT_SECRET") || strings.Contains(ke.Error(), clientSec) {
		t.Fatalf("a refused local secret: %v", err)
	}
}

func TestParseClientSecret(t *testing.T) {
	for in, want := range map[string]string{"abc": "abc", `{"client_secret":"abc"}`: "abc", `{"client_secret":"abc","note":"x"}`: "abc"} {
		if got, err := clouds.ParseClientSecret(in); err != nil || got != want {
			t.Errorf("ParseClientSecret(%q) = %q, %v", in, got, err)
		}
	}
	for _, in := range []string{`{"secret":"abc"}`, `{"client_secret":`, `{"client_secret":7}`} {
		if _, err := clouds.ParseClientSecret(in); err == nil || strings.Contains(err.Error(), "abc") {
			t.Errorf("ParseClientSecret(%q): %v", in, err)
		}
	}
}

// TestProvidersNameKeysealsIdentity: the remedies health gives name
// keyseal's configured identity (the member or assignee the customer
// grants), not a placeholder.
func TestProvidersNameKeysealsIdentity(t *testing.T) {
	const sa = "keyseal@keyseal-prod.iam.gserviceaccount.com"
	p, err := clouds.Providers(context.Background(), config.Config{GCP: config.GCP{Credentials: gcpCredentials(t)["external_account"], ServiceAccount: sa},
		Azure: config.Azure{ClientID: azureApp, TenantID: azureTenant, ClientSecret: clientSec}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	denied := keyseal.Finding{Problem: keyseal.ReasonAccessDenied}
	gcp := p.Advise(keyseal.KeyRef{Provider: keyseal.ProviderGCP, KeyID: "projects/acme/locations/global/keyRings/r/cryptoKeys/k"}, denied)
	azure := p.Advise(keyseal.KeyRef{Provider: keyseal.ProviderAzure, KeyID: "https://acme.vault.azure.net/keys/tmk"}, denied)
	if !strings.Contains(fmt.Sprint(gcp), "serviceAccount:"+sa) || !strings.Contains(fmt.Sprint(azure), "--assignee "+azureApp) {
		t.Fatalf("remedies do not name keyseal's identity:\ngcp %v\nazure %v", gcp, azure)
	}
}
