# shellcheck shell=bash
# opensearch: delegated to deploy/local/opensearch/start.sh and stop.sh (an embedded OpenSearch
# 2.19.6 node built by Maven). Contract: start.sh starts the node on ORDERSTREAM_SEARCH_PORT with
# its state in $ORDERSTREAM_LOCAL_DIR/opensearch, writes a pid file there and returns once healthy;
# stop.sh stops it. This file only calls them and checks /_cluster/health.

#
# Secure profile: the node listens on an internal loopback port (plain HTTP, heap 512 MB) and
# nginx from Debian, in front of it, is the only way in: TLS with the profile's certificate and
# HTTP basic auth (user orderstream, password hashed with `openssl passwd -6`). The OpenSearch
# security plugin, which would do this in the node, is not published on Maven Central.

OS_SCRIPTS=$HERE/opensearch

# os_node BASE PORT TRANSPORT_PORT HEAP [NAME]: the node the functions below act on: start.sh's state
# root BASE (the node's state, logs and node.pid in BASE/opensearch), HTTP on 127.0.0.1:PORT,
# transport on TRANSPORT_PORT, JVM heap HEAP (e.g. 512m); NAME, in a cluster, the node's name there
# (its health then also needs the cluster to list it). OS_NODE_ENV: further NAME=value settings of
# start.sh (the cluster profile's: cluster name, node name and roles, seed hosts).
os_node() {
  OS_BASE=$1 OS_PORT=$2 OS_TRANSPORT_PORT=$3 OS_HEAP=$4 OS_NODE_NAME=${5:-}
  OS_DIR=$OS_BASE/opensearch
}
if ((SECURE)); then
  os_node "$STATE" "$OS_PORT" "$OS_TRANSPORT_PORT" "${ORDERSTREAM_SECURE_SEARCH_HEAP:-512m}"
else
  os_node "$STATE" "$OS_PORT" "$OS_TRANSPORT_PORT" "${ORDERSTREAM_SEARCH_HEAP:-1g}"
fi
OS_NODE_ENV=()
NGINX_DIR=$STATE/nginx
NGINX_CONF=$NGINX_DIR/nginx.conf
NGINX_PIDFILE=$NGINX_DIR/nginx.pid

os_require() {
  [[ -f $OS_SCRIPTS/$1 ]] ||
    die "$OS_SCRIPTS/$1 does not exist yet: the opensearch service is provided by deploy/local/opensearch/ (not built in this checkout)"
}

# os_run SCRIPT: run start.sh / stop.sh with the node's settings; its output goes to our stdout.
os_run() {
  env ORDERSTREAM_LOCAL_DIR="$OS_BASE" ORDERSTREAM_CACHE_DIR="$CACHE" \
    ORDERSTREAM_SEARCH_PORT="$OS_PORT" ORDERSTREAM_SEARCH_TRANSPORT_PORT="$OS_TRANSPORT_PORT" \
    ORDERSTREAM_SEARCH_HEAP="$OS_HEAP" "${OS_NODE_ENV[@]}" bash "$OS_SCRIPTS/$1" </dev/null 9>&-
}

os_pid() { pid_of "$OS_DIR/node.pid" "orderstream.local.opensearch.EmbeddedNode"; }
os_pidfile() { echo "$OS_DIR/node.pid"; }

os_install() {
  os_require start.sh
  need_cmd curl curl
  ((!SECURE)) || need_cmd nginx nginx
}

# os_health: the node's cluster health, in the secure profile through nginx (TLS checked against
# the profile's CA, basic auth; the password goes to curl on stdin, not on its command line).
os_health() {
  if ((SECURE)); then
    printf 'user = "orderstream:%s"\n' "$(secret_value search)" |
      curl -fsS --max-time 5 --cacert "$TLS_DIR/ca.pem" -K - "https://127.0.0.1:$NGINX_PORT/_cluster/health" 2>/dev/null |
      grep -qE '"status" ?: ?"(green|yellow)"'
    return
  fi
  os_internal_health
}

# os_internal_health: the node's own HTTP port answers a green or yellow cluster health (as the node
# itself sees it) and, in a cluster (OS_NODE_NAME set), the cluster lists the node.
os_internal_health() {
  curl -fsS --max-time 5 "http://127.0.0.1:$OS_PORT/_cluster/health?local=true" 2>/dev/null |
    grep -qE '"status" ?: ?"(green|yellow)"' || return 1
  [[ -z $OS_NODE_NAME ]] ||
    curl -fsS --max-time 5 "http://127.0.0.1:$OS_PORT/_cat/nodes?h=name" 2>/dev/null | grep -qx "$OS_NODE_NAME"
}

os_start() {
  os_require start.sh
  info "starting via $OS_SCRIPTS/start.sh (state and logs in $OS_DIR)"
  local try
  for try in 1 2 3; do
    os_run start.sh && break
    # Our ports lie in Linux's ephemeral range (32768-60999): a client's outbound connection
    # may hold one for a moment. A bind failure is retried, at most 3 times in all.
    if ((try < 3)) && grep -q 'BindException' "$OS_DIR/node.log" 2>/dev/null; then
      warn "a port of the node was taken at bind time (an outbound connection's ephemeral port?); starting again in 2 s"
      sleep 2
      continue
    fi
    die "$OS_SCRIPTS/start.sh failed; see the logs in $OS_DIR"
  done
  ((!SECURE)) || nginx_start
}

nginx_pid() { pid_of "$NGINX_PIDFILE" "nginx: master process"; }

# nginx_start: (re)write the proxy's configuration and password file, start it in the foreground
# under spawn (its master's pid in $NGINX_PIDFILE); no-op when it already runs.
nginx_start() {
  if nginx_pid >/dev/null; then return 0; fi
  require_port_free "$NGINX_PORT" "nginx (search over TLS)"
  mkdir -p "$NGINX_DIR/tmp"
  printf 'orderstream:%s\n' "$(openssl passwd -6 -stdin <<<"$(secret_value search)")" >"$NGINX_DIR/htpasswd"
  chmod 644 "$NGINX_DIR/htpasswd" # hashes only; nginx's workers read it at every request
  local user="nobody $(id -gn nobody 2>/dev/null || echo nogroup)"
  if ! runuser -u nobody -- test -r "$NGINX_DIR/htpasswd" 2>/dev/null; then
    warn "user nobody cannot read $NGINX_DIR/htpasswd (a private parent directory); nginx workers run as root"
    user=root
  fi
  cat >"$NGINX_CONF" <<EOF
# Written by deploy/local/services.sh --secure at every start; edits are overwritten.
user $user;
worker_processes 1;
pid $NGINX_PIDFILE;
error_log $NGINX_DIR/error.log warn;
events { worker_connections 512; }
http {
    access_log $NGINX_DIR/access.log;
    client_body_temp_path $NGINX_DIR/tmp/body;
    proxy_temp_path $NGINX_DIR/tmp/proxy;
    fastcgi_temp_path $NGINX_DIR/tmp/fastcgi;
    uwsgi_temp_path $NGINX_DIR/tmp/uwsgi;
    scgi_temp_path $NGINX_DIR/tmp/scgi;
    client_max_body_size 256m;
    server_tokens off;
    upstream opensearch {
        server 127.0.0.1:$OS_PORT;
        keepalive 16;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT ssl;
        ssl_certificate $TLS_DIR/server.pem;
        ssl_certificate_key $TLS_DIR/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        auth_basic "orderstream search";
        auth_basic_user_file $NGINX_DIR/htpasswd;
        location / {
            proxy_pass http://opensearch;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Authorization "";
            proxy_read_timeout 300s;
        }
    }
}
EOF
  nginx -t -q -p "$NGINX_DIR" -e "$NGINX_DIR/error.log" -c "$NGINX_CONF" >>"$NGINX_DIR/stdout.log" 2>&1 ||
    die "nginx refused $NGINX_CONF; see $NGINX_DIR/stdout.log"
  info "starting nginx on 127.0.0.1:$NGINX_PORT (TLS, basic auth) in front of OpenSearch on 127.0.0.1:$OS_PORT (log: $NGINX_DIR/error.log)"
  spawn "$NGINX_DIR/stdout.log" "$NGINX_PIDFILE.spawn" \
    nginx -p "$NGINX_DIR" -e "$NGINX_DIR/error.log" -c "$NGINX_CONF" -g 'daemon off;'
  wait_until 10 "nginx to write $NGINX_PIDFILE" nginx_pid || die "nginx did not start; see $NGINX_DIR/error.log"
  rm -f "$NGINX_PIDFILE.spawn"
}

nginx_stop() {
  nginx_pid >/dev/null || return 0
  info "stopping nginx"
  stop_pid "$NGINX_PIDFILE" "nginx: master process" 20
}

os_wait() {
  wait_until 30 "OpenSearch /_cluster/health green or yellow on 127.0.0.1:$OS_PORT" os_health ||
    die "OpenSearch is not healthy; see the logs in $OS_DIR"
}

os_stop() {
  ((!SECURE)) || nginx_stop
  if [[ ! -f $OS_SCRIPTS/stop.sh ]]; then
    if os_internal_health; then
      die "$OS_SCRIPTS/stop.sh does not exist; cannot stop the node answering on 127.0.0.1:$OS_PORT"
    fi
    info "not running"
    return 0
  fi
  os_run stop.sh || die "$OS_SCRIPTS/stop.sh failed; see the logs in $OS_DIR"
}

os_status() {
  if os_health; then
    if ((SECURE)); then
      echo "healthy   https://127.0.0.1:$NGINX_PORT (nginx pid $(nginx_pid || echo ?)) -> 127.0.0.1:$OS_PORT (transport :$OS_TRANSPORT_PORT)  logs=$OS_DIR $NGINX_DIR"
    else
      echo "healthy   127.0.0.1:$OS_PORT (transport :$OS_TRANSPORT_PORT)  logs=$OS_DIR"
    fi
    return 0
  elif [[ ! -f $OS_SCRIPTS/start.sh ]]; then
    echo "down      ($OS_SCRIPTS/start.sh does not exist yet)"
  else
    echo "down      logs=$OS_DIR"
  fi
  return 1
}

os_wipe() { rm -rf "$OS_DIR" "$NGINX_DIR"; }
