#!/usr/bin/env bash
# Starts the local single-node OpenSearch 2.19.6 in the background and waits until it is
# healthy (green or yellow). No-op when it is already running and healthy.
#
#   ORDERSTREAM_LOCAL_DIR    state root (default <repo>/.local); node state in .../opensearch
#   ORDERSTREAM_SEARCH_PORT  HTTP port (default 59200)
#   ORDERSTREAM_SEARCH_TRANSPORT_PORT  transport port (default 59300)
#   ORDERSTREAM_SEARCH_HEAP  JVM heap (default 1g)
#   ORDERSTREAM_CACHE_DIR    where build.sh puts the jars (default ~/.cache/orderstream)
#   ORDERSTREAM_SEARCH_START_TIMEOUT  seconds to wait for health (default 120; build not counted)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../../.." && pwd)
ORDERSTREAM_LOCAL_DIR=$(realpath -m "${ORDERSTREAM_LOCAL_DIR:-$REPO/.local}")
export ORDERSTREAM_LOCAL_DIR
export ORDERSTREAM_SEARCH_PORT=${ORDERSTREAM_SEARCH_PORT:-59200}
STATE=$ORDERSTREAM_LOCAL_DIR/opensearch
PIDFILE=$STATE/node.pid
LOG=$STATE/node.log
LIB_LINK=$(realpath -m "${ORDERSTREAM_CACHE_DIR:-${HOME:-/root}/.cache/orderstream}")/opensearch-2.19.6/lib
HEAP=${ORDERSTREAM_SEARCH_HEAP:-1g}
JAVA=/usr/lib/jvm/java-17-openjdk-amd64/bin/java  # same choice as build.sh
[[ -x "$JAVA" ]] || JAVA=${JAVA_HOME:+$JAVA_HOME/bin/}java
DEADLINE_SECONDS=${ORDERSTREAM_SEARCH_START_TIMEOUT:-120}
URL=http://127.0.0.1:$ORDERSTREAM_SEARCH_PORT

healthy() {
  curl -fsS --max-time 5 "$URL/_cluster/health" 2>/dev/null | grep -qE '"status" ?: ?"(green|yellow)"'
}

# True while $1 is a live node process (an exited, unreaped one has an empty cmdline).
is_node() {
  tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline" | grep -q 'orderstream.local.opensearch.EmbeddedNode'
}

# True while process $1 is alive (whatever it is running yet: nohup/setsid/java), i.e. not gone and
# not a zombie. Read from /proc/PID/stat: reading a process's cmdline goes through its memory and was
# seen to come back empty for a live node on a heavily loaded machine.
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  [[ -n $stat && ${stat##*) } != [ZX]* ]]
}

# Prints the pid from the pid file if it belongs to a live node process.
node_pid() {
  local pid
  pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] && is_node "$pid" || return 1
  echo "$pid"
}

show_log() {
  {
    echo "---- errors in $LOG ----"
    grep -E '\]\[(ERROR|WARN) *\]|^Caused by|^[A-Za-z0-9_.$]+(Exception|Error)\b' "$LOG" 2>/dev/null | tail -n 15
    echo "---- tail of $LOG ----"
    tail -n 25 "$LOG" 2>/dev/null
    echo "---- full log: $STATE/logs/orderstream-local.log ----"
  } >&2
}

mkdir -p "$STATE"
exec 9>"$STATE/.start.lock"
flock -w 300 9 || { echo "start.sh: timed out waiting for another start.sh" >&2; exit 1; }

if pid=$(node_pid); then
  if healthy; then
    echo "opensearch already running (pid $pid) at $URL"
    exit 0
  fi
  echo "opensearch process $pid exists but is not healthy yet; waiting" >&2
else
  if [[ -f "$PIDFILE" ]]; then
    echo "start.sh: removing stale pid file ($(cat "$PIDFILE" 2>/dev/null))" >&2
    rm -f "$PIDFILE"
  fi
  if curl -fsS --max-time 5 -o /dev/null "$URL/" 2>/dev/null; then
    echo "start.sh: something else already answers on $URL (not the node of $STATE); stop it or set ORDERSTREAM_SEARCH_PORT" >&2
    exit 1
  fi

  "$HERE/build.sh"
  LIB=$(readlink -f "$LIB_LINK")  # pin this build: a later rebuild won't pull jars from under us

  mkdir -p "$STATE/tmp" "$STATE/logs"
  # Class-data-sharing archive recorded by build.sh; skipped when this JVM cannot map it
  # (e.g. after a JDK upgrade).
  CDS=()
  if [[ -f "$LIB/node.jsa" ]] &&
     "$JAVA" -Xshare:on -XX:SharedArchiveFile="$LIB/node.jsa" -cp "$LIB/*" -version >/dev/null 2>&1; then
    CDS=(-XX:SharedArchiveFile="$LIB/node.jsa")
  fi
  # setsid: the node must outlive the caller's process group (test runners, terminals).
  # 9>&-: the node must not inherit the start lock.
  nohup setsid "$JAVA" \
    -Xms"$HEAP" -Xmx"$HEAP" -XX:+UseG1GC -Xss1m \
    "${CDS[@]}" -Xlog:cds*=off \
    -XX:+ShowCodeDetailsInExceptionMessages -XX:-OmitStackTraceInFastThrow \
    -XX:ErrorFile="$STATE/logs/hs_err_pid%p.log" \
    -Xlog:gc*,gc+age=trace,safepoint:file="$STATE/logs/gc.log":utctime,pid,tags:filecount=4,filesize=16m \
    -Djava.awt.headless=true -Dfile.encoding=UTF-8 -Djna.nosys=true \
    -Djava.locale.providers=SPI,COMPAT \
    -Djava.io.tmpdir="$STATE/tmp" \
    -Dio.netty.noUnsafe=true -Dio.netty.noKeySetOptimization=true \
    -Dio.netty.recycler.maxCapacityPerThread=0 -Dio.netty.allocator.numDirectArenas=0 \
    -Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true \
    -cp "$LIB/*" orderstream.local.opensearch.EmbeddedNode \
    >"$LOG" 2>&1 </dev/null 9>&- &
  pid=$!
  echo "$pid" >"$PIDFILE"
  echo "starting opensearch 2.19.6 (pid $pid) at $URL, state in $STATE" >&2
fi

deadline=$((SECONDS + DEADLINE_SECONDS))
until healthy; do
  if ! alive "$pid"; then
    echo "start.sh: opensearch exited during startup" >&2
    rm -f "$PIDFILE"
    show_log
    exit 1
  fi
  if ((SECONDS >= deadline)); then
    # Left running: on an overloaded machine it may just be slow, and running start.sh again
    # goes on waiting for it. stop.sh stops it.
    echo "start.sh: opensearch (pid $pid) not healthy after ${DEADLINE_SECONDS}s; left running" >&2
    show_log
    exit 1
  fi
  sleep 0.5
done
echo "opensearch running (pid $pid) at $URL"
