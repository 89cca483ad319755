# drbot — make help lists the targets.
SHELL := /bin/bash
GO ?= go
BIN := bin/drbot
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse --short HEAD 2>/dev/null || echo unknown)
LDFLAGS := -s -w -X github.com/drbot-dev/drbot/internal/buildinfo.Version=$(VERSION) -X github.com/drbot-dev/drbot/internal/buildinfo.Commit=$(COMMIT)
GOLANGCI_LINT_VERSION := v2.15.0
GOLANGCI_LINT := $(shell $(GO) env GOPATH)/bin/golangci-lint
# The whole suite; CI (.ci/run) runs `make check`, then exactly `make test`.
TEST_FLAGS ?= -race -count=1 -timeout 45m
BENCH ?= .
BENCH_TIME ?= 1x

.DEFAULT_GOAL := help

.PHONY: help
help: ## List the targets.
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-10s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

.PHONY: deps
deps: ## Check (and where possible install) what the bot and its tests need: PostgreSQL, moto_server.
	@scripts/deps

.PHONY: build
build: ## Build bin/drbot (static).
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/drbot

.PHONY: demo
demo: build ## Run the bot in this terminal on the embedded demo runbook and a private PostgreSQL.
	@DRBOT_DEPS_SKIP_MOTO=1 scripts/deps
	$(BIN) shell --demo

.PHONY: test
test: deps ## Run the whole test suite (real PostgreSQL, moto_server, fake Slack/PagerDuty) with -race.
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GO) test $(TEST_FLAGS) ./...

.PHONY: image
image: ## Build and push the multi-arch image (IMAGE=registry/drbot:tag) from the digest-pinned base images in deploy/image/base-images.lock.
	@test -n "$(IMAGE)" || { echo "make image: set IMAGE=registry/drbot:tag"; exit 1; }
	@test -f deploy/image/base-images.lock || { echo "make image: no deploy/image/base-images.lock: run scripts/pin-base-images on a machine that reaches the registry, review and commit it"; exit 1; }
	docker buildx build --platform linux/amd64,linux/arm64 \
	  $$(grep -E '^(GO_IMAGE|BASE_IMAGE)=' deploy/image/base-images.lock | sed 's/^/--build-arg /') \
	  --build-arg VERSION=$(VERSION) --build-arg COMMIT=$(COMMIT) --build-arg CREATED=$$(date -u +%Y-%m-%dT%H:%M:%SZ) \
	  -t $(IMAGE) --push .

.PHONY: check
check: ## Lint with golangci-lint $(GOLANGCI_LINT_VERSION) (installed on first use; depguard enforces the import table), gofmt, go vet.
	@if ! $(GOLANGCI_LINT) version 2>/dev/null | grep -q "$(GOLANGCI_LINT_VERSION:v%=%)"; then \
		echo "installing golangci-lint $(GOLANGCI_LINT_VERSION)"; \
		$(GO) install github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$(GOLANGCI_LINT_VERSION); fi
	@unformatted=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$unformatted" ]; then echo "gofmt needed: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	$(GOLANGCI_LINT) run ./...

.PHONY: bench
bench: deps ## Run the benchmarks and print their figures (BENCH=regexp, BENCH_TIME=…); never fails on timing.
	$(GO) test -run '^$$' -bench '$(BENCH)' -benchtime $(BENCH_TIME) -benchmem ./...

.PHONY: fuzz
fuzz: ## Fuzz the config and command parsers for 30 s each.
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./runbook/
	$(GO) test -run '^$$' -fuzz FuzzParse -fuzztime 30s ./commands/
	$(GO) test -run '^$$' -fuzz FuzzDispatch -fuzztime 30s ./commands/

.PHONY: clean
clean: ## Remove build output (not the .drbot data directory).
	rm -rf bin dist
