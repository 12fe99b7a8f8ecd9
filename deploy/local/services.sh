#!/usr/bin/env bash
# Installs, starts, health-checks and stops the real local services that orderstream's tests,
# benchmarks and demo run against: PostgreSQL 15, Apache Kafka 4.x (KRaft), ClickHouse 18.16 and
# OpenSearch 2.19.6. Loopback only, no Docker. See deploy/local/README.md.
#
#   services.sh up     [SERVICE...]   install if missing, start, wait until healthy (idempotent)
#   services.sh down   [SERVICE...]   stop gracefully, keep data
#   services.sh stop   SERVICE...     same as down (tests use it to simulate an outage)
#   services.sh start  SERVICE...     same as up
#   services.sh status [SERVICE...]   one line each; exit 0 iff all named are healthy
#   services.sh env                   `export NAME=value` lines (eval "$(services.sh env)")
#   services.sh reset  [SERVICE...]   down, then wipe the service's state (data, logs)
#
# SERVICE: postgres kafka clickhouse opensearch (default: all four, in that order).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/../.." && pwd -P)

STATE=${ORDERSTREAM_LOCAL_DIR:-$REPO/.local}
[[ $STATE == /* ]] || STATE=$PWD/$STATE
CACHE=${ORDERSTREAM_CACHE_DIR:-${HOME:-/root}/.cache/orderstream}
[[ $CACHE == /* ]] || CACHE=$PWD/$CACHE

# Ports, all on 127.0.0.1.
PG_PORT=${ORDERSTREAM_PG_PORT:-55432}
KAFKA_PORT=${ORDERSTREAM_KAFKA_PORT:-59092}
KAFKA_CONTROLLER_PORT=${ORDERSTREAM_KAFKA_CONTROLLER_PORT:-59093}
CH_PORT=${ORDERSTREAM_CLICKHOUSE_PORT:-59000}
CH_HTTP_PORT=${ORDERSTREAM_CLICKHOUSE_HTTP_PORT:-58123}
OS_PORT=${ORDERSTREAM_SEARCH_PORT:-59200}
OS_TRANSPORT_PORT=${ORDERSTREAM_SEARCH_TRANSPORT_PORT:-59300}

# What clients use; printed by `env` and exported to everything `up` runs.
export ORDERSTREAM_PG_URL="postgres://orderstream:orderstream@127.0.0.1:$PG_PORT/orderstream?sslmode=disable"
export ORDERSTREAM_KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
export ORDERSTREAM_CLICKHOUSE_ADDR="127.0.0.1:$CH_PORT"
export ORDERSTREAM_SEARCH_URL="http://127.0.0.1:$OS_PORT"
ENV_VARS=(ORDERSTREAM_PG_URL ORDERSTREAM_KAFKA_BROKERS ORDERSTREAM_CLICKHOUSE_ADDR ORDERSTREAM_SEARCH_URL)

ALL_SERVICES=(postgres kafka clickhouse opensearch)

# shellcheck source=lib/common.sh
source "$HERE/lib/common.sh"
# shellcheck source=lib/postgres.sh
source "$HERE/lib/postgres.sh"
# shellcheck source=lib/kafka.sh
source "$HERE/lib/kafka.sh"
# shellcheck source=lib/clickhouse.sh
source "$HERE/lib/clickhouse.sh"
# shellcheck source=lib/opensearch.sh
source "$HERE/lib/opensearch.sh"

usage() {
  sed -n '6,14p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

# prefix SERVICE: the function prefix of a service's install/start/wait/stop/health/status/wipe.
prefix() {
  case $1 in
    postgres) echo pg ;;
    kafka) echo kafka ;;
    clickhouse) echo ch ;;
    opensearch) echo os ;;
    *) die "unknown service '$1' (known: ${ALL_SERVICES[*]})" ;;
  esac
}

# step SERVICE ACTION: run <prefix>_<action> in a subshell with errexit in force, so that one
# service's failure is reported and the others still run. Sets STEP_RC.
step() {
  local fn
  fn="$(prefix "$1")_$2"
  set +e
  (
    set -e
    SVC_TAG=$1
    "$fn"
  )
  STEP_RC=$?
  set -e
}

# healthy SERVICE: quiet health check.
healthy() {
  local fn
  fn="$(prefix "$1")_health"
  "$fn" >/dev/null 2>&1
}

# lock: one mutating services.sh at a time per state dir (tests may call `up` in parallel).
lock() {
  mkdir -p "$STATE"
  exec 9>"$STATE/.services.lock"
  if ! flock -w 600 9; then
    die "another services.sh has held $STATE/.services.lock for 600s"
  fi
}

# finish FAILED...: summary and exit status of a command over several services.
finish() {
  if (($# > 0)); then
    err "failed: $*"
    exit 1
  fi
}

cmd_up() {
  lock
  local s failed=() started=() t0
  t0=$(now_s)
  for s in "$@"; do
    step "$s" install
    ((STEP_RC == 0)) || failed+=("$s")
  done
  for s in "$@"; do
    [[ " ${failed[*]} " == *" $s "* ]] && continue
    if healthy "$s"; then
      SVC_TAG=$s info "already running and healthy"
      continue
    fi
    step "$s" start
    if ((STEP_RC == 0)); then started+=("$s"); else failed+=("$s"); fi
  done
  for s in "${started[@]}"; do
    step "$s" wait
    if ((STEP_RC == 0)); then
      SVC_TAG=$s info "healthy"
    else
      failed+=("$s")
    fi
  done
  ((${#failed[@]} > 0)) || info "healthy: $* ($(($(now_s) - t0))s)"
  finish "${failed[@]}"
}

cmd_down() {
  lock
  local s failed=()
  for s in "$@"; do
    step "$s" stop
    ((STEP_RC == 0)) || failed+=("$s")
  done
  finish "${failed[@]}"
}

cmd_reset() {
  lock
  local s failed=()
  for s in "$@"; do
    step "$s" stop
    if ((STEP_RC != 0)); then
      failed+=("$s")
      continue
    fi
    step "$s" wipe
    if ((STEP_RC == 0)); then
      SVC_TAG=$s info "state wiped"
    else
      failed+=("$s")
    fi
  done
  finish "${failed[@]}"
}

cmd_status() {
  local s fn line rc=0
  for s in "$@"; do
    fn="$(prefix "$s")_status"
    if line=$("$fn" 2>/dev/null); then :; else rc=1; fi
    printf '%-11s %s\n' "$s" "$line"
  done
  return "$rc"
}

# cmd_env: values are printed bare when they hold no shell-special character (URLs and
# host:port do not), else quoted with %q; either way `eval` gives the exact value.
cmd_env() {
  local v
  for v in "${ENV_VARS[@]}"; do
    if [[ ${!v} =~ ^[A-Za-z0-9_./:@?=%+,-]*$ ]]; then
      printf 'export %s=%s\n' "$v" "${!v}"
    else
      printf 'export %s=%q\n' "$v" "${!v}"
    fi
  done
}

main() {
  (($# > 0)) || usage
  local cmd=$1
  shift
  local s
  for s in "$@"; do prefix "$s" >/dev/null; done
  case $cmd in
    up | start | down | stop | status | reset)
      if (($# == 0)); then
        [[ $cmd == start || $cmd == stop ]] && die "'$cmd' needs a service name (${ALL_SERVICES[*]})"
        set -- "${ALL_SERVICES[@]}"
      fi
      ;;
    env) (($# == 0)) || die "'env' takes no service name" ;;
    -h | --help | help) usage ;;
    *)
      err "unknown command '$cmd'"
      usage
      ;;
  esac
  case $cmd in
    up | start) cmd_up "$@" ;;
    down | stop) cmd_down "$@" ;;
    status) cmd_status "$@" ;;
    reset) cmd_reset "$@" ;;
    env) cmd_env ;;
  esac
}

main "$@"
