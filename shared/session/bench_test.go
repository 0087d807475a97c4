package session_test

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/session"
)

// BenchmarkSignerMint measures one session token from a cached Signer
// beside its floor, one Ed25519 signature over a message of the token's
// signing input size (alternating; ns/op is both), and prints their ratio.
//
//	go test -run '^$' -bench SignerMint -benchmem ./shared/session/
func BenchmarkSignerMint(b *testing.B) {
	s, err := session.NewSigner(make([]byte, 32), "acme", 1)
	if err != nil {
		b.Fatal(err)
	}
	key, _ := session.SigningKey(make([]byte, 32), "acme", 1)
	msg := make([]byte, 330)
	now := time.Now()
	// Alternating, so a noisy neighbour slows both alike.
	var real, base time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := s.Mint("agt_0123456789abcdef", now, 5*time.Minute); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		ed25519.Sign(key, msg)
		real += t1.Sub(t0)
		base += time.Since(t1)
	}
	b.ReportMetric(float64(real.Nanoseconds())/float64(b.N), "mint-ns/op")
	b.ReportMetric(float64(base.Nanoseconds())/float64(b.N), "floor-ns/op")
	b.ReportMetric(float64(real)/float64(base), "ratio")
	b.ReportMetric(testing.AllocsPerRun(100, func() { _, _ = s.Mint("agt_1", now, time.Minute) }), "mint-allocs/op")
}
