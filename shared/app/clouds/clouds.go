// Package clouds builds the gcp-kms and azure-kv providers of the
// Lambdas that serve them (app.Needs.Clouds = FromConfig). It is apart
// from package app so that a Lambda that never needs them (key-events:
// the events it gets name AWS key ARNs) links neither Google's auth
// library nor the Azure SDK (about 2 MB of binary and 0.3 ms of package
// init; it was 16 MB and 3 ms while gcp-kms used the gRPC Cloud KMS
// client).
//
// Build tags drop one provider from a build: keyseal_nogcp (no Google
// auth library, no shared/gcpkms) and keyseal_noazure (no Azure SDK, no
// shared/azurekv, no Secrets Manager client). `make build ENV=x` sets
// them when x's cdk.json configures no GCP (resp. Azure) identity
// (scripts/buildtags). A tagged build whose configuration enables that
// provider anyway fails its init naming the variable: it never serves
// without a provider it was configured for.
package clouds

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/keyseal/keyseal/shared/app"
	"github.com/keyseal/keyseal/shared/config"
	"github.com/keyseal/keyseal/shared/keyseal"
)

// Option adjusts how Providers reaches Google and Azure; tests
// and the local server point it at stand-ins. Production passes none.
type Option func(*cloudOptions)

// cloudOptions holds each provider's options (empty structs in a build
// without that provider: gcp_off.go, azure_off.go).
type cloudOptions struct {
	gcp   gcpOptions
	azure azureOptions
}

// FromConfig is Providers without options: what app.Needs.Clouds takes.
func FromConfig(ctx context.Context, cfg config.Config, aws *app.Clients) (keyseal.Providers, error) {
	return Providers(ctx, cfg, aws)
}

// Providers builds the gcp-kms and azure-kv providers cfg enables
// (none when neither is): keyseal's own identity in each cloud, read
// once at start, so a missing or malformed credential fails the process
// at init, naming the setting, never its value. aws supplies the AWS
// configuration of the Secrets Manager client that reads the Azure
// client secret (built here: no other Lambda code links that client).
func Providers(ctx context.Context, cfg config.Config, aws *app.Clients, opts ...Option) (keyseal.Providers, error) {
	var o cloudOptions
	for _, opt := range opts {
		opt(&o)
	}
	p := keyseal.Providers{}
	if cfg.GCP.Enabled() {
		g, err := newGCP(ctx, cfg.GCP, o.gcp)
		if err != nil {
			return nil, fmt.Errorf("configuration: KEYSEAL_GCP_CREDENTIALS: %w", err)
		}
		p[keyseal.ProviderGCP] = g
	}
	if cfg.Azure.Enabled() {
		a, err := newAzure(ctx, cfg.Azure, aws, o.azure)
		if err != nil {
			return nil, fmt.Errorf("configuration: %w", err)
		}
		p[keyseal.ProviderAzure] = a
	}
	return p, nil
}

// ParseClientSecret returns the client secret of a secret string: the
// string itself, or the client_secret field of a JSON object.
func ParseClientSecret(s string) (string, error) {
	if len(s) == 0 || s[0] != '{' {
		return s, nil
	}
	var v struct {
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(s), &v); err != nil || v.ClientSecret == "" {
		return "", errors.New(`the secret is a JSON object without a "client_secret" string: want the client secret itself, or {"client_secret": "..."}`)
	}
	return v.ClientSecret, nil
}
