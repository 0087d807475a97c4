// Command bus-policy keeps keyseal's event bus open to the AWS accounts of
// the registered customers' KMS keys (push sealing): a rule on the bus
// invokes it on every tenant.kms.registered, migrated and deregistered
// event, and a schedule every 10 minutes repairs a missed run; each
// invocation reconciles the bus policy with the key-ref index (see
// package buspolicy).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keyseal/keyseal/shared/app/reconciler"
)

func main() {
	r := reconciler.Must("bus-policy")
	lambda.Start(r.Handle)
}
