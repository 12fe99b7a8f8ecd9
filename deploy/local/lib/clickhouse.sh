# shellcheck shell=bash
# clickhouse: Debian's clickhouse-server 18.16 run by hand (the package's own service start is
# blocked on these machines) with a config of our own in $STATE/clickhouse: native protocol on
# 127.0.0.1:$CH_PORT, HTTP on 127.0.0.1:$CH_HTTP_PORT, no other listener (no interserver,
# https or secure-native port), user `default` without password from loopback only.
# The cluster profile (cluster.sh) points ch_node at each of its four servers in turn and sets the
# profile settings below to its own (interserver port, ZooKeeper, macros, remote servers).

# ch_node NAME DIR PORT HTTP_PORT [INTERSERVER_PORT]: the server the functions below act on: NAME
# in messages, its state in DIR (data/, logs/ with server.log, error.log (ClickHouse's own) and
# stdout.log, config.xml, users.xml, clickhouse.pid), its native protocol on 127.0.0.1:PORT, HTTP on
# HTTP_PORT (none when empty) and replication's interserver HTTP on INTERSERVER_PORT (none when
# empty or left out).
ch_node() {
  CH_NAME=$1 CH_DIR=$2 CH_PORT=$3 CH_HTTP_PORT=$4 CH_INTERSERVER_PORT=${5:-}
  CH_DATA=$CH_DIR/data
  CH_LOGS=$CH_DIR/logs
  CH_CONFIG=$CH_DIR/config.xml
  CH_PIDFILE=$CH_DIR/clickhouse.pid
}
ch_node clickhouse "$STATE/clickhouse" "$CH_PORT" "$CH_HTTP_PORT"

# The profile's settings, the same on each of its servers (the cluster profile sets its own): log
# rotation, connections and caches (bytes), the default profile's load balancing and further
# settings (XML elements), a function printing the further server elements of config.xml, and the
# health query (healthy iff it returns 1).
CH_LOG_SIZE=100M
CH_LOG_COUNT=3
CH_MAX_CONNECTIONS=1024
CH_UNCOMPRESSED_CACHE_SIZE=1073741824
CH_MARK_CACHE_SIZE=536870912
CH_LOAD_BALANCING=random
CH_PROFILE_EXTRA=
CH_SERVER_EXTRA=ch_query_log_xml
CH_HEALTH_SQL='SELECT 1'

ch_install() {
  if ! command -v clickhouse-server >/dev/null 2>&1 || ! command -v clickhouse-client >/dev/null 2>&1; then
    apt_install clickhouse-server clickhouse-client
  fi
  command -v clickhouse-server >/dev/null 2>&1 || die "clickhouse-server missing after install; see $STATE/apt.log"
}

# ch_write_config: config.xml and users.xml, rewritten at every start (ports may change).
# Elements left out are off: https_port, graphite; interserver_http_port and zookeeper unless the
# cluster profile sets them; and tcp_port_secure (plain profile) or tcp_port and http_port (secure
# profile: TLS only).
ch_write_config() {
  mkdir -p "$CH_DATA" "$CH_DIR/tmp" "$CH_DIR/user_files" "$CH_DIR/format_schemas" "$CH_LOGS"
  cat >"$CH_CONFIG" <<EOF
<?xml version="1.0"?>
<!-- Written by deploy/local/services.sh at every start; edits are overwritten. -->
<yandex>
    <logger>
        <level>information</level>
        <log>$CH_LOGS/server.log</log>
        <errorlog>$CH_LOGS/error.log</errorlog>
        <size>$CH_LOG_SIZE</size>
        <count>$CH_LOG_COUNT</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
$(ch_listeners)
    <max_connections>$CH_MAX_CONNECTIONS</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>$CH_UNCOMPRESSED_CACHE_SIZE</uncompressed_cache_size>
    <mark_cache_size>$CH_MARK_CACHE_SIZE</mark_cache_size>
    <path>$CH_DATA/</path>
    <tmp_path>$CH_DIR/tmp/</tmp_path>
    <user_files_path>$CH_DIR/user_files/</user_files_path>
    <format_schema_path>$CH_DIR/format_schemas/</format_schema_path>
    <users_config>$CH_DIR/users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <timezone>UTC</timezone>
    <mlock_executable>false</mlock_executable>
    <max_session_timeout>3600</max_session_timeout>
    <default_session_timeout>60</default_session_timeout>
$("$CH_SERVER_EXTRA")
</yandex>
EOF
  ch_write_users
}

# ch_query_log_xml: the plain and secure profiles' further server settings: a query log.
ch_query_log_xml() {
  cat <<'EOF'
    <query_log>
        <database>system</database>
        <table>query_log</table>
        <partition_by>toYYYYMM(event_date)</partition_by>
        <flush_interval_milliseconds>7500</flush_interval_milliseconds>
    </query_log>
EOF
}

# ch_listeners: the <*_port> elements (and the secure profile's TLS settings).
ch_listeners() {
  if ((!SECURE)); then
    printf '    <tcp_port>%s</tcp_port>\n    <http_port>%s</http_port>\n' "$CH_PORT" "$CH_HTTP_PORT"
    if [[ -n $CH_INTERSERVER_PORT ]]; then
      printf '    <interserver_http_port>%s</interserver_http_port>\n    <interserver_http_host>127.0.0.1</interserver_http_host>\n' "$CH_INTERSERVER_PORT"
    fi
    return 0
  fi
  cat <<EOF
    <tcp_port_secure>$CH_PORT</tcp_port_secure>
    <openSSL>
        <server>
            <certificateFile>$TLS_DIR/server.pem</certificateFile>
            <privateKeyFile>$TLS_DIR/server.key</privateKeyFile>
            <caConfig>$TLS_DIR/ca.pem</caConfig>
            <verificationMode>none</verificationMode>
            <loadDefaultCAFile>false</loadDefaultCAFile>
            <cacheSessions>true</cacheSessions>
            <disableProtocols>sslv2,sslv3,tlsv1,tlsv1_1</disableProtocols>
            <preferServerCiphers>true</preferServerCiphers>
        </server>
    </openSSL>
EOF
}

# ch_write_users: users.xml. The secure profile's `default` user has a random password and no
# network it may log in from; `orderstream` logs in from loopback with its password (sha256).
ch_write_users() {
  if ((SECURE)); then
    local hash
    hash=$(printf '%s' "$(secret_value clickhouse)" | sha256sum | cut -d' ' -f1)
    sed -e "s|<password></password>|<password_sha256_hex>$(openssl rand -hex 32 | sha256sum | cut -d' ' -f1)</password_sha256_hex>|" \
      -e 's|<ip>127.0.0.1</ip>|<ip>192.0.2.1/32</ip><!-- TEST-NET-1: no network reaches it -->|' -e '/<ip>::1<\/ip>/d' \
      -e "s|</users>|$(ch_user_xml orderstream "$hash")</users>|" <<<"$(ch_users_xml)" >"$CH_DIR/users.xml"
    chmod 600 "$CH_DIR/users.xml"
    return 0
  fi
  ch_users_xml >"$CH_DIR/users.xml"
}

# ch_user_xml NAME SHA256: one loopback user with a password, on one line (for sed).
ch_user_xml() {
  printf '<%s><password_sha256_hex>%s</password_sha256_hex><networks><ip>127.0.0.1</ip></networks><profile>default</profile><quota>default</quota></%s>' "$1" "$2" "$1"
}

# ch_users_xml: users.xml (user `default` without password from loopback, its default profile).
ch_users_xml() {
  cat <<EOF
<?xml version="1.0"?>
<!-- Written by deploy/local/services.sh at every start; edits are overwritten. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>$CH_LOAD_BALANCING</load_balancing>$CH_PROFILE_EXTRA
        </default>
        <readonly>
            <readonly>1</readonly>
        </readonly>
    </profiles>
    <users>
        <default>
            <password></password>
            <networks>
                <ip>127.0.0.1</ip>
                <ip>::1</ip>
            </networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas>
        <default>
            <interval>
                <duration>3600</duration>
                <queries>0</queries>
                <errors>0</errors>
                <result_rows>0</result_rows>
                <read_rows>0</read_rows>
                <execution_time>0</execution_time>
            </interval>
        </default>
    </quotas>
</yandex>
EOF
}

ch_pid() { pid_of "$CH_PIDFILE" "clickhouse-server --config-file=$CH_CONFIG"; }
ch_pidfile() { echo "$CH_PIDFILE"; }

# ch_query SQL: run SQL over the native protocol (what the Go client uses); in the secure
# profile over TLS (the CA checked) as user orderstream.
ch_query() {
  local tls=()
  if ((SECURE)); then
    ch_client_config
    tls=(--secure --config-file="$CH_DIR/client.xml" --user orderstream --password "$(secret_value clickhouse)")
  fi
  timeout 15 clickhouse-client --host 127.0.0.1 --port "$CH_PORT" --connect_timeout=2 "${tls[@]}" -q "$1" </dev/null
}

# ch_client_config: clickhouse-client's settings for the secure port: trust the profile's CA.
ch_client_config() {
  [[ -s $CH_DIR/client.xml ]] && return 0
  mkdir -p "$CH_DIR"
  cat >"$CH_DIR/client.xml" <<EOF
<?xml version="1.0"?>
<config>
    <openSSL>
        <client>
            <loadDefaultCAFile>false</loadDefaultCAFile>
            <caConfig>$TLS_DIR/ca.pem</caConfig>
            <verificationMode>strict</verificationMode>
            <cacheSessions>true</cacheSessions>
            <disableProtocols>sslv2,sslv3</disableProtocols>
            <invalidCertificateHandler><name>RejectCertificateHandler</name></invalidCertificateHandler>
        </client>
    </openSSL>
</config>
EOF
}

ch_health() {
  [[ $(ch_query "$CH_HEALTH_SQL" 2>/dev/null) == 1 ]]
}

ch_start() {
  if ch_pid >/dev/null; then
    info "server running but not healthy yet; waiting"
    return 0
  fi
  require_port_free "$CH_PORT" "$CH_NAME native"
  [[ -z $CH_HTTP_PORT ]] || require_port_free "$CH_HTTP_PORT" "$CH_NAME http"
  [[ -z $CH_INTERSERVER_PORT ]] || require_port_free "$CH_INTERSERVER_PORT" "$CH_NAME interserver"
  ch_write_config
  info "starting ClickHouse $(dpkg-query -W -f='${Version}' clickhouse-server 2>/dev/null | cut -d+ -f1) $CH_NAME on 127.0.0.1:$CH_PORT ($(ch_ports), log: $CH_LOGS/server.log)"
  echo "--- $(date -u +%FT%TZ) start" >>"$CH_LOGS/stdout.log"
  # Runs as root: the data dir is ours, so the owner check of newer servers does not apply.
  spawn "$CH_LOGS/stdout.log" "$CH_PIDFILE" clickhouse-server --config-file="$CH_CONFIG"
}

ch_wait() {
  local deadline=$(($(now_s) + 60))
  while ! ch_health; do
    if ! ch_pid >/dev/null; then
      die "clickhouse-server exited during startup; see $CH_LOGS/error.log and $CH_LOGS/stdout.log"
    fi
    if (($(now_s) >= deadline)); then
      die "clickhouse-server did not answer SELECT 1 on 127.0.0.1:$CH_PORT within 60s; see $CH_LOGS/error.log"
    fi
    sleep 0.5
  done
}

ch_stop() { stop_service "$CH_PIDFILE" "clickhouse-server --config-file=$CH_CONFIG" SIGTERM; }

ch_status() {
  local pid
  if ch_health; then
    echo "healthy   pid=$(ch_pid || echo ?)  127.0.0.1:$CH_PORT ($(ch_ports))  log=$CH_LOGS/server.log"
    return 0
  elif pid=$(ch_pid); then
    echo "UNHEALTHY pid=$pid running but not answering SELECT 1  log=$CH_LOGS/error.log"
  else
    echo "down      log=$CH_LOGS/error.log"
  fi
  return 1
}

# ch_ports: what listens besides, for messages.
ch_ports() {
  if ((SECURE)); then echo "secure native only, TLS"; else echo "http :$CH_HTTP_PORT"; fi
}

ch_wipe() { rm -rf "$CH_DIR"; }
