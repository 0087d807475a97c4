// Package auditkey holds the keys that sign audit checkpoints
// (audit.Key): a KMS asymmetric key of keyseal's own on AWS, and an
// Ed25519 key file under the data dir for the local server. Neither lives
// in the table, so whoever can write the table cannot sign a checkpoint.
package auditkey

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/keyseal/keyseal/shared/audit"
	"github.com/keyseal/keyseal/shared/internal/privatefile"
)

// KMSAPI is the slice of the KMS client the KMS key uses.
type KMSAPI interface {
	Sign(ctx context.Context, in *kms.SignInput, optFns ...func(*kms.Options)) (*kms.SignOutput, error)
	GetPublicKey(ctx context.Context, in *kms.GetPublicKeyInput, optFns ...func(*kms.Options)) (*kms.GetPublicKeyOutput, error)
}

var _ KMSAPI = (*kms.Client)(nil)

// KMS is an audit.Key in AWS KMS: key spec ECC_NIST_EDWARDS25519, signing
// algorithm ED25519_SHA_512 over the raw message (pure Ed25519, which is
// what a C2SP signed note's Ed25519 signature is). The private key never
// leaves KMS; the functions that append hold kms:Sign on it.
type KMS struct {
	api     KMSAPI
	keyID   string
	timeout time.Duration
}

var _ audit.Key = (*KMS)(nil)

// NewKMS returns the key keyID (an ARN, id or alias) reached through api;
// each call gets timeout (0: 5 s).
func NewKMS(api KMSAPI, keyID string, timeout time.Duration) *KMS {
	if timeout <= 0 {
		timeout = 5 * time.Second
	}
	return &KMS{api: api, keyID: keyID, timeout: timeout}
}

// PublicKey implements audit.Key: GetPublicKey, whose SubjectPublicKeyInfo
// must hold an Ed25519 key that signs with ED25519_SHA_512.
func (k *KMS) PublicKey(ctx context.Context) (ed25519.PublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	out, err := k.api.GetPublicKey(ctx, &kms.GetPublicKeyInput{KeyId: aws.String(k.keyID)})
	if err != nil {
		return nil, fmt.Errorf("kms get public key %s: %w", k.keyID, err)
	}
	if out.KeySpec != types.KeySpecEccNistEdwards25519 || !slices.Contains(out.SigningAlgorithms, types.SigningAlgorithmSpecEd25519Sha512) {
		return nil, fmt.Errorf("kms key %s has key spec %s and signing algorithms %v, want %s with %s",
			k.keyID, out.KeySpec, out.SigningAlgorithms, types.KeySpecEccNistEdwards25519, types.SigningAlgorithmSpecEd25519Sha512)
	}
	pub, err := x509.ParsePKIXPublicKey(out.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("kms key %s public key: %w", k.keyID, err)
	}
	ed, ok := pub.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("kms key %s public key is %T, want Ed25519", k.keyID, pub)
	}
	return ed, nil
}

// Sign implements audit.Key with kms:Sign.
func (k *KMS) Sign(ctx context.Context, msg []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, k.timeout)
	defer cancel()
	out, err := k.api.Sign(ctx, &kms.SignInput{KeyId: aws.String(k.keyID), Message: msg,
		MessageType: types.MessageTypeRaw, SigningAlgorithm: types.SigningAlgorithmSpecEd25519Sha512})
	if err != nil {
		return nil, fmt.Errorf("kms sign %s: %w", k.keyID, err)
	}
	if len(out.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("kms sign %s: signature of %d bytes, want %d", k.keyID, len(out.Signature), ed25519.SignatureSize)
	}
	return out.Signature, nil
}

// File is an audit.Key kept in a private file (mode 0600) under the local
// server's data dir: dev mode, and LocalStack mode, whose KMS (4.13.1)
// has no Ed25519 keys.
type File struct {
	priv ed25519.PrivateKey
}

var _ audit.Key = (*File)(nil)

// fileKey is the file's JSON form.
type fileKey struct {
	Algorithm string `json:"algorithm"`
	Seed      []byte `json:"seed"`
}

// OpenFile loads the key at path, creating it on first use. The file
// appears atomically, and two processes starting together share one key.
func OpenFile(path string) (*File, error) {
	raw, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		if err = createFile(path); err == nil {
			raw, err = os.ReadFile(path)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("audit signing key %s: %w", path, err)
	}
	var fk fileKey
	if err := json.Unmarshal(raw, &fk); err != nil || fk.Algorithm != "Ed25519" || len(fk.Seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("audit signing key %s: not an Ed25519 key file", path)
	}
	return &File{priv: ed25519.NewKeyFromSeed(fk.Seed)}, nil
}

// createFile writes a new key at path unless another process just did.
func createFile(path string) error {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return err
	}
	b, err := json.Marshal(fileKey{Algorithm: "Ed25519", Seed: seed})
	if err != nil {
		return err
	}
	if err := privatefile.WriteNew(path, b); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	return nil
}

// PublicKey implements audit.Key.
func (f *File) PublicKey(context.Context) (ed25519.PublicKey, error) {
	return f.priv.Public().(ed25519.PublicKey), nil
}

// Sign implements audit.Key.
func (f *File) Sign(_ context.Context, msg []byte) ([]byte, error) {
	return ed25519.Sign(f.priv, msg), nil
}
