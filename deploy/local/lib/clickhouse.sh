# shellcheck shell=bash
# clickhouse: Debian's clickhouse-server 18.16 run by hand (the package's own service start is
# blocked on these machines) with a config of our own in $STATE/clickhouse: native protocol on
# 127.0.0.1:$CH_PORT, HTTP on 127.0.0.1:$CH_HTTP_PORT, no other listener (no interserver,
# https or secure-native port), user `default` without password from loopback only.

CH_DIR=$STATE/clickhouse
CH_DATA=$CH_DIR/data
CH_LOGS=$CH_DIR/logs # server.log, error.log (ClickHouse's own) and stdout.log
CH_CONFIG=$CH_DIR/config.xml
CH_PIDFILE=$CH_DIR/clickhouse.pid

ch_install() {
  if ! command -v clickhouse-server >/dev/null 2>&1 || ! command -v clickhouse-client >/dev/null 2>&1; then
    apt_install clickhouse-server clickhouse-client
  fi
  command -v clickhouse-server >/dev/null 2>&1 || die "clickhouse-server missing after install; see $STATE/apt.log"
}

# ch_write_config: config.xml and users.xml, rewritten at every start (ports may change).
# Elements left out are off: interserver_http_port, https_port, tcp_port_secure, graphite, zookeeper.
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
        <size>100M</size>
        <count>3</count>
    </logger>
    <listen_host>127.0.0.1</listen_host>
    <tcp_port>$CH_PORT</tcp_port>
    <http_port>$CH_HTTP_PORT</http_port>
    <max_connections>1024</max_connections>
    <keep_alive_timeout>3</keep_alive_timeout>
    <max_concurrent_queries>100</max_concurrent_queries>
    <uncompressed_cache_size>1073741824</uncompressed_cache_size>
    <mark_cache_size>536870912</mark_cache_size>
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
    <query_log>
        <database>system</database>
        <table>query_log</table>
        <partition_by>toYYYYMM(event_date)</partition_by>
        <flush_interval_milliseconds>7500</flush_interval_milliseconds>
    </query_log>
</yandex>
EOF
  cat >"$CH_DIR/users.xml" <<'EOF'
<?xml version="1.0"?>
<!-- Written by deploy/local/services.sh at every start; edits are overwritten. -->
<yandex>
    <profiles>
        <default>
            <max_memory_usage>4000000000</max_memory_usage>
            <use_uncompressed_cache>0</use_uncompressed_cache>
            <load_balancing>random</load_balancing>
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

# ch_query SQL: run SQL over the native protocol (what the Go client uses).
ch_query() {
  timeout 15 clickhouse-client --host 127.0.0.1 --port "$CH_PORT" --connect_timeout=2 -q "$1" </dev/null
}

ch_health() {
  [[ $(ch_query 'SELECT 1' 2>/dev/null) == 1 ]]
}

ch_start() {
  if ch_pid >/dev/null; then
    info "server running but not healthy yet; waiting"
    return 0
  fi
  require_port_free "$CH_PORT" "clickhouse native"
  require_port_free "$CH_HTTP_PORT" "clickhouse http"
  ch_write_config
  info "starting ClickHouse $(dpkg-query -W -f='${Version}' clickhouse-server 2>/dev/null | cut -d+ -f1) on 127.0.0.1:$CH_PORT (http :$CH_HTTP_PORT, log: $CH_LOGS/server.log)"
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

ch_stop() {
  if ! ch_pid >/dev/null; then
    rm -f "$CH_PIDFILE"
    info "not running"
    return 0
  fi
  info "stopping (SIGTERM)"
  stop_pid "$CH_PIDFILE" "clickhouse-server --config-file=$CH_CONFIG" 60
}

ch_status() {
  local pid
  if ch_health; then
    echo "healthy   pid=$(ch_pid || echo ?)  127.0.0.1:$CH_PORT (http :$CH_HTTP_PORT)  log=$CH_LOGS/server.log"
    return 0
  elif pid=$(ch_pid); then
    echo "UNHEALTHY pid=$pid running but not answering SELECT 1  log=$CH_LOGS/error.log"
  else
    echo "down      log=$CH_LOGS/error.log"
  fi
  return 1
}

ch_wipe() { rm -rf "$CH_DIR"; }
