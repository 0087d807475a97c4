package azurekv

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

// keyseal asks Entra for tokens with the OAuth 2.0 client-credentials
// grant (its app registration's client secret) through
// golang.org/x/oauth2/clientcredentials, not azidentity: that is the one
// flow keyseal uses, and azidentity with MSAL under it cost each Lambda
// that serves azure-kv about 0.2 ms of package init and 0.35 MB on every
// cold start. What azidentity would add is not used here: instance
// discovery, managed identity, other credential types.

// DefaultAuthorityHost is Microsoft Entra ID's public cloud.
const DefaultAuthorityHost = "https://login.microsoftonline.com/"

// EntraOptions say where keyseal's tokens come from: the authority host
// (DefaultAuthorityHost when empty; a sovereign cloud's or a stand-in's
// otherwise) and the HTTP client of the token requests (each bounded by
// tokenTimeout when nil).
type EntraOptions struct {
	AuthorityHost string
	HTTPClient    *http.Client
}

// tokenTimeout bounds one token request: azcore asks for a token outside
// the Key Vault call's own deadline.
const tokenTimeout = 10 * time.Second

// refreshEarly is how long before a token expires it is replaced, as
// azidentity does.
const refreshEarly = 5 * time.Minute

// clientSecretCredential is one tenant's client-credentials grant, a
// token cache per scope set.
type clientSecretCredential struct {
	cfg clientcredentials.Config
	ctx context.Context // carries the HTTP client

	mu      sync.Mutex
	byScope map[string]oauth2.TokenSource
}

// NewClientSecretCredential returns the azcore.TokenCredential of app
// clientID with secret in tenantID: tokens from the tenant's v2.0 token
// endpoint, cached until five minutes before they expire. A refused
// request's error is an *oauth2.RetrieveError holding Entra's answer.
func NewClientSecretCredential(tenantID, clientID, secret string, o *EntraOptions) (azcore.TokenCredential, error) {
	if !validTenant(tenantID) {
		return nil, fmt.Errorf("azure-kv: %q is not an Entra tenant id (letters, digits, '-' and '.')", tenantID)
	}
	var opts EntraOptions
	if o != nil {
		opts = *o
	}
	host := cmp.Or(opts.AuthorityHost, DefaultAuthorityHost)
	hc := opts.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: tokenTimeout}
	}
	return &clientSecretCredential{
		cfg: clientcredentials.Config{ClientID: clientID, ClientSecret: secret,
			TokenURL: strings.TrimSuffix(host, "/") + "/" + tenantID + "/oauth2/v2.0/token", AuthStyle: oauth2.AuthStyleInParams},
		ctx:     context.WithValue(context.Background(), oauth2.HTTPClient, hc),
		byScope: map[string]oauth2.TokenSource{},
	}, nil
}

// validTenant is azidentity's rule for a tenant id: it is a path segment
// of the token URL.
func validTenant(t string) bool {
	if t == "" {
		return false
	}
	for _, r := range t {
		if !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '.') {
			return false
		}
	}
	return true
}

// GetToken implements azcore.TokenCredential. The claims and tenant of a
// Key Vault challenge are not followed: each credential is one tenant's,
// and keyseal does not opt into continuous access evaluation.
func (c *clientSecretCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if len(opts.Scopes) == 0 {
		return azcore.AccessToken{}, errors.New("azure-kv: a token request names no scope")
	}
	key := strings.Join(opts.Scopes, " ")
	c.mu.Lock()
	ts, ok := c.byScope[key]
	if !ok {
		cfg := c.cfg
		cfg.Scopes = opts.Scopes
		ts = oauth2.ReuseTokenSourceWithExpiry(nil, fetcher{&cfg, c.ctx}, refreshEarly)
		c.byScope[key] = ts
	}
	c.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return azcore.AccessToken{}, err
	}
	tok, err := ts.Token()
	if err != nil {
		return azcore.AccessToken{}, fmt.Errorf("azure-kv: Entra token request: %w", err)
	}
	return azcore.AccessToken{Token: tok.AccessToken, ExpiresOn: tok.Expiry}, nil
}

// fetcher asks Entra for a new token on every call (the reuse is
// ReuseTokenSourceWithExpiry's).
type fetcher struct {
	cfg *clientcredentials.Config
	ctx context.Context
}

func (f fetcher) Token() (*oauth2.Token, error) { return f.cfg.Token(f.ctx) }
