//go:build integration

package suite

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/keyseal/keyseal/shared/keyevents"
	"github.com/keyseal/keyseal/shared/localserver"
)

// BenchmarkKillSwitchPushDrill is the kill-switch drill with push sealing,
// in LocalStack mode with the production 30 s poll: each round disables
// the tenant's key in LocalStack KMS and puts the CloudTrail record AWS
// would emit on keyseal's bus (LocalStack emits none); the stack's rules
// route it to a queue the local server consumes (StartSQSKeyEvents), whose
// handler verifies the tenant. It reports the mean time to sealed and to
// the first 503 (reportDrill), their median, and the same for EnableKey
// to unsealed and the first 201. A second passes between the seal and the
// EnableKey, so the figure is the push path's, not the per-tenant
// limiter's deferral. Run it with `make drill-push` (20 rounds).
func BenchmarkKillSwitchPushDrill(b *testing.B) {
	e := newEnv(b, map[string]string{"KEYSEAL_POLL_INTERVAL": "30s"})
	ctx := context.Background()
	k, err := localserver.StartSQSKeyEvents(ctx, e.srv)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(k.Stop)
	put := func(call, keyARN string) {
		ev := keyevents.CloudTrailEvent(call, keyARN, time.Now())
		out, err := e.srv.Local.AWS.EventBridge.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{{
			EventBusName: aws.String(e.table), Source: aws.String(keyevents.SourceKMS),
			DetailType: aws.String(keyevents.DetailCloudTrail), Detail: aws.String(detailOf(b, ev)),
		}}})
		if err != nil || out.FailedEntryCount > 0 {
			b.Fatalf("put %s: %v %+v", call, err, out)
		}
	}
	// await polls the session until it answers want and the tenant row
	// has status; it returns both times since start.
	await := func(tn tenant, start time.Time, want int, status string) (row, first time.Duration) {
		for row == 0 || first == 0 {
			if first == 0 && e.session(tn).status == want {
				first = time.Since(start)
			}
			if row == 0 {
				if t, err := e.srv.App.Store.GetTenant(ctx, tn.ID); err != nil {
					b.Fatal(err)
				} else if t.Status == status {
					row = time.Since(start)
				}
			}
			if time.Since(start) > time.Minute {
				b.Fatalf("not %s within a minute", status)
			}
			time.Sleep(10 * time.Millisecond)
		}
		return row, first
	}
	var toSealed, to503, worst time.Duration
	var firsts503, firsts201 []time.Duration
	for b.Loop() {
		tn := e.newTenant()
		e.session(tn).want(http.StatusCreated)
		start := time.Now()
		if _, err := e.kms.DisableKey(ctx, &kms.DisableKeyInput{KeyId: aws.String(tn.KeyID)}); err != nil {
			b.Fatal(err)
		}
		put("DisableKey", tn.KeyARN)
		sealed, first := await(tn, start, http.StatusServiceUnavailable, "sealed")
		toSealed, to503, worst = toSealed+sealed, to503+first, max(worst, first)
		firsts503 = append(firsts503, first)

		time.Sleep(time.Second) // past the limiter's second
		start = time.Now()
		if _, err := e.kms.EnableKey(ctx, &kms.EnableKeyInput{KeyId: aws.String(tn.KeyID)}); err != nil {
			b.Fatal(err)
		}
		put("EnableKey", tn.KeyARN)
		_, first = await(tn, start, http.StatusCreated, "active")
		firsts201 = append(firsts201, first)
	}
	reportDrill(b, toSealed, to503, worst)
	b.ReportMetric(median(firsts503), "median-ms-to-first-503")
	b.ReportMetric(median(firsts201), "median-ms-to-first-201")
	b.ReportMetric(float64(slices.Max(firsts201).Milliseconds()), "max-ms-to-first-201")
}

// detailOf is the detail of an EventBridge event, as PutEvents takes it.
func detailOf(b *testing.B, ev []byte) string {
	var m struct {
		Detail json.RawMessage `json:"detail"`
	}
	if err := json.Unmarshal(ev, &m); err != nil {
		b.Fatal(err)
	}
	return string(m.Detail)
}

func median(ds []time.Duration) float64 {
	s := slices.Clone(ds)
	slices.Sort(s)
	return float64(s[len(s)/2].Microseconds()) / 1000
}
