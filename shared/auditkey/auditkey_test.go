package auditkey_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"golang.org/x/mod/sumdb/note"

	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/auditkey"
)

// fakeKMS answers Sign and GetPublicKey the way KMS does for an
// ECC_NIST_EDWARDS25519 key (LocalStack 4.13.1 has none): GetPublicKey a
// DER SubjectPublicKeyInfo, Sign a pure Ed25519 signature of the raw
// message. It refuses requests real KMS would refuse for such a key.
type fakeKMS struct {
	priv    ed25519.PrivateKey
	keySpec types.KeySpec
	signErr error
	signs   int
}

func newFakeKMS(t *testing.T) *fakeKMS {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &fakeKMS{priv: priv, keySpec: types.KeySpecEccNistEdwards25519}
}

func (f *fakeKMS) GetPublicKey(_ context.Context, in *kms.GetPublicKeyInput, _ ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error) {
	if aws.ToString(in.KeyId) != "alias/audit" {
		return nil, &types.NotFoundException{Message: aws.String("no such key")}
	}
	der, err := x509.MarshalPKIXPublicKey(f.priv.Public())
	if err != nil {
		return nil, err
	}
	return &kms.GetPublicKeyOutput{KeyId: in.KeyId, KeySpec: f.keySpec, KeyUsage: types.KeyUsageTypeSignVerify, PublicKey: der,
		SigningAlgorithms: []types.SigningAlgorithmSpec{types.SigningAlgorithmSpecEd25519Sha512, types.SigningAlgorithmSpecEd25519PhSha512}}, nil
}

func (f *fakeKMS) Sign(_ context.Context, in *kms.SignInput, _ ...func(*kms.Options)) (*kms.SignOutput, error) {
	f.signs++
	if f.signErr != nil {
		return nil, f.signErr
	}
	if in.SigningAlgorithm != types.SigningAlgorithmSpecEd25519Sha512 || in.MessageType != types.MessageTypeRaw || len(in.Message) > 4096 {
		return nil, &types.InvalidKeyUsageException{Message: aws.String("wrong algorithm or message type")}
	}
	return &kms.SignOutput{KeyId: in.KeyId, SigningAlgorithm: in.SigningAlgorithm, Signature: ed25519.Sign(f.priv, in.Message)}, nil
}

var _ auditkey.KMSAPI = (*fakeKMS)(nil)

// TestKMSSignsCheckpoints: a checkpoint signed through kms:Sign opens with
// the note verifier built from kms:GetPublicKey, and with nothing else.
func TestKMSSignsCheckpoints(t *testing.T) {
	f := newFakeKMS(t)
	a, err := audit.NewAnchor(auditkey.NewKMS(f, "alias/audit", 0), "prod", nil)
	if err != nil {
		t.Fatal(err)
	}
	cp := audit.Checkpoint{Origin: a.Origin("acme"), Size: 7, Root: strings.Repeat("ab", 32)}
	signed, err := a.Sign(t.Context(), cp)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	_, vkey, err := a.Verifier(t.Context())
	if err != nil {
		t.Fatalf("Verifier: %v", err)
	}
	if !strings.HasPrefix(vkey, "keyseal/prod+") {
		t.Fatalf("verifier key %q, want the name keyseal/prod", vkey)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatalf("NewVerifier(%q): %v", vkey, err)
	}
	n, err := note.Open([]byte(signed), note.VerifierList(v))
	if err != nil {
		t.Fatalf("Open: %v\n%s", err, signed)
	}
	body, _ := cp.Body()
	if n.Text != body || n.Text != "keyseal/prod/acme\n7\nq6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=\n" {
		t.Fatalf("note text %q, want %q", n.Text, body)
	}
	// Another Ed25519 key under the same name does not verify it.
	other, err := note.NewEd25519VerifierKey("keyseal/prod", ed25519.NewKeyFromSeed(make([]byte, 32)).Public().(ed25519.PublicKey))
	if err != nil {
		t.Fatal(err)
	}
	ov, _ := note.NewVerifier(other)
	if _, err := note.Open([]byte(signed), note.VerifierList(ov)); err == nil {
		t.Fatal("a checkpoint opened with another key")
	}
}

// TestKMSErrors: a KMS failure and a key of the wrong kind are errors
// naming the key, never a bad signature.
func TestKMSErrors(t *testing.T) {
	f := newFakeKMS(t)
	f.signErr = errors.New("throttled")
	k := auditkey.NewKMS(f, "alias/audit", 0)
	if _, err := k.Sign(t.Context(), []byte("x")); err == nil || !strings.Contains(err.Error(), "alias/audit") {
		t.Fatalf("Sign with KMS failing: %v", err)
	}
	if _, err := auditkey.NewKMS(f, "alias/missing", 0).PublicKey(t.Context()); err == nil {
		t.Fatal("PublicKey of a missing key succeeded")
	}
	f.keySpec = types.KeySpecEccNistP256
	if _, err := k.PublicKey(t.Context()); err == nil || !strings.Contains(err.Error(), "ECC_NIST_EDWARDS25519") {
		t.Fatalf("PublicKey of a P-256 key: %v, want it refused", err)
	}
}

func TestFileKeyPersists(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit-signing-key.json")
	k1, err := auditkey.OpenFile(path)
	if err != nil {
		t.Fatalf("OpenFile (create): %v", err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm()&0o077 != 0 {
		t.Fatalf("key file %v, mode %v: want owner-only", err, fi.Mode())
	}
	k2, err := auditkey.OpenFile(path)
	if err != nil {
		t.Fatalf("OpenFile (reopen): %v", err)
	}
	p1, _ := k1.PublicKey(t.Context())
	p2, _ := k2.PublicKey(t.Context())
	if !p1.Equal(p2) {
		t.Fatal("reopened key file gave another key")
	}
	sig, _ := k2.Sign(t.Context(), []byte("msg"))
	if !ed25519.Verify(p1, []byte("msg"), sig) {
		t.Fatal("file key signature does not verify")
	}
	if err := os.WriteFile(path, []byte(`{"algorithm":"Ed25519","seed":"AAAA"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := auditkey.OpenFile(path); err == nil {
		t.Fatal("a key file with a short seed was accepted")
	}
}
