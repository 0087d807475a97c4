#!/usr/bin/env bash
# A headless Chromium for the admin console's browser tests, without root:
# Debian's own `chromium` package and those of its dependencies this
# machine lacks are fetched with `apt-get download` and unpacked with
# `dpkg -x` under .cache/chromium/ (git-ignored); a small wrapper,
# .cache/chromium/chromium, points the dynamic loader at the unpacked
# libraries. Where chromium is installed system-wide the wrapper runs that
# one instead. Idempotent; `make test` runs it (scripts/test.sh).
#
# Usage: bash scripts/chromium.sh install   fetch and unpack (once), then smoke-test
#        bash scripts/chromium.sh path      print the wrapper's path
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
DIR=$ROOT/.cache/chromium
DEBS=$DIR/debs
TREE=$DIR/root
WRAPPER=$DIR/chromium
MARKER=$DIR/.keyseal-installed
LOG=$ROOT/.cache/logs/install-chromium.log

log() { printf 'chromium: %s\n' "$*"; }
die() { printf 'chromium: error: %s\n' "$*" >&2; exit 1; }

# smoke runs the wrapper headless on a tiny page and checks the DOM it
# prints: the binary starts and every library it needs is found.
smoke() {
  local out
  out=$("$WRAPPER" --headless --no-sandbox --disable-gpu --no-first-run --dump-dom 'data:text/html,<p>keyseal-ok</p>' 2>/dev/null) || return 1
  [[ $out == *keyseal-ok* ]]
}

# missing prints the packages that installing chromium would add here: the
# package itself and the dependencies this machine lacks.
missing() {
  apt-get -s -qq install --no-install-recommends chromium 2>/dev/null | awk '/^Inst /{print $2}'
}

# refresh_lists runs apt-get update when we may (root); a fresh machine's
# package lists can be empty or stale (a superseded version 404s).
refresh_lists() {
  if ((EUID == 0)); then
    log "apt-get update (package lists are missing or stale)"
    apt-get update -qq >>"$LOG" 2>&1 || die "apt-get update failed (log: $LOG)"
    return 0
  fi
  return 1
}

write_wrapper() {
  local exe=$1 libpath=$2
  cat >"$WRAPPER.tmp" <<EOF
#!/bin/sh
# Written by scripts/chromium.sh: runs Debian's chromium from $exe.
LD_LIBRARY_PATH="$libpath\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$exe" "\$@"
EOF
  chmod +x "$WRAPPER.tmp"
  mv "$WRAPPER.tmp" "$WRAPPER"
}

cmd_install() {
  mkdir -p "$DIR" "$(dirname "$LOG")"
  exec 8>"$DIR/.lock"
  flock 8
  if [[ -f $MARKER && -x $WRAPPER ]] && smoke; then
    log "$(cat "$MARKER") already installed (.cache/chromium)"
    return 0
  fi
  command -v apt-get >/dev/null && command -v dpkg >/dev/null ||
    die "apt-get and dpkg are needed to fetch Debian's chromium (or set KEYSEAL_CHROMIUM to a Chromium binary)"
  : >"$LOG"
  local start=$SECONDS pkgs
  local policy
  policy=$(apt-cache policy chromium 2>/dev/null || true)
  if [[ $policy != *"Candidate: "[0-9]* ]]; then
    refresh_lists || die "apt knows no chromium package: run apt-get update as root once"
  fi
  pkgs=$(missing)
  if [[ -z $pkgs ]]; then
    # Nothing to add: chromium is installed system-wide.
    [[ -x /usr/lib/chromium/chromium ]] || die "apt lists no package to add, yet /usr/lib/chromium/chromium is missing"
    write_wrapper /usr/lib/chromium/chromium ""
    smoke || die "the system's chromium does not start headless"
    echo "system chromium $(dpkg-query -W -f='${Version}' chromium)" >"$MARKER"
    log "using the system's chromium"
    return 0
  fi
  log "fetching chromium and $(($(wc -w <<<"$pkgs") - 1)) missing dependencies into .cache/chromium (one-time, ~125 MB)"
  rm -rf "$DEBS" "$TREE"
  mkdir -p "$DEBS" "$TREE"
  # shellcheck disable=SC2086 # package names are words
  if ! (cd "$DEBS" && apt-get download $pkgs) >>"$LOG" 2>&1; then
    refresh_lists || die "apt-get download failed (log: $LOG)"
    pkgs=$(missing)
    # shellcheck disable=SC2086
    (cd "$DEBS" && apt-get download $pkgs) >>"$LOG" 2>&1 || die "apt-get download failed (log: $LOG)"
  fi
  local deb
  for deb in "$DEBS"/*.deb; do
    dpkg -x "$deb" "$TREE"
  done
  [[ -x $TREE/usr/lib/chromium/chromium ]] || die "the chromium package holds no usr/lib/chromium/chromium"
  # Every folder of the unpacked tree that holds shared libraries (the
  # multiarch one, and subfolders such as pulseaudio/); chromium finds its
  # own under usr/lib/chromium by itself.
  local libpath
  libpath=$(find "$TREE" -name '*.so*' -not -path "$TREE/usr/lib/chromium/*" -printf '%h\n' | sort -u | paste -sd: -)
  write_wrapper "$TREE/usr/lib/chromium/chromium" "$libpath"
  smoke || die "the unpacked chromium does not start headless: $("$WRAPPER" --headless --no-sandbox --version 2>&1 | tail -n 3)"
  rm -rf "$DEBS"
  echo "chromium $("$WRAPPER" --version 2>/dev/null | awk '{print $2}')" >"$MARKER"
  log "$(cat "$MARKER") installed in $((SECONDS - start)) s"
}

case ${1:-} in
  install) cmd_install ;;
  path) echo "$WRAPPER" ;;
  *) printf 'Usage: bash scripts/chromium.sh install|path\n' >&2; exit 2 ;;
esac
