#!/usr/bin/env bash
# Stops the local OpenSearch node: SIGTERM (clean node.close()), up to 30 s, then SIGKILL.
# Data under $ORDERSTREAM_LOCAL_DIR/opensearch is kept.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
STATE=$(realpath -m "${ORDERSTREAM_LOCAL_DIR:-$REPO/.local}")/opensearch
PIDFILE=$STATE/node.pid

# True while $1 is a live node process (an exited one that nobody reaped yet has an empty
# cmdline, so it counts as gone).
is_node() {
  tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -q 'orderstream.local.opensearch.EmbeddedNode'
}

pid=$(cat "$PIDFILE" 2>/dev/null || true)
if [[ ! "$pid" =~ ^[0-9]+$ ]] || ! is_node "$pid"; then
  rm -f "$PIDFILE"
  echo "opensearch not running"
  exit 0
fi

kill -TERM "$pid" 2>/dev/null || true
for _ in $(seq 1 60); do
  is_node "$pid" || break
  sleep 0.5
done
if is_node "$pid"; then
  echo "stop.sh: pid $pid still alive after 30s, sending SIGKILL" >&2
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 1 20); do
    is_node "$pid" || break
    sleep 0.25
  done
fi
rm -f "$PIDFILE"
echo "opensearch stopped (pid $pid)"
