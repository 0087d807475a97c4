package deliverq_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keyseal/keyseal/shared/app/deliverer"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/localkms"
	"github.com/keyseal/keyseal/shared/memstore"
	"github.com/keyseal/keyseal/shared/subscription"
	"github.com/keyseal/keyseal/shared/webhook"
)

// Shape of one benchmarked invocation: the event source's batch of
// EventBridge events, each to every subscription of its tenant.
const (
	benchBatch = 10 // the webhook-deliver event source's batch size
	benchSubs  = 3  // subscriptions per tenant
)

// BenchmarkHandleBatch measures deliveries per second of one
// webhook-deliver invocation (Driver.Handle, as the Lambda wires it by
// deliverer.NewDriver) on a batch of 10 tenant.kms.sealed events, each
// for a tenant with 3 subscriptions to a local receiver answering 204:
// 30 deliveries, the batch's 10 messages and each one's fan-out
// concurrent. Subscriptions are in the in-memory store, their secrets
// sealed under a local platform key and cached after the first unseal
// (one warm-up invocation, untimed). Every delivery succeeds, so no
// queue call is made (asserted). The floor is the same 30 bodies POSTed
// by a plain http.Client (an idle pool as large as the webhook
// client's) from 30 goroutines at once.
//
//	go test -run '^$' -bench HandleBatch -benchmem ./shared/deliverq/
func BenchmarkHandleBatch(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	ctx := context.Background()
	lk, err := localkms.Open("")
	if err != nil {
		b.Fatal(err)
	}
	keyID, err := lk.CreateKey()
	if err != nil {
		b.Fatal(err)
	}
	kms := keyseal.Providers{keyseal.ProviderLocal: lk}
	platform := keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: keyID}
	st := memstore.New()
	admin := &subscription.Service{Store: st, KMS: kms, PlatformKey: platform, Policy: webhook.Policy{Dev: true}, CacheTTL: -1}
	var records []events.SQSMessage
	var bodies [][]byte
	for i := range benchBatch {
		tenant := fmt.Sprintf("tenant-%02d", i)
		for j := range benchSubs {
			if _, err := admin.Create(ctx, tenant, fmt.Sprintf("%s/hooks/%s/%d", srv.URL, tenant, j), []string{keyseal.EventSealed}, "", "bench"); err != nil {
				b.Fatal(err)
			}
		}
		e, err := keyseal.NewEvent(keyseal.EventSealed, tenant, time.Now(), map[string]string{"reason": "key_disabled"})
		if err != nil {
			b.Fatal(err)
		}
		m := bridge(b, e)
		m.MessageId = fmt.Sprintf("m-%02d", i)
		records = append(records, m)
		body, _ := json.Marshal(e)
		for range benchSubs {
			bodies = append(bodies, body)
		}
	}
	batch := events.SQSEvent{Records: records}
	q := &queue{}
	unseals := &countingKMS{KMS: kms}
	d := deliverer.NewDriver(deliverer.Parts{Store: st, KMS: unseals, PlatformKey: platform, SQS: q,
		QueueURL: queueURL, DLQURL: dlqURL, Policy: webhook.Policy{Dev: true}})
	handle := func() {
		r, err := d.Handle(ctx, batch)
		if err != nil || len(r.BatchItemFailures) != 0 {
			b.Fatalf("failures %q, err %v", failures(r), err)
		}
	}
	handle() // warm-up: unseals and caches the 30 secrets, opens connections

	plain := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	post := func(body []byte) {
		resp, err := plain.Post(srv.URL+"/hook", "application/json", bytes.NewReader(body))
		if err != nil {
			b.Error(err)
			return
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	const floorRounds = 100
	start := time.Now()
	for range floorRounds {
		var wg sync.WaitGroup
		for _, body := range bodies {
			wg.Go(func() { post(body) })
		}
		wg.Wait()
	}
	floor := float64(floorRounds*len(bodies)) / time.Since(start).Seconds()

	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		handle()
	}
	b.StopTimer()
	if n := unseals.n.Load(); n != benchBatch*benchSubs {
		b.Fatalf("%d unseals for %d subscriptions: the secrets are not cached", n, benchBatch*benchSubs)
	}
	if len(q.sent) != 0 || len(q.hidden) != 0 {
		b.Fatalf("every delivery succeeded, yet %d sends and %d visibility changes were made", len(q.sent), len(q.hidden))
	}
	for i := range benchBatch {
		tenant := fmt.Sprintf("tenant-%02d", i)
		ws, err := st.ListWebhooks(ctx, tenant)
		if err != nil || len(ws) != benchSubs {
			b.Fatalf("%s: %d webhooks, %v", tenant, len(ws), err)
		}
		for _, w := range ws {
			ds, err := st.ListDeliveries(ctx, tenant, w.ID, 1)
			if err != nil || len(ds) != 1 || ds[0].Outcome != keyseal.DeliveryDelivered {
				b.Fatalf("%s %s: last attempt %+v, %v", tenant, w.ID, ds, err)
			}
		}
	}
	rate := float64(b.N*len(bodies)) / b.Elapsed().Seconds()
	b.ReportMetric(rate, "deliveries/s")
	b.ReportMetric(floor, "floor-posts/s")
	b.ReportMetric(rate/floor, "ratio")
}

// countingKMS counts unseals.
type countingKMS struct {
	keyseal.KMS
	n atomic.Int64
}

func (c *countingKMS) Unwrap(ctx context.Context, key keyseal.KeyRef, w keyseal.Wrapped, ec map[string]string) ([]byte, error) {
	c.n.Add(1)
	return c.KMS.Unwrap(ctx, key, w, ec)
}
