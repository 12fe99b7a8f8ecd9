#!/usr/bin/env bash
# Throughput figures against the real local services (make bench). Each
# benchmark measures its ceiling(s) in the same run and prints the ratio;
# nothing here asserts a time. Run on an otherwise idle machine: figures
# from a loaded 2-core box vary by ±30 %.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
deploy/local/services.sh up
eval "$(deploy/local/services.sh env)"

bench() { # title, package, benchmark regexp [, benchtime (default 1x: one pass over the real file)]
  echo
  echo "== $1 =="
  go test "$2" -run '^$' -bench "$3" -benchtime="${4:-1x}" -count="${BENCH_COUNT:-1}" -timeout 30m
}

bench "import: real file through the write side beside plain pgx writing the same rows (its ceiling)" ./producer/csvimport/ BenchmarkImport
bench "relay: WAL -> Kafka beside raw produce and pg_recvlogical" ./producer/relay/ RelayThroughput
bench "analytics: Kafka -> runtime -> ClickHouse beside a raw batch insert" ./projections/analytics/ BenchmarkKafkaToClickHouse
bench "search: Kafka events -> sink -> OpenSearch beside a raw bulk of the same documents" ./projections/search/ BenchmarkIndexing
bench "consumer runtime overhead (no-op sink, 50,000 events)" ./consumers/ BenchmarkConsumerNoopSink 50000x
bench "consumer restart after a crash: first new record, dynamic vs static member" ./consumers/ BenchmarkRestartGap
bench "consumer batch wait of a thin flow (100 events/s, 20 ms writes): caught-up rule at 100 ms and 20 ms vs off (500 ms)" ./consumers/ BenchmarkBatchWait
bench "rebuild from offset zero: each read model and both together" ./internal/rebuild/ BenchmarkRebuild
bench "tracing: import -> relay -> analytics, off vs on (parentbased_traceidratio 0.1, OTLP/HTTP)" ./internal/rebuild/ BenchmarkTracingOverhead
echo
echo "== tracing: CPU per command, per relayed event, per 1,000-record batch, off vs on (cpu-ns/op) =="
go test ./internal/tracing/ -run '^$' -bench Spans -benchtime 5000x -count 3
echo
echo "== command API under load: command latency, commit -> queryable per read model (relay, both daemons, API; own database, topic, generation) =="
# ORDERSTREAM_LOAD_RATES (default 100,500,1000 orders/s), ORDERSTREAM_LOAD_DURATION (15s),
# ORDERSTREAM_LOAD_CONSUME_FLAGS (e.g. "--batch-min-interval 500ms", the caught-up rule off) shape it; the daemons' error logs are dropped.
ORDERSTREAM_LOAD_BENCH=1 go test ./cmd/orderstream/ -run '^TestLoadBench$' -v -count=1 -timeout 30m 2>&1 | grep -v '^{"time"'
echo
echo "== per order.placed event of 21 lines: JSON Schema validation (write side), decoding (consumers) =="
go test ./schemas/ -run '^$' -bench 'Validate|Decode' -count 3
