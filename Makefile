# purgeguard — the two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
CACHE ?= $(or $(PURGEGUARD_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/purgeguard)
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(CACHE)/bin/staticcheck-$(STATICCHECK_VERSION)

.PHONY: test unit lint build demo bench clean

build:
	$(GO) build -o bin/purgeguard ./cmd/purgeguard

# Everything CI runs: a throwaway PostgreSQL and MinIO, go vet, staticcheck and the race-enabled
# tests, with integration tests required (they fail instead of skipping).
test: $(STATICCHECK)
	scripts/with-servers.sh -- bash -c '$(GO) vet ./... && $(STATICCHECK) ./... && $(GO) test -race -count=1 -timeout 20m ./...'

# Unit tests only: integration tests skip without the servers.
unit:
	$(GO) test -count=1 ./...

lint: $(STATICCHECK)
	gofmt -l . | (! grep .) && $(GO) vet ./... && $(STATICCHECK) ./...

$(STATICCHECK):
	mkdir -p $(CACHE)/bin
	cd / && GOBIN=$(CACHE)/bin GOFLAGS=-mod=mod $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(CACHE)/bin/staticcheck $@

demo:
	scripts/demo.sh

bench:
	scripts/bench.sh

clean:
	rm -rf bin
