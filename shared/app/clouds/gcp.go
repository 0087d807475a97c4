//go:build !keyseal_nogcp

package clouds

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"

	"golang.org/x/oauth2/google"

	"github.com/keyseal/keyseal/shared/config"
	"github.com/keyseal/keyseal/shared/gcpkms"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// gcpOptions are where Cloud KMS and the IAM Credentials API are reached
// (WithGCPEndpoints); the zero value is Google's.
type gcpOptions = gcpkms.Endpoints

// WithGCPEndpoints points the gcp-kms provider at e (a stand-in);
// keyseal's credentials are still the configured ones.
func WithGCPEndpoints(e gcpkms.Endpoints) Option {
	return func(o *cloudOptions) { o.gcp = e }
}

// gcpCredentialTypes are the credentials JSON types keyseal loads
// (config.Load accepted no other); each is loaded as exactly the type it
// declares.
var gcpCredentialTypes = []google.CredentialsType{google.ExternalAccount, google.ServiceAccount,
	google.ImpersonatedServiceAccount, google.AuthorizedUser}

// newGCP is the Cloud KMS provider on keyseal's credentials JSON, and
// impersonation (for keys naming a service_account) based on the same
// credentials. golang.org/x/oauth2/google loads them, restricted to the
// type the JSON declares, and refreshes the token.
func newGCP(ctx context.Context, g config.GCP, e gcpOptions) (keyseal.Provider, error) {
	var head struct {
		Type       google.CredentialsType `json:"type"`
		PrivateKey string                 `json:"private_key"`
	}
	if err := json.Unmarshal([]byte(g.Credentials), &head); err != nil {
		return nil, errors.New("not a credentials JSON object")
	}
	if !slices.Contains(gcpCredentialTypes, head.Type) {
		return nil, fmt.Errorf("credential type %q is not accepted", head.Type)
	}
	if head.Type == google.ServiceAccount {
		if err := checkPrivateKey(head.PrivateKey); err != nil {
			return nil, err
		}
	}
	creds, err := google.CredentialsFromJSONWithType(e.TokenContext(ctx), []byte(g.Credentials), head.Type, gcpkms.CloudPlatform)
	if err != nil {
		// The library's parse errors name fields, not their values.
		return nil, fmt.Errorf("loading the %s credentials: %w", head.Type, err)
	}
	return gcpkms.New(e.Client(creds.TokenSource), gcpkms.WithServiceAccounts(gcpkms.ServiceAccountClients(creds.TokenSource, e)),
		gcpkms.WithIdentity(g.ServiceAccount)), nil
}

// checkPrivateKey parses a service account's private_key, which
// golang.org/x/oauth2 reads only when it first signs: a broken key fails
// the process at init, as every other malformed setting does. The error
// never holds the key.
func checkPrivateKey(key string) error {
	b, _ := pem.Decode([]byte(key))
	if b == nil {
		return errors.New("the service_account's private_key is not PEM")
	}
	if _, err := x509.ParsePKCS8PrivateKey(b.Bytes); err != nil {
		if _, err1 := x509.ParsePKCS1PrivateKey(b.Bytes); err1 != nil {
			return errors.New("the service_account's private_key is not a PKCS #8 or PKCS #1 RSA key")
		}
	}
	return nil
}
