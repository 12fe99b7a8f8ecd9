# shellcheck shell=bash
# cluster: the cluster profile of the local services, beside the plain one (own state dir, own ports):
#   zookeeper                      Apache ZooKeeper 3.9.5 (Maven Central jars), standalone, for ClickHouse
#   kafka-1 kafka-2 kafka-3        Apache Kafka 4.x in KRaft, each node controller + broker (static
#                                  voters), default replication factor 3, min.insync.replicas=2
#   clickhouse-s1r1 … s2r2         ClickHouse 18.16, two shards × two replicas, cluster `orderstream`
#                                  (internal_replication), macros {shard} {replica} per node
#   opensearch-1 … opensearch-3    OpenSearch 2.19.6, all three cluster-manager-eligible (quorum 2 of
#                                  3); nodes 1 and 2 also hold data, node 3 is cluster manager only
# Sourced by services.sh; `--cluster` selects it. A node of Kafka, ClickHouse or OpenSearch is the plain
# profile's, run by kafka.sh, clickhouse.sh and opensearch.sh (kafka_node, ch_node and os_node point
# them at the node; cl_init sets the profile's settings); this file adds ZooKeeper, the topology and
# the commands over nodes. No PostgreSQL: the write side stays on the plain profile. See
# deploy/local/README.md "Cluster profile".
# shellcheck disable=SC2153

CL_STATE=${ORDERSTREAM_CLUSTER_DIR:-$REPO/.local-cluster}
[[ $CL_STATE == /* ]] || CL_STATE=$PWD/$CL_STATE

# cl_ports VAR DEFAULT: a comma-separated port list from ORDERSTREAM_CLUSTER_<VAR>, else DEFAULT.
cl_ports() {
  local name=ORDERSTREAM_CLUSTER_$1
  local v=${!name:-$2}
  [[ $v =~ ^[0-9]+(,[0-9]+)*$ ]] || die "$name='$v': want a comma-separated list of ports"
  echo "${v//,/ }"
}
CL_CH_CLUSTER=orderstream
CL_KAFKA_HEAP=${ORDERSTREAM_CLUSTER_KAFKA_HEAP:-512m}
CL_OS_HEAP=${ORDERSTREAM_CLUSTER_SEARCH_HEAP:-512m}                 # opensearch-1, -2 (data)
CL_OS_MANAGER_HEAP=${ORDERSTREAM_CLUSTER_SEARCH_MANAGER_HEAP:-256m} # opensearch-3 (cluster manager only)
CL_OS_NODES=(opensearch-1 opensearch-2 opensearch-3)
CL_ZK_VERSION=3.9.5
CL_ZK_POM=$HERE/zookeeper/pom.xml
CL_ZK_LIBS=$CACHE/zookeeper-$CL_ZK_VERSION/libs
# Its own KRaft cluster id (base64 of "orderstream-clus"), so a node of one profile never joins the other.
CL_KAFKA_CLUSTER_ID=b3JkZXJzdHJlYW0tY2x1cw

# cl_read_ports VAR DEFAULT ARRAY: cl_ports into the array named ARRAY (exits on a bad list).
cl_read_ports() {
  local v
  v=$(cl_ports "$1" "$2") || exit 1
  read -r -a "$3" <<<"$v"
}

# cl_init: the ports, read when a cluster command runs (a bad value fails only the cluster profile).
cl_init() {
  CL_ZK_PORT=${ORDERSTREAM_CLUSTER_ZOOKEEPER_PORT:-52181}
  [[ $CL_ZK_PORT =~ ^[0-9]+$ ]] || die "ORDERSTREAM_CLUSTER_ZOOKEEPER_PORT='$CL_ZK_PORT': want a port"
  cl_read_ports KAFKA_PORTS 59401,59402,59403 CL_KAFKA_PORTS
  cl_read_ports KAFKA_CONTROLLER_PORTS 59411,59412,59413 CL_KAFKA_CONTROLLER_PORTS
  cl_read_ports CLICKHOUSE_PORTS 59421,59422,59423,59424 CL_CH_PORTS
  cl_read_ports CLICKHOUSE_HTTP_PORTS 58151,58152,58153,58154 CL_CH_HTTP_PORTS
  cl_read_ports CLICKHOUSE_INTERSERVER_PORTS 59431,59432,59433,59434 CL_CH_INTERSERVER_PORTS
  cl_read_ports SEARCH_PORTS 59441,59442,59443 CL_OS_PORTS
  cl_read_ports SEARCH_TRANSPORT_PORTS 59451,59452,59453 CL_OS_TRANSPORT_PORTS
  cl_check_ports
  cl_settings
}

# cl_settings: the cluster profile's settings of kafka.sh and clickhouse.sh (each node's own: cl_node).
cl_settings() {
  local i voters=()
  for i in 0 1 2; do voters+=("$((i + 1))@127.0.0.1:${CL_KAFKA_CONTROLLER_PORTS[i]}"); done
  KAFKA_VOTERS=$(
    IFS=,
    echo "${voters[*]}"
  )
  KAFKA_CLUSTER_ID=$CL_KAFKA_CLUSTER_ID
  # What a production cluster runs: three copies, a write needs two of them.
  KAFKA_REPLICAS=3
  KAFKA_MIN_ISR=2
  KAFKA_EXTRA_PROPS="unclean.leader.election.enable=false
# A killed node is declared dead (and its partitions led elsewhere) after this long.
broker.session.timeout.ms=6000
broker.heartbeat.interval.ms=1000"
  KAFKA_JVM_MEMORY="-Xms$CL_KAFKA_HEAP -Xmx$CL_KAFKA_HEAP"
  KAFKA_VERSION_FILE=$CL_STATE/kafka-1/version # the Kafka version in use is the one that formatted node 1
  KAFKA_RESET_HINT="services.sh reset --cluster kafka"

  CH_LOG_SIZE=50M
  CH_LOG_COUNT=2
  CH_MAX_CONNECTIONS=512
  CH_UNCOMPRESSED_CACHE_SIZE=67108864
  CH_MARK_CACHE_SIZE=67108864
  # A Distributed insert is acknowledged only once every shard's replica has it
  # (insert_distributed_sync), and ON CLUSTER DDL waits for every node (distributed_ddl_task_timeout
  # seconds) before it returns.
  CH_LOAD_BALANCING=in_order
  CH_PROFILE_EXTRA="
            <insert_distributed_sync>1</insert_distributed_sync>
            <distributed_ddl_task_timeout>120</distributed_ddl_task_timeout>"
  CH_SERVER_EXTRA=cl_ch_server_xml
  # Replicated tables need ZooKeeper: a server is healthy once it reads it.
  CH_HEALTH_SQL="SELECT count() > 0 FROM system.zookeeper WHERE path = '/'"
}

cl_check_ports() {
  ((${#CL_KAFKA_PORTS[@]} == 3 && ${#CL_KAFKA_CONTROLLER_PORTS[@]} == 3)) ||
    die "ORDERSTREAM_CLUSTER_KAFKA_PORTS and ORDERSTREAM_CLUSTER_KAFKA_CONTROLLER_PORTS need 3 ports each"
  ((${#CL_CH_PORTS[@]} == 4 && ${#CL_CH_HTTP_PORTS[@]} == 4 && ${#CL_CH_INTERSERVER_PORTS[@]} == 4)) ||
    die "ORDERSTREAM_CLUSTER_CLICKHOUSE_PORTS, _HTTP_PORTS and _INTERSERVER_PORTS need 4 ports each (s1r1,s1r2,s2r1,s2r2)"
  ((${#CL_OS_PORTS[@]} == 3 && ${#CL_OS_TRANSPORT_PORTS[@]} == 3)) ||
    die "ORDERSTREAM_CLUSTER_SEARCH_PORTS and ORDERSTREAM_CLUSTER_SEARCH_TRANSPORT_PORTS need 3 ports each (opensearch-1,-2,-3)"
}

CL_GROUPS=(zookeeper kafka clickhouse opensearch)
CL_ALL_NODES=(zookeeper kafka-1 kafka-2 kafka-3 clickhouse-s1r1 clickhouse-s1r2 clickhouse-s2r1 clickhouse-s2r2 opensearch-1 opensearch-2 opensearch-3)

# cl_expand NAME...: node names for group or node names, in start order; dies on an unknown name.
cl_expand() {
  local n out=()
  for n in "$@"; do
    case $n in
      zookeeper) out+=(zookeeper) ;;
      kafka) out+=(kafka-1 kafka-2 kafka-3) ;;
      clickhouse) out+=(clickhouse-s1r1 clickhouse-s1r2 clickhouse-s2r1 clickhouse-s2r2) ;;
      opensearch) out+=(opensearch-1 opensearch-2 opensearch-3) ;;
      kafka-[123] | clickhouse-s[12]r[12] | opensearch-[123]) out+=("$n") ;;
      *) die "unknown cluster node '$n' (groups: ${CL_GROUPS[*]}; nodes: ${CL_ALL_NODES[*]})" ;;
    esac
  done
  echo "${out[@]}"
}

# cl_idx NODE: 0-based index within its kind (clickhouse-sSrR: shard S, replica R at (S-1)*2 + R-1).
cl_idx() {
  case $1 in
    zookeeper) echo 0 ;;
    kafka-*) echo $((${1#kafka-} - 1)) ;;
    opensearch-*) echo $((${1#opensearch-} - 1)) ;;
    clickhouse-s*)
      local s=${1#clickhouse-s}
      echo $(((${s%r*} - 1) * 2 + ${s#*r} - 1))
      ;;
  esac
}

# ---------------------------------------------------------------- zookeeper

ZK_DIR=$CL_STATE/zookeeper

zk_libs_ok() {
  [[ -f $CL_ZK_LIBS/.complete && $(cat "$CL_ZK_LIBS/.complete") == "$(sha256sum <"$CL_ZK_POM" | cut -d' ' -f1)" ]]
}

zk_install() {
  kafka_install # Java 17 and Maven, and the Kafka jars the brokers need anyway
  zk_libs_ok && return 0
  mkdir -p "$CACHE/zookeeper-$CL_ZK_VERSION"
  (
    flock -w 600 8 || die "another install holds $CACHE/zookeeper-$CL_ZK_VERSION/.lock"
    zk_libs_ok && exit 0
    info "resolving Apache ZooKeeper $CL_ZK_VERSION jars from Maven Central into $CL_ZK_LIBS"
    rm -rf "$CL_ZK_LIBS"
    mkdir -p "$CL_ZK_LIBS"
    mvn -B -q -Dstyle.color=never -f "$CL_ZK_POM" -Dzookeeper.version="$CL_ZK_VERSION" -Dlibs.dir="$CL_ZK_LIBS" \
      dependency:copy-dependencies </dev/null >"$CACHE/zookeeper-$CL_ZK_VERSION/mvn.log" 2>&1 ||
      die "could not resolve ZooKeeper $CL_ZK_VERSION; see $CACHE/zookeeper-$CL_ZK_VERSION/mvn.log"
    sha256sum <"$CL_ZK_POM" | cut -d' ' -f1 >"$CL_ZK_LIBS/.complete"
  ) 8>"$CACHE/zookeeper-$CL_ZK_VERSION/.lock"
}

zk_pidfile() { echo "$ZK_DIR/zookeeper.pid"; }
zk_pid() { pid_of "$(zk_pidfile)" "QuorumPeerMain $ZK_DIR/zoo.cfg"; }

# zk_health: the four-letter `srvr` says the server runs (`ruok` answers imok even before it does).
zk_health() {
  local reply
  # shellcheck disable=SC2016 # expanded by the inner shell
  reply=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1; printf srvr >&3; cat <&3' _ "$CL_ZK_PORT" 2>/dev/null) || return 1
  [[ $reply == *"Mode: standalone"* ]]
}

zk_start() {
  require_port_free "$CL_ZK_PORT" "zookeeper"
  mkdir -p "$ZK_DIR/data"
  cat >"$ZK_DIR/zoo.cfg" <<EOF
# Written by deploy/local/services.sh --cluster at every start; edits are overwritten.
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$ZK_DIR/data
clientPort=$CL_ZK_PORT
clientPortAddress=127.0.0.1
maxClientCnxns=200
admin.enableServer=false
4lw.commands.whitelist=ruok,srvr,mntr
autopurge.snapRetainCount=3
autopurge.purgeInterval=1
EOF
  info "starting Apache ZooKeeper $CL_ZK_VERSION on 127.0.0.1:$CL_ZK_PORT (log: $ZK_DIR/stdout.log)"
  spawn "$ZK_DIR/stdout.log" "$(zk_pidfile)" "$(kafka_java)" -Xms128m -Xmx256m -XX:+UseSerialGC \
    -Dzookeeper.admin.enableServer=false -Dorg.slf4j.simpleLogger.defaultLogLevel=warn \
    -cp "$CL_ZK_LIBS/*" org.apache.zookeeper.server.quorum.QuorumPeerMain "$ZK_DIR/zoo.cfg"
}

zk_describe() { echo "127.0.0.1:$CL_ZK_PORT  log=$ZK_DIR/stdout.log"; }

# ---------------------------------------------------------------- kafka, clickhouse, opensearch

kafka_describe() {
  echo "127.0.0.1:$KAFKA_PORT (controller :$KAFKA_CONTROLLER_PORT)  log=$KAFKA_LOGS/server.log"
}

# cl_ch_server_xml: the server elements of a cluster node beside the plain profile's: ZooKeeper, the
# node's macros ({shard} {replica}), the cluster's servers and the distributed DDL queue.
cl_ch_server_xml() {
  local s r
  cat <<EOF
    <zookeeper>
        <node><host>127.0.0.1</host><port>$CL_ZK_PORT</port></node>
        <session_timeout_ms>10000</session_timeout_ms>
    </zookeeper>
    <macros>
        <cluster>$CL_CH_CLUSTER</cluster>
        <shard>$CL_CH_SHARD</shard>
        <replica>${CH_NAME#clickhouse-}</replica>
    </macros>
    <remote_servers>
        <$CL_CH_CLUSTER>
EOF
  for s in 0 1; do
    echo "            <shard>"
    echo "                <internal_replication>true</internal_replication>"
    for r in 0 1; do
      echo "                <replica><host>127.0.0.1</host><port>${CL_CH_PORTS[s * 2 + r]}</port></replica>"
    done
    echo "            </shard>"
  done
  cat <<EOF
        </$CL_CH_CLUSTER>
    </remote_servers>
    <distributed_ddl>
        <path>/clickhouse/task_queue/ddl</path>
    </distributed_ddl>
EOF
}

ch_describe() {
  echo "127.0.0.1:$CH_PORT (http :$CH_HTTP_PORT, interserver :$CH_INTERSERVER_PORT) shard $CL_CH_SHARD  log=$CH_LOGS/error.log"
}

cl_os_install() {
  os_install
  # Builds once (start.sh would, too); done here so that the nodes' starts only start.
  ORDERSTREAM_CACHE_DIR=$CACHE bash "$HERE/opensearch/build.sh" </dev/null 9>&-
}

# cl_os_roles I: node.roles of node I. Every node is cluster-manager-eligible, so that the cluster
# keeps a quorum (2 of 3) and elects a new manager whichever node is lost; node 3 holds no data and
# so needs only a small heap (a data node's loss is covered by the replica on the other).
cl_os_roles() { [[ $1 == 2 ]] && echo cluster_manager || echo cluster_manager,data,ingest; }
cl_os_heap() { [[ $1 == 2 ]] && echo "$CL_OS_MANAGER_HEAP" || echo "$CL_OS_HEAP"; }

# cl_os_start: start.sh both starts the node and waits for it; run it in the background so that `up`
# starts every node before waiting for any (the first cluster forms once two of the three nodes see
# each other).
cl_os_start() {
  mkdir -p "$OS_BASE"
  info "starting OpenSearch $OS_NODE_NAME on 127.0.0.1:$OS_PORT (logs: $OS_DIR/logs)"
  # 9>&-: the background start must not hold services.sh's lock; >/dev/null: nor its caller's output.
  (os_run start.sh >>"$OS_BASE/start.log" 2>&1 || true) </dev/null >/dev/null 2>&1 9>&- &
  # start.sh first checks the build and the JVM's class-data archive: seconds, a minute on a loaded machine.
  local _
  for _ in $(seq 1 600); do
    [[ -s $(os_pidfile) ]] && return 0
    sleep 0.1
  done
  die "$OS_NODE_NAME did not start; see $OS_BASE/start.log"
}

os_describe() {
  echo "http://127.0.0.1:$OS_PORT (transport :$OS_TRANSPORT_PORT) roles $(cl_os_roles "$CL_IDX"), heap $OS_HEAP  logs=$OS_DIR/logs"
}

# ---------------------------------------------------------------- per node

# cl_node NODE: point the functions of NODE's kind at NODE. Sets CL_KIND (zk kafka ch os: the prefix
# of its functions <kind>_pid, _pidfile, _health, _describe), CL_IDX and CL_DIR (its state).
cl_node() {
  local i
  i=$(cl_idx "$1")
  CL_IDX=$i
  case $1 in
    zookeeper)
      CL_KIND=zk
      CL_DIR=$ZK_DIR
      ;;
    kafka-*)
      CL_KIND=kafka
      CL_DIR=$CL_STATE/$1
      kafka_node "$((i + 1))" "$1" "$CL_DIR" "${CL_KAFKA_PORTS[i]}" "${CL_KAFKA_CONTROLLER_PORTS[i]}"
      ;;
    clickhouse-*)
      CL_KIND=ch
      CL_DIR=$CL_STATE/$1
      CL_CH_SHARD=$((i / 2 + 1))
      ch_node "$1" "$CL_DIR" "${CL_CH_PORTS[i]}" "${CL_CH_HTTP_PORTS[i]}" "${CL_CH_INTERSERVER_PORTS[i]}"
      ;;
    opensearch-*)
      CL_KIND=os
      CL_DIR=$CL_STATE/$1
      os_node "$CL_DIR" "${CL_OS_PORTS[i]}" "${CL_OS_TRANSPORT_PORTS[i]}" "$(cl_os_heap "$i")" "$1"
      local j seeds=()
      for j in 0 1 2; do seeds+=("127.0.0.1:${CL_OS_TRANSPORT_PORTS[j]}"); done
      OS_NODE_ENV=(ORDERSTREAM_SEARCH_CLUSTER_NAME=orderstream-cluster ORDERSTREAM_SEARCH_NODE_NAME="$1"
        ORDERSTREAM_SEARCH_NODE_ROLES="$(cl_os_roles "$i")"
        ORDERSTREAM_SEARCH_SEED_HOSTS="$(IFS=, && echo "${seeds[*]}")"
        ORDERSTREAM_SEARCH_CLUSTER_MANAGER="$(IFS=, && echo "${CL_OS_NODES[*]}")")
      ;;
  esac
}

# cl_pid NODE: the live pid of NODE, else return 1.
cl_pid() {
  cl_node "$1"
  "${CL_KIND}_pid"
}

cl_health() {
  cl_node "$1"
  "${CL_KIND}_health" >/dev/null 2>&1
}

cl_start_node() {
  if cl_pid "$1" >/dev/null; then
    info "running but not healthy yet; waiting"
    return 0
  fi
  case $CL_KIND in
    os) cl_os_start ;;
    *) "${CL_KIND}_start" ;;
  esac
}

# cl_wait_node NODE: wait until NODE is healthy (ORDERSTREAM_CLUSTER_START_TIMEOUT s, default 180).
cl_wait_node() {
  local limit=${ORDERSTREAM_CLUSTER_START_TIMEOUT:-180}
  local deadline=$(($(now_s) + limit))
  until cl_health "$1"; do
    cl_pid "$1" >/dev/null || die "exited during startup; $(cl_describe "$1")"
    (($(now_s) < deadline)) || die "not healthy within ${limit}s; $(cl_describe "$1")"
    sleep 0.5
  done
}

cl_describe() {
  cl_node "$1"
  "${CL_KIND}_describe"
}

# cl_signal_nodes SIGNAL NODE...: send SIGNAL to every running node, then wait (60 s for TERM, then
# KILL) until each is gone. Nodes of a group go down together: a KRaft quorum whose last voters stop
# one by one waits for the lost majority.
cl_signal_nodes() {
  local sig=$1 n pid pids=() names=()
  shift
  for n in "$@"; do
    if pid=$(cl_pid "$n"); then
      SVC_TAG=$n info "$([[ $sig == KILL ]] && echo 'killing (SIGKILL)' || echo 'stopping (SIGTERM)') pid $pid"
      kill "-$sig" "$pid" 2>/dev/null || true
      pids+=("$pid")
      names+=("$n")
    else
      SVC_TAG=$n info "not running"
    fi
  done
  local j deadline=$(($(now_s) + 60))
  for j in "${!pids[@]}"; do
    while kill -0 "${pids[j]}" 2>/dev/null && [[ -n $(tr -d '\0' <"/proc/${pids[j]}/cmdline" 2>/dev/null) ]]; do
      if (($(now_s) >= deadline)); then
        SVC_TAG=${names[j]} warn "pid ${pids[j]} still alive 60s after SIG$sig; sending SIGKILL"
        kill -KILL "${pids[j]}" 2>/dev/null || true
        sleep 1
        break
      fi
      sleep 0.2
    done
  done
  for n in "$@"; do
    cl_node "$n"
    rm -f "$("${CL_KIND}_pidfile")"
  done
}

# ---------------------------------------------------------------- commands

cl_lock() {
  mkdir -p "$CL_STATE"
  exec 9>"$CL_STATE/.services.lock"
  flock -w 600 9 || die "another services.sh has held $CL_STATE/.services.lock for 600s"
}

cl_up() {
  cl_lock
  local n kinds=() failed=() started=() t0
  t0=$(now_s)
  for n in "$@"; do
    local k
    cl_node "$n"
    k=$CL_KIND
    [[ " ${kinds[*]} " == *" $k "* ]] && continue
    kinds+=("$k")
    (
      set -e
      SVC_TAG=$k
      if [[ $k == os ]]; then cl_os_install; else "${k}_install"; fi
    ) || die "installing $k failed"
  done
  for n in "$@"; do
    if cl_health "$n"; then
      SVC_TAG=$n info "already running and healthy"
      continue
    fi
    # ClickHouse needs ZooKeeper healthy before its replicated tables load.
    if [[ $n == clickhouse-* && " ${started[*]} " == *" zookeeper "* ]]; then
      (
        set -e
        SVC_TAG=zookeeper
        cl_wait_node zookeeper
      ) || true
    fi
    if (
      set -e
      SVC_TAG=$n
      cl_start_node "$n"
    ); then started+=("$n"); else failed+=("$n"); fi
  done
  for n in "${started[@]}"; do
    local attempt=1 retry_until=$(($(now_s) + 90))
    until (
      set -e
      SVC_TAG=$n
      cl_wait_node "$n"
    ); do
      # These ports lie in the kernel's ephemeral range: the local end of some connection (or one
      # in TIME-WAIT, up to 60 s) may hold one for a while, and the node then exits at once.
      # Start it again for up to 90 s.
      if (($(now_s) >= retry_until)) || cl_pid "$n" >/dev/null; then
        failed+=("$n")
        continue 2
      fi
      SVC_TAG=$n warn "exited during startup (attempt $attempt); starting it again in 3 s"
      attempt=$((attempt + 1))
      sleep 3
      (
        set -e
        SVC_TAG=$n
        cl_start_node "$n"
      ) || true
    done
    SVC_TAG=$n info "healthy"
  done
  ((${#failed[@]} > 0)) || info "cluster healthy: $* ($(($(now_s) - t0))s)"
  finish "${failed[@]}"
}

cl_down() {
  cl_lock
  # Reverse start order: clients of a service go down before it.
  local g nodes=()
  for g in opensearch clickhouse kafka zookeeper; do
    local n
    for n in "$@"; do [[ $n == "$g"* ]] && nodes+=("$n"); done
    ((${#nodes[@]} == 0)) || cl_signal_nodes TERM "${nodes[@]}"
    nodes=()
  done
}

cl_kill() {
  cl_lock
  cl_signal_nodes KILL "$@"
}

cl_status() {
  local n line pid rc=0
  for n in "$@"; do
    if cl_health "$n"; then
      line="healthy   pid=$(cl_pid "$n" || echo ?)  $(cl_describe "$n")"
    elif pid=$(cl_pid "$n"); then
      line="UNHEALTHY pid=$pid  $(cl_describe "$n")"
      rc=1
    else
      line="down      $(cl_describe "$n")"
      rc=1
    fi
    printf '%-16s %s\n' "$n" "$line"
  done
  return "$rc"
}

cl_reset() {
  cl_down "$@"
  local n
  for n in "$@"; do
    cl_node "$n"
    rm -rf "$CL_DIR"
    SVC_TAG=$n info "state wiped"
  done
}

# cl_env: what clients of the cluster use. No PostgreSQL: keep ORDERSTREAM_PG_URL of the plain profile.
cl_env() {
  local i kafka=() ch=() os=()
  for i in 0 1 2; do kafka+=("127.0.0.1:${CL_KAFKA_PORTS[i]}"); done
  for i in 0 1 2 3; do ch+=("127.0.0.1:${CL_CH_PORTS[i]}"); done
  for i in 0 1 2; do os+=("http://127.0.0.1:${CL_OS_PORTS[i]}"); done
  local IFS=,
  echo "export ORDERSTREAM_KAFKA_BROKERS=${kafka[*]}"
  echo "export ORDERSTREAM_CLICKHOUSE_ADDR=${ch[*]}"
  echo "export ORDERSTREAM_CLICKHOUSE_CLUSTER=$CL_CH_CLUSTER"
  echo "export ORDERSTREAM_SEARCH_URL=${os[*]}"
  echo "export ORDERSTREAM_CLUSTER_DIR=$CL_STATE"
}

# cluster_requested ARG...: true if --cluster is among the arguments.
cluster_requested() {
  local a
  for a in "$@"; do [[ $a == --cluster ]] && return 0; done
  return 1
}

# cluster_main CMD [--cluster] [NODE|GROUP...]: the cluster profile's commands.
cluster_main() {
  local cmd=$1 a args=()
  shift
  for a in "$@"; do [[ $a == --cluster ]] || args+=("$a"); done
  ((!SECURE)) || die "--secure and --cluster do not go together: the cluster profile has no secure variant"
  cl_init
  local nodes
  case $cmd in
    up | down | status | reset | start | stop | kill)
      if ((${#args[@]} == 0)); then
        [[ $cmd == start || $cmd == stop || $cmd == kill ]] && die "'$cmd --cluster' needs a node or group (${CL_ALL_NODES[*]})"
        args=("${CL_GROUPS[@]}")
      fi
      local expanded
      expanded=$(cl_expand "${args[@]}") || exit 1
      read -r -a nodes <<<"$expanded"
      ;;
    env) ((${#args[@]} == 0)) || die "'env --cluster' takes no node name" ;;
    *) die "unknown command '$cmd' for --cluster (up down start stop kill status env reset)" ;;
  esac
  case $cmd in
    up | start) cl_up "${nodes[@]}" ;;
    down | stop) cl_down "${nodes[@]}" ;;
    kill) cl_kill "${nodes[@]}" ;;
    status) cl_status "${nodes[@]}" ;;
    reset) cl_reset "${nodes[@]}" ;;
    env) cl_env ;;
  esac
}
