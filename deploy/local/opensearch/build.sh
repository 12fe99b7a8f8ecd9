#!/usr/bin/env bash
# Builds the runnable classpath of the local OpenSearch node (OpenSearch 2.19.6 jars from
# Maven Central + EmbeddedNode) into $ORDERSTREAM_CACHE_DIR/opensearch-2.19.6/lib
# (default ~/.cache/orderstream). Idempotent: does nothing when this script, pom.xml and
# src/ are unchanged since the last build. Nothing is written inside the repository.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE_DIR=$(realpath -m "${ORDERSTREAM_CACHE_DIR:-${HOME:-/root}/.cache/orderstream}")
OUT=$CACHE_DIR/opensearch-2.19.6
LIB=$OUT/lib
STAMP=$OUT/build.stamp

# OpenSearch 2.19 on Java 17 (Debian's path; otherwise whatever JAVA_HOME/PATH give).
if [[ -d /usr/lib/jvm/java-17-openjdk-amd64 ]]; then
  export JAVA_HOME=/usr/lib/jvm/java-17-openjdk-amd64
elif [[ -z "${JAVA_HOME:-}" ]]; then
  JAVA_HOME=$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")
  export JAVA_HOME
fi

# Fingerprint of everything that goes into the build.
fingerprint() {
  (cd "$HERE" && find build.sh pom.xml src -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1
}

up_to_date() {
  [[ -f "$STAMP" && -f "$LIB/orderstream-opensearch-2.19.6.jar" && "$(cat "$STAMP")" == "$(fingerprint | cut -c1-16)" ]]
}

if up_to_date; then
  exit 0
fi

mkdir -p "$OUT"
exec 9>"$OUT/.build.lock"
flock -w 600 9 || { echo "build.sh: timed out waiting for another build" >&2; exit 1; }
if up_to_date; then  # another build finished while we waited
  exit 0
fi

if ! command -v mvn >/dev/null 2>&1; then
  if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
    echo "build.sh: installing maven and openjdk-17 (apt-get)" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq maven openjdk-17-jdk-headless >/dev/null
  else
    echo "build.sh: mvn not found; install Maven and a Java 17 JDK" >&2
    exit 1
  fi
fi

FP=$(fingerprint | cut -c1-16)
echo "build.sh: building OpenSearch 2.19.6 classpath in $OUT" >&2
rm -rf "$OUT/lib.new"
if ! mvn -B -q -f "$HERE/pom.xml" \
    -Dorderstream.build.dir="$OUT/build" -Dorderstream.lib.dir="$OUT/lib.new" \
    clean package >"$OUT/build.log" 2>&1; then
  echo "build.sh: maven build failed:" >&2
  grep -v '^\s*$' "$OUT/build.log" | tail -n 40 >&2
  exit 1
fi
# Each build gets its own directory and lib/ is a symlink to the current one, switched in one
# step: a node still running from the previous build keeps its jars (start.sh resolves the
# link), and no stale jar ever lingers in a classpath. Keep the current and previous builds.
rm -rf "$OUT/lib-$FP"
mv "$OUT/lib.new" "$OUT/lib-$FP"
# Class-data-sharing archive of the classes a node loads while it is built (plugins, painless,
# ...): start.sh maps it, which cuts start time by about a third. It records the classpath, so
# it is made here, in the final directory. Optional: start.sh runs without it.
echo "build.sh: recording the class-data-sharing archive" >&2
if ! "$JAVA_HOME/bin/java" -Xms1g -Xmx1g -XX:+UseG1GC -Xlog:cds*=off \
    -XX:ArchiveClassesAtExit="$OUT/lib-$FP/node.jsa" -Djava.locale.providers=SPI,COMPAT \
    -Dlog4j.shutdownHookEnabled=false -Dlog4j2.disable.jmx=true \
    -cp "$OUT/lib-$FP/*" orderstream.local.opensearch.EmbeddedNode --warmup >>"$OUT/build.log" 2>&1; then
  echo "build.sh: warning: no class-data-sharing archive (see $OUT/build.log)" >&2
  rm -f "$OUT/lib-$FP/node.jsa"
fi
ln -sfn "lib-$FP" "$OUT/lib.tmp" && mv -T "$OUT/lib.tmp" "$LIB"
prev=$(cat "$OUT/previous" 2>/dev/null || true)
for d in "$OUT"/lib-*; do
  case "${d##*/}" in "lib-$FP" | "$prev") ;; *) rm -rf "$d" ;; esac
done
echo "lib-$FP" >"$OUT/previous"
echo "$FP" >"$STAMP"
echo "build.sh: done ($(ls "$LIB/" | grep -c "\.jar$") jars)" >&2
