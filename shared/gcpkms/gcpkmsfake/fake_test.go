package gcpkmsfake

import (
	"context"
	"errors"
	"testing"

	"github.com/keyseal/keyseal/shared/gcpkms"
)

const name = "projects/p/locations/global/keyRings/r/cryptoKeys/k"

// status is the canonical code of a Cloud KMS answer, "" for none.
func status(err error) string {
	var ae *gcpkms.APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return ""
}

// TestSnapshotRestore: a restored fake decrypts what the first one
// encrypted and keeps the key's version states and faults (over its REST
// API, as keyseal's client sends).
func TestSnapshotRestore(t *testing.T) {
	ctx := context.Background()
	a, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	if err := a.CreateKey(name); err != nil {
		t.Fatal(err)
	}
	if _, err := a.RotateKey(name); err != nil {
		t.Fatal(err)
	}
	ct, err := a.Client().Encrypt(ctx, &gcpkms.EncryptRequest{Name: name, Plaintext: []byte("tmk"), AdditionalAuthenticatedData: []byte("ec")})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SetFault(name, Fault{State: gcpkms.StateDisabled}); err != nil {
		t.Fatal(err)
	}
	snap, err := a.Snapshot()
	if err != nil {
		t.Fatal(err)
	}

	b, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Stop()
	if err := b.Restore(snap); err != nil {
		t.Fatal(err)
	}
	_, err = b.Client().Decrypt(ctx, &gcpkms.DecryptRequest{Name: name, Ciphertext: ct.Ciphertext, AdditionalAuthenticatedData: []byte("ec")})
	if status(err) != "FAILED_PRECONDITION" {
		t.Fatalf("decrypt with the versions disabled after restore: %v, want FailedPrecondition", err)
	}
	if err := b.SetFault(name, Fault{State: gcpkms.StateEnabled, Denied: true}); err != nil {
		t.Fatal(err)
	}
	if snap, err = b.Snapshot(); err != nil {
		t.Fatal(err)
	}
	c, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()
	if err := c.Restore(snap); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Client().Decrypt(ctx, &gcpkms.DecryptRequest{Name: name, Ciphertext: ct.Ciphertext, AdditionalAuthenticatedData: []byte("ec")}); status(err) != "PERMISSION_DENIED" {
		t.Fatalf("decrypt with IAM denied after restore: %v, want PermissionDenied", err)
	}
	if err := c.SetFault(name, Fault{}); err != nil {
		t.Fatal(err)
	}
	out, err := c.Client().Decrypt(ctx, &gcpkms.DecryptRequest{Name: name, Ciphertext: ct.Ciphertext, AdditionalAuthenticatedData: []byte("ec")})
	if err != nil || string(out.Plaintext) != "tmk" || !out.UsedPrimary {
		t.Fatalf("decrypt after restore: %v %v", out, err)
	}

	for _, bad := range []string{`{`, `{"keys":{"k":{"versions":[{"state":"MELTED","key":"AAAA"}]}}}`,
		`{"keys":{"k":{"versions":[{"state":"ENABLED","key":"AAAA"}]}}}`, `{"keys":{"k":{"versions":[],"primary":0}}}`} {
		if err := c.Restore([]byte(bad)); err == nil {
			t.Fatalf("Restore(%s) succeeded", bad)
		}
	}
}
