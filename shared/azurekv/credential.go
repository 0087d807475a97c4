package azurekv

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"
)

// noRetries is the retry policy of every Azure pipeline keyseal builds:
// one try, no retries, no per-try timeout. azcore would otherwise retry
// 429/5xx and dropped connections three times with back-off, which could
// outlast KEYSEAL_KMS_TIMEOUT and blur a partition into a slow answer;
// keyseal's own per-call deadline and its transient handling (serve from
// cache, retry on the next poll) decide instead, as for GCP.
var noRetries = policy.RetryOptions{MaxRetries: -1}

// ClientOptions are the azkeys pipeline options of production wiring:
// retries off (see noRetries), so the caller's context is the only
// deadline.
func ClientOptions() *azkeys.ClientOptions {
	return &azkeys.ClientOptions{ClientOptions: azcore.ClientOptions{Retry: noRetries}}
}

// SecretSource reads keyseal's client secret (from Secrets Manager in
// production). It is called at start and again when Entra refuses the
// secret it returned.
type SecretSource func(ctx context.Context) (string, error)

// CredentialsConfig configures Credentials.
type CredentialsConfig struct {
	// ClientID is keyseal's app registration; HomeTenant its own Entra
	// tenant, used for keys that name no azure_tenant_id.
	ClientID, HomeTenant string
	// Secret reads the client secret; Where names its source in errors
	// (the secret's ARN or the environment variable; never the value).
	Secret SecretSource
	Where  string
	// Reread says whether a refused secret is read again from Secret (a
	// rotation in Secrets Manager); false for a fixed local secret.
	Reread bool
	// MinReread is the least time between two reads of a refused secret
	// (a minute when zero).
	MinReread time.Duration
	// Options say where Entra is (its authority host, the HTTP client).
	Options *EntraOptions
	Now     func() time.Time
}

// Credentials are keyseal's own Entra identity: one client-secret
// credential per tenant (each caches its tokens), all from one secret.
// When Entra refuses that secret (AADSTS7000215 invalid, AADSTS7000222
// expired), it is read again, at most once per MinReread, and the
// credentials rebuilt; a secret still refused fails the call with the
// transient CodeOwnCredentialsRejected, never a seal.
type Credentials struct {
	cfg CredentialsConfig

	mu       sync.Mutex
	secret   string
	lastRead time.Time
	byTenant map[string]azcore.TokenCredential
}

// NewCredentials reads the secret once, so a missing or unreadable one is
// a startup error naming its source.
func NewCredentials(ctx context.Context, cfg CredentialsConfig) (*Credentials, error) {
	if cfg.MinReread == 0 {
		cfg.MinReread = time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	c := &Credentials{cfg: cfg, byTenant: map[string]azcore.TokenCredential{}}
	secret, err := c.read(ctx)
	if err != nil {
		return nil, err
	}
	c.secret = secret
	return c, nil
}

func (c *Credentials) read(ctx context.Context) (string, error) {
	s, err := c.cfg.Secret(ctx)
	if err == nil && s == "" {
		err = errors.New("the secret is empty")
	}
	if err != nil {
		return "", fmt.Errorf("azure-kv: keyseal's client secret (%s): %w", c.cfg.Where, err)
	}
	return s, nil
}

// For returns the credential of tenantID ("" for keyseal's home tenant),
// the shape SDKClients takes.
func (c *Credentials) For(tenantID string) (azcore.TokenCredential, error) {
	if tenantID == "" {
		tenantID = c.cfg.HomeTenant
	}
	if _, err := c.current(tenantID); err != nil {
		return nil, err
	}
	return tenantCredential{c, tenantID}, nil
}

// current returns the tenant's credential built from the current secret.
func (c *Credentials) current(tenantID string) (azcore.TokenCredential, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cred, ok := c.byTenant[tenantID]; ok {
		return cred, nil
	}
	cred, err := NewClientSecretCredential(tenantID, c.cfg.ClientID, c.secret, c.cfg.Options)
	if err != nil {
		return nil, fmt.Errorf("azure-kv: credential for tenant %s: %w", tenantID, err)
	}
	c.byTenant[tenantID] = cred
	return cred, nil
}

// reread reads the secret again after Entra refused it, unless it was read
// again less than MinReread ago (the read at start does not count, so a
// rotation just after start is picked up at once). It reports whether the secret changed; every
// tenant's credential is then rebuilt on next use.
func (c *Credentials) reread(ctx context.Context) (bool, error) {
	if !c.cfg.Reread {
		return false, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.cfg.Now()
	if !c.lastRead.IsZero() && now.Sub(c.lastRead) < c.cfg.MinReread {
		return false, nil
	}
	c.lastRead = now
	s, err := c.read(ctx)
	if err != nil || s == c.secret {
		return false, err
	}
	c.secret = s
	clear(c.byTenant)
	return true, nil
}

// fix is the operator's remedy, for the error of a refused secret.
func (c *Credentials) fix() string {
	if c.cfg.Reread {
		return "the operator must rotate the secret in Secrets Manager (" + c.cfg.Where + ") to a current client secret of the app registration"
	}
	return "the operator must set " + c.cfg.Where + " to a current client secret of the app registration"
}

// tenantCredential is one tenant's view of Credentials.
type tenantCredential struct {
	c      *Credentials
	tenant string
}

// GetToken implements azcore.TokenCredential.
func (t tenantCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	cred, err := t.c.current(t.tenant)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	tok, err := cred.GetToken(ctx, opts)
	if err == nil || !IsOwnSecretRejected(err) {
		return tok, err
	}
	if changed, rerr := t.c.reread(ctx); rerr != nil {
		return azcore.AccessToken{}, t.rejected(err, rerr)
	} else if changed {
		if cred, err = t.c.current(t.tenant); err != nil {
			return azcore.AccessToken{}, err
		}
		if tok, err = cred.GetToken(ctx, opts); err == nil || !IsOwnSecretRejected(err) {
			return tok, err
		}
	}
	return azcore.AccessToken{}, t.rejected(err, nil)
}

func (t tenantCredential) rejected(err, rereadErr error) error {
	code, desc, _ := entraRefusal(err)
	fix := t.c.fix()
	if rereadErr != nil {
		fix += "; reading it again failed: " + rereadErr.Error()
	}
	return OwnSecretRejected(code, desc, fix)
}
