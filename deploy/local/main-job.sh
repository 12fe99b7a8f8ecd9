#!/usr/bin/env bash
# The main job on the real data: start the local services, migrate, provision
# the topic, run the relay and both projection daemons in the background,
# import the file through the write side, wait until both read models have
# caught up, then print the checks and the dashboard URL.
#
# Usage: deploy/local/main-job.sh [FILE]   (default ../shared/data/online_retail.csv.gz)
# Daemons keep running afterwards (pids and logs in .local/run/); stop them
# with deploy/local/main-job.sh stop.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
state="${ORDERSTREAM_LOCAL_DIR:-$root/.local}"
run="$state/run"
bin="$root/bin/orderstream"
mkdir -p "$run"

stop_daemons() {
  for name in api consume-search consume-analytics relay; do
    pidfile="$run/$name.pid"
    [[ -f $pidfile ]] || continue
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

if [[ ${1:-} == stop ]]; then
  stop_daemons
  echo "daemons stopped (services keep running: deploy/local/services.sh down)"
  exit 0
fi

file="${1:-$root/../shared/data/online_retail.csv.gz}"
[[ -r $file ]] || { echo "main-job: input file $file not readable" >&2; exit 1; }

daemon() { # name, args...
  local name="$1"; shift
  "$bin" "$@" >>"$run/$name.log" 2>&1 &
  echo $! >"$run/$name.pid"
  echo "started $name (pid $!, log $run/$name.log)"
}

wait_ready() { # name url deadline_s
  local name="$1" url="$2" deadline=$((SECONDS + $3))
  until curl -fsS "$url" >/dev/null 2>&1; do
    if ! kill -0 "$(cat "$run/$name.pid")" 2>/dev/null; then
      echo "main-job: $name exited; last lines of $run/$name.log:" >&2; tail -20 "$run/$name.log" >&2; exit 1
    fi
    (( SECONDS < deadline )) || { echo "main-job: $name not ready at $url after $3 s (log $run/$name.log)" >&2; exit 1; }
    sleep 1
  done
}

go build -o "$bin" ./cmd/orderstream
deploy/local/services.sh up
eval "$(deploy/local/services.sh env)"
# Logs of the steps run here are for a person reading this output (the
# daemons below log JSON to their files).
export ORDERSTREAM_LOG_FORMAT=text
stop_daemons

start=$SECONDS
"$bin" migrate
"$bin" topic create
"$bin" analytics migrate
# The daemons' own ports (a second main job beside another sets these).
relay_addr="${ORDERSTREAM_DEMO_RELAY_METRICS_ADDR:-127.0.0.1:9464}"
analytics_addr="${ORDERSTREAM_DEMO_ANALYTICS_METRICS_ADDR:-127.0.0.1:9465}"
search_addr="${ORDERSTREAM_DEMO_SEARCH_METRICS_ADDR:-127.0.0.1:9466}"
api_addr="${ORDERSTREAM_DEMO_API_ADDR:-127.0.0.1:8080}"
daemon relay relay --log-format json --metrics-addr "$relay_addr"
daemon consume-analytics consume analytics --log-format json --metrics-addr "$analytics_addr"
daemon consume-search consume search --log-format json --metrics-addr "$search_addr"
wait_ready relay "http://$relay_addr/healthz" 60

"$bin" import "$file"

echo "waiting for the relay and both read models to catch up ..."
"$bin" status --wait 10m
echo "main job: $((SECONDS - start)) s from migrate to both read models caught up"

echo; echo "== one Kafka event per outbox event, per-order versions contiguous =="
"$bin" topic stats
echo; echo "== analytics over the whole file =="
"$bin" analytics summary
echo; echo "== search: orders with stock code 85123A (first page) =="
"$bin" search --product 85123A --limit 5

daemon api api --auth=none --listen "$api_addr" --log-format json
wait_ready api "http://$api_addr/healthz" 30
echo
echo "Dashboard: http://$api_addr/   (relay, consumers and API keep running; stop: deploy/local/main-job.sh stop)"
