# convpipe — see README.md. `make run` and `make test` need nothing but Go:
# every tool they use is installed into .tools/ (git-ignored) on first use.

GO          ?= go
TOOLS       := $(CURDIR)/.tools/bin
BIN         := $(CURDIR)/bin/convpipe
VERSION     ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS     := -s -w -X main.version=$(VERSION)
VERSITYGW   := $(TOOLS)/versitygw
STATICCHECK := $(TOOLS)/staticcheck
PUSHGATEWAY := $(TOOLS)/pushgateway
CYCLONEDX   := $(TOOLS)/cyclonedx-gomod
FUZZTIME    ?= 3000x
export CGO_ENABLED ?= 0

.PHONY: all build run test test-go postgresql fuzz-short fuzz bench lint tools reliability clean help

all: lint test build

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

build: ## build the static binary into bin/convpipe
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/convpipe

run: build ## the main job on the bundled sample export, against the built-in API simulator
	@rm -rf out/demo && mkdir -p out/demo
	@echo "== convpipe validate: the configuration, each file's header, the first conversion as it will be sent, every problem"
	@$(BIN) validate --config configs/sample.yaml --limit 1; echo "exit code $$? (3: problems found)"
	@echo
	@echo "== convpipe run: the sample export (samples/export/) to the built-in impact.com API simulator"
	@$(BIN) run --config configs/sample.yaml --simulate --simulate-campaigns 1000 --rate 20/s --ledger out/demo/ledger.db --summary-json out/demo/summary.json --metrics-file out/demo/convpipe.prom; \
	  code=$$?; echo "exit code $$code (3: the sample's bad rows and the order impact did not track need a human; see README, Exit codes)"; [ $$code -le 3 ]
	@echo
	@echo "== the next night's export (samples/returns/): a return of two packs of order online-2009 and the cancelled order online-2010, both accepted last night: corrected in impact (--corrections: PUT and DELETE /Actions)"
	@$(BIN) run --config configs/sample.yaml --simulate --simulate-campaigns 1000 --rate 20/s --ledger out/demo/ledger.db --source samples/returns/ --corrections; \
	  code=$$?; echo "exit code $$code"; [ $$code -le 3 ]
	@echo
	@echo "== the same run again, as cron would: nothing is read again, resent or corrected twice; what is open in the ledger is shown"
	@$(BIN) run --config configs/sample.yaml --simulate --simulate-campaigns 1000 --rate 20/s --ledger out/demo/ledger.db --source samples/returns/ --corrections; \
	  code=$$?; echo "exit code $$code"; [ $$code -le 3 ]
	@echo
	@echo "== one order's story: convpipe ledger show --ledger out/demo/ledger.db online-2009"
	@$(BIN) ledger show --ledger out/demo/ledger.db online-2009 | sed -n '/^history/,$$p'
	@echo
	@echo "== what needs a human: convpipe ledger export --ledger out/demo/ledger.db --state invalid"
	@$(BIN) ledger export --ledger out/demo/ledger.db --state invalid
	@echo
	@echo "== what impact did not track, and why: convpipe ledger export --ledger out/demo/ledger.db --state not_tracked"
	@$(BIN) ledger export --ledger out/demo/ledger.db --state not_tracked
	@echo
	@echo "== the report to look at: convpipe report --ledger out/demo/ledger.db --config configs/sample.yaml --out out/demo/report.html"
	@$(BIN) report --ledger out/demo/ledger.db --config configs/sample.yaml --out out/demo/report.html
	@echo "open $(CURDIR)/out/demo/report.html"

$(VERSITYGW):
	@echo "installing versitygw (S3-compatible test server) into .tools/bin: about 1.5 minutes, once"
	GOBIN=$(TOOLS) CGO_ENABLED=0 $(GO) install github.com/versity/versitygw/cmd/versitygw@v1.8.0

$(STATICCHECK):
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@v0.7.0

# The ledger's PostgreSQL tests run a real server (ledger/pgtest): the
# Debian package's binaries, installed here when missing. The tests run
# initdb and the server themselves, as the user postgres when root.
postgresql: ## install PostgreSQL (Debian package postgresql) for the ledger's tests, when missing
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  echo "installing PostgreSQL (Debian package postgresql) for the ledger's tests"; \
	  if [ "$$(id -u)" = 0 ]; then apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; \
	  else sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; fi; \
	fi

# The Pushgateway that the metrics tests push to, pinned in tools/go.mod
# (see tools/tools.go for why it is not `go install ...@v1.11.0`).
$(PUSHGATEWAY): tools/go.mod tools/go.sum
	cd tools && GOBIN=$(TOOLS) CGO_ENABLED=0 $(GO) install github.com/prometheus/pushgateway

tools: $(VERSITYGW) $(STATICCHECK) $(PUSHGATEWAY) $(CYCLONEDX) ## install the test, lint and release tools into .tools/bin

test: $(VERSITYGW) $(PUSHGATEWAY) postgresql ## all tests, with a real S3-compatible server, PostgreSQL and Pushgateway on loopback, and short fuzzing
	VERSITYGW=$(VERSITYGW) PUSHGATEWAY=$(PUSHGATEWAY) $(GO) test -count=1 -timeout 15m ./...
	@$(MAKE) --no-print-directory fuzz-short

# Each fuzz target runs for FUZZTIME: a count of inputs (3000x), not a
# duration. With a duration, Go 1.26's fuzz coordinator can fail a target
# with a bare "context deadline exceeded" when -fuzztime expires while a
# worker is busy on a loaded machine (golang/go#75804, fixed in Go 1.27):
# `make test` failed so once in 15 runs here. A count has no deadline to
# race. `make fuzz` runs each target for 5 minutes, and may still meet it.

fuzz-short:
	@set -e; for f in $$(grep -rlE '^func Fuzz' --include='*_test.go' .); do \
	  pkg=./$$(dirname $$f); \
	  for t in $$(grep -hoE '^func Fuzz[A-Za-z0-9_]+' $$f | sed 's/func //'); do \
	    echo "fuzz $$pkg $$t ($(FUZZTIME))"; \
	    log=$$(mktemp); $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) $$pkg >$$log 2>&1 || { cat $$log; rm -f $$log; exit 1; }; rm -f $$log; \
	  done; \
	done

fuzz: ## run every fuzz target for 5 minutes each (corpus kept in testdata/fuzz)
	@$(MAKE) --no-print-directory fuzz-short FUZZTIME=5m

# `make test` runs the same tests of cmd/convpipe at a small size.
reliability: ## the built binary under SIGKILLs, fault storms, bad input, storage faults, secrets search, full size; writes docs/reliability.md
	CONVPIPE_RELIABILITY=full $(GO) test -count=1 -timeout 30m ./cmd/convpipe
	CONVPIPE_RELIABILITY=full $(GO) test -count=1 -timeout 30m -run '^TestParquetCSVTwins$$' ./sources
	@cat docs/reliability.md

# The commit whose code issue 12 measured CSV parse+map on (43% of the
# bare read on 2 cores, 24% on one, in docs/benchmarks.md of 2026-11-23):
# make bench builds its convpipe-bench from git (git archive, no checkout)
# and runs its discard beside today's, alternating, on the same export and
# configuration. A clone without that commit (shallow) runs without it.
BENCH_BASELINE := 5cc1f1d
BASELINE_BENCH := bin/convpipe-bench-$(BENCH_BASELINE)

bench: build ## measure throughput, memory, quota use, rerun, ledger and reconcile cost beside their floors; writes docs/benchmarks.md (about 12 minutes)
	$(GO) build -o bin/convpipe-bench ./cmd/convpipe-bench
	@$(MAKE) --no-print-directory $(BASELINE_BENCH)
	GO=$(GO) bin/convpipe-bench -convpipe $(BIN) -baseline $(BASELINE_BENCH) -baseline-rev $(BENCH_BASELINE) -out docs/benchmarks.md

$(BASELINE_BENCH):
	@if git cat-file -e '$(BENCH_BASELINE)^{commit}' 2>/dev/null; then \
	  echo "building convpipe-bench at $(BENCH_BASELINE) (the baseline of make bench) into $@"; \
	  rm -rf out/baseline-src && mkdir -p out/baseline-src && git archive $(BENCH_BASELINE) | tar -x -C out/baseline-src && \
	  (cd out/baseline-src && CGO_ENABLED=0 $(GO) build -o $(CURDIR)/$@ ./cmd/convpipe-bench) && rm -rf out/baseline-src; \
	else echo "commit $(BENCH_BASELINE) is not in this clone (shallow?): make bench runs without its baseline"; fi

# The container image, without a Docker daemon (cmd/convpipe-image, with
# go-containerregistry): scratch, the static binary, this machine's CA
# bundle, user 65532, the version labels; an OCI archive under out/.
IMAGE       := out/convpipe-image.tar
.PHONY: image
image: build ## the container image as an OCI archive, out/convpipe-image.tar (no Docker needed; the Dockerfile builds the same)
	$(GO) build -o bin/convpipe-image ./cmd/convpipe-image
	bin/convpipe-image -binary $(BIN) -version $(VERSION) -revision "$$(git rev-parse HEAD 2>/dev/null)" \
	  -created "$$(git log -1 --format=%ct 2>/dev/null || echo 0)" -out $(IMAGE)

$(CYCLONEDX): tools/cyclonedx/go.mod tools/cyclonedx/go.sum
	cd tools/cyclonedx && GOBIN=$(TOOLS) CGO_ENABLED=0 $(GO) install github.com/CycloneDX/cyclonedx-gomod/cmd/cyclonedx-gomod

# Release archives: one tar.gz per platform (the binary and the README),
# reproducible (sorted, owned by 0, dated at the commit), each with a
# CycloneDX SBOM of the modules built into its binary (cyclonedx-gomod
# bin: from the binary's build info, so it needs no git), and their
# SHA-256 sums. The version is
# `git describe --tags`: tag a commit (v1.2.3) to release it. The target
# checks its own output: the sums, and the archive of this machine's
# platform runs `--version`.
DIST_PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64
DIST           := out/dist
SOURCE_EPOCH   := $(shell git log -1 --format=%ct 2>/dev/null || echo 0)
.PHONY: dist
dist: $(CYCLONEDX) ## release archives for linux/darwin x amd64/arm64 with SBOMs and SHA256SUMS, into out/dist
	@rm -rf $(DIST) && mkdir -p $(DIST)
	@set -e; for p in $(DIST_PLATFORMS); do \
	  os=$${p%/*}; arch=$${p#*/}; name=convpipe_$(VERSION)_$${os}_$${arch}; \
	  echo "build $$name"; mkdir -p $(DIST)/$$name; \
	  GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(DIST)/$$name/convpipe ./cmd/convpipe; \
	  $(CYCLONEDX) bin -json -version $(VERSION) -output $(DIST)/$$name.cdx.json $(DIST)/$$name/convpipe 2>/dev/null; \
	  cp README.md $(DIST)/$$name/; \
	  tar -C $(DIST) --sort=name --mtime=@$(SOURCE_EPOCH) --owner=0 --group=0 --numeric-owner -cf - $$name | gzip -n9 > $(DIST)/$$name.tar.gz; \
	  rm -rf $(DIST)/$$name; \
	done
	cd $(DIST) && sha256sum *.tar.gz *.cdx.json > SHA256SUMS && sha256sum -c --quiet SHA256SUMS
	@self=convpipe_$(VERSION)_$$($(GO) env GOOS)_$$($(GO) env GOARCH); t=$$(mktemp -d); \
	  tar -C $$t -xzf $(DIST)/$$self.tar.gz && $$t/$$self/convpipe --version | grep -F -- '$(VERSION)'; rm -rf $$t
	@ls -l $(DIST)

.PHONY: profile
profile: ## CPU profiles of the dry run over 1M generated CSV rows, into out/bench/profile, and their top
	$(GO) build -o bin/convpipe-bench ./cmd/convpipe-bench
	GO=$(GO) bin/convpipe-bench profile

lint: $(STATICCHECK) ## gofmt, go vet and staticcheck
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(STATICCHECK) ./...

clean: ## remove build output (keeps .tools)
	rm -rf bin out
