#!/usr/bin/env bash
# Runs golangci-lint with .golangci.yml, installing the pinned version from
# the Go module proxy into deps/bin first (a minute or three, once).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
version=v2.15.0
bin="$root/deps/bin/golangci-lint"
if ! [ -x "$bin" ] || ! "$bin" version 2>/dev/null | grep -q "version ${version#v} "; then
	printf '\033[1mlint:\033[0m go install golangci-lint %s -> deps/bin/\n' "$version" >&2
	GOBIN="$root/deps/bin" go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@$version"
fi
cd "$root"
# --allow-serial-runners: a second lint on the machine (another checkout, a CI
# clone) waits for the first instead of failing "parallel golangci-lint is running".
exec "$bin" run --allow-serial-runners ./...
