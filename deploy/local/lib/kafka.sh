# shellcheck shell=bash
# kafka: Apache Kafka 4.x nodes in KRaft combined mode (broker + controller), run from Maven Central
# jars resolved by deploy/local/kafka/pom.xml into $CACHE/kafka-<version>/libs. The plain and secure
# profiles run one node ($STATE/kafka); the cluster profile (cluster.sh) points kafka_node at each of
# its three in turn and sets the profile settings below to its own.
# Uses from services.sh: STATE, CACHE, HERE, KAFKA_PORT, KAFKA_CONTROLLER_PORT.
# shellcheck disable=SC2153

KAFKA_POM=$HERE/kafka/pom.xml
# Versions tried in order when ORDERSTREAM_KAFKA_VERSION is not set.
KAFKA_VERSIONS=(4.4.0 4.1.1)

# kafka_node ID NAME DIR PORT CONTROLLER_PORT: the node the functions below act on: node.id ID,
# NAME in messages, its state in DIR (data/, logs/ with server.log (log4j2) and stdout.log (JVM
# output), server.properties, kafka.pid), its broker listener on 127.0.0.1:PORT and its controller
# listener on 127.0.0.1:CONTROLLER_PORT.
kafka_node() {
  KAFKA_NODE_ID=$1 KAFKA_NAME=$2 KAFKA_DIR=$3 KAFKA_PORT=$4 KAFKA_CONTROLLER_PORT=$5
  KAFKA_DATA=$KAFKA_DIR/data
  KAFKA_LOGS=$KAFKA_DIR/logs
  KAFKA_PROPS=$KAFKA_DIR/server.properties
  KAFKA_PIDFILE=$KAFKA_DIR/kafka.pid
}
kafka_node 1 kafka "$STATE/kafka" "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT"

# The profile's settings, the same on each of its nodes (the cluster profile sets its own):
# a fixed KRaft cluster id (base64 of "orderstream-loca"; the storage is formatted once with it),
# the controller quorum, the replicas of every topic and how many must have a write, extra lines
# of server.properties, the JVM's heap and GC flags, the file that says which Kafka version the
# profile runs (the version that formatted its first node) and how to wipe the node.
KAFKA_CLUSTER_ID=b3JkZXJzdHJlYW0tbG9jYQ
KAFKA_VOTERS=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
KAFKA_REPLICAS=1
KAFKA_MIN_ISR=1
KAFKA_EXTRA_PROPS="# Retention is left at the broker default (7 days); topics set their own."
# The secure profile runs beside the plain one, on less.
if ((SECURE)); then
  KAFKA_JVM_MEMORY="-Xms256m -Xmx512m -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent"
else
  KAFKA_JVM_MEMORY="-Xms512m -Xmx1g -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent"
fi
KAFKA_VERSION_FILE=$KAFKA_DIR/version
KAFKA_RESET_HINT="services.sh reset kafka"

kafka_java() {
  local j=${ORDERSTREAM_JAVA:-/usr/lib/jvm/java-17-openjdk-amd64/bin/java}
  if [[ -x $j ]]; then
    echo "$j"
  else
    command -v java
  fi
}

# kafka_libs_ok DIR: DIR holds a complete copy made from the current pom.xml.
kafka_libs_ok() {
  [[ -f $1/.complete && $(cat "$1/.complete") == "$(sha256sum <"$KAFKA_POM" | cut -d' ' -f1)" ]]
}

# kafka_resolve VERSION: copy the broker's jars for VERSION into the cache (Maven Central).
# Holds a lock on the cache entry: services.sh runs with other state dirs share the cache.
# (Called in `if`/`||` context, where errexit is off: every step is checked explicitly.)
kafka_resolve() {
  local v=$1 dir=$CACHE/kafka-$1/libs
  mkdir -p "$CACHE/kafka-$v" || return 1
  (
    flock -w 600 8 || exit 1
    kafka_libs_ok "$dir" && exit 0
    info "resolving Apache Kafka $v jars from Maven Central into $dir (log: $CACHE/kafka-$v/mvn.log)"
    rm -rf "$dir" && mkdir -p "$dir" || exit 1
    if ! mvn -B -q -Dstyle.color=never -f "$KAFKA_POM" -Dkafka.version="$v" -Dlibs.dir="$dir" \
      dependency:copy-dependencies </dev/null >"$CACHE/kafka-$v/mvn.log" 2>&1; then
      warn "could not resolve Kafka $v; see $CACHE/kafka-$v/mvn.log"
      rm -rf "$dir"
      exit 1
    fi
    sha256sum <"$KAFKA_POM" | cut -d' ' -f1 >"$dir/.complete"
  ) 8>"$CACHE/kafka-$v/.lock"
}

# kafka_version: the version in use: the one the profile's data was formatted with, else the first of
# KAFKA_VERSIONS already cached, else (after kafka_install) the first that resolved.
kafka_version() {
  if [[ -n ${ORDERSTREAM_KAFKA_VERSION:-} ]]; then
    echo "$ORDERSTREAM_KAFKA_VERSION"
    return 0
  fi
  if [[ -s $KAFKA_VERSION_FILE ]]; then
    cat "$KAFKA_VERSION_FILE"
    return 0
  fi
  local v
  for v in "${KAFKA_VERSIONS[@]}"; do
    if kafka_libs_ok "$CACHE/kafka-$v/libs"; then
      echo "$v"
      return 0
    fi
  done
  return 1
}

kafka_install() {
  local java v
  java=$(kafka_java) || true
  if [[ -z $java ]] || ! "$java" -version 2>&1 | grep -q 'version "\(1[7-9]\|[2-9][0-9]\)'; then
    apt_install openjdk-17-jre-headless
  fi
  if v=$(kafka_version); then
    kafka_libs_ok "$CACHE/kafka-$v/libs" && return 0
    need_cmd mvn maven
    kafka_resolve "$v" || die "could not resolve Apache Kafka $v from Maven Central; see $CACHE/kafka-$v/mvn.log"
    return 0
  fi
  need_cmd mvn maven
  for v in "${KAFKA_VERSIONS[@]}"; do
    kafka_resolve "$v" && return 0
  done
  die "could not resolve any of Apache Kafka ${KAFKA_VERSIONS[*]} from Maven Central; see $CACHE/kafka-*/mvn.log"
}

kafka_libs() { echo "$CACHE/kafka-$(kafka_version)/libs"; }

# kafka_tool MAIN-CLASS ARGS...: run a Kafka command-line tool quietly (errors to stderr),
# killed after KAFKA_TOOL_TIMEOUT seconds (default 60).
kafka_tool() {
  local main=$1
  shift
  timeout "${KAFKA_TOOL_TIMEOUT:-60}" "$(kafka_java)" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    -Dlog4j2.configurationFile="$HERE/kafka/tools-log4j2.xml" \
    -cp "$(kafka_libs)/*" "$main" "$@"
}

# kafka_listeners: the listener settings. Plain profile: PLAINTEXT for clients and brokers,
# PLAINTEXT controller. Secure profile: one SASL_SSL listener (SCRAM-SHA-512, client certificate
# required) for clients and for inter-broker traffic (as user admin), and an SSL controller
# listener with client certificates required (KRaft controllers cannot use SCRAM: its users live
# in the metadata the controller serves). Certificates and trust are PEM files.
kafka_listeners() {
  if ((!SECURE)); then
    cat <<EOF
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
EOF
    return 0
  fi
  cat <<EOF
listeners=SASL_SSL://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT
advertised.listeners=SASL_SSL://127.0.0.1:$KAFKA_PORT
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=CONTROLLER:SSL,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$(kafka_jaas admin)
ssl.keystore.type=PEM
ssl.keystore.location=$KAFKA_DIR/server-keystore.pem
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.pem
ssl.client.auth=required
# A SASL_SSL listener ignores the unprefixed ssl.client.auth (KIP-684): ask for it by name.
listener.name.sasl_ssl.ssl.client.auth=required
ssl.enabled.protocols=TLSv1.3,TLSv1.2
EOF
}

# kafka_jaas USER: the SCRAM login of USER (password from its secret).
kafka_jaas() {
  printf 'org.apache.kafka.common.security.scram.ScramLoginModule required username="%s" password="%s";' \
    "$1" "$(secret_value "kafka$([[ $1 == admin ]] && echo -admin)")"
}

# kafka_tls_files: PEM keystores (private key, then certificate) of the broker and of the
# clients services.sh runs (health check), and the client settings of those; secure profile only.
kafka_tls_files() {
  ((SECURE)) || return 0
  (
    umask 077
    cat "$TLS_DIR/server.key" "$TLS_DIR/server.pem" >"$KAFKA_DIR/server-keystore.pem"
    cat "$TLS_DIR/client.key" "$TLS_DIR/client.pem" >"$KAFKA_DIR/client-keystore.pem"
    cat >"$KAFKA_DIR/client.properties" <<EOF
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=$(kafka_jaas orderstream)
ssl.truststore.type=PEM
ssl.truststore.location=$TLS_DIR/ca.pem
ssl.keystore.type=PEM
ssl.keystore.location=$KAFKA_DIR/client-keystore.pem
EOF
  )
}

kafka_write_props() {
  (umask 077 && : >"$KAFKA_PROPS")
  cat >"$KAFKA_PROPS" <<EOF
# Written by deploy/local/services.sh at every start; edits are overwritten.
node.id=$KAFKA_NODE_ID
process.roles=broker,controller
controller.quorum.voters=$KAFKA_VOTERS
controller.listener.names=CONTROLLER
$(kafka_listeners)
log.dirs=$KAFKA_DATA
num.partitions=12
auto.create.topics.enable=false
group.initial.rebalance.delay.ms=0
# Copies of every topic's partitions (the internal topics too), and how many a write needs.
default.replication.factor=$KAFKA_REPLICAS
min.insync.replicas=$KAFKA_MIN_ISR
offsets.topic.replication.factor=$KAFKA_REPLICAS
offsets.topic.num.partitions=12
transaction.state.log.replication.factor=$KAFKA_REPLICAS
transaction.state.log.min.isr=$KAFKA_MIN_ISR
transaction.state.log.num.partitions=12
share.coordinator.state.topic.replication.factor=$KAFKA_REPLICAS
share.coordinator.state.topic.min.isr=$KAFKA_MIN_ISR
$KAFKA_EXTRA_PROPS
EOF
}

kafka_format() {
  [[ -f $KAFKA_DATA/meta.properties ]] && return 0
  info "formatting KRaft storage in $KAFKA_DATA (cluster id $KAFKA_CLUSTER_ID)"
  mkdir -p "$KAFKA_DATA"
  local scram=()
  if ((SECURE)); then
    # The SCRAM users exist from the first metadata record on: the broker's own inter-broker
    # login (admin) needs one before any client could create it.
    scram=(--add-scram "SCRAM-SHA-512=[name=admin,password=$(secret_value kafka-admin)]"
      --add-scram "SCRAM-SHA-512=[name=orderstream,password=$(secret_value kafka)]")
  fi
  kafka_tool kafka.tools.StorageTool format --config "$KAFKA_PROPS" \
    --cluster-id "$KAFKA_CLUSTER_ID" --ignore-formatted "${scram[@]}" >>"$KAFKA_LOGS/format.log" 2>&1 ||
    die "formatting Kafka storage failed; see $KAFKA_LOGS/format.log"
  kafka_version >"$KAFKA_DIR/version"
}

kafka_pid() { pid_of "$KAFKA_PIDFILE" "kafka.Kafka $KAFKA_PROPS"; }
kafka_pidfile() { echo "$KAFKA_PIDFILE"; }

# kafka_health: one Metadata (v1) round trip over the Kafka protocol, in bash (~10 ms, no JVM).
# Healthy iff the reply lists this node (KAFKA_NODE_ID) at 127.0.0.1:$KAFKA_PORT: a broker serves
# requests only once it has started, and lists itself only once it is registered and unfenced.
# (A TCP connect is not enough; the controller port does not answer Metadata.)
# Request: size 16 | api_key 3 | version 1 | correlation id 42 | client id "os" | topics: [] .
# Reply: size | correlation id 42 | brokers: count, then node_id | host "127.0.0.1" | port | rack ...
kafka_health() {
  if ((SECURE)); then
    kafka_secure_health
    return
  fi
  local reply
  # shellcheck disable=SC2016 # expanded by the inner shell
  reply=$(timeout 5 bash -c '
    exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf "\x00\x00\x00\x10\x00\x03\x00\x01\x00\x00\x00\x2a\x00\x02os\x00\x00\x00\x00" >&3
    n=$(head -c 4 <&3 | od -An -tu4 --endian=big | tr -d " ")
    [[ -n $n ]] && head -c "$n" <&3 | od -An -tx1 | tr -d " \n"' _ "$KAFKA_PORT" 2>/dev/null) || return 1
  [[ $reply == 0000002a* && $reply == *"$(printf '%08x' "$KAFKA_NODE_ID")00093132372e302e302e31$(printf '%08x' "$KAFKA_PORT")"* ]]
}

# kafka_secure_health: the TLS handshake with the client certificate (quick), then an ApiVersions
# round trip as user orderstream over SASL_SSL by Kafka's own tool (a JVM, 2-5 s).
kafka_secure_health() {
  port_open "$KAFKA_PORT" || return 1
  timeout 5 openssl s_client -connect "127.0.0.1:$KAFKA_PORT" -CAfile "$TLS_DIR/ca.pem" -verify_return_error \
    -cert "$TLS_DIR/client.pem" -key "$TLS_DIR/client.key" -brief </dev/null >/dev/null 2>&1 || return 1
  local out
  out=$(KAFKA_TOOL_TIMEOUT=30 kafka_tool org.apache.kafka.tools.BrokerApiVersionsCommand \
    --bootstrap-server "127.0.0.1:$KAFKA_PORT" --command-config "$KAFKA_DIR/client.properties" 2>/dev/null) || return 1
  [[ $out == *"127.0.0.1:$KAFKA_PORT (id: 1 "* ]]
}

kafka_start() {
  if kafka_pid >/dev/null; then
    info "broker running but not healthy yet; waiting"
    return 0
  fi
  local v
  v=$(kafka_version) || die "no Kafka jars; install step failed"
  if [[ -s $KAFKA_DIR/version && $(cat "$KAFKA_DIR/version") != "$v" ]]; then
    die "$KAFKA_DATA was formatted by Kafka $(cat "$KAFKA_DIR/version"), not $v; run: $KAFKA_RESET_HINT"
  fi
  require_port_free "$KAFKA_PORT" "$KAFKA_NAME broker"
  require_port_free "$KAFKA_CONTROLLER_PORT" "$KAFKA_NAME controller"
  mkdir -p "$KAFKA_DATA" "$KAFKA_LOGS"
  kafka_write_props
  kafka_tls_files
  kafka_format
  info "starting Apache Kafka $v node $KAFKA_NODE_ID on 127.0.0.1:$KAFKA_PORT (log: $KAFKA_LOGS/server.log)"
  echo "--- $(date -u +%FT%TZ) start" >>"$KAFKA_LOGS/stdout.log"
  # Where this start's lines of server.log begin (kafka_wait reads them).
  { [[ -f $KAFKA_LOGS/server.log ]] && wc -l <"$KAFKA_LOGS/server.log" || echo 0; } >"$KAFKA_DIR/start.mark"
  local memory
  read -ra memory <<<"$KAFKA_JVM_MEMORY"
  spawn "$KAFKA_LOGS/stdout.log" "$KAFKA_PIDFILE" \
    "$(kafka_java)" "${memory[@]}" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dkafka.logs.dir="$KAFKA_LOGS" -Dlog4j2.configurationFile="$HERE/kafka/log4j2.xml" \
    -cp "$CACHE/kafka-$v/libs/*" kafka.Kafka "$KAFKA_PROPS"
}

kafka_wait() {
  local limit=${ORDERSTREAM_KAFKA_START_TIMEOUT:-90}
  local deadline=$(($(now_s) + limit))
  local binds=0
  until kafka_health; do
    if ! kafka_pid >/dev/null; then
      # Our ports lie in Linux's ephemeral range (32768-60999): a client's outbound connection
      # may hold one for a moment. Such a bind failure is retried, at most 3 times.
      if ((binds < 3)) && grep -q 'Address already in use' < <(tail -n +"$(($(cat "$KAFKA_DIR/start.mark" 2>/dev/null || echo 0) + 1))" "$KAFKA_LOGS/server.log" 2>/dev/null); then
        binds=$((binds + 1))
        warn "a port of the broker was taken at bind time (an outbound connection's ephemeral port?); starting again in 2 s"
        sleep 2
        kafka_start
        continue
      fi
      die "the broker exited during startup; see $KAFKA_LOGS/server.log and $KAFKA_LOGS/stdout.log"
    fi
    if (($(now_s) >= deadline)); then
      die "the broker did not answer Metadata on 127.0.0.1:$KAFKA_PORT within ${limit}s; see $KAFKA_LOGS/server.log"
    fi
    sleep 0.5
  done
}

kafka_stop() { stop_service "$KAFKA_PIDFILE" "kafka.Kafka $KAFKA_PROPS" "SIGTERM, controlled shutdown"; }

kafka_status() {
  local pid
  if kafka_health; then
    echo "healthy   pid=$(kafka_pid || echo ?)  127.0.0.1:$KAFKA_PORT (controller :$KAFKA_CONTROLLER_PORT)  kafka=$(kafka_version)  log=$KAFKA_LOGS/server.log"
    return 0
  elif pid=$(kafka_pid); then
    echo "UNHEALTHY pid=$pid running but not answering Metadata  log=$KAFKA_LOGS/server.log"
  else
    echo "down      log=$KAFKA_LOGS/server.log"
  fi
  return 1
}

kafka_wipe() { rm -rf "$KAFKA_DIR"; }
