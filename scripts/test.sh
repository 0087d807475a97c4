#!/usr/bin/env bash
# keyseal's whole test run (make test, and so CI): unit tier, then the
# integration tier against LocalStack and DynamoDB Local, installed and
# started here when missing and stopped again on any exit, failure included.
# Set KEYSEAL_TEST_BENCH=1 to add a one-iteration benchmark smoke run.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

run_start=$SECONDS
tier_start=$SECONDS
tier() {
  if ((SECONDS > run_start)); then
    printf 'test.sh: (%d s)\n' "$((SECONDS - tier_start))"
  fi
  tier_start=$SECONDS
  printf '\n=== %s\n' "$*"
}

# step runs one command of a tier in a session of its own and waits for it.
# bash defers a trap until the foreground command ends, which for the
# integration tier could be many minutes; waiting on a background job lets a
# signal stop the run at once, and cleanup ends the step's whole process
# group (go test and the test binaries it runs).
step_pid=
step() {
  setsid -w "$@" &
  step_pid=$!
  local rc=0
  wait "$step_pid" || rc=$?
  step_pid=
  return "$rc"
}

# started lists the stand-ins this run started; only those are stopped, so
# stand-ins a developer had running stay up.
started=()
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  if [[ -n $step_pid ]]; then
    kill -TERM -- "-$step_pid" 2>/dev/null || true
    wait "$step_pid" 2>/dev/null || true
  fi
  if ((rc != 0)); then
    printf '\ntest.sh: FAILED (exit %d) after %d s; stand-in logs are in .cache/logs/\n' "$rc" "$((SECONDS - run_start))" >&2
  fi
  if ((${#started[@]})); then
    printf '\n=== stopping the stand-ins this run started: %s\n' "${started[*]}"
    bash scripts/standins.sh stop "${started[@]}" || rc=1
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

tier "unit tier: go vet"
step go vet ./...

tier "unit tier: go test -race"
step go test -race -count=1 ./...

# The CDK app is its own Go module (infra/go.mod), so ./... above skips it;
# its tests synthesize every environment's stack (jsii runs on Node).
tier "infra tier: CDK stack assertions (dev, staging, prod)"
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1
step go -C infra vet ./...
step go -C infra test -count=1 ./...

tier "stand-ins: install (cached under .cache/)"
bash scripts/standins.sh install

tier "stand-ins: start"
need=()
for s in localstack dynamodb; do
  if bash scripts/standins.sh status "$s"; then
    echo "test.sh: $s already runs; this run leaves it running"
  else
    need+=("$s")
  fi
done
if ((${#need[@]})); then
  # Recorded before starting, so that a start failing halfway is cleaned up.
  started=("${need[@]}")
  bash scripts/standins.sh start "${need[@]}"
fi

tier "integration tier: go test -race -tags integration"
eval "$(bash scripts/standins.sh env)"
step go test -race -count=1 -tags integration -timeout 20m ./...

if [[ ${KEYSEAL_TEST_BENCH:-} == 1 ]]; then
  tier "benchmark smoke run (one iteration each)"
  step go test -run '^$' -bench . -benchtime 1x ./...
fi

tier "done"
printf 'test.sh: all tiers passed in %d s\n' "$((SECONDS - run_start))"
