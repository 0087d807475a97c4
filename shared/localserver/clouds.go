package localserver

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/keyseal/keyseal/shared/azurekv"
	"github.com/keyseal/keyseal/shared/azurekv/azurekvfake"
	"github.com/keyseal/keyseal/shared/gcpkms"
	"github.com/keyseal/keyseal/shared/gcpkms/gcpkmsfake"
	"github.com/keyseal/keyseal/shared/internal/privatefile"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/localkms"
)

// The stand-in resources of the cloud fakes: one key ring and one vault
// hold every key the local server makes, the demo keys first.
const (
	DevGCPKeyRing  = "projects/keyseal-dev/locations/global/keyRings/keyseal-dev"
	DevAzureVault  = "https://keyseal-dev.vault.azure.net"
	DevGCPKeyName  = DevGCPKeyRing + "/cryptoKeys/demo"
	DevAzureKeyURL = DevAzureVault + "/keys/demo"
)

// CloudsEnabled reads KEYSEAL_DEV_CLOUDS: "1" starts the GCP and Azure
// fakes in process (make run-clouds), "" or "0" does not.
func CloudsEnabled(getenv func(string) string) (bool, error) {
	switch v := getenv("KEYSEAL_DEV_CLOUDS"); v {
	case "", "0":
		return false, nil
	case "1":
		return true, nil
	default:
		return false, fmt.Errorf("KEYSEAL_DEV_CLOUDS must be 1 or unset, not %q", v)
	}
}

// Clouds are the GCP Cloud KMS and Azure Key Vault stand-ins of the local
// server (gcpkmsfake on loopback HTTP, azurekvfake on a loopback TLS
// server), reached through keyseal's Cloud KMS REST client and the real
// Azure SDK client. Their keys, key states
// and faults are kept in a file under the data dir, so a restart keeps the
// tenants' keys. Safe for concurrent use.
type Clouds struct {
	GCP   *gcpkmsfake.Server
	Azure *azurekvfake.Server

	path string // the snapshot file; "" keeps nothing

	mu sync.Mutex // orders changes and their saves
}

// cloudsFile is the snapshot file's JSON: each fake's own Snapshot.
type cloudsFile struct {
	GCP   json.RawMessage `json:"gcp"`
	Azure json.RawMessage `json:"azure"`
}

// StartClouds starts both fakes on loopback, restores the keys saved in
// dataDir/dev-clouds.json (when dataDir is not ""), and makes the demo
// keys DevGCPKeyName and DevAzureKeyURL when missing.
func StartClouds(dataDir string) (_ *Clouds, err error) {
	c := &Clouds{}
	if dataDir != "" {
		c.path = filepath.Join(dataDir, "dev-clouds.json")
	}
	if c.GCP, err = gcpkmsfake.Start(); err != nil {
		return nil, fmt.Errorf("gcp-kms stand-in: %w", err)
	}
	defer func() {
		if err != nil {
			c.Close()
		}
	}()
	if c.Azure, err = azurekvfake.Start(); err != nil {
		return nil, fmt.Errorf("azure-kv stand-in: %w", err)
	}
	if err := c.load(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.GCP.HasKey(DevGCPKeyName) {
		if err := c.GCP.CreateKey(DevGCPKeyName); err != nil {
			return nil, err
		}
	}
	if !c.Azure.HasKey(DevAzureKeyURL) {
		if _, err := c.Azure.CreateKey(DevAzureVault, "demo"); err != nil {
			return nil, err
		}
	}
	return c, c.save()
}

// Close stops both fakes.
func (c *Clouds) Close() error {
	if c.Azure != nil {
		c.Azure.Close()
	}
	if c.GCP != nil {
		c.GCP.Stop()
	}
	return nil
}

// Providers returns the gcp-kms and azure-kv providers, each on its
// client pointed at its fake: keyseal's REST client without TLS or
// credentials to gcpkmsfake, and azkeys with a transport trusting azurekvfake's
// certificate and the fake's token credential.
func (c *Clouds) Providers() keyseal.Providers {
	cred := func(string) (azcore.TokenCredential, error) { return azurekvfake.Credential{}, nil }
	return keyseal.Providers{
		keyseal.ProviderGCP:   gcpkms.New(c.GCP.Client()),
		keyseal.ProviderAzure: azurekv.New(azurekv.SDKClients(cred, c.Azure.ClientOptions())),
	}
}

// load restores the snapshot file, if there is one.
func (c *Clouds) load() error {
	if c.path == "" {
		return nil
	}
	b, err := os.ReadFile(c.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cloud stand-ins: %w", err)
	}
	var f cloudsFile
	if err := json.Unmarshal(b, &f); err != nil {
		return fmt.Errorf("cloud stand-ins: %s: %w", c.path, err)
	}
	if len(f.GCP) > 0 {
		if err := c.GCP.Restore(f.GCP); err != nil {
			return fmt.Errorf("cloud stand-ins: %s: %w", c.path, err)
		}
	}
	if len(f.Azure) > 0 {
		if err := c.Azure.Restore(f.Azure); err != nil {
			return fmt.Errorf("cloud stand-ins: %s: %w", c.path, err)
		}
	}
	return nil
}

// save writes both fakes' snapshots (key material: mode 0600). c.mu held.
func (c *Clouds) save() error {
	if c.path == "" {
		return nil
	}
	var f cloudsFile
	var err error
	if f.GCP, err = c.GCP.Snapshot(); err != nil {
		return err
	}
	if f.Azure, err = c.Azure.Snapshot(); err != nil {
		return err
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return privatefile.Write(c.path, b)
}

// ProviderOf returns the provider of a key the fakes hold, "" for any
// other key id.
func (c *Clouds) ProviderOf(keyID string) string {
	switch {
	case strings.HasPrefix(keyID, "projects/") && c.GCP.HasKey(keyID):
		return keyseal.ProviderGCP
	case strings.HasPrefix(keyID, "https://") && c.Azure.HasKey(keyID):
		return keyseal.ProviderAzure
	}
	return ""
}

// CreateKey makes a new enabled key in the fake of provider (gcp-kms: a
// CryptoKey in DevGCPKeyRing; azure-kv: an RSA key in DevAzureVault) and
// returns its key name or key URL.
func (c *Clouds) CreateKey(provider string) (string, error) {
	b := make([]byte, 6)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	name := "key-" + hex.EncodeToString(b)
	c.mu.Lock()
	defer c.mu.Unlock()
	var id string
	switch provider {
	case keyseal.ProviderGCP:
		id = DevGCPKeyRing + "/cryptoKeys/" + name
		if err := c.GCP.CreateKey(id); err != nil {
			return "", err
		}
	case keyseal.ProviderAzure:
		var err error
		if id, err = c.Azure.CreateKey(DevAzureVault, name); err != nil {
			return "", err
		}
	default:
		return "", fmt.Errorf("cloud stand-ins: no fake for provider %q", provider)
	}
	return id, c.save()
}

// SetState puts a cloud key in one of localkms.States, as that cloud
// would answer it (each state replaces the previous one; enabled restores
// everything but a latency):
//
//	state             gcp-kms                              azure-kv
//	disabled          every version DISABLED               PATCH enabled=false (403 KeyDisabled on unwrap)
//	pending_deletion  every version DESTROY_SCHEDULED      deleted (404 KeyNotFound)
//	access_denied     IAM PermissionDenied                 RBAC 403 Forbidden
//	unreachable       outage: Unavailable                  outage: 503
//
// ENOTFOUND for a key the fakes do not hold, EINVALID for another state.
func (c *Clouds) SetState(keyID, state string) error {
	if !validState(state) {
		return keyseal.Errorf(keyseal.EINVALID, "unknown key state %q: want one of %s", state, strings.Join(localkms.States, ", "))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	switch c.ProviderOf(keyID) {
	case keyseal.ProviderGCP:
		f := gcpkmsfake.Fault{State: gcpkms.StateEnabled}
		switch state {
		case localkms.StateDisabled:
			f.State = gcpkms.StateDisabled
		case localkms.StatePendingDeletion:
			f.State = gcpkms.StateDestroyScheduled
		case localkms.StateAccessDenied:
			f.Denied = true
		case localkms.StateUnreachable:
			f.Outage = true
		}
		if err := c.GCP.SetFault(keyID, f); err != nil {
			return err
		}
	case keyseal.ProviderAzure:
		a := c.Azure
		err := errors.Join(a.SetEnabled(keyID, state != localkms.StateDisabled),
			a.SetDeleted(keyID, state == localkms.StatePendingDeletion),
			a.SetDenied(keyID, state == localkms.StateAccessDenied),
			a.SetDown(keyID, false),
			a.SetKeyOutage(keyID, state == localkms.StateUnreachable))
		if err != nil {
			return err
		}
	default:
		return keyseal.Errorf(keyseal.ENOTFOUND, "no cloud stand-in key %q", keyID)
	}
	return c.save()
}

// SetLatency delays every answer about a cloud key by d (0 removes it):
// ENOTFOUND for a key the fakes do not hold, EINVALID outside
// [0, localkms.MaxKeyLatency].
func (c *Clouds) SetLatency(keyID string, d time.Duration) error {
	if d < 0 || d > localkms.MaxKeyLatency {
		return keyseal.Errorf(keyseal.EINVALID, "latency must be between 0 and %d ms", localkms.MaxKeyLatency.Milliseconds())
	}
	switch c.ProviderOf(keyID) {
	case keyseal.ProviderGCP:
		return c.GCP.SetKeyLatency(keyID, d)
	case keyseal.ProviderAzure:
		return c.Azure.SetKeyLatency(keyID, d)
	}
	return keyseal.Errorf(keyseal.ENOTFOUND, "no cloud stand-in key %q", keyID)
}

func validState(s string) bool {
	for _, v := range localkms.States {
		if v == s {
			return true
		}
	}
	return false
}
