# shellcheck shell=bash
# Shared helpers for deploy/local/services.sh: messages, waiting with deadlines, pid files,
# ports, package installs. Sourced, never run; expects `set -euo pipefail` from the caller.

info() { printf '[%s] %s\n' "${SVC_TAG:-local}" "$*"; }
warn() { printf '[%s] WARNING: %s\n' "${SVC_TAG:-local}" "$*" >&2; }
err() { printf '[%s] ERROR: %s\n' "${SVC_TAG:-local}" "$*" >&2; }
die() {
  err "$@"
  exit 1
}

# now_s: seconds since the epoch (integer).
now_s() { date +%s; }

# wait_until SECONDS WHAT CMD...: run CMD every 0.5 s until it succeeds or SECONDS pass.
# Returns 1 on timeout (the caller says what to look at).
wait_until() {
  local limit=$1 what=$2
  shift 2
  local deadline=$(($(now_s) + limit))
  while :; do
    if "$@" >/dev/null 2>&1; then
      return 0
    fi
    if (($(now_s) >= deadline)); then
      err "timed out after ${limit}s waiting for ${what}"
      return 1
    fi
    sleep 0.5
  done
}

# port_open PORT: true if something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# require_port_free PORT WHAT: fail if another process already listens on the port.
require_port_free() {
  if port_open "$1"; then
    die "port 127.0.0.1:$1 (${2}) is already in use by another process; find it with 'ss -ltnp' or pick another port (see deploy/local/README.md)"
  fi
}

# pid_of PIDFILE PATTERN: print the pid in PIDFILE if that process is alive and its command
# line contains PATTERN (guards against a stale file whose pid was reused). Else return 1.
pid_of() {
  local file=$1 pattern=$2 pid
  [[ -s $file ]] || return 1
  pid=$(head -n1 "$file" | tr -dc '0-9')
  [[ -n $pid && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$pattern" || return 1
  printf '%s\n' "$pid"
}

# spawn LOGFILE PIDFILE CMD...: start CMD detached (own session, stdin from /dev/null, output
# appended to LOGFILE, no inherited lock fd) and write its pid to PIDFILE.
spawn() {
  local logfile=$1 pidfile=$2
  shift 2
  rm -f "$pidfile"
  # The inner shell writes its own pid and then execs CMD, so the pid is CMD's even if setsid forks.
  # shellcheck disable=SC2016 # expanded by the inner shell
  setsid bash -c 'echo $$ >"$0"; exec "$@"' "$pidfile" "$@" </dev/null >>"$logfile" 2>&1 9>&- &
  local _
  for _ in $(seq 1 50); do
    [[ -s $pidfile ]] && return 0
    sleep 0.1
  done
  die "could not start $* (no pid file $pidfile); see $logfile"
}

# stop_pid PIDFILE PATTERN SECONDS: SIGTERM the process, wait up to SECONDS for it to exit,
# then SIGKILL it (with a warning). Removes the pid file. No-op if it is not running.
stop_pid() {
  local file=$1 pattern=$2 limit=$3 pid
  if ! pid=$(pid_of "$file" "$pattern"); then
    rm -f "$file"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  local deadline=$(($(now_s) + limit))
  while kill -0 "$pid" 2>/dev/null; do
    if (($(now_s) >= deadline)); then
      warn "pid $pid did not exit ${limit}s after SIGTERM; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      sleep 1
      break
    fi
    sleep 0.2
  done
  rm -f "$file"
}

# stop_service PIDFILE PATTERN HOW: "not running" (and a stale pid file removed) when pid_of finds
# no process, else "stopping (HOW)" and stop_pid with 60 s before SIGKILL.
stop_service() {
  if ! pid_of "$1" "$2" >/dev/null; then
    rm -f "$1"
    info "not running"
    return 0
  fi
  info "stopping ($3)"
  stop_pid "$1" "$2" 60
}

# apt_install PACKAGE...: install Debian packages non-interactively; refreshes the package
# lists once if the first attempt fails (fresh machines have none).
apt_install() {
  local apt=(apt-get -y -q -o DPkg::Lock::Timeout=300 install --no-install-recommends)
  [[ $(id -u) -eq 0 ]] || die "need root to install $* with apt-get (or install them yourself)"
  info "installing $* with apt-get"
  if ! DEBIAN_FRONTEND=noninteractive "${apt[@]}" "$@" >>"$STATE/apt.log" 2>&1; then
    info "apt-get install failed; running apt-get update and retrying"
    DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=300 update >>"$STATE/apt.log" 2>&1 ||
      die "apt-get update failed; see $STATE/apt.log"
    DEBIAN_FRONTEND=noninteractive "${apt[@]}" "$@" >>"$STATE/apt.log" 2>&1 ||
      die "apt-get install $* failed; see $STATE/apt.log"
  fi
}

# need_cmd CMD PACKAGE: install PACKAGE if CMD is not on PATH.
need_cmd() {
  command -v "$1" >/dev/null 2>&1 || apt_install "$2"
}
