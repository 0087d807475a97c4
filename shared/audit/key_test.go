package audit_test

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
)

// benchKey is an audit.Key from a fixed seed.
type benchKey struct{}

var benchPriv = func() ed25519.PrivateKey {
	s := sha256.Sum256([]byte("keyseal audit tests"))
	return ed25519.NewKeyFromSeed(s[:])
}()

func (benchKey) PublicKey(context.Context) (ed25519.PublicKey, error) {
	return benchPriv.Public().(ed25519.PublicKey), nil
}

func (benchKey) Sign(_ context.Context, msg []byte) ([]byte, error) {
	return ed25519.Sign(benchPriv, msg), nil
}
