#!/usr/bin/env bash
# Local AWS stand-ins for keyseal's integration tier, without Docker:
# LocalStack (KMS, EventBridge, SQS, STS, CloudWatch Logs) in host mode and
# DynamoDB Local. Everything is cached under .cache/ (git-ignored); see
# ../shared/TESTING.md (beside the repository) for the background, and the
# comments below for where this script departs from it.
set -euo pipefail

usage() {
  cat <<'EOF'
Usage: bash scripts/standins.sh COMMAND [localstack|dynamodb]...

Commands:
  install   Install LocalStack 4.13.1 into .cache/localstack-venv (Python 3.13)
            and DynamoDB Local 3.1.0 into .cache/dynamodb-local. Idempotent.
  start     Start the stand-ins in the background (reusing running ones) and
            wait until they answer. Logs: .cache/logs/, pid files: .cache/run/.
  stop      Stop the stand-ins this script started (TERM, then KILL after 15 s).
  status    Exit 0 if the stand-ins run and are healthy, 1 otherwise.
  env       Print export lines pointing the AWS SDKs at the stand-ins:
              eval "$(bash scripts/standins.sh env)"

start, stop and status take the stand-ins to act on (default: both).

Environment:
  KEYSEAL_LOCALSTACK_PORT   LocalStack gateway port (default 4566)
  KEYSEAL_DYNAMODB_PORT     DynamoDB Local port (default 8000)
  KEYSEAL_STANDINS_TIMEOUT  seconds start waits for readiness (default 120)
  KEYSEAL_PYTHON            Python 3.13 (or 3.12) for the venv (default: found
                            on PATH or through pyenv)
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"

CACHE=$ROOT/.cache
VENV=$CACHE/localstack-venv
VENV_MARKER=$VENV/.keyseal-installed
DDB_DIR=$CACHE/dynamodb-local
DDB_JAR=$DDB_DIR/DynamoDBLocal-3.1.0.jar
LOGS=$CACHE/logs
RUN=$CACHE/run
LS_FS=$CACHE/localstack-fs
# DynamoDB Local writes dynamodb-local-metadata.json into its working
# directory; this keeps it out of the repository root.
DDB_WORK=$CACHE/dynamodb-local-work

LS_VERSION=4.13.1
LS_PACKAGES=("localstack-core[runtime]==$LS_VERSION")
# LS_LOCK is localstack-core 4.13.1's own lock (the tag's
# requirements-runtime.txt, names and versions only), used as pip
# constraints. That release is frozen but its dependencies are not: without
# the lock pip picks their newest releases, and some no longer fit (cbor2 6
# dropped the cbor2._decoder module LocalStack imports; pyOpenSSL 26 dropped
# X509.add_extensions). It includes the pins TESTING.md lists
# (moto-ext==5.1.20.post22, rolo==0.7.6, localstack-twisted==24.3.0).
LS_LOCK="
airspeed-ext==0.6.9 annotated-types==0.7.0 antlr4-python3-runtime==4.13.2
apispec==6.9.0 argparse==1.4.0 asn1crypto==1.5.1 attrs==25.4.0
aws-sam-translator==1.106.0 aws-xray-sdk==2.15.0 awscli==1.44.24
awscrt==0.31.1 boto3==1.42.34 botocore==1.42.34 cachetools==6.2.5
cbor2==5.8.0 certifi==2026.1.4 cffi==2.0.0 cfn-lint==1.41.0
charset-normalizer==3.4.4 click==8.3.1 colorama==0.4.6 constantly==23.10.4
crontab==1.0.5 cryptography==46.0.3 decorator==5.2.1 dill==0.3.6
dnslib==0.9.26 dnspython==2.8.0 docker==7.1.0 docutils==0.19
events==0.5 graphql-core==3.2.7 grpcio==1.76.0 h11==0.16.0 h2==4.3.0
hpack==4.1.0 hypercorn==0.18.0 hyperframe==6.1.0 hyperlink==21.0.0
idna==3.11 incremental==24.11.0 isodate==0.7.2 jinja2==3.1.6
jmespath==1.1.0 joserfc==1.6.1 jpype1==1.6.0 jsonpatch==1.33
jsonpath-ng==1.7.0 jsonpath-rw==1.4.0 jsonpointer==3.0.0 jsonschema==4.26.0
jsonschema-path==0.3.4 jsonschema-specifications==2025.9.1 kclpy-ext==3.0.5
lazy-object-proxy==1.12.0 localstack-twisted==24.3.0 markdown-it-py==4.0.0
markupsafe==3.0.3 mdurl==0.1.2 more-itertools==10.8.0 moto-ext==5.1.20.post22
mpmath==1.3.0 multipart==1.3.0 networkx==3.6.1 openapi-core==0.22.0
openapi-schema-validator==0.6.3 openapi-spec-validator==0.7.2
opensearch-protobufs==0.19.0 opensearch-py==3.1.0 packaging==26.0
pathable==0.4.4 plux==1.14.0 ply==3.11 priority==1.3.0 protobuf==6.33.4
psutil==7.2.1 py-partiql-parser==0.6.3 pyasn1==0.6.2 pycparser==3.0
pydantic==2.12.4 pydantic-core==2.41.5 pygments==2.19.2 pymongo==4.16.0
pyopenssl==25.3.0 pyparsing==3.3.2 python-dateutil==2.9.0.post0
python-dotenv==1.2.1 pyyaml==6.0.3 readerwriterlock==1.0.9
referencing==0.36.2 regex==2026.1.15 requests==2.32.5
requests-aws4auth==1.3.1 responses==0.25.8 rfc3339-validator==0.1.4
rich==14.3.1 rolo==0.7.6 rpds-py==0.30.0 rsa==4.7.2 s3transfer==0.16.0
semver==3.0.4 six==1.17.0 sympy==1.14.0 typing-extensions==4.15.0
typing-inspection==0.4.2 urllib3==2.6.3 werkzeug==3.1.5 wrapt==2.0.1
wsproto==1.3.2 xmltodict==1.0.2 zope-interface==8.2
"
LS_SERVICES=kms,events,sqs,sts,logs,secretsmanager
LS_REQUIRED=(kms events sqs sts)

LS_PORT=${KEYSEAL_LOCALSTACK_PORT:-4566}
DDB_PORT=${KEYSEAL_DYNAMODB_PORT:-8000}
TIMEOUT=${KEYSEAL_STANDINS_TIMEOUT:-120}

log() { printf 'standins: %s\n' "$*"; }
die() { printf 'standins: error: %s\n' "$*" >&2; exit 1; }

# lock serialises install/start/stop between concurrent invocations (two
# terminals, or a test run and a manual stop). The lock descriptor is closed
# in every daemon we launch, or a running stand-in would hold it forever.
lock() {
  mkdir -p "$RUN"
  exec 9>"$RUN/standins.lock"
  flock 9
}

# ---------------------------------------------------------------- install ---

# find_python prints an interpreter fit for LocalStack 4.13.1: Python 3.13,
# the one its image and its lock are built with, else 3.12. Not 3.11, though
# the package allows it: its KMS calls uuid.uuid5 with a bytes name (3.12+),
# so CreateKey fails with "encoding without a string argument".
find_python() {
  local cand minor root
  root=$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")
  for minor in 13 12; do
    for cand in "${KEYSEAL_PYTHON:-}" "python3.$minor" "$root"/versions/3."$minor".*/bin/python3."$minor"; do
      [[ -n $cand ]] || continue
      command -v "$cand" >/dev/null 2>&1 || continue
      # A pyenv shim exists even when its version is not installed; asking
      # the interpreter itself settles both that and the version.
      if "$cand" -c "import sys; sys.exit(sys.version_info[:2] != (3, $minor))" >/dev/null 2>&1; then
        "$cand" -c 'import sys; print(sys.executable)'
        return 0
      fi
    done
  done
  return 1
}

install_localstack() {
  local want
  # shellcheck disable=SC2086 # the lock is whitespace-separated words
  want=$(printf '%s\n' "${LS_PACKAGES[@]}" $LS_LOCK)
  if [[ -f $VENV_MARKER && $(cat "$VENV_MARKER") == "$want" ]] &&
    "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] < (3, 12))' 2>/dev/null; then
    log "LocalStack $LS_VERSION already installed in .cache/localstack-venv"
    return 0
  fi
  local py
  py=$(find_python) || die "Python 3.13 or 3.12 not found (LocalStack $LS_VERSION needs one); set KEYSEAL_PYTHON"
  log "installing LocalStack $LS_VERSION into .cache/localstack-venv (one-time, ~2 min) with $py"
  local start=$SECONDS ilog=$LOGS/install-localstack.log
  mkdir -p "$LOGS"
  rm -rf "$VENV"
  local constraints=$CACHE/localstack-constraints.txt
  # shellcheck disable=SC2086 # the lock is whitespace-separated words
  printf '%s\n' $LS_LOCK >"$constraints"
  if ! { "$py" -m venv "$VENV" &&
    "$VENV/bin/python" -m pip install --no-input --upgrade pip &&
    "$VENV/bin/python" -m pip install --no-input -c "$constraints" "${LS_PACKAGES[@]}"; } >"$ilog" 2>&1; then
    tail -n 40 "$ilog" >&2
    die "LocalStack install failed (full log: $ilog)"
  fi
  # The marker goes last so that an interrupted install is redone from scratch.
  printf '%s\n' "$want" >"$VENV_MARKER"
  log "LocalStack $LS_VERSION installed in $((SECONDS - start)) s"
}

install_dynamodb() {
  if [[ -f $DDB_JAR ]]; then
    log "DynamoDB Local 3.1.0 already installed in .cache/dynamodb-local"
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found (needed once to fetch DynamoDB Local)"
  log "installing DynamoDB Local 3.1.0 into .cache/dynamodb-local (one-time, ~1 min)"
  local start=$SECONDS ilog=$LOGS/install-dynamodb.log
  mkdir -p "$LOGS"
  if ! mvn -q -B -f scripts/deps/pom.xml dependency:copy-dependencies \
    -DoutputDirectory="$DDB_DIR" -Dmaven.repo.local="$CACHE/m2" >"$ilog" 2>&1; then
    tail -n 40 "$ilog" >&2
    die "DynamoDB Local install failed (full log: $ilog)"
  fi
  [[ -f $DDB_JAR ]] || die "mvn succeeded but $DDB_JAR is missing"
  log "DynamoDB Local installed in $((SECONDS - start)) s"
}

cmd_install() {
  lock
  install_localstack
  install_dynamodb
}

# ---------------------------------------------------------------- health ----

# Pid and log files are per stand-in and port, so instances on other ports
# (KEYSEAL_*_PORT) are told apart.
pidfile() { echo "$RUN/$1-$(port_of "$1").pid"; }
logfile() { echo "$LOGS/$1-$(port_of "$1").log"; }
logname() { echo ".cache/logs/$1-$(port_of "$1").log"; }

# ours prints the pid of stand-in $1 when its pid file names a live process
# that still is that stand-in (a pid reused by another program is not ours).
ours() {
  local f pid pattern
  f=$(pidfile "$1")
  [[ -f $f ]] || return 1
  pid=$(cat "$f" 2>/dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  case $1 in
    localstack) pattern=localstack.runtime.main ;;
    dynamodb) pattern=dynamodb.services.local.main.ServerRunner ;;
  esac
  [[ -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$pattern" || return 1
  echo "$pid"
}

localstack_healthy() {
  local body svc
  body=$(curl -fsS --max-time 5 "http://127.0.0.1:$LS_PORT/_localstack/health" 2>/dev/null) || return 1
  for svc in "${LS_REQUIRED[@]}"; do
    grep -Eq "\"$svc\": *\"(available|running)\"" <<<"$body" || return 1
  done
}

dynamodb_healthy() {
  # DynamoDB Local does not check signatures, but it wants a SigV4-shaped
  # Authorization header before it answers an API call.
  curl -fsS --max-time 5 -X POST "http://127.0.0.1:$DDB_PORT/" \
    -H 'Content-Type: application/x-amz-json-1.0' \
    -H 'X-Amz-Target: DynamoDB_20120810.ListTables' \
    -H 'Authorization: AWS4-HMAC-SHA256 Credential=test/20000101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=00' \
    -d '{}' 2>/dev/null | grep -q TableNames
}

healthy() { "${1}_healthy"; }

port_of() { if [[ $1 == localstack ]]; then echo "$LS_PORT"; else echo "$DDB_PORT"; fi; }

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# ---------------------------------------------------------------- start -----

# launch starts "$@" detached for stand-in $1: a new session (so its own
# process group, which stop kills whole), no terminal, output to its log.
# The child writes its own pid before exec, so the pid file is exact.
launch() {
  local name=$1 dir=$2
  shift 2
  local f
  f=$(pidfile "$name")
  rm -f "$f"
  # shellcheck disable=SC2016 # $$ and $@ are the inner shell's
  (cd "$dir" && exec setsid -f bash -c 'echo $$ >"$0"; exec "$@"' "$f" "$@" \
    </dev/null >"$(logfile "$name")" 2>&1 9>&-)
  local i
  for ((i = 0; i < 50; i++)); do
    [[ -s $f ]] && return 0
    sleep 0.1
  done
  die "$name did not start (no pid file)"
}

start_localstack() {
  [[ -f $VENV_MARKER ]] || die "LocalStack is not installed: run bash scripts/standins.sh install"
  mkdir -p "$LS_FS"
  log "starting LocalStack $LS_VERSION on 127.0.0.1:$LS_PORT (log: $(logname localstack))"
  # OVERRIDE_IN_DOCKER=0: this sandbox has /.dockerenv, and LocalStack
  # believing it is in its container would rewrite /etc/resolv.conf and use
  # /var/lib/localstack. DNS_ADDRESS=0: no DNS server on port 53.
  # DISABLE_EVENTS=1: no analytics calls to the internet.
  launch localstack "$ROOT" env \
    OVERRIDE_IN_DOCKER=0 \
    DNS_ADDRESS=0 \
    GATEWAY_LISTEN="127.0.0.1:$LS_PORT" \
    LOCALSTACK_HOST="localhost:$LS_PORT" \
    SERVICES="$LS_SERVICES" \
    EAGER_SERVICE_LOADING=1 \
    DISABLE_EVENTS=1 \
    SKIP_SSL_CERT_DOWNLOAD=1 \
    FILESYSTEM_ROOT="$LS_FS" \
    PERSISTENCE=0 \
    "$VENV/bin/python" -m localstack.runtime.main
}

start_dynamodb() {
  [[ -f $DDB_JAR ]] || die "DynamoDB Local is not installed: run bash scripts/standins.sh install"
  command -v java >/dev/null || die "java not found (DynamoDB Local needs Java 17)"
  mkdir -p "$DDB_WORK"
  log "starting DynamoDB Local on 127.0.0.1:$DDB_PORT (log: $(logname dynamodb))"
  launch dynamodb "$DDB_WORK" java \
    -Djava.library.path="$DDB_DIR" \
    -cp "$DDB_DIR/*" \
    software.amazon.dynamodb.services.local.main.ServerRunner \
    -inMemory -sharedDb -disableTelemetry -port "$DDB_PORT"
}

# wait_ready waits for stand-in $1, started at second $2, to answer; on
# failure it prints the log tail and returns 1.
wait_ready() {
  local name=$1 started=$2 pid
  local deadline=$((started + TIMEOUT))
  while ! healthy "$name"; do
    if ! pid=$(ours "$name"); then
      tail -n 40 "$(logfile "$name")" >&2 || true
      printf 'standins: error: %s exited during startup (log above: %s)\n' "$name" "$(logname "$name")" >&2
      return 1
    fi
    if ((SECONDS >= deadline)); then
      tail -n 40 "$(logfile "$name")" >&2 || true
      printf 'standins: error: %s not ready after %s s (log above: %s)\n' "$name" "$TIMEOUT" "$(logname "$name")" >&2
      return 1
    fi
    sleep 0.5
  done
  log "$name ready in $((SECONDS - started)) s"
}

cmd_start() {
  lock
  mkdir -p "$LOGS" "$RUN"
  local name pid todo=()
  # Decide everything first, so that a taken port fails the call before it
  # has started anything.
  for name in "$@"; do
    if pid=$(ours "$name"); then
      if healthy "$name"; then
        log "$name already running (pid $pid), reusing it"
        continue
      fi
      # Ours but not answering: still starting (an earlier start gave up
      # on it) or wedged. Restart it rather than guess.
      log "$name (pid $pid) does not answer; restarting it"
      stop_one "$name"
    else
      rm -f "$(pidfile "$name")"
      if healthy "$name"; then
        log "$name already answers on port $(port_of "$name") (not started by this script, so stop leaves it alone); reusing it"
        continue
      fi
      if port_busy "$(port_of "$name")"; then
        die "port $(port_of "$name") is taken by a program that is not a healthy $name; free it or set KEYSEAL_$([[ $name == localstack ]] && echo LOCALSTACK || echo DYNAMODB)_PORT"
      fi
    fi
    todo+=("$name")
  done
  # They start in parallel; then wait for each in turn. A failed start
  # stops what this call started, so no half-started stand-in is left.
  local began=() b failed=0
  for name in "${todo[@]+"${todo[@]}"}"; do
    "start_$name"
    began+=("$name:$SECONDS")
  done
  for b in "${began[@]+"${began[@]}"}"; do
    wait_ready "${b%%:*}" "${b##*:}" || failed=1
  done
  if ((failed)); then
    for b in "${began[@]}"; do
      stop_one "${b%%:*}"
    done
    exit 1
  fi
}

# ---------------------------------------------------------------- stop ------

stop_one() {
  local name=$1 pid f i
  f=$(pidfile "$name")
  if ! pid=$(ours "$name"); then
    rm -f "$f"
    return 0
  fi
  log "stopping $name (pid $pid)"
  # The stand-in leads its own process group (setsid), so this reaches any
  # helper it spawned, and nothing else.
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do
    kill -0 -- "-$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 -- "-$pid" 2>/dev/null; then
    log "$name did not exit after 15 s; killing it"
    kill -KILL -- "-$pid" 2>/dev/null || true
  fi
  rm -f "$f"
}

cmd_stop() {
  lock
  local name
  for name in "$@"; do
    stop_one "$name"
  done
}

# ---------------------------------------------------------------- status ----

cmd_status() {
  local name pid rc=0 who
  for name in "$@"; do
    if pid=$(ours "$name"); then who="pid $pid"; else who="not started by this script"; fi
    if healthy "$name"; then
      log "$name: running and healthy on port $(port_of "$name") ($who)"
    elif [[ $who == pid* ]]; then
      log "$name: running ($who) but not healthy on port $(port_of "$name")"
      rc=1
    else
      log "$name: not running on port $(port_of "$name")"
      rc=1
    fi
  done
  return "$rc"
}

cmd_env() {
  cat <<EOF
export AWS_ACCESS_KEY_ID=test
export AWS_SECRET_ACCESS_KEY=test
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
export AWS_ENDPOINT_URL=http://127.0.0.1:$LS_PORT
export AWS_ENDPOINT_URL_DYNAMODB=http://127.0.0.1:$DDB_PORT
EOF
}

# ---------------------------------------------------------------- main ------

targets() {
  if (($# == 0)); then
    echo localstack dynamodb
    return
  fi
  local t
  for t in "$@"; do
    case $t in
      localstack | dynamodb) echo "$t" ;;
      *) die "unknown stand-in '$t' (want localstack or dynamodb)" ;;
    esac
  done
}

main() {
  local cmd=${1:-}
  (($#)) && shift
  local names
  case $cmd in
    -h | --help | help) usage ;;
    install) cmd_install ;;
    start | stop | status)
      names=$(targets "$@")
      # shellcheck disable=SC2086 # names are fixed words
      "cmd_$cmd" $names
      ;;
    env) cmd_env ;;
    "") usage >&2; exit 2 ;;
    *) printf 'standins: unknown command %q\n\n' "$cmd" >&2; usage >&2; exit 2 ;;
  esac
}

main "$@"
