//go:build keyseal_nogcp

package clouds

import (
	"context"
	"errors"

	"github.com/keyseal/keyseal/shared/config"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// gcpOptions is empty: this build has no Cloud KMS client.
type gcpOptions struct{}

// newGCP refuses: the configuration enables gcp-kms, and a Lambda
// serving without it would fail every Google tenant's call instead of
// its own init. Providers prefixes the variable's name.
func newGCP(context.Context, config.GCP, gcpOptions) (keyseal.Provider, error) {
	return nil, errors.New("set, but this binary was built with -tags keyseal_nogcp and has no gcp-kms provider: " +
		"rebuild without that tag (make build ENV=NAME leaves it out when that environment's cdk.json sets gcpCredentials), or unset the variable")
}
