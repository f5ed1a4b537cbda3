# Kiezbox: the two commands in the README are `make run` and `make test`.
SWIFT ?= swift
# A release build is what a box runs; tests use the debug build (separate folders under .build).
RELEASE_FLAGS ?= -c release

.PHONY: deps build run test bench release-static deb clean

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build $(RELEASE_FLAGS) --product kiezbox

## The daemon on simulated sensors, with the embedded default configuration. Ctrl-C stops it cleanly.
run: build
	$$($(SWIFT) build $(RELEASE_FLAGS) --show-bin-path)/kiezbox run $(ARGS)

## The whole test suite.
test:
	@scripts/install-deps.sh tests
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

## Benchmarks: the store against a plain sqlite3 C reference; the relay over MQTT against a libmosquitto C reference;
## the portal's info page under wrk against nginx serving the same page; a LoRaWAN box report's bytes and airtime;
## the time from a mains-fail edge to the portal's crisis page; the five-day blackout simulation's timeline with and
## without load shedding.
bench:
	@scripts/install-deps.sh bench
	$(SWIFT) build -c release --product StoreBench
	$(SWIFT) build -c release --product SQLiteReference
	$(SWIFT) build -c release --product RelayBench
	$(SWIFT) build -c release --product MosquittoReference
	$(SWIFT) build -c release --product kiezbox
	$(SWIFT) build -c release --product LoRaBench
	$(SWIFT) build -c release --product MeshtasticBench
	$$($(SWIFT) build -c release --show-bin-path)/StoreBench
	$$($(SWIFT) build -c release --show-bin-path)/LoRaBench
	$$($(SWIFT) build -c release --show-bin-path)/MeshtasticBench
	Benchmarks/relay-bench.sh
	Benchmarks/portal-bench.sh
	Benchmarks/crisis-bench.sh
	@# The five-day blackout with and without load shedding (docs/power.md): a test, so on the debug test build.
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build --filter BlackoutSimulationTests

## One self-contained binary for the image and the .deb (links the Swift runtime statically).
release-static: deps
	@scripts/install-deps.sh deb
	$(SWIFT) build -c release --static-swift-stdlib --scratch-path .build-static --product kiezbox

## kiezbox_<version>_<arch>.deb for this machine's architecture (amd64 here, arm64 on a Raspberry Pi), linted.
deb: release-static
	scripts/build-deb.sh --binary $$($(SWIFT) build -c release --static-swift-stdlib --scratch-path .build-static --show-bin-path)/kiezbox
	lintian --tag-display-limit 0 kiezbox_*_$$(dpkg --print-architecture).deb

clean:
	rm -rf .build .build-static
