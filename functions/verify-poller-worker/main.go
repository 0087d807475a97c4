// Command verify-poller-worker sweeps the poll shards the scheduled
// poller dispatched to it ({"shards": [...], "start": ...}, an
// asynchronous invocation), twice, 30 s apart, ending with the minute
// (see package poller).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keyseal/keyseal/shared/app"
	"github.com/keyseal/keyseal/shared/app/clouds"
	"github.com/keyseal/keyseal/shared/keyseal"
	"github.com/keyseal/keyseal/shared/poller"
)

func main() {
	a := app.MustAWS("verify-poller-worker", app.Needs{Audit: true, Clouds: clouds.FromConfig})
	stats, _ := a.Store.(keyseal.PollStats)
	h := &poller.Handler{Tenants: a.Tenants, Interval: a.Config.PollInterval, Sweeps: 2, Log: a.Log, Stats: stats}
	lambda.Start(h.Handle)
}
