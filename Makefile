# edgemo — see README.md. `make run` and `make test` set everything up first.
GO      ?= go
TAGS    ?= matprofile
BIN     := bin/edgemo
SAMPLE  ?= deps/media/Megamind.avi

.PHONY: all setup setup-test build run test bench vet clean

all: build

setup:
	@scripts/setup.sh

setup-test:
	@scripts/setup.sh --test

build: setup
	$(GO) build -o $(BIN) ./cmd/edgemo

# The main job on the bundled sample: trees as JSON Lines on stdout, progress on stderr.
run: build
	$(BIN) analyze $(SAMPLE)

vet:
	$(GO) vet -tags $(TAGS) ./...

# Every test, with gocv's Mat leak profile compiled in.
test: setup-test vet
	$(GO) test -tags $(TAGS) -count=1 -timeout 45m ./...

bench: build
	$(GO) test -tags $(TAGS) -run '^$$' -bench . -benchtime 3x ./...
	$(BIN) bench $(SAMPLE)

clean:
	rm -rf bin
