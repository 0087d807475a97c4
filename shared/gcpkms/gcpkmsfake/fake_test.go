package gcpkmsfake

import (
	"context"
	"testing"

	"cloud.google.com/go/kms/apiv1/kmspb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

const name = "projects/p/locations/global/keyRings/r/cryptoKeys/k"

// TestSnapshotRestore: a restored fake decrypts what the first one
// encrypted and keeps the key's version states and faults.
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
	ct, err := a.Encrypt(ctx, &kmspb.EncryptRequest{Name: name, Plaintext: []byte("tmk"), AdditionalAuthenticatedData: []byte("ec")})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.SetFault(name, Fault{State: kmspb.CryptoKeyVersion_DISABLED}); err != nil {
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
	_, err = b.Decrypt(ctx, &kmspb.DecryptRequest{Name: name, Ciphertext: ct.GetCiphertext(), AdditionalAuthenticatedData: []byte("ec")})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("decrypt with the versions disabled after restore: %v, want FailedPrecondition", err)
	}
	if err := b.SetFault(name, Fault{State: kmspb.CryptoKeyVersion_ENABLED, Denied: true}); err != nil {
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
	if _, err := c.Decrypt(ctx, &kmspb.DecryptRequest{Name: name, Ciphertext: ct.GetCiphertext(), AdditionalAuthenticatedData: []byte("ec")}); status.Code(err) != codes.PermissionDenied {
		t.Fatalf("decrypt with IAM denied after restore: %v, want PermissionDenied", err)
	}
	if err := c.SetFault(name, Fault{}); err != nil {
		t.Fatal(err)
	}
	out, err := c.Decrypt(ctx, &kmspb.DecryptRequest{Name: name, Ciphertext: ct.GetCiphertext(), AdditionalAuthenticatedData: []byte("ec")})
	if err != nil || string(out.GetPlaintext()) != "tmk" || !out.GetUsedPrimary() {
		t.Fatalf("decrypt after restore: %v %v", out, err)
	}

	for _, bad := range []string{`{`, `{"keys":{"k":{"versions":[{"state":"MELTED","key":"AAAA"}]}}}`,
		`{"keys":{"k":{"versions":[{"state":"ENABLED","key":"AAAA"}]}}}`, `{"keys":{"k":{"versions":[],"primary":0}}}`} {
		if err := c.Restore([]byte(bad)); err == nil {
			t.Fatalf("Restore(%s) succeeded", bad)
		}
	}
}
