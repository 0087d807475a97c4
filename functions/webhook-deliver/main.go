// Command webhook-deliver is the webhook delivery Lambda: an SQS event
// source invokes it with keyseal's events (from the bus rule) and retry
// jobs, and it reports the messages not settled as batch item failures
// (see package deliverq).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keyseal/keyseal/shared/app/deliverer"
)

func main() {
	d := deliverer.Must("webhook-deliver")
	lambda.Start(d.Handle)
}
