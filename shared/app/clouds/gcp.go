//go:build !keyseal_nogcp

package clouds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	kms "cloud.google.com/go/kms/apiv1"
	"google.golang.org/api/option"

	"github.com/keyseal/keyseal/shared/config"
	"github.com/keyseal/keyseal/shared/gcpkms"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// gcpOptions are the extra Cloud KMS client options (WithGCPOptions).
type gcpOptions []option.ClientOption

// WithGCPOptions adds options to every Cloud KMS client (endpoint,
// transport); keyseal's credentials are still the configured ones.
func WithGCPOptions(opts ...option.ClientOption) Option {
	return func(o *cloudOptions) { o.gcp = append(o.gcp, opts...) }
}

// gcpCredentialTypes maps the credentials JSON's type to the typed option
// that loads only that type (config.Load accepted no other).
var gcpCredentialTypes = map[string]option.CredentialsType{
	"external_account":             option.ExternalAccount,
	"service_account":              option.ServiceAccount,
	"impersonated_service_account": option.ImpersonatedServiceAccount,
	"authorized_user":              option.AuthorizedUser,
}

// newGCP is the real Cloud KMS client on keyseal's credentials JSON,
// loaded with the option restricted to the type the JSON declares, and
// impersonation (for keys naming a service_account) based on the same
// credentials. Each call sets its own no-retry option (gcpkms), so
// KEYSEAL_KMS_TIMEOUT bounds it.
func newGCP(ctx context.Context, g config.GCP, extra gcpOptions) (keyseal.Provider, error) {
	var head struct {
		Type string `json:"type"`
	}
	if err := json.Unmarshal([]byte(g.Credentials), &head); err != nil {
		return nil, errors.New("not a credentials JSON object")
	}
	typ, ok := gcpCredentialTypes[head.Type]
	if !ok {
		return nil, fmt.Errorf("credential type %q is not accepted", head.Type)
	}
	creds := option.WithAuthCredentialsJSON(typ, []byte(g.Credentials))
	kmsOpts := append([]option.ClientOption{creds}, extra...)
	client, err := kms.NewKeyManagementClient(ctx, kmsOpts...)
	if err != nil {
		// The auth library's parse errors name fields, not their values.
		return nil, fmt.Errorf("building the Cloud KMS client from the %s credentials: %w", head.Type, err)
	}
	return gcpkms.New(client, gcpkms.WithServiceAccounts(gcpkms.ServiceAccountClients(ctx, []option.ClientOption{creds}, extra)),
		gcpkms.WithIdentity(g.ServiceAccount)), nil
}
