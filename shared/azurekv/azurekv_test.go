package azurekv_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/keyseal/keyseal/shared/azurekv"
	"github.com/keyseal/keyseal/shared/azurekv/azurekvfake"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/kmstest"
)

const vault = "https://acme-keys.vault.azure.net"

var ec = map[string]string{"keyseal:tenant": "acme", "keyseal:purpose": "tmk"}

// newProvider returns a provider whose real azkeys clients talk to fake.
func newProvider(fake *azurekvfake.Server) *azurekv.Provider {
	return azurekv.New(azurekv.SDKClients(func(string) (azcore.TokenCredential, error) {
		return azurekvfake.Credential{}, nil
	}, fake.ClientOptions()))
}

// must fails the test on err (a fake's setter).
func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// newKey makes a key whose name ends in hex digits, so kmstest's missing-key
// derivation names another key of the same shape.
func newKey(t *testing.T, fake *azurekvfake.Server) keyseal.KeyRef {
	t.Helper()
	b := make([]byte, 4)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	url, err := fake.CreateKey(vault, "tmk-"+hex.EncodeToString(b))
	must(t, err)
	return keyseal.KeyRef{Provider: keyseal.ProviderAzure, KeyID: url}
}

// TestConformance runs the provider suite on the real azkeys client against
// the TLS fake. pending_deletion is not produced: a deleted Azure key
// answers 404 KeyNotFound whether it is soft-deleted (recoverable) or gone,
// and keyseal's "Key Vault Crypto User" role cannot read deleted keys to
// tell them apart, so it seals as key_not_found (TestDeletedKey).
func TestConformance(t *testing.T) {
	fake := azurekvfake.New(t)
	p := newProvider(fake)
	kmstest.Run(t, kmstest.Harness{
		New: func(t *testing.T) (keyseal.Provider, keyseal.KeyRef) { return p, newKey(t, fake) },
		Fields: func(key keyseal.KeyRef) map[string]string {
			f := map[string]string{"key_url": key.KeyID}
			if tid := key.Access[azurekv.AccessTenantID]; tid != "" {
				f[azurekv.AccessTenantID] = tid
			}
			return f
		},
		SetState: func(t *testing.T, key keyseal.KeyRef, state string) bool {
			switch state {
			case kmstest.Enabled:
				must(t, fake.SetEnabled(key.KeyID, true))
				must(t, fake.SetDeleted(key.KeyID, false))
				must(t, fake.SetDenied(key.KeyID, false))
				must(t, fake.SetDown(key.KeyID, false))
			case kmstest.Disabled:
				must(t, fake.SetEnabled(key.KeyID, false))
			case kmstest.AccessDenied:
				must(t, fake.SetDenied(key.KeyID, true))
			case kmstest.Unreachable:
				must(t, fake.SetDown(key.KeyID, true))
			default:
				return false
			}
			return true
		},
	})
}

func wantKMS(t *testing.T, op string, err error, terminal bool, reason, code string) *keyseal.KMSError {
	t.Helper()
	var ke *keyseal.KMSError
	if !errors.As(err, &ke) || ke.Terminal != terminal || ke.Reason != reason || (code != "" && ke.Code != code) {
		t.Fatalf("%s: got %#v (%v), want terminal=%v reason=%s code=%s", op, ke, err, terminal, reason, code)
	}
	return ke
}

func TestDeletedKeyIsNotFoundAndRecovers(t *testing.T) {
	ctx := context.Background()
	fake := azurekvfake.New(t)
	p := newProvider(fake)
	key := newKey(t, fake)
	w, err := p.Wrap(ctx, key, []byte("tmk"), ec)
	if err != nil {
		t.Fatal(err)
	}
	must(t, fake.SetDeleted(key.KeyID, true))
	_, err = p.Wrap(ctx, key, []byte("tmk"), ec)
	wantKMS(t, "Wrap", err, true, keyseal.ReasonKeyNotFound, "KeyNotFound")
	_, err = p.Unwrap(ctx, key, w, ec)
	wantKMS(t, "Unwrap", err, true, keyseal.ReasonKeyNotFound, "KeyNotFound")
	must(t, fake.SetDeleted(key.KeyID, false)) // az keyvault key recover
	if got, err := p.Unwrap(ctx, key, w, ec); err != nil || string(got) != "tmk" {
		t.Fatalf("after recovery: %q, %v", got, err)
	}
}

// TestUnwrapUsesTheVersionThatWrapped: after the customer adds a key
// version, a TMK wrapped under the old one still unwraps, and new wraps
// record the new one.
func TestUnwrapUsesTheVersionThatWrapped(t *testing.T) {
	ctx := context.Background()
	fake := azurekvfake.New(t)
	p := newProvider(fake)
	key := newKey(t, fake)
	w1, err := p.Wrap(ctx, key, []byte("tmk-1"), ec)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := fake.AddVersion(key.KeyID)
	must(t, err)
	if w1.KeyVersion == "" || w1.KeyVersion == v2 {
		t.Fatalf("first wrap recorded version %q (v2 is %s)", w1.KeyVersion, v2)
	}
	if got, err := p.Unwrap(ctx, key, w1, ec); err != nil || string(got) != "tmk-1" {
		t.Fatalf("unwrap of the v1 blob after adding v2: %q, %v", got, err)
	}
	w2, err := p.Wrap(ctx, key, []byte("tmk-2"), ec)
	if err != nil || w2.KeyVersion != v2 {
		t.Fatalf("second wrap: version %q, %v; want %s", w2.KeyVersion, err, v2)
	}
	if got, err := p.Unwrap(ctx, key, w2, ec); err != nil || string(got) != "tmk-2" {
		t.Fatalf("unwrap of the v2 blob: %q, %v", got, err)
	}

	// A key URL that pins a version wraps under it, and refuses a blob of
	// another version before calling Key Vault.
	pinned := keyseal.KeyRef{Provider: keyseal.ProviderAzure, KeyID: key.KeyID + "/" + w1.KeyVersion}
	w3, err := p.Wrap(ctx, pinned, []byte("tmk-3"), ec)
	if err != nil || w3.KeyVersion != w1.KeyVersion {
		t.Fatalf("pinned wrap: version %q, %v; want %s", w3.KeyVersion, err, w1.KeyVersion)
	}
	_, err = p.Unwrap(ctx, pinned, w2, ec)
	wantKMS(t, "Unwrap of a v2 blob under a v1-pinned URL", err, true, keyseal.ReasonInvalidBlob, "KeyVersionMismatch")
}

// TestDisabledKeyStillWrapsInKeyVault pins down the Azure behaviour the
// provider guards against (the fake, like Key Vault, lets a disabled key
// wrap) and that the provider's Wrap refuses it. It disables the key with
// the SDK's UpdateKey (PATCH enabled=false).
func TestDisabledKeyStillWrapsInKeyVault(t *testing.T) {
	ctx := context.Background()
	fake := azurekvfake.New(t)
	key := newKey(t, fake)
	name := key.KeyID[strings.LastIndex(key.KeyID, "/")+1:]
	c, err := azkeys.NewClient(vault, azurekvfake.Credential{}, fake.ClientOptions())
	if err != nil {
		t.Fatal(err)
	}
	off := false
	if _, err := c.UpdateKey(ctx, name, "", azkeys.UpdateKeyParameters{KeyAttributes: &azkeys.KeyAttributes{Enabled: &off}}, nil); err != nil {
		t.Fatal(err)
	}
	alg := azkeys.EncryptionAlgorithmRSAOAEP256
	w, err := c.WrapKey(ctx, name, "", azkeys.KeyOperationParameters{Algorithm: &alg, Value: []byte("x")}, nil)
	if err != nil {
		t.Fatalf("wrapKey on a disabled key: %v (Key Vault allows it)", err)
	}
	_, err = c.UnwrapKey(ctx, name, w.KID.Version(), azkeys.KeyOperationParameters{Algorithm: &alg, Value: w.Result}, nil)
	wantKMS(t, "raw unwrapKey", azurekv.Classify(err), true, keyseal.ReasonKeyDisabled, "KeyDisabled")

	_, err = newProvider(fake).Wrap(ctx, key, []byte("tmk"), ec)
	wantKMS(t, "provider Wrap", err, true, keyseal.ReasonKeyDisabled, "KeyDisabled")
}

func TestThrottlingAndOutageAreTransient(t *testing.T) {
	ctx := context.Background()
	fake := azurekvfake.New(t)
	p := newProvider(fake)
	key := newKey(t, fake)
	w, err := p.Wrap(ctx, key, []byte("tmk"), ec)
	if err != nil {
		t.Fatal(err)
	}
	fake.Throttle(1, "7")
	_, err = p.Unwrap(ctx, key, w, ec)
	ke := wantKMS(t, "throttled", err, false, keyseal.ReasonUnreachable, "Throttled")
	if !strings.Contains(ke.Error(), "Retry-After: 7") {
		t.Fatalf("throttled error does not note Retry-After: %v", ke)
	}
	fake.SetOutage(true)
	_, err = p.Unwrap(ctx, key, w, ec)
	wantKMS(t, "outage", err, false, keyseal.ReasonUnreachable, "ServiceUnavailable")
	fake.SetOutage(false)
	if _, err := p.Unwrap(ctx, key, w, ec); err != nil {
		t.Fatalf("after the outage: %v", err)
	}
}

// TestLatencyBeyondTheDeadlineIsTransient: a slow vault ends at the
// caller's deadline as a transient Timeout, never a seal.
func TestLatencyBeyondTheDeadlineIsTransient(t *testing.T) {
	fake := azurekvfake.New(t)
	p := newProvider(fake)
	key := newKey(t, fake)
	w, err := p.Wrap(context.Background(), key, []byte("tmk"), ec)
	if err != nil {
		t.Fatal(err)
	}
	fake.SetLatency(time.Minute)
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err = p.Unwrap(ctx, key, w, ec)
	wantKMS(t, "slow unwrap", err, false, keyseal.ReasonUnreachable, "Timeout")
}

// TestClientPerVaultAndTenant: clients are built once per vault and tenant.
func TestClientPerVaultAndTenant(t *testing.T) {
	ctx := context.Background()
	fake := azurekvfake.New(t)
	var built atomic.Int32
	sdk := azurekv.SDKClients(func(string) (azcore.TokenCredential, error) { return azurekvfake.Credential{}, nil }, fake.ClientOptions())
	p := azurekv.New(func(vaultURL, tenantID string) (azurekv.API, error) {
		built.Add(1)
		return sdk(vaultURL, tenantID)
	})
	a, b := newKey(t, fake), newKey(t, fake)
	other, err := fake.CreateKey("https://other.vault.azure.net", "k1")
	must(t, err)
	withTenant := a
	withTenant.Access = map[string]string{azurekv.AccessTenantID: "72f988bf-86f1-41af-91ab-2d7cd011db47"}
	for _, k := range []keyseal.KeyRef{a, b, a, {Provider: keyseal.ProviderAzure, KeyID: other}, withTenant, withTenant} {
		if _, err := p.Wrap(ctx, k, []byte("tmk"), ec); err != nil {
			t.Fatal(err)
		}
	}
	if n := built.Load(); n != 3 {
		t.Fatalf("built %d clients, want 3 (acme-keys, other, acme-keys in another tenant)", n)
	}
}

func TestEnvelopeRefusesOversizedPlaintext(t *testing.T) {
	fake := azurekvfake.New(t)
	_, err := newProvider(fake).Wrap(context.Background(), newKey(t, fake), bytes.Repeat([]byte{1}, 158), ec)
	if err == nil {
		t.Fatal("wrapped 158 bytes, more than fit next to the context digest")
	}
}
