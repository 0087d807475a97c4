// Command verify-poller is the scheduled poller Lambda, invoked by an
// EventBridge rate(1 minute) rule; each invocation sweeps twice, 30 s
// apart, and when one invocation cannot sweep every tenant in 15 s it
// dispatches shard groups to verify-poller-worker (see package poller).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keyseal/keyseal/shared/app"
	"github.com/keyseal/keyseal/shared/app/clouds"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/poller"
	"github.com/keyseal/keyseal/shared/poller/lambdainvoke"
)

func main() {
	a := app.MustAWS("verify-poller", app.Needs{Audit: true, Clouds: clouds.FromConfig})
	stats, _ := a.Store.(keyseal.PollStats)
	h := &poller.Handler{Tenants: a.Tenants, Interval: a.Config.PollInterval, Sweeps: 2, Log: a.Log, Stats: stats, Metrics: a.Metrics}
	if a.Config.PollWorker != "" {
		h.Fanout = &poller.Fanout{Worker: lambdainvoke.New(a.AWS, a.Config.PollWorker),
			Concurrency: a.Config.PollConcurrency, MaxGroups: keyseal.PollShards}
	}
	lambda.Start(h.Handle)
}
