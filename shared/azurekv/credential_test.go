package azurekv_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/keyseal/keyseal/shared/azurekv"
	"github.com/keyseal/keyseal/shared/azurekv/azurekvfake"
	"github.com/keyseal/keyseal/shared/azurekv/entrafake"
	"github.com/keyseal/keyseal/shared/keyseal"
)

const (
	appID = "11111111-2222-3333-4444-555555555555"
	// challengeTenant is the tenant the Key Vault fake's challenge names.
	challengeTenant = "00000000-0000-0000-0000-000000000000"
)

var vaultScope = policy.TokenRequestOptions{Scopes: []string{"https://vault.azure.net/.default"}}

// entraRefused is the error keyseal's Entra credential returns when the
// Entra fake, with tenant in state, is sent secret.
func entraRefused(t *testing.T, state, secret string) error {
	t.Helper()
	entra := entrafake.New(t, "good-secret")
	entra.Expire("expired-secret")
	entra.SetTenant(challengeTenant, state)
	cred, err := azurekv.NewClientSecretCredential(challengeTenant, appID, secret, entra.Options())
	if err != nil {
		t.Fatal(err)
	}
	_, err = cred.GetToken(context.Background(), vaultScope)
	if err == nil {
		t.Fatal("the Entra fake issued a token")
	}
	return err
}

// secrets is a Secrets Manager stand-in: the current value and the reads.
type secrets struct {
	value string
	err   error
	reads int
}

func (s *secrets) read(context.Context) (string, error) { s.reads++; return s.value, s.err }

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newCredentials(t *testing.T, entra *entrafake.Server, src *secrets, c *clock) *azurekv.Credentials {
	t.Helper()
	creds, err := azurekv.NewCredentials(context.Background(), azurekv.CredentialsConfig{
		ClientID: appID, HomeTenant: challengeTenant, Secret: src.read, Reread: true,
		Where: "arn:aws:secretsmanager:us-east-1:111122223333:secret:keyseal-azure", Options: entra.Options(), Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return creds
}

// TestRotatedSecretIsReadAgain: after the operator rotates the secret in
// Secrets Manager, the first refusal of the old one makes keyseal read
// the new one and carry on, through keyseal's Entra credential and azkeys.
func TestRotatedSecretIsReadAgain(t *testing.T) {
	entra, kv := entrafake.New(t, old), azurekvfake.New(t)
	src, c := &secrets{value: old}, &clock{time.Unix(1e9, 0)}
	p := azurekv.New(azurekv.SDKClients(newCredentials(t, entra, src, c).For, kv.ClientOptions()))
	key := keyseal.KeyRef{Provider: keyseal.ProviderAzure, KeyID: kv.MustCreateKey(t, vault, "tmk-rotate")}
	// Rotation after keyseal read the secret: Entra takes only the new
	// one, which Secrets Manager now holds.
	entra.Accept(rotated)
	entra.Revoke(old)
	src.value = rotated
	w, err := p.Wrap(context.Background(), key, []byte("tmk"), ec)
	if err != nil {
		t.Fatalf("Wrap after the rotation: %v", err)
	}
	if _, err := p.Unwrap(context.Background(), key, w, ec); err != nil {
		t.Fatal(err)
	}
	if src.reads != 2 {
		t.Fatalf("secret read %d times, want 2 (start, then once on refusal)", src.reads)
	}
}

// The client secrets of the tests; an error message never holds one.
const (
	old     = "Old~Secret.Value_1"
	rotated = "New~Secret.Value_2"
)

// TestRefusedSecretNeverSeals: a secret Entra refuses, and that Secrets
// Manager still holds, fails each call with the transient
// CodeOwnCredentialsRejected naming the AADSTS code and the fix, reads
// the secret again at most once a minute, and never seals.
func TestRefusedSecretNeverSeals(t *testing.T) {
	for _, c := range []struct{ name, code string }{{"invalid", "AADSTS7000215"}, {"expired", "AADSTS7000222"}} {
		t.Run(c.name, func(t *testing.T) {
			entra, kv := entrafake.New(t, old), azurekvfake.New(t)
			src, clk := &secrets{value: old}, &clock{time.Unix(1e9, 0)}
			creds := newCredentials(t, entra, src, clk)
			p := azurekv.New(azurekv.SDKClients(creds.For, kv.ClientOptions()))
			key := keyseal.KeyRef{Provider: keyseal.ProviderAzure, KeyID: kv.MustCreateKey(t, vault, "tmk-refused")}
			if c.name == "invalid" {
				entra.Revoke(old)
			} else {
				entra.Expire(old)
			}
			for i := range 3 {
				_, err := p.Wrap(context.Background(), key, []byte("tmk"), ec)
				ke := wantKMS(t, "Wrap", err, false, keyseal.ReasonUnreachable, keyseal.CodeOwnCredentialsRejected)
				for _, want := range []string{c.code, "rotate the secret in Secrets Manager", "secret:keyseal-azure"} {
					if !strings.Contains(ke.Error(), want) {
						t.Fatalf("call %d: %v does not mention %q", i, ke, want)
					}
				}
				if strings.Contains(ke.Error(), old) {
					t.Fatalf("the secret leaked: %v", ke)
				}
			}
			if src.reads != 2 {
				t.Fatalf("secret read %d times in a minute, want 2 (start, one re-read)", src.reads)
			}
			clk.t = clk.t.Add(time.Minute)
			_, _ = p.Wrap(context.Background(), key, []byte("tmk"), ec)
			if src.reads != 3 {
				t.Fatalf("secret not read again a minute later: %d reads", src.reads)
			}
		})
	}
}

// TestMissingSecretIsAStartupError: a secret that cannot be read, or is
// empty, fails NewCredentials naming where it was read from.
func TestMissingSecretIsAStartupError(t *testing.T) {
	entra := entrafake.New(t, "s1")
	for _, src := range []*secrets{{err: errors.New("ResourceNotFoundException")}, {value: ""}} {
		_, err := azurekv.NewCredentials(context.Background(), azurekv.CredentialsConfig{ClientID: appID, HomeTenant: challengeTenant,
			Secret: src.read, Where: "arn:aws:secretsmanager:us-east-1:111122223333:secret:keyseal-azure", Options: entra.Options()})
		if err == nil || !strings.Contains(err.Error(), "secret:keyseal-azure") {
			t.Fatalf("NewCredentials with an unreadable secret: %v", err)
		}
	}
}

// TestClientOptionsTurnRetriesOff: production pipelines try once, so
// keyseal's KMS deadline, not azcore's back-off, bounds a call.
func TestClientOptionsTurnRetriesOff(t *testing.T) {
	o := azurekv.ClientOptions()
	if o.Retry.MaxRetries >= 0 || o.Retry.TryTimeout != 0 {
		t.Fatalf("retry options %+v: want MaxRetries < 0 and no per-try timeout", o.Retry)
	}
	kv := azurekvfake.New(t)
	kv.Throttle(1, "5")
	opts := azurekv.ClientOptions()
	fakeOpts := kv.ClientOptions()
	opts.Transport, opts.DisableChallengeResourceVerification = fakeOpts.Transport, true
	p := azurekv.New(azurekv.SDKClients(func(string) (azcore.TokenCredential, error) { return azurekvfake.Credential{}, nil }, opts))
	key := keyseal.KeyRef{Provider: keyseal.ProviderAzure, KeyID: kv.MustCreateKey(t, vault, "tmk-once")}
	_, err := p.Wrap(context.Background(), key, []byte("tmk"), ec)
	wantKMS(t, "Wrap", err, false, keyseal.ReasonUnreachable, "Throttled")
}

// TestClientSecretCredentialCachesPerScope: a token is asked for once per
// scope set and reused until it nears expiry, and a tenant id that is not
// one is refused before any request.
func TestClientSecretCredentialCachesPerScope(t *testing.T) {
	entra := entrafake.New(t, old)
	cred, err := azurekv.NewClientSecretCredential(challengeTenant, appID, old, entra.Options())
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		tok, err := cred.GetToken(context.Background(), vaultScope)
		if err != nil || tok.Token != azurekvfake.Token || time.Until(tok.ExpiresOn) < 50*time.Minute {
			t.Fatalf("GetToken = %+v, %v", tok, err)
		}
	}
	if n := entra.Requests(); n != 1 {
		t.Fatalf("%d token requests for one scope, want 1", n)
	}
	if _, err := cred.GetToken(context.Background(), policy.TokenRequestOptions{Scopes: []string{"https://managedhsm.azure.net/.default"}}); err != nil {
		t.Fatal(err)
	}
	if n := entra.Requests(); n != 2 {
		t.Fatalf("%d token requests for two scopes, want 2", n)
	}
	if _, err := azurekv.NewClientSecretCredential("../evil", appID, old, entra.Options()); err == nil {
		t.Fatal("a tenant id with a path in it was taken")
	}
}
