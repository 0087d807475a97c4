package azurekvfake_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/security/keyvault/azkeys"

	"github.com/keyseal/keyseal/shared/azurekv/azurekvfake"
)

const vault = "https://v.vault.azure.net"

// TestSnapshotRestore: a restored fake unwraps what the first one wrapped,
// under the same key version, and keeps the enabled attribute and faults.
func TestSnapshotRestore(t *testing.T) {
	ctx := context.Background()
	a := azurekvfake.New(t)
	keyURL, err := a.CreateKey(vault, "k")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.CreateKey(vault, "k"); err == nil {
		t.Fatal("a second key of the same name was created")
	}
	ca, err := azkeys.NewClient(vault, azurekvfake.Credential{}, a.ClientOptions())
	if err != nil {
		t.Fatal(err)
	}
	alg := azkeys.EncryptionAlgorithmRSAOAEP256
	w, err := ca.WrapKey(ctx, "k", "", azkeys.KeyOperationParameters{Algorithm: &alg, Value: []byte("tmk")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SetEnabled(keyURL, false); err != nil {
		t.Fatal(err)
	}
	snap, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}

	b := azurekvfake.New(t)
	if err := b.Restore(snap); err != nil {
		t.Fatal(err)
	}
	cb, err := azkeys.NewClient(vault, azurekvfake.Credential{}, b.ClientOptions())
	if err != nil {
		t.Fatal(err)
	}
	unwrap := func() ([]byte, error) {
		out, err := cb.UnwrapKey(ctx, "k", w.KID.Version(), azkeys.KeyOperationParameters{Algorithm: &alg, Value: w.Result}, nil)
		return out.Result, err
	}
	var re *azcore.ResponseError
	if _, err := unwrap(); !errors.As(err, &re) || re.StatusCode != http.StatusForbidden {
		t.Fatalf("unwrap with the key disabled after restore: %v, want 403", err)
	}
	if err := errors.Join(b.SetEnabled(keyURL, true), b.SetKeyOutage(keyURL, true)); err != nil {
		t.Fatal(err)
	}
	if _, err := unwrap(); !errors.As(err, &re) || re.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("unwrap during the key's outage: %v, want 503", err)
	}
	if err := b.SetKeyOutage(keyURL, false); err != nil {
		t.Fatal(err)
	}
	if pt, err := unwrap(); err != nil || string(pt) != "tmk" {
		t.Fatalf("unwrap after restore: %q %v", pt, err)
	}
	if err := b.SetEnabled(vault+"/keys/other", true); err == nil {
		t.Fatal("a setter on an unknown key succeeded")
	}
	for _, bad := range []string{`{`, `{"keys":{"v.vault.azure.net/k":{"versions":[]}}}`,
		`{"keys":{"v.vault.azure.net/k":{"versions":[{"id":"1","enabled":true,"pkcs8":"AAAA"}]}}}`} {
		if err := b.Restore([]byte(bad)); err == nil {
			t.Fatalf("Restore(%s) succeeded", bad)
		}
	}
}
