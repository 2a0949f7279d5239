# edgemo — see README.md. `make run` and `make test` set everything up first.
GO      ?= go
TAGS    ?= matprofile
BIN     := bin/edgemo
SAMPLE  ?= deps/media/Megamind.avi

.PHONY: all setup setup-test build run analyze test bench vet lint clean

all: build

setup:
	@scripts/setup.sh

setup-test:
	@scripts/setup.sh --test

build: setup
	$(GO) build -o $(BIN) ./cmd/edgemo

# The daemon on the embedded default: the bundled sample on a loop, the
# embedded MQTT broker on 127.0.0.1:1883, the dashboard on http://127.0.0.1:8080/.
run: build
	$(BIN) run

# One-shot analysis of the sample: trees as JSON Lines on stdout.
analyze: build
	$(BIN) analyze $(SAMPLE)

vet:
	$(GO) vet -tags $(TAGS) ./...

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
