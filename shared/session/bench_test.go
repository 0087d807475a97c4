package session_test

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/session"
)

// BenchmarkSignerMint measures one session token from a cached Signer
// beside its floor, one Ed25519 signature over a message of the token's
// signing input size, and prints their ratio.
//
//	go test -run '^$' -bench SignerMint -benchmem ./shared/session/
func BenchmarkSignerMint(b *testing.B) {
	s, err := session.NewSigner(make([]byte, 32), "acme", 1)
	if err != nil {
		b.Fatal(err)
	}
	key, _ := session.SigningKey(make([]byte, 32), "acme", 1)
	msg := make([]byte, 330)
	const floorN = 2000
	start := time.Now()
	for range floorN {
		ed25519.Sign(key, msg)
	}
	floor := time.Since(start) / floorN
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Mint("agt_0123456789abcdef", now, 5*time.Minute); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(floor.Nanoseconds()), "floor-ns/op")
	b.ReportMetric(float64(b.Elapsed()/time.Duration(b.N))/float64(floor), "ratio")
}
