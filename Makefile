# purgeguard — the two set-up commands are `make demo` and `make test`.
SHELL := /bin/bash
GO ?= go
CACHE ?= $(or $(PURGEGUARD_CACHE),$(or $(XDG_CACHE_HOME),$(HOME)/.cache)/purgeguard)
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(CACHE)/bin/staticcheck-$(STATICCHECK_VERSION)

.PHONY: test unit lint build demo bench clean deb deb-check

# The Debian version of a build: 0~git<date of the last commit>.<its hash>.
VERSION ?= 0~git$(shell git log -1 --format=%cd.%h --date=format:%Y%m%d 2>/dev/null || echo 0)
DEB_ARCH ?= $(shell $(GO) env GOARCH)

build:
	$(GO) build -ldflags "-X main.version=$(VERSION)" -o bin/purgeguard ./cmd/purgeguard

# The Debian package (dist/), built by tools/debpkg with nfpm as a library (its own
# module: nfpm's dependencies stay out of purgeguard's go.mod). Static binary, version
# stamped; see deploy/debian/README.md.
deb:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "-s -w -X main.version=$(VERSION)" -o bin/purgeguard ./cmd/purgeguard
	cd tools/debpkg && $(GO) run . -root ../.. -binary ../../bin/purgeguard -version '$(VERSION)' -arch $(DEB_ARCH) -out ../../dist

# Installs that package on this machine, guards a purge with it (testdata's purge as
# wazo-purge-db, the throwaway PostgreSQL), purges the package and checks the
# snapshots are still there (root; not part of make test, which must not install
# packages on the machine it runs on).
deb-check: deb
	scripts/with-servers.sh -- scripts/deb-check.sh 'dist/purgeguard_$(VERSION)_$(DEB_ARCH).deb' '$(VERSION)'

# Everything CI runs: a throwaway PostgreSQL and MinIO, go vet, staticcheck and the race-enabled
# tests, with integration tests required (they fail instead of skipping).
test: $(STATICCHECK)
	scripts/with-servers.sh -- bash -c '$(GO) vet ./... && $(STATICCHECK) ./... && $(GO) test -race -count=1 -timeout 20m ./...'

# Unit tests only: integration tests skip without the servers.
unit:
	$(GO) test -count=1 ./...

lint: $(STATICCHECK)
	gofmt -l . | (! grep .) && $(GO) vet ./... && $(STATICCHECK) ./... && cd tools/debpkg && $(GO) vet ./... && $(STATICCHECK) ./...

$(STATICCHECK):
	mkdir -p $(CACHE)/bin
	cd / && GOBIN=$(CACHE)/bin GOFLAGS=-mod=mod $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(CACHE)/bin/staticcheck $@

demo:
	scripts/demo.sh

bench:
	scripts/bench.sh

clean:
	rm -rf bin dist
