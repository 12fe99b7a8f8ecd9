# orderstream — one binary, real local services (deploy/local), real data.
# `make demo` runs the main job on the real file; `make test` runs every test.

SHELL        := /bin/bash
.SHELLFLAGS  := -eu -o pipefail -c
GO           ?= go
BIN          := bin/orderstream
SERVICES     := deploy/local/services.sh
DATA         ?= ../shared/data/online_retail.csv.gz
TEST_TIMEOUT ?= 75m

.PHONY: all build test test-secure test-cluster test-unit test-deploy bench bench-scale demo up down status vet fmt web clean schemas

all: build

build:
	$(GO) build -o $(BIN) ./cmd/orderstream

vet:
	gofmt -l $$(git ls-files '*.go') | (! grep .) || (echo "gofmt needed"; exit 1)
	$(GO) vet ./...

## schemas: the compatibility gate of the event contracts against the previous
## release's set (checked in, so it needs no git history: works on shallow clones).
SCHEMAS_PREVIOUS ?= schemas/testdata/release-1
schemas:
	$(GO) run ./cmd/orderstream schemas check --against $(SCHEMAS_PREVIOUS)

## up/down/status: the local services (PostgreSQL, Kafka, ClickHouse, OpenSearch).
up:
	$(SERVICES) up

down:
	$(SERVICES) down

status:
	$(SERVICES) status

## test: start every service the tests need, then run all tests against them.
## The outage tests stop a shared server, so they run alone, after the rest.
test: vet schemas
	$(SERVICES) up
	deploy/local/browser.sh
	deploy/local/chdb.sh
	deploy/local/promtool.sh
	eval "$$($(SERVICES) env)"; export CI=$${CI:-true}; \
	$(GO) test -count=1 -timeout $(TEST_TIMEOUT) -p 2 ./... && \
	ORDERSTREAM_TEST_OUTAGE=1 $(GO) test -count=1 -timeout 20m -p 1 -run 'Outage' ./projections/...
	$(MAKE) test-secure
	$(MAKE) test-cluster

## test-secure: the secure profile of the services (TLS everywhere, SASL on Kafka, passwords; its own
## ports and state, beside the plain one): up, the pipeline and refusal tests, then down to free memory.
test-secure:
	rc=0; $(SERVICES) up --secure || rc=$$?; \
	if [ $$rc = 0 ]; then \
	  eval "$$($(SERVICES) env --secure)"; export CI=$${CI:-true} ORDERSTREAM_TEST_SECURE=1; \
	  $(GO) test -count=1 -timeout 20m -p 1 -run '^TestSecure' ./cmd/orderstream/ || rc=$$?; \
	fi; \
	$(SERVICES) down --secure; exit $$rc

## test-cluster: the fault tests on the cluster profile (services.sh up --cluster: 3 Kafka brokers,
## 2x2 ClickHouse, 3 OpenSearch nodes), one package at a time; the cluster is stopped afterwards,
## pass or fail, to free its memory. PostgreSQL is the plain profile's.
test-cluster:
	$(SERVICES) up --cluster
	eval "$$($(SERVICES) env)"; eval "$$($(SERVICES) env --cluster)"; export CI=$${CI:-true} ORDERSTREAM_TEST_CLUSTER=1; \
	rc=0; $(GO) test -count=1 -timeout 30m -p 1 -run 'Cluster' ./producer/topic/ ./producer/relay/ ./projections/... || rc=$$?; \
	$(SERVICES) down --cluster; exit $$rc

## test-deploy: deploy/compose and deploy/k8s checked against the Compose and Kubernetes types and the binary
## (no container engine needed; also part of test and test-unit).
test-deploy:
	$(GO) test -count=1 -run 'Deploy' ./cmd/orderstream/

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

## bench-scale: the cost curve at 1×, 3× and 10× the real file (ORDERSTREAM_SCALES=1,3 for fewer); not in CI.
bench-scale: build
	$(SERVICES) up
	eval "$$($(SERVICES) env)"; $(GO) test ./internal/scaledata/ -run '^$$' -bench Scale -benchtime 1x -timeout 6h

## web: rebuild the dashboard's embedded bundle (internal/web/dist, committed) from its npm sources.
web:
	npm --prefix internal/web ci
	npm --prefix internal/web run build

clean:
	rm -rf bin
