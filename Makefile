# Quarry — two set-up commands for a fresh Debian machine: `make run` and `make test`.
# Both install the Debian packages they need when missing, then build.

SWIFT ?= swift
DEBIAN_PACKAGES := pkg-config tzdata libbpf-dev libsystemd-dev libpcre2-dev libsqlite3-dev libyara-dev libmagic-dev libmagic-mgc zlib1g-dev libbz2-dev sqlite3 python3 procps postgresql openssl ca-certificates python3-plyvel libzstd-dev liblzma-dev zip unzip bzip2 e2fsprogs curl chromium chromium-driver python3-selenium nftables iproute2 7zip libssl-dev mmdb-bin
BIN := .build/release/quarry
CORPUS := ../shared/conformance/vfilter/cases.json
# Ratchets: `make test` fails when Velociraptor's golden testcases passing exactly, or the Linux
# names covered (endpoint, server), fall below these (raise them as work lands, never lower them).
TESTCASES_MIN := 57
PARITY_MIN_ENDPOINT := 235
PARITY_MIN_SERVER := 56

.PHONY: run run-fleet test deps install-packages build release conformance parity bench bench-fleet docs clean artifacts fuzz sanitize deb

BENCH_PACKAGES := hyperfine valgrind yara openssl iproute2

## Install missing Debian packages (needs root or sudo; skipped when all are present).
deps:
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(DEBIAN_PACKAGES)"

install-packages:
	@missing=""; for p in $(PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  SUDO=""; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

build: deps
	$(SWIFT) build

release: deps
	$(SWIFT) build -c release --product quarry

## The main job: build, then ask this host a few questions.
run: release
	$(BIN) query --format table "SELECT Hostname, OS, Platform, PlatformVersion, KernelVersion, Architecture FROM info()"
	$(BIN) query --format table "SELECT Pid, Name, Username, MemoryInfo.RSS AS RSS FROM pslist() ORDER BY RSS DESC LIMIT 5"
	$(BIN) query --format table "SELECT Laddr.Port AS Port, Status, Pid, Name FROM netstat() WHERE Status = 'LISTEN'"
	$(BIN) query --format table "SELECT User, Uid, Shell FROM Artifact.Linux.Sys.Users() WHERE Shell =~ 'sh$$'"
	$(BIN) artifacts collect Linux.Triage.Basic --output triage.zip
	$(BIN) collection show triage.zip --rows 3 | head -n 60

## A local fleet: a server, three agents with their own state folders, a hunt and a scheduled hunt.
run-fleet: release
	scripts/run-fleet.sh

## Every test: unit, golden, conformance (when ../shared is present), CLI.
test: deps
	$(SWIFT) build
	QUARRY_REQUIRE_POSTGRES=1 QUARRY_REQUIRE_BROWSER=1 $(SWIFT) test
	@if [ -f $(CORPUS) ]; then .build/debug/vql-conformance $(CORPUS) | tail -n 1; fi
	python3 scripts/velociraptor_testcases.py --min $(TESTCASES_MIN)
	python3 scripts/parity.py --min-endpoint $(PARITY_MIN_ENDPOINT) --min-server $(PARITY_MIN_SERVER) --summary

## Both conformance corpora: vfilter's VQL cases and Velociraptor's golden testcases (failures listed).
conformance: build
	.build/debug/vql-conformance $(CORPUS)
	python3 scripts/velociraptor_testcases.py --verbose

## Velociraptor's Linux names that quarry declares, endpoint and server apart, with what is missing.
parity: build
	python3 scripts/parity.py

bench: release
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(BENCH_PACKAGES)"
	bench/run.sh
	bench/host.sh

## Fleet: 200 real agent processes, then 10,000 simulated agents on SQLite, PostgreSQL and 3 frontends.
bench-fleet: release
	@$(MAKE) --no-print-directory install-packages PACKAGES="$(BENCH_PACKAGES) postgresql"
	$(SWIFT) build -c release --product quarry-agent-sim
	python3 bench/fleet.py 200
	python3 bench/loadtest.py 10000

## libFuzzer harnesses (Fuzz/, a separate package `make test` never builds), one after the other for
## FUZZ_SECONDS each (FUZZ_HARNESSES="fuzz-vql fuzz-pe" for a subset); see docs/fuzzing.md.
FUZZ_SECONDS ?= 60
FUZZ_HARNESSES ?=
fuzz: deps
	@if [ -f Package.resolved ] && [ ! -f Fuzz/Package.resolved ]; then cp Package.resolved Fuzz/Package.resolved; fi
	cd Fuzz && $(SWIFT) build -c release -Xswiftc -sanitize=fuzzer,address -Xswiftc -use-ld=lld
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh $(FUZZ_HARNESSES)

## The test suite under AddressSanitizer, then ThreadSanitizer (own build folders; not part of `make
## test`). SANITIZE_FILTER narrows it, e.g. SANITIZE_FILTER=VQLTests.
SANITIZE_FILTER ?=
sanitize: deps
	ASAN_OPTIONS=detect_leaks=0 $(SWIFT) test --sanitize=address --scratch-path .build-asan $(if $(SANITIZE_FILTER),--filter $(SANITIZE_FILTER))
	TSAN_OPTIONS=halt_on_error=1 $(SWIFT) test --sanitize=thread --scratch-path .build-tsan $(if $(SANITIZE_FILTER),--filter $(SANITIZE_FILTER))

## The Debian package of the release build: dist/quarry_VERSION_ARCH.deb (dpkg-deb, no network).
deb: release
	mkdir -p dist && $(BIN) package deb --binary $(BIN) --output-dir dist

docs: build
	.build/debug/quarry docs > docs/reference.md

clean:
	rm -rf .build

## Embed artifacts/**/*.yaml into the binary (Sources/Artifacts/BuiltinArtifacts.swift).
artifacts:
	python3 scripts/embed_artifacts.py
