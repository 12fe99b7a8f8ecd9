# orderstream — one binary, real local services (deploy/local), real data.
# `make demo` runs the main job on the real file; `make test` runs every test.

SHELL        := /bin/bash
.SHELLFLAGS  := -eu -o pipefail -c
GO           ?= go
BIN          := bin/orderstream
SERVICES     := deploy/local/services.sh
DATA         ?= ../shared/data/online_retail.csv.gz
TEST_TIMEOUT ?= 75m

.PHONY: all build test test-unit bench demo up down status vet fmt web clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/orderstream

vet:
	gofmt -l $$(git ls-files '*.go') | (! grep .) || (echo "gofmt needed"; exit 1)
	$(GO) vet ./...

## up/down/status: the local services (PostgreSQL, Kafka, ClickHouse, OpenSearch).
up:
	$(SERVICES) up

down:
	$(SERVICES) down

status:
	$(SERVICES) status

## test: start every service the tests need, then run all tests against them.
## The outage tests stop a shared server, so they run alone, after the rest.
test: vet
	$(SERVICES) up
	deploy/local/browser.sh
	deploy/local/chdb.sh
	deploy/local/promtool.sh
	eval "$$($(SERVICES) env)"; export CI=$${CI:-true}; \
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -p 2 ./... && \
	ORDERSTREAM_TEST_OUTAGE=1 $(GO) test -count=1 -timeout 20m -p 1 -run 'Outage' ./projections/...

## test-unit: the tests that need no service (integration tests skip outside CI).
test-unit:
	env -u ORDERSTREAM_PG_URL -u ORDERSTREAM_KAFKA_BROKERS -u ORDERSTREAM_CLICKHOUSE_ADDR -u ORDERSTREAM_SEARCH_URL CI= $(GO) test -count=1 ./...

## demo: the main job on the real file (services, migrate, relay, import, both read models, API).
demo: build
	deploy/local/main-job.sh $(DATA)

## bench: throughput figures against the real services (prints, never asserts).
bench: build
	$(SERVICES) up
	deploy/local/bench.sh

## web: rebuild the dashboard's embedded bundle (internal/web/dist, committed) from its npm sources.
web:
	npm --prefix internal/web ci
	npm --prefix internal/web run build

clean:
	rm -rf bin
