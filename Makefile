# edgemo — see README.md. `make run` and `make test` set everything up first.
GO      ?= go
TAGS    ?= matprofile
BIN     := bin/edgemo
SAMPLE  ?= deps/media/Megamind.avi
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X main.version=$(VERSION) -X main.commit=$(COMMIT)
export VERSION COMMIT

.PHONY: all setup setup-test build build-arm64 test-arm64 dist test-dist run analyze test bench vet lint clean

all: build

setup:
	@scripts/setup.sh

setup-test:
	@scripts/setup.sh --test

build: setup
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/edgemo

# linux/arm64 (Jetson, Raspberry Pi 5, Graviton), cross-built against a
# sysroot of Debian 12 arm64 packages: bin/edgemo-linux-arm64. See scripts/arm64.sh.
build-arm64: setup
	@scripts/arm64.sh build

# The arm64 binary under qemu-user: doctor, analyze (trees compared with the
# amd64 run's) and the Go tests that need no browser or broker.
# ARM64_TEST=--smoke: doctor, the image only, the pure-Go tests (.ci/run).
ARM64_TEST ?=
test-arm64: build build-arm64
	@scripts/arm64.sh test $(ARM64_TEST)

# The daemon on the embedded default: the bundled sample on a loop, the
# embedded MQTT broker on 127.0.0.1:1883, the dashboard on http://127.0.0.1:8080/.
run: build
	$(BIN) run

# One-shot analysis of the sample: trees as JSON Lines on stdout.
analyze: build
	$(BIN) analyze $(SAMPLE)

vet:
	$(GO) vet -tags $(TAGS) ./...

# Release archives bin/edgemo-$(VERSION)-linux-{amd64,arm64}.tar.gz (scripts/dist.sh).
dist: build build-arm64
	@scripts/dist.sh amd64
	@scripts/dist.sh arm64

# Install test: the amd64 archive unpacked outside the repository runs
# version, doctor and analyze; its systemd unit passes systemd-analyze verify.
test-dist: build
	@scripts/dist.sh amd64
	@scripts/dist/install_test.sh bin/edgemo-$(VERSION)-linux-amd64.tar.gz

# golangci-lint, pinned (scripts/lint.sh installs it into deps/bin).
lint:
	@scripts/lint.sh

# Every test, with gocv's Mat leak profile compiled in.
test: setup-test vet lint
	$(GO) test -tags $(TAGS) -count=1 -timeout 45m ./...

bench: build
	$(GO) test -tags $(TAGS) -run '^$$' -bench . -benchtime 3x ./...
	$(BIN) bench $(SAMPLE)

clean:
	rm -rf bin
