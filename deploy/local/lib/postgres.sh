# shellcheck shell=bash
# postgres: a throwaway PostgreSQL 15 cluster (Debian binaries) owned by the `postgres` OS user,
# in $STATE/postgres, listening on 127.0.0.1:$PG_PORT, wal_level=logical for the outbox relay.

PG_BIN=/usr/lib/postgresql/15/bin
PG_DIR=$STATE/postgres
PG_DATA=$PG_DIR/data
PG_RUN=$PG_DIR/run # unix socket directory
PG_LOG=$PG_DIR/postgres.log

# as_pg CMD...: run CMD as the postgres OS user (initdb and the server refuse root).
as_pg() {
  runuser -u postgres -- "$@" 9>&-
}

pg_install() {
  if [[ ! -x $PG_BIN/initdb ]]; then
    apt_install postgresql
  fi
  [[ -x $PG_BIN/initdb ]] || die "$PG_BIN/initdb missing after installing postgresql; see $STATE/apt.log"
  id postgres >/dev/null 2>&1 || die "OS user 'postgres' missing (the postgresql package creates it)"
}

# pg_check_access: the postgres user must be able to reach $PG_DIR. A state dir below a private
# directory (e.g. /root) is not reachable; under CI we grant traverse-only access (o+x).
pg_check_access() {
  mkdir -p "$PG_DIR"
  chown postgres:postgres "$PG_DIR"
  if as_pg test -x "$PG_DIR" -a -w "$PG_DIR"; then
    return 0
  fi
  local d blocked=()
  d=$(dirname "$PG_DIR")
  while [[ $d != / ]]; do
    if ! as_pg test -x "$d" && [[ $(stat -c %A "$d") != *x ]]; then blocked+=("$d"); fi
    d=$(dirname "$d")
  done
  if [[ ${CI:-} == true && ${#blocked[@]} -gt 0 ]]; then
    info "CI: granting traverse-only permission (chmod o+x) on ${blocked[*]} so the postgres user can reach $PG_DIR"
    chmod o+x "${blocked[@]}"
    as_pg test -x "$PG_DIR" -a -w "$PG_DIR" && return 0
  fi
  die "the 'postgres' OS user cannot reach $PG_DIR (blocked by: ${blocked[*]:-?}); set ORDERSTREAM_LOCAL_DIR to a directory it can traverse (e.g. /var/tmp/orderstream) or run: chmod o+x ${blocked[*]:-<dirs>}"
}

pg_init() {
  pg_check_access
  if [[ -f $PG_DATA/PG_VERSION ]]; then
    [[ $(cat "$PG_DATA/PG_VERSION") == 15 ]] ||
      die "$PG_DATA holds a PostgreSQL $(cat "$PG_DATA/PG_VERSION") cluster, not 15; run: services.sh reset postgres"
    return 0
  fi
  info "initdb into $PG_DATA"
  rm -rf "$PG_DATA"
  mkdir -p "$PG_DATA" "$PG_RUN"
  chown postgres:postgres "$PG_DATA" "$PG_RUN"
  chmod 700 "$PG_DATA"
  as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --encoding=UTF8 --no-locale \
    --auth-local=peer --auth-host=scram-sha-256 >>"$PG_LOG" 2>&1 ||
    die "initdb failed; see $PG_LOG"
  # Our settings live in a file of their own, rewritten at every start (ports may change).
  echo "include_if_exists = 'orderstream.conf'" >>"$PG_DATA/postgresql.conf"
  pg_write_hba
}

# pg_write_hba: who may log in how. The secure profile has no `host` line: TCP logins need TLS
# (hostssl), a client certificate signed by the profile's CA and the scram password.
pg_write_hba() {
  if ((SECURE)); then
    as_pg tee "$PG_DATA/pg_hba.conf" >/dev/null <<'EOF'
# Written by deploy/local/services.sh --secure. Loopback only; TLS with a client certificate
# (clientcert=verify-ca) and a scram password for every TCP login; no plain `host` line.
# TYPE   DATABASE     USER  ADDRESS        METHOD
local    all          all                  peer
hostssl  all          all   127.0.0.1/32   scram-sha-256  clientcert=verify-ca
hostssl  replication  all   127.0.0.1/32   scram-sha-256  clientcert=verify-ca
EOF
    return 0
  fi
  as_pg tee "$PG_DATA/pg_hba.conf" >/dev/null <<'EOF'
# Written by deploy/local/services.sh. Loopback only; password (scram) for every TCP login.
# TYPE  DATABASE     USER  ADDRESS        METHOD
local   all          all                  peer
host    all          all   127.0.0.1/32   scram-sha-256
host    replication  all   127.0.0.1/32   scram-sha-256
EOF
}

# pg_tls_conf: the ssl settings of the secure profile (the server's key is copied where only the
# postgres OS user reads it, as PostgreSQL demands); nothing for the plain profile.
pg_tls_conf() {
  ((SECURE)) || return 0
  local d=$PG_DIR/tls
  mkdir -p "$d"
  cp "$TLS_DIR/server.pem" "$TLS_DIR/server.key" "$TLS_DIR/ca.pem" "$d/"
  chown -R postgres:postgres "$d"
  chmod 700 "$d"
  chmod 600 "$d/server.key"
  cat <<EOF
ssl = on
ssl_cert_file = '$d/server.pem'
ssl_key_file = '$d/server.key'
ssl_ca_file = '$d/ca.pem'
ssl_min_protocol_version = 'TLSv1.2'
password_encryption = 'scram-sha-256'
EOF
}

pg_write_conf() {
  local sock=$PG_RUN
  # A unix socket path is limited to 107 bytes; fall back to /tmp for very deep state dirs.
  if ((${#sock} + 20 > 107)); then
    sock=/tmp/orderstream-pg-$PG_PORT
    warn "state dir path too long for a unix socket; using $sock"
  fi
  mkdir -p "$sock"
  chown postgres:postgres "$sock"
  as_pg tee "$PG_DATA/orderstream.conf" >/dev/null <<EOF
# Written by deploy/local/services.sh at every start; edits are overwritten.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$sock'
max_connections = 200
wal_level = logical
max_replication_slots = 20
max_wal_senders = 20
# fsync stays on: crash tests rely on durability. synchronous_commit keeps its default (on).
fsync = on
$(pg_tls_conf)
EOF
  pg_write_hba
}

# pg_sock: the socket directory written in orderstream.conf.
pg_sock() {
  sed -n "s/^unix_socket_directories = '\(.*\)'$/\1/p" "$PG_DATA/orderstream.conf" 2>/dev/null || true
}

# pg_pid: pid of the running postmaster of $PG_DATA, if any.
pg_pid() {
  local pid
  [[ -s $PG_DATA/postmaster.pid ]] || return 1
  pid=$(head -n1 "$PG_DATA/postmaster.pid" | tr -dc '0-9')
  [[ -n $pid && -d /proc/$pid ]] || return 1
  [[ $(readlink "/proc/$pid/cwd" 2>/dev/null) == "$(readlink -f "$PG_DATA")" ]] || return 1
  printf '%s\n' "$pid"
}

# pg_clear_stale_locks: after a crash postmaster.pid may name a pid that now belongs to another
# process (PostgreSQL then refuses to start); remove it and the socket lock files.
pg_clear_stale_locks() {
  if [[ -e $PG_DATA/postmaster.pid ]] && ! pg_pid >/dev/null; then
    warn "removing stale $PG_DATA/postmaster.pid (no postmaster of this cluster is running)"
    rm -f "$PG_DATA/postmaster.pid"
  fi
  local sock
  sock=$(pg_sock)
  if [[ -n $sock ]] && ! pg_pid >/dev/null; then
    rm -f "$sock/.s.PGSQL.$PG_PORT" "$sock/.s.PGSQL.$PG_PORT.lock"
  fi
}

pg_health() {
  "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" -d orderstream -t 3 || return 1
  local pw=
  ((!SECURE)) || pw=$(secret_value pg)
  [[ $(PGPASSWORD=$pw PGCONNECT_TIMEOUT=3 "$PG_BIN/psql" "$ORDERSTREAM_PG_URL" -XAtq -c 'SELECT 1' 2>/dev/null) == 1 ]]
}

pg_start() {
  pg_init
  if pg_pid >/dev/null; then
    info "postmaster running but not healthy yet; waiting"
    return 0
  fi
  pg_clear_stale_locks
  require_port_free "$PG_PORT" "postgres"
  pg_write_conf
  info "starting PostgreSQL 15 on 127.0.0.1:$PG_PORT (log: $PG_LOG)"
  touch "$PG_LOG"
  chown postgres:postgres "$PG_LOG"
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_LOG" -w -t 60 start >/dev/null ||
    die "PostgreSQL did not start within 60s; see $PG_LOG"
  pg_bootstrap
}

# pg_bootstrap: role and database orderstream; idempotent, runs at every start.
pg_bootstrap() {
  local pw=orderstream
  ((!SECURE)) || pw=$(secret_value pg)
  as_pg "$PG_BIN/psql" -h "$(pg_sock)" -p "$PG_PORT" -U postgres -d postgres -XAtq -v ON_ERROR_STOP=1 \
    -v pw="$pw" >>"$PG_LOG" 2>&1 <<'EOF' ||
DO $$
BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'orderstream') THEN
    CREATE ROLE orderstream;
  END IF;
END
$$;
ALTER ROLE orderstream WITH LOGIN REPLICATION SUPERUSER PASSWORD :'pw';
SELECT 'CREATE DATABASE orderstream OWNER orderstream'
WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = 'orderstream')
\gexec
EOF
    die "creating role/database orderstream failed; see $PG_LOG"
}

pg_wait() {
  wait_until 60 "PostgreSQL on 127.0.0.1:$PG_PORT to accept orderstream logins" pg_health ||
    die "PostgreSQL is not healthy; see $PG_LOG"
}

pg_stop() {
  if ! pg_pid >/dev/null; then
    pg_clear_stale_locks
    info "not running"
    return 0
  fi
  info "stopping (fast shutdown)"
  if ! as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m fast -w -t 60 stop >/dev/null 2>>"$PG_LOG"; then
    warn "fast shutdown did not finish in 60s; using immediate shutdown (crash recovery at next start)"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w -t 30 stop >/dev/null 2>>"$PG_LOG" ||
      die "could not stop PostgreSQL; see $PG_LOG"
  fi
}

pg_status() {
  local pid
  if pg_health; then
    echo "healthy   pid=$(pg_pid || echo ?)  127.0.0.1:$PG_PORT  log=$PG_LOG"
    return 0
  elif pid=$(pg_pid); then
    echo "UNHEALTHY pid=$pid running but not answering SELECT 1 as orderstream  log=$PG_LOG"
  else
    echo "down      log=$PG_LOG"
  fi
  return 1
}

pg_wipe() { rm -rf "$PG_DIR"; }
