package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/keyseal/keyseal/shared/webhook"
)

// BenchmarkDeliver measures deliveries per second of one Deliverer (load
// the subscription and secrets, sign, POST, record) against a local
// receiver, one at a time, beside the floor: a plain http.Client POST of
// the same body to the same receiver.
//
//	go test -run '^$' -bench Deliver -benchmem ./shared/webhook/
func BenchmarkDeliver(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(204)
	}))
	defer srv.Close()
	_, s := secret(b)
	m := newSubs(s, target(srv.URL+"/hook"))
	now := time.Now()
	d, _ := deliverer(m, &now, webhook.ClientOptions{})
	ctx := context.Background()
	job := webhook.Job{Event: event(), TenantID: "acme", WebhookID: "wh_1", Attempt: 1}

	body, _ := json.Marshal(event())
	plain := &http.Client{}
	const floorN = 3000
	start := time.Now()
	for range floorN {
		resp, err := plain.Post(srv.URL+"/hook", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	floor := floorN / time.Since(start).Seconds()

	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		r, err := d.Deliver(ctx, job)
		if err != nil || r.Action != webhook.Done {
			b.Fatalf("%+v %v", r, err)
		}
	}
	b.StopTimer()
	rate := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "deliveries/s")
	b.ReportMetric(floor, "floor-posts/s")
	b.ReportMetric(rate/floor, "ratio")
}
