#!/usr/bin/env bash
# A bounded property-based fuzz of the dev-mode server from its own OpenAPI
# document (shared/api/openapi.json, served at GET /openapi.json) with
# schemathesis: each operation gets generated requests, valid and not, and
# every answer must be no 5xx, a status the operation documents, and a body
# matching its schema. Loopback only: the server listens on 127.0.0.1, on a
# free port, with a fresh data directory, and is stopped on any exit.
#
# Usage: bash scripts/fuzz-api.sh   (make fuzz-api; make test runs it in
# its fuzz tier)
#   KEYSEAL_FUZZ_EXAMPLES  cases per operation in the fuzzing phase (default 6)
#   KEYSEAL_FUZZ_SEED      schemathesis's seed (default 1; "random" for a new one)
# schemathesis (pinned below) and its dependencies (pinned in
# scripts/fuzz-api-constraints.txt) are installed into .cache/fuzz-venv.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

ST_VERSION=4.32.5
CACHE=$ROOT/.cache
VENV=$CACHE/fuzz-venv
MARKER=$VENV/.keyseal-installed
LOGS=$CACHE/logs
log() { printf 'fuzz-api: %s\n' "$*"; }
die() { printf 'fuzz-api: %s\n' "$*" >&2; exit 1; }

install() {
  local want
  want="schemathesis==$ST_VERSION $(cat scripts/fuzz-api-constraints.txt)"
  if [[ -f $MARKER && $(cat "$MARKER") == "$want" ]]; then
    return 0
  fi
  local py=${KEYSEAL_PYTHON:-python3}
  log "installing schemathesis $ST_VERSION into .cache/fuzz-venv (one-time, ~30 s) with $py"
  mkdir -p "$LOGS"
  rm -rf "$VENV"
  if ! { "$py" -m venv "$VENV" &&
    "$VENV/bin/python" -m pip install --no-input -q -c scripts/fuzz-api-constraints.txt "schemathesis==$ST_VERSION"; } \
    >"$LOGS/install-fuzz.log" 2>&1; then
    tail -n 30 "$LOGS/install-fuzz.log" >&2
    die "schemathesis install failed (full log: $LOGS/install-fuzz.log)"
  fi
  printf '%s\n' "$want" >"$MARKER"
}

# free_port asks the kernel for a free loopback port.
free_port() {
  "$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

install
mkdir -p "$CACHE/bin" "$LOGS"
go build -o "$CACHE/bin/keyseal-localserver" ./scripts/localserver

work=$(mktemp -d)
server_pid=
cleanup() {
  local rc=$?
  if [[ -n $server_pid ]]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port=$(free_port)
url=http://127.0.0.1:$port
# With the GCP and Azure stand-ins, so every provider's paths are reachable;
# the poller at its dev cadence; webhooks deliver nowhere (the fuzz's URLs
# are refused or unreachable). Logs go to .cache/logs/fuzz-server.log.
KEYSEAL_LOG_LEVEL=warn "$CACHE/bin/keyseal-localserver" -mode dev -clouds -addr "127.0.0.1:$port" -data-dir "$work/data" \
  >"$LOGS/fuzz-server.log" 2>&1 &
server_pid=$!
for _ in $(seq 1 100); do
  if curl -fsS "$url/health" >/dev/null 2>&1; then break; fi
  kill -0 "$server_pid" 2>/dev/null || { tail -n 20 "$LOGS/fuzz-server.log" >&2; die "the dev server did not start"; }
  sleep 0.1
done
creds=$work/data/dev-credentials.json
[[ -f $creds ]] || die "no $creds"
field() { "$VENV/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$creds" "$1"; }

export KEYSEAL_FUZZ_URL=$url
KEYSEAL_FUZZ_ADMIN_TOKEN=$(field admin_token)
KEYSEAL_FUZZ_AGENT_KEY=$(field agent_key)
export KEYSEAL_FUZZ_ADMIN_TOKEN KEYSEAL_FUZZ_AGENT_KEY
export SCHEMATHESIS_HOOKS=$ROOT/scripts/fuzz_api_hooks.py

seed=${KEYSEAL_FUZZ_SEED:-1}
seed_args=(--seed "$seed")
[[ $seed != random ]] || seed_args=()
# fuzz runs schemathesis on the document at $1 with $2 cases per operation.
# The hooks put the dev credentials on each request (an admin token, the
# agent key, a fresh step-up token); nothing leaves 127.0.0.1.
fuzz() {
  log "fuzzing $url$1 ($2 cases per operation, seed $seed)"
  # schemathesis keeps its crash cache in ./.schemathesis: run it in .cache.
  mkdir -p "$CACHE/fuzz-work"
  (cd "$CACHE/fuzz-work" && "$VENV/bin/st" run "$url$1" \
    --url "$url" \
    --checks "${KEYSEAL_FUZZ_CHECKS:-not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance}" \
    --phases "${KEYSEAL_FUZZ_PHASES:-examples,coverage,fuzzing}" \
    --max-examples "$2" \
    "${seed_args[@]}" \
    --workers 1 \
    --request-timeout 10 \
    --generation-database none \
    --report-dir "$LOGS/fuzz-report" \
    --no-color)
}
# The API of the route table, then the local server's /dev routes (both
# run; either failing fails the script).
rc=0
fuzz /openapi.json "${KEYSEAL_FUZZ_EXAMPLES:-6}" || rc=1
fuzz /dev/openapi.json "${KEYSEAL_FUZZ_EXAMPLES:-6}" || rc=1
exit "$rc"
