//go:build integration

package suite

import (
	"context"
	"math/rand/v2"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
)

// BenchmarkKillSwitchDrill measures the customer's kill switch in LocalStack
// mode with the in-process poller at its production cadence: the time from
// the customer's DisableKey to the tenant row being sealed, and to the first
// 503 an agent sees. An agent asks for a session every 100 ms, so the
// second figure also shows whether the warm TMK cache keeps serving after
// the seal. Each round disables the key at a random point of the poll cycle,
// so the mean is the expected wait and the max approaches the bound (one
// interval plus one KMS call). Run it with `make drill`;
// KEYSEAL_DRILL_POLL_INTERVAL (default 30s) sets the cadence.
func BenchmarkKillSwitchDrill(b *testing.B) {
	interval := os.Getenv("KEYSEAL_DRILL_POLL_INTERVAL")
	if interval == "" {
		interval = "30s"
	}
	e := newEnv(b, map[string]string{"KEYSEAL_POLL_INTERVAL": interval})
	ctx := context.Background()
	every, err := time.ParseDuration(interval)
	if err != nil {
		b.Fatal(err)
	}
	var toSealed, to503, worst time.Duration
	for b.Loop() {
		tn := e.newTenant()
		e.session(tn).want(http.StatusCreated)
		time.Sleep(rand.N(every))
		start := time.Now()
		if _, err := e.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(tn.KeyID)}); err != nil {
			b.Fatal(err)
		}
		var sealedAt, first503 time.Time
		for sealedAt.IsZero() || first503.IsZero() {
			if first503.IsZero() && e.session(tn).status == http.StatusServiceUnavailable {
				first503 = time.Now()
			}
			if sealedAt.IsZero() {
				if t, err := e.srv.App.Store.GetTenant(ctx, tn.ID); err != nil {
					b.Fatal(err)
				} else if t.Status == "sealed" {
					sealedAt = time.Now()
				}
			}
			if time.Since(start) > 5*time.Minute {
				b.Fatal("not sealed within 5 minutes")
			}
			time.Sleep(100 * time.Millisecond)
		}
		toSealed += sealedAt.Sub(start)
		to503 += first503.Sub(start)
		worst = max(worst, first503.Sub(start))
	}
	reportDrill(b, toSealed, to503, worst)
}

// reportDrill reports a kill-switch drill's figures: the mean times from
// pulling the plug to sealed and to the first 503, and the worst first 503.
func reportDrill(b *testing.B, toSealed, to503, worst time.Duration) {
	b.ReportMetric(float64(toSealed.Milliseconds())/float64(b.N), "ms-to-sealed")
	b.ReportMetric(float64(to503.Milliseconds())/float64(b.N), "ms-to-first-503")
	b.ReportMetric(float64(worst.Milliseconds()), "max-ms-to-first-503")
}
