// Command key-events is the push-sealing Lambda: an EventBridge rule on
// keyseal's bus delivers the customers' forwarded KMS events, and each
// one has the tenants using the key it names verified now, with the
// poller's own per-tenant check (see package keyevents: an event is only
// a hint).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keyseal/keyseal/shared/app"
	"github.com/keyseal/keyseal/shared/keyevents"
)

func main() {
	// aws-kms only (no Needs.Clouds: neither the Google nor the Azure
	// SDK is linked, 3 ms less init): the events name AWS key ARNs, so
	// the tenants they find are on AWS KMS.
	a := app.MustAWS("key-events", app.Needs{Audit: true})
	h := &keyevents.Handler{Index: a.Store, Tenants: a.Tenants, CheckTimeout: 3 * a.Config.KMSTimeout, Log: a.Log}
	lambda.Start(h.Handle)
}
