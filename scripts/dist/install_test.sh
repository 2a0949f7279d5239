#!/usr/bin/env bash
# Install test of a release archive: unpack it into a fresh directory outside
# the repository and run version, doctor and analyze from there, so nothing
# may come from the checkout (no go.mod above the directory, no deps/, no
# models/, EDGEMO_ORT_LIB unset). Then systemd-analyze verify on its unit.
#
#   scripts/dist/install_test.sh bin/edgemo-VERSION-linux-amd64.tar.gz
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
archive=$(realpath "${1:?usage: install_test.sh ARCHIVE}")
fail() { printf 'install test: FAIL: %s\n' "$*" >&2; exit 1; }
t=$(mktemp -d /tmp/edgemo-install.XXXXXX)
trap 'rm -rf "$t"' EXIT
tar xzf "$archive" -C "$t"
d=$(echo "$t"/edgemo-*)
[ -d "$d" ] || fail "$archive holds no edgemo-* directory"
cp "$root/deps/media/astronaut.png" "$t/face.png" # the input only
# Run from a working directory that is not the archive's, as the service
# does (WorkingDirectory=/var/lib/edgemo): models and ORT must be found
# beside the binary.
mkdir "$t/work"
cd "$t/work"
unset EDGEMO_ORT_LIB
PATH=$d/bin:$PATH
missing=$(ldd "$d/bin/edgemo" | grep 'not found' || true)
[ -z "$missing" ] && echo "install test: every shared library resolves (DEBIAN_PACKAGES: $(paste -sd' ' "$d/DEBIAN_PACKAGES"))" ||
	fail "bin/edgemo: libraries not found on this system: $missing (INSTALL.md names the packages)"
edgemo version | tee "$t/version.txt"
grep -q "^onnxruntime  1.24.1 ($d/lib/libonnxruntime.so.1)" "$t/version.txt" || fail "version did not load the bundled lib/libonnxruntime.so.1"
edgemo doctor | tee "$t/doctor.txt" || fail "doctor failed from the unpacked archive"
grep -q "^ok    model emotion .*$d/models/emotion.onnx" "$t/doctor.txt" || fail "doctor did not use the archive's models/"
! grep -q "$root" "$t/doctor.txt" || fail "doctor used a file from the repository $root"
edgemo analyze "$t/face.png" --progress off --log-level warn >"$t/trees.jsonl" || fail "analyze failed from the unpacked archive"
n=$(grep -c '"schema":"edgemo.tree/v1"' "$t/trees.jsonl" || true)
[ "$n" -ge 1 ] || fail "analyze wrote no trees"
grep -q '"label":"happiness"' "$t/trees.jsonl" || fail "analyze of the astronaut is not happiness: $(head -c 400 "$t/trees.jsonl")"
(cd "$root" && go run ./scripts/treediff "$t/trees.jsonl" "$t/trees.jsonl" >/dev/null) || fail "trees do not validate against edgemo.tree/v1"
echo "install test: analyze wrote $n valid trees"
# The unit as installed (/opt/edgemo is this directory for the check): no
# warning at all is accepted, as systemd-analyze exits 0 on most of them.
sed "s#/opt/edgemo#$d#g" "$d/systemd/edgemo.service" >"$t/edgemo.service"
v=$(systemd-analyze verify --man=no "$t/edgemo.service" 2>&1) || fail "systemd-analyze verify: $v"
[ -z "$v" ] || fail "systemd-analyze verify warns: $v"
echo "install test: systemd-analyze verify edgemo.service: clean"
echo "install test: ok ($(basename "$archive"))"
