// Command verify-poller is the poller Lambda, invoked by an EventBridge
// rate(1 minute) rule; each invocation sweeps every tenant twice, 30 s
// apart (see package poller for why).
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keyseal/keyseal/shared/app"
	"github.com/keyseal/keyseal/shared/poller"
)

func main() {
	a, err := app.NewAWS(context.Background(), os.Getenv, app.Needs{Events: true})
	if err != nil {
		fmt.Fprintln(os.Stderr, "verify-poller:", err)
		os.Exit(1)
	}
	h := &poller.Handler{Tenants: a.Tenants, Interval: a.Config.PollInterval, Sweeps: 2, Log: a.Log}
	lambda.Start(h.Handle)
}
