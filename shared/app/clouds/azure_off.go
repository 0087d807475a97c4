//go:build keyseal_noazure

package clouds

import (
	"context"
	"errors"

	"github.com/keyseal/keyseal/shared/app"
	"github.com/keyseal/keyseal/shared/config"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// azureOptions is empty: this build has no Azure SDK.
type azureOptions struct{}

// newAzure refuses: the configuration enables azure-kv, and a Lambda
// serving without it would fail every Azure tenant's call instead of its
// own init.
func newAzure(context.Context, config.Azure, *app.Clients, azureOptions) (keyseal.Provider, error) {
	return nil, errors.New("KEYSEAL_AZURE_CLIENT_ID is set, but this binary was built with -tags keyseal_noazure and has no azure-kv provider: " +
		"rebuild without that tag (make build ENV=NAME leaves it out when that environment's cdk.json sets azureClientId), or unset the Azure variables")
}
