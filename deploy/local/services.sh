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
#   services.sh CMD --cluster [NODE|GROUP...]   the cluster profile (lib/cluster.sh); also `kill NODE`
#
# SERVICE: postgres kafka clickhouse opensearch (default: all four, in that order).
# --secure (anywhere): the secure profile instead: TLS on every service, SASL on Kafka,
# passwords everywhere, its own ports and state (.local-secure); see deploy/local/README.md.
# Cluster NODE: zookeeper kafka-1..3 clickhouse-s1r1 s1r2 s2r1 s2r2 opensearch-1..3 (GROUP: their prefix).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO=$(cd "$HERE/../.." && pwd -P)

# SECURE=1 selects the secure profile (--secure among the arguments; removed from them in main).
SECURE=0
for a in "$@"; do [[ $a == --secure ]] && SECURE=1; done

if ((SECURE)); then
  STATE=${ORDERSTREAM_SECURE_LOCAL_DIR:-$REPO/.local-secure}
else
  STATE=${ORDERSTREAM_LOCAL_DIR:-$REPO/.local}
fi
[[ $STATE == /* ]] || STATE=$PWD/$STATE
CACHE=${ORDERSTREAM_CACHE_DIR:-${HOME:-/root}/.cache/orderstream}
[[ $CACHE == /* ]] || CACHE=$PWD/$CACHE

# Ports, all on 127.0.0.1.
if ((SECURE)); then
  PG_PORT=${ORDERSTREAM_SECURE_PG_PORT:-55433}
  KAFKA_PORT=${ORDERSTREAM_SECURE_KAFKA_PORT:-59192}                       # SASL_SSL, clients
  KAFKA_CONTROLLER_PORT=${ORDERSTREAM_SECURE_KAFKA_CONTROLLER_PORT:-59193} # SSL, mTLS
  CH_PORT=${ORDERSTREAM_SECURE_CLICKHOUSE_PORT:-59140}                     # secure native
  CH_HTTP_PORT=                                                            # none
  OS_PORT=${ORDERSTREAM_SECURE_SEARCH_INTERNAL_PORT:-59144}                # plain, behind nginx
  OS_TRANSPORT_PORT=${ORDERSTREAM_SECURE_SEARCH_TRANSPORT_PORT:-59145}
  NGINX_PORT=${ORDERSTREAM_SECURE_SEARCH_PORT:-59143}                      # HTTPS, basic auth
else
  PG_PORT=${ORDERSTREAM_PG_PORT:-55432}
  KAFKA_PORT=${ORDERSTREAM_KAFKA_PORT:-59092}
  KAFKA_CONTROLLER_PORT=${ORDERSTREAM_KAFKA_CONTROLLER_PORT:-59093}
  CH_PORT=${ORDERSTREAM_CLICKHOUSE_PORT:-59000}
  CH_HTTP_PORT=${ORDERSTREAM_CLICKHOUSE_HTTP_PORT:-58123}
  OS_PORT=${ORDERSTREAM_SEARCH_PORT:-59200}
  OS_TRANSPORT_PORT=${ORDERSTREAM_SEARCH_TRANSPORT_PORT:-59300}
fi

# shellcheck source=lib/common.sh
source "$HERE/lib/common.sh"
# shellcheck source=lib/secure.sh
source "$HERE/lib/secure.sh"

# What clients use; printed by `env` and exported to everything `up` runs.
if ((SECURE)); then
  export ORDERSTREAM_PG_URL="postgres://orderstream@127.0.0.1:$PG_PORT/orderstream?sslmode=verify-full&sslrootcert=$TLS_DIR/ca.pem&sslcert=$TLS_DIR/client.pem&sslkey=$TLS_DIR/client.key"
  export ORDERSTREAM_PG_PASSWORD_FILE=$SECRETS_DIR/pg-password
  export ORDERSTREAM_KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
  export ORDERSTREAM_KAFKA_TLS=true
  export ORDERSTREAM_KAFKA_TLS_CA_FILE=$TLS_DIR/ca.pem
  export ORDERSTREAM_KAFKA_TLS_CERT_FILE=$TLS_DIR/client.pem
  export ORDERSTREAM_KAFKA_TLS_KEY_FILE=$TLS_DIR/client.key
  export ORDERSTREAM_KAFKA_SASL_MECHANISM=SCRAM-SHA-512
  export ORDERSTREAM_KAFKA_SASL_USER=orderstream
  export ORDERSTREAM_KAFKA_SASL_PASSWORD_FILE=$SECRETS_DIR/kafka-password
  export ORDERSTREAM_CLICKHOUSE_ADDR="127.0.0.1:$CH_PORT"
  export ORDERSTREAM_CLICKHOUSE_TLS=true
  export ORDERSTREAM_CLICKHOUSE_TLS_CA_FILE=$TLS_DIR/ca.pem
  export ORDERSTREAM_CLICKHOUSE_USER=orderstream
  export ORDERSTREAM_CLICKHOUSE_PASSWORD_FILE=$SECRETS_DIR/clickhouse-password
  export ORDERSTREAM_SEARCH_URL="https://127.0.0.1:$NGINX_PORT"
  export ORDERSTREAM_SEARCH_TLS_CA_FILE=$TLS_DIR/ca.pem
  export ORDERSTREAM_SEARCH_USER=orderstream
  export ORDERSTREAM_SEARCH_PASSWORD_FILE=$SECRETS_DIR/search-password
  ENV_VARS=(ORDERSTREAM_PG_URL ORDERSTREAM_PG_PASSWORD_FILE
    ORDERSTREAM_KAFKA_BROKERS ORDERSTREAM_KAFKA_TLS ORDERSTREAM_KAFKA_TLS_CA_FILE
    ORDERSTREAM_KAFKA_TLS_CERT_FILE ORDERSTREAM_KAFKA_TLS_KEY_FILE
    ORDERSTREAM_KAFKA_SASL_MECHANISM ORDERSTREAM_KAFKA_SASL_USER ORDERSTREAM_KAFKA_SASL_PASSWORD_FILE
    ORDERSTREAM_CLICKHOUSE_ADDR ORDERSTREAM_CLICKHOUSE_TLS ORDERSTREAM_CLICKHOUSE_TLS_CA_FILE
    ORDERSTREAM_CLICKHOUSE_USER ORDERSTREAM_CLICKHOUSE_PASSWORD_FILE
    ORDERSTREAM_SEARCH_URL ORDERSTREAM_SEARCH_TLS_CA_FILE ORDERSTREAM_SEARCH_USER ORDERSTREAM_SEARCH_PASSWORD_FILE)
else
  export ORDERSTREAM_PG_URL="postgres://orderstream:orderstream@127.0.0.1:$PG_PORT/orderstream?sslmode=disable"
  export ORDERSTREAM_KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
  export ORDERSTREAM_CLICKHOUSE_ADDR="127.0.0.1:$CH_PORT"
  export ORDERSTREAM_SEARCH_URL="http://127.0.0.1:$OS_PORT"
  ENV_VARS=(ORDERSTREAM_PG_URL ORDERSTREAM_KAFKA_BROKERS ORDERSTREAM_CLICKHOUSE_ADDR ORDERSTREAM_SEARCH_URL)
fi

ALL_SERVICES=(postgres kafka clickhouse opensearch)

# shellcheck source=lib/postgres.sh
source "$HERE/lib/postgres.sh"
# shellcheck source=lib/kafka.sh
source "$HERE/lib/kafka.sh"
# shellcheck source=lib/clickhouse.sh
source "$HERE/lib/clickhouse.sh"
# shellcheck source=lib/opensearch.sh
source "$HERE/lib/opensearch.sh"
# shellcheck source=lib/cluster.sh
source "$HERE/lib/cluster.sh"

usage() {
  sed -n '6,18p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
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
  ((!SECURE)) || secure_prepare
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
  # The secure profile's certificates and passwords go with the last of its services (Kafka's
  # SCRAM users are made once, at storage format time, with these passwords).
  if ((SECURE && ${#failed[@]} == 0)) && [[ ! -d $STATE/postgres && ! -d $STATE/kafka && ! -d $STATE/clickhouse && ! -d $STATE/opensearch ]]; then
    rm -rf "$TLS_DIR" "$SECRETS_DIR"
    info "certificates and passwords wiped"
  fi
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
  local a args=()
  for a in "$@"; do [[ $a == --secure ]] || args+=("$a"); done
  set -- "${args[@]}"
  (($# > 0)) || usage
  if cluster_requested "$@"; then
    cluster_main "$@"
    return
  fi
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
