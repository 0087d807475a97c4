// Command verify-poller is the poller Lambda, invoked by an EventBridge
// rate(1 minute) rule; each invocation sweeps every tenant twice, 30 s
// apart (see package poller for why).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keyseal/keyseal/shared/app"
	"github.com/keyseal/keyseal/shared/app/clouds"
	"github.com/keyseal/keyseal/shared/poller"
)

func main() {
	a := app.MustAWS("verify-poller", app.Needs{Audit: true, Clouds: clouds.FromConfig})
	h := &poller.Handler{Tenants: a.Tenants, Interval: a.Config.PollInterval, Sweeps: 2, Log: a.Log}
	lambda.Start(h.Handle)
}
