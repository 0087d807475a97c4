package gcpkms

import (
	"context"
	"strings"
	"sync"

	kms "cloud.google.com/go/kms/apiv1"
	"golang.org/x/oauth2"
	"google.golang.org/api/impersonate"
	"google.golang.org/api/option"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// cloudPlatform is the scope Cloud KMS calls need.
const cloudPlatform = "https://www.googleapis.com/auth/cloud-platform"

// ServiceAccountClients returns a clientFor (see WithServiceAccounts) that
// builds one Cloud KMS client per service account, authenticated with
// tokens from the IAM Credentials API (generateAccessToken, cached and
// refreshed before they expire). The base credentials are keyseal's own,
// from iamOpts (Application Default Credentials when empty, which covers a
// workload-identity-federation config for AWS); kmsOpts are the options of
// every KMS client (endpoint, transport). Clients are kept: there is one
// small entry per registered service account, and each impersonates once
// per token lifetime, not once per call.
//
// The customer's side is roles/iam.serviceAccountTokenCreator for
// keyseal's identity on the service account: once revoked, every call
// through it answers PermissionDenied (access_denied), as a revoked KMS
// grant does.
func ServiceAccountClients(ctx context.Context, iamOpts, kmsOpts []option.ClientOption) func(serviceAccount string) (API, error) {
	var mu sync.Mutex
	clients := map[string]API{}
	return func(sa string) (API, error) {
		mu.Lock()
		defer mu.Unlock()
		if c, ok := clients[sa]; ok {
			return c, nil
		}
		ts, err := impersonate.CredentialsTokenSource(ctx, impersonate.CredentialsConfig{TargetPrincipal: sa, Scopes: []string{cloudPlatform}}, iamOpts...)
		if err != nil {
			return nil, err
		}
		opts := append(append([]option.ClientOption(nil), kmsOpts...), option.WithTokenSource(deniedTokens{ts}))
		c, err := kms.NewKeyManagementClient(ctx, opts...)
		if err != nil {
			return nil, err
		}
		clients[sa] = c
		return c, nil
	}
}

// deniedTokens gives gRPC a status for a token the IAM Credentials API
// would not mint. A 403 (keyseal's tokenCreator binding on the service
// account is gone) or 404 (the account was deleted) is PermissionDenied,
// access_denied like a revoked KMS grant; any other failure (the IAM API
// down, a timeout) is Unavailable, transient. Without it gRPC reports both
// as Unauthenticated and the classifier could not tell them apart.
// keyseal's own base credentials refused (its federation config, its own
// service account) come first and stay Unauthenticated: their text holds
// "credentials: status code 4xx", not the "impersonate: status code" of
// the customer's account, and they must never seal.
type deniedTokens struct{ ts oauth2.TokenSource }

func (d deniedTokens) Token() (*oauth2.Token, error) {
	tok, err := d.ts.Token()
	switch {
	case err == nil:
		return tok, nil
	case OwnCredentialsRefused(err.Error()):
		return nil, status.Errorf(codes.Unauthenticated, "keyseal's own Google credentials were refused: %v", err)
	case strings.Contains(err.Error(), "impersonate: status code 403"), strings.Contains(err.Error(), "impersonate: status code 404"):
		return nil, status.Errorf(codes.PermissionDenied, "impersonating the key's service account was refused: %v", err)
	default:
		return nil, status.Errorf(codes.Unavailable, "impersonating the key's service account failed: %v", err)
	}
}
