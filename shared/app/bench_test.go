package app_test

import (
	"context"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/keyseal/keyseal/shared/api"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/localserver"
	"github.com/keyseal/keyseal/shared/tenantkms"
)

// BenchmarkSessionIssueWarmCache measures POST /agent/v1/session through the
// session Lambda's router (API Gateway event in, response out) with the TMK
// cache warm, on the dev-mode stack: bolt store, local KMS. It reports the
// KMS calls per session, which must be 0 while the cache is warm.
//
//	go test -run '^$' -bench SessionIssue -benchmem ./shared/app/
func BenchmarkSessionIssueWarmCache(b *testing.B) {
	ctx := context.Background()
	a, l, err := localserver.Wire(ctx, func(k string) string { return map[string]string{"KEYSEAL_LOG_LEVEL": "error"}[k] }, localserver.ModeDev, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer a.Close()
	cmk, err := l.LocalKMS.CreateKey()
	if err != nil {
		b.Fatal(err)
	}
	if _, err := a.Deps.Waiver.Acknowledge(ctx, "acme", "bench@keyseal.example", tenantkms.ActorSystem); err != nil {
		b.Fatal(err)
	}
	if _, err := a.Tenants.Register(ctx, "acme", keyseal.KeyRef{Provider: keyseal.ProviderLocal, KeyID: cmk}, tenantkms.ActorSystem); err != nil {
		b.Fatal(err)
	}
	agent, err := a.Deps.Agents.Create(ctx, "acme", "bench", tenantkms.ActorSystem)
	if err != nil {
		b.Fatal(err)
	}
	router := api.NewRouter(a.Log, a.Deps.SessionRoutes())
	ev := events.APIGatewayProxyRequest{HTTPMethod: "POST", Path: "/agent/v1/session", Resource: "/agent/v1/session",
		Headers: map[string]string{"Authorization": "Bearer " + agent.Key}, Body: "{}"}
	issue := func() {
		resp, _ := router.Handle(ctx, ev)
		if resp.StatusCode != 201 {
			b.Fatalf("session: %d %s", resp.StatusCode, resp.Body)
		}
	}
	issue() // warms the cache
	wraps, unwraps := l.LocalKMS.Calls()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		issue()
	}
	b.StopTimer()
	w, u := l.LocalKMS.Calls()
	b.ReportMetric(float64(w-wraps+u-unwraps)/float64(b.N), "kms-calls/op")
}
