// Command event-publisher is the outbox publisher Lambda: the table's
// DynamoDB Stream invokes it with outbox INSERTs, and it puts them to the
// event bus, reporting the records that failed so the stream retries them
// (see package outbox).
package main

import (
	"github.com/aws/aws-lambda-go/lambda"

	"github.com/keyseal/keyseal/shared/app/publisher"
)

func main() {
	h := publisher.Must("event-publisher")
	lambda.Start(h.Handle)
}
