package tenantkms_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/keyseal/keyseal/shared/azurekv"
	"github.com/keyseal/keyseal/shared/azurekv/azurekvfake"
	"github.com/keyseal/keyseal/shared/boltstore"
	"github.com/keyseal/keyseal/shared/gcpkms"
	"github.com/keyseal/keyseal/shared/gcpkms/gcpkmsfake"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/localkms"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// cloudService is a service whose tenants may hold GCP and Azure keys,
// reached through the real SDK clients and the in-process fakes.
func cloudService(t *testing.T) (*tenantkms.Service, *gcpkmsfake.Server, *azurekvfake.Server) {
	t.Helper()
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "keyseal.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	lk, err := localkms.Open("")
	if err != nil {
		t.Fatal(err)
	}
	platform, err := lk.CreateKey()
	if err != nil {
		t.Fatal(err)
	}
	gfake, err := gcpkmsfake.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(gfake.Stop)
	client := gfake.Client()
	afake := azurekvfake.New(t)
	az := azurekv.New(azurekv.SDKClients(func(string) (azcore.TokenCredential, error) { return azurekvfake.Credential{}, nil }, afake.ClientOptions()),
		azurekv.WithIdentity("11111111-2222-3333-4444-555555555555"))
	providers := keyseal.Providers{keyseal.ProviderLocal: lk,
		keyseal.ProviderGCP:   gcpkms.New(client, gcpkms.WithIdentity("keyseal@keyseal-prod.iam.gserviceaccount.com")),
		keyseal.ProviderAzure: az}
	svc := tenantkms.New(store, providers, tenantkms.Options{KMSTimeout: 2 * time.Second,
		PlatformKey: keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: platform}})
	return svc, gfake, afake
}

// TestHealthCloudRemediation: a disabled GCP version and a disabled Azure
// key get their cloud's command, filled in with the tenant's key and the
// version that wrapped its TMK.
func TestHealthCloudRemediation(t *testing.T) {
	ctx := context.Background()
	svc, gfake, afake := cloudService(t)

	name := "projects/acme-prod/locations/global/keyRings/keyseal/cryptoKeys/tmk"
	if err := gfake.CreateKey(name); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Register(ctx, "g1", keyseal.KeyRef{Provider: keyseal.ProviderGCP, KeyID: name}, "admin:test"); err != nil {
		t.Fatal(err)
	}
	if err := gfake.SetFault(name, gcpkmsfake.Fault{State: gcpkms.StateDisabled}); err != nil {
		t.Fatal(err)
	}
	h, err := svc.Health(ctx, "g1")
	if err != nil {
		t.Fatal(err)
	}
	want := "enable-key-version: gcloud kms keys versions enable 1 --key tmk --keyring keyseal --location global --project acme-prod\n"
	if h.Status != tenantkms.HealthUnhealthy || h.Reason != keyseal.ReasonKeyDisabled || h.Checks.KeyState != keyseal.KeyStateDisabled ||
		!strings.HasPrefix(commands(h), want) {
		t.Fatalf("GCP health = %+v\n%s", h, commands(h))
	}

	url := afake.MustCreateKey(t, "https://acme-keys.vault.azure.net", "tmk")
	if _, err := svc.Register(ctx, "a1", keyseal.KeyRef{Provider: keyseal.ProviderAzure, KeyID: url}, "admin:test"); err != nil {
		t.Fatal(err)
	}
	if err := afake.SetEnabled(url, false); err != nil {
		t.Fatal(err)
	}
	h, err = svc.Health(ctx, "a1")
	if err != nil {
		t.Fatal(err)
	}
	_, version, _ := strings.Cut(strings.TrimPrefix(url, "https://acme-keys.vault.azure.net/keys/"), "/")
	if version == "" {
		_, tmks, err := svc.Tenant(ctx, "a1")
		if err != nil {
			t.Fatal(err)
		}
		version = tmks[len(tmks)-1].KeyVersion
	}
	want = "enable-key: az keyvault key set-attributes --vault-name acme-keys --name tmk --version " + version + " --enabled true\n" +
		"verify: az keyvault key show --vault-name acme-keys --name tmk --query attributes.enabled -o tsv\n"
	if h.Status != tenantkms.HealthUnhealthy || h.Reason != keyseal.ReasonKeyDisabled || h.Checks.KeyState != keyseal.KeyStateDisabled ||
		version == "" || commands(h) != want {
		t.Fatalf("Azure health = %+v\n%s\nwant\n%s", h, commands(h), want)
	}
}
