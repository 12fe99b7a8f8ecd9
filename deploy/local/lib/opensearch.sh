# shellcheck shell=bash
# opensearch: delegated to deploy/local/opensearch/start.sh and stop.sh (an embedded OpenSearch
# 2.19.6 node built by Maven). Contract: start.sh starts the node on ORDERSTREAM_SEARCH_PORT with
# its state in $ORDERSTREAM_LOCAL_DIR/opensearch, writes a pid file there and returns once healthy;
# stop.sh stops it. This file only calls them and checks /_cluster/health.

OS_SCRIPTS=$HERE/opensearch
OS_DIR=$STATE/opensearch

os_require() {
  [[ -f $OS_SCRIPTS/$1 ]] ||
    die "$OS_SCRIPTS/$1 does not exist yet: the opensearch service is provided by deploy/local/opensearch/ (not built in this checkout)"
}

# os_run SCRIPT: run start.sh / stop.sh with our settings; its output goes to our stdout.
os_run() {
  ORDERSTREAM_LOCAL_DIR=$STATE ORDERSTREAM_CACHE_DIR=$CACHE \
    ORDERSTREAM_SEARCH_PORT=$OS_PORT ORDERSTREAM_SEARCH_TRANSPORT_PORT=$OS_TRANSPORT_PORT \
    bash "$OS_SCRIPTS/$1" </dev/null 9>&-
}

os_install() {
  os_require start.sh
  need_cmd curl curl
}

os_health() {
  curl -fsS --max-time 5 "http://127.0.0.1:$OS_PORT/_cluster/health" 2>/dev/null |
    grep -qE '"status" ?: ?"(green|yellow)"'
}

os_start() {
  os_require start.sh
  info "starting via $OS_SCRIPTS/start.sh (state and logs in $OS_DIR)"
  os_run start.sh || die "$OS_SCRIPTS/start.sh failed; see the logs in $OS_DIR"
}

os_wait() {
  wait_until 30 "OpenSearch /_cluster/health green or yellow on 127.0.0.1:$OS_PORT" os_health ||
    die "OpenSearch is not healthy; see the logs in $OS_DIR"
}

os_stop() {
  if [[ ! -f $OS_SCRIPTS/stop.sh ]]; then
    if os_health; then
      die "$OS_SCRIPTS/stop.sh does not exist; cannot stop the node answering on 127.0.0.1:$OS_PORT"
    fi
    info "not running"
    return 0
  fi
  os_run stop.sh || die "$OS_SCRIPTS/stop.sh failed; see the logs in $OS_DIR"
}

os_status() {
  if os_health; then
    echo "healthy   127.0.0.1:$OS_PORT (transport :$OS_TRANSPORT_PORT)  logs=$OS_DIR"
    return 0
  elif [[ ! -f $OS_SCRIPTS/start.sh ]]; then
    echo "down      ($OS_SCRIPTS/start.sh does not exist yet)"
  else
    echo "down      logs=$OS_DIR"
  fi
  return 1
}

os_wipe() { rm -rf "$OS_DIR"; }
