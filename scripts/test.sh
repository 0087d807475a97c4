#!/usr/bin/env bash
# keyseal's whole test run (make test, and so CI): lint, the unit tier, the
# infra tier, then the integration tier against LocalStack and DynamoDB
# Local, installed and started here when missing and stopped again on any
# exit, failure included. Each tier's time is printed as it ends and all of
# them at the end.
#
# Usage: bash scripts/test.sh [lint|unit|infra|bench|fuzz|integration]...
# picks tiers (default: all six, in that order); `make test-integration`
# is `bash scripts/test.sh integration`.
# The bench tier runs every unit benchmark once (KEYSEAL_TEST_BENCH=0 skips it).
# The fuzz tier is scripts/fuzz-api.sh (make fuzz-api): schemathesis against
# the dev-mode server from its OpenAPI document, on loopback.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

all_tiers=(lint unit infra bench fuzz integration)
if (($#)); then
  want=" $* "
  for t in "$@"; do
    [[ " ${all_tiers[*]} " == *" $t "* ]] || { printf 'test.sh: unknown tier %q (want: %s)\n' "$t" "${all_tiers[*]}" >&2; exit 2; }
  done
else
  want=" ${all_tiers[*]} "
fi
wants() { [[ $want == *" $1 "* ]]; }

# tier starts the tier named $1 (described by the rest) and ends the one
# before, recording its time for the summary.
run_start=$SECONDS
tier_start=$SECONDS
current=
tier_names=()
tier_secs=()
end_tier() {
  [[ -n $current ]] || return 0
  local took=$((SECONDS - tier_start))
  tier_names+=("$current")
  tier_secs+=("$took")
  printf 'test.sh: %s took %d s\n' "$current" "$took"
  current=
}
tier() {
  end_tier
  current=$1
  shift
  tier_start=$SECONDS
  printf '\n=== %s: %s\n' "$current" "$*"
}
summary() {
  local i
  printf '\n=== tier times\n'
  for i in "${!tier_names[@]}"; do
    printf '  %-12s %4d s\n' "${tier_names[i]}" "${tier_secs[i]}"
  done
  printf '  %-12s %4d s\n' total "$((SECONDS - run_start))"
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
  local rc=$? failed=$current
  trap - EXIT INT TERM
  if [[ -n $step_pid ]]; then
    kill -TERM -- "-$step_pid" 2>/dev/null || true
    wait "$step_pid" 2>/dev/null || true
  fi
  ((rc == 0)) || end_tier
  if ((${#started[@]})); then
    printf '\n=== stopping the stand-ins this run started: %s\n' "${started[*]}"
    bash scripts/standins.sh stop "${started[@]}" || rc=1
  fi
  if ((rc != 0)); then
    summary
    if ((rc == 130 || rc == 143)); then
      printf '\ntest.sh: interrupted in the %s tier\n' "${failed:-first}" >&2
    elif [[ $failed == lint ]]; then
      printf '\ntest.sh: FAILED: make lint found the problems above (gofmt, go vet, staticcheck or go mod tidy); fix them and run again. No test ran.\n' >&2
    else
      printf '\ntest.sh: FAILED in the %s tier (exit %d)\n' "${failed:-first}" "$rc" >&2
      [[ $failed != stand-ins && $failed != integration ]] || echo "test.sh: stand-in logs are in .cache/logs/" >&2
    fi
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Lint first: it is quick, and a formatting slip or an untidy go.mod should
# not wait for minutes of tests to be reported. It includes go vet, with and
# without the integration tag, of both modules.
if wants lint; then
  tier lint "gofmt, go vet, staticcheck, go mod tidy check (make lint)"
  step make --no-print-directory lint
fi

if wants unit; then
  tier unit "go test -race ./..."
  step go test -race -count=1 ./...
fi

# The CDK app is its own Go module (infra/go.mod), so ./... above skips it;
# its tests synthesize every environment's stack (jsii runs on Node).
if wants infra; then
  tier infra "CDK stack assertions (dev, staging, prod): go -C infra test ./..."
  export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION=1
  step go -C infra test -count=1 ./...
fi

# Every benchmark of the unit build runs once, so none rots unnoticed
# (a benchmark is not a test: its figures are never asserted). The drills
# need the stand-ins and live in integration files: make drill, make
# drill-store. The cold-start harness (scripts/coldstart) is one of them:
# at 1x it builds every Lambda and starts each once. KEYSEAL_TEST_BENCH=0
# skips this tier.
if wants bench && [[ ${KEYSEAL_TEST_BENCH:-1} != 0 ]]; then
  tier bench "every unit benchmark once (go test -run '^\$' -bench . -benchtime 1x)"
  step go test -count=1 -run '^$' -bench . -benchtime 1x ./...
fi

# A bounded property-based fuzz of the dev-mode server from its OpenAPI
# document: no 5xx, every status documented, every body as its schema.
if wants fuzz; then
  tier fuzz "schemathesis against the dev-mode server from /openapi.json (scripts/fuzz-api.sh)"
  step bash scripts/fuzz-api.sh
fi

if wants integration; then
  tier stand-ins "install (cached under .cache/) and start LocalStack and DynamoDB Local; install Chromium for the console's browser tests"
  bash scripts/standins.sh install
  bash scripts/chromium.sh install
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

  # Only the tests defined in integration-tagged files: the unit tests ran
  # in their own tier, and benchmarks (make drill) are not tests.
  # scripts/integrationtests finds them afresh each run, so a new test in
  # such a file is run without being listed anywhere.
  tier integration "go test -race -tags integration, the tests of integration-tagged files only"
  eval "$(bash scripts/standins.sh env)"
  runs_text=$(go run ./scripts/integrationtests)
  mapfile -t runs <<<"$runs_text"
  module=$(go list -m)
  for r in "${runs[@]}"; do
    pattern=${r%% *}
    read -r -a pkgs <<<"${r#* }"
    n=$(tr -cd '|' <<<"$pattern" | wc -c)
    printf 'test.sh: %d tests in %d packages: %s\n' "$((n + 1))" "${#pkgs[@]}" "${pkgs[*]#"$module"/}"
    echo "go test -race -count=1 -tags integration -timeout 20m -run '$pattern' ${pkgs[*]}"
    step go test -race -count=1 -tags integration -timeout 20m -run "$pattern" "${pkgs[@]}"
  done
fi

end_tier
summary
printf 'test.sh: all tiers passed (%s) in %d s\n' "${tier_names[*]}" "$((SECONDS - run_start))"
