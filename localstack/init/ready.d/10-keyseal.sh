#!/bin/bash
# LocalStack ready hook: what `make run-localstack` and a person trying the
# kill switch by hand want to find in a fresh LocalStack. keyseal creates
# what it needs itself when missing; this only makes the names predictable
# and the events visible.
#   - alias/keyseal-platform and alias/keyseal-demo: the platform key and the
#     demo tenant's "customer" key;
#   - the keyseal-local event bus, with every keyseal event copied to the SQS
#     queue keyseal-events (read it with: awslocal sqs receive-message
#     --queue-url http://localhost:4566/000000000000/keyseal-events).
set -euo pipefail

key() {
  local alias=$1
  if ! awslocal kms describe-key --key-id "$alias" >/dev/null 2>&1; then
    id=$(awslocal kms create-key --description "keyseal $alias" --query KeyMetadata.KeyId --output text)
    awslocal kms create-alias --alias-name "$alias" --target-key-id "$id"
  fi
}
key alias/keyseal-platform
key alias/keyseal-demo

awslocal events create-event-bus --name keyseal-local >/dev/null 2>&1 || true
queue_url=$(awslocal sqs create-queue --queue-name keyseal-events --query QueueUrl --output text)
queue_arn=$(awslocal sqs get-queue-attributes --queue-url "$queue_url" --attribute-names QueueArn --query Attributes.QueueArn --output text)
awslocal events put-rule --name keyseal-all --event-bus-name keyseal-local --event-pattern '{"source":["keyseal"]}' >/dev/null
awslocal events put-targets --rule keyseal-all --event-bus-name keyseal-local --targets "Id=sqs,Arn=$queue_arn" >/dev/null
echo "keyseal: LocalStack ready (keys, bus keyseal-local, queue keyseal-events)"
