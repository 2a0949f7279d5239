#!/usr/bin/env bash
# Release archives: bin/edgemo-$VERSION-linux-{amd64,arm64}.tar.gz, each with
# the binary, ONNX Runtime, the fast-tier models and their manifests, the
# example config, a systemd unit, LICENSE and third-party notices.
#
#   scripts/dist.sh amd64|arm64   (make dist builds both; VERSION from the Makefile)
#
# The binary links Debian 12's OpenCV 4.6 dynamically: INSTALL.md in the
# archive names the packages, derived from the binary's own DT_NEEDED list.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
arch=${1:?usage: scripts/dist.sh amd64|arm64}
version=${VERSION:-dev}
log() { printf '\033[1mdist:\033[0m %s\n' "$*" >&2; }
die() { printf 'dist: error: %s\n' "$*" >&2; exit 1; }

case $arch in
amd64) exe=$root/bin/edgemo ort=$root/deps/onnxruntime/libonnxruntime.so.1 ;;
arm64) exe=$root/bin/edgemo-linux-arm64 ort=$root/deps/onnxruntime-arm64/libonnxruntime.so.1 ;;
*) die "unknown architecture $arch (want amd64 or arm64)" ;;
esac
[ -x "$exe" ] || die "$exe missing: make build (amd64) or make build-arm64 first"
[ -f "$ort" ] || die "$ort missing: run scripts/setup.sh (amd64) or scripts/arm64.sh sysroot (arm64)"
license=${LICENSE_FILE:-$root/LICENSE}
[ -f "$license" ] || die "$license missing: the project's own licence must be chosen and committed as LICENSE before a release archive can be made"

name=edgemo-$version-linux-$arch
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
d=$tmp/$name
mkdir -p "$d/bin" "$d/lib" "$d/models" "$d/systemd" "$d/licenses"
cp "$exe" "$d/bin/edgemo"
cp "$ort" "$d/lib/libonnxruntime.so.1"
fast_models=(emotion emotion-int8 blazeface-back blazeface-back-wide blazeface-front facemesh faceres faceres-int8 antispoof antispoof-int8)
# Each model's variant for this architecture where scripts/models.sh makes
# one (models/arm64/: BlazeFace without the AVX-512 channel padding),
# flattened into the archive's models/; its manifest must name no other
# target.
for m in "${fast_models[@]}"; do
	src=$root/models
	[ -f "$src/$arch/$m.manifest.json" ] && src=$src/$arch
	read -r f target < <(python3 -c 'import json,sys; m=json.load(open(sys.argv[1])); print(m["files"][0]["path"], m.get("target", "-"))' "$src/$m.manifest.json")
	case $target in -|"$arch"|"$arch"-*) ;; *) die "${src#"$root"/}/$m.manifest.json is for $target, not $arch: run scripts/setup.sh (scripts/models.sh converts models/$arch/)" ;; esac
	cp "$src/$m.manifest.json" "$src/$f" "$d/models/"
done
# The example config's sample camera points into the repository; the
# archive's copy keeps every setting and points at /dev/video0 instead.
sed 's#source: deps/media/Megamind.avi#source: /dev/video0#; /^    loop: true$/d' "$root/edgemo.example.yaml" >"$d/edgemo.example.yaml"
cp "$root/scripts/dist/edgemo.service" "$root/scripts/dist/edgemo.sysusers.conf" "$d/systemd/"
cp "$license" "$d/LICENSE"

# OpenCV packages this binary needs, from its DT_NEEDED entries
# (libopencv_videoio.so.406 -> libopencv-videoio406).
opencv_pkgs=$(readelf -d "$exe" | sed -n 's/.*\[libopencv_\([a-z0-9_]*\)\.so\.406\].*/libopencv-\1406/p' | tr _ - | sort -u | tr '\n' ' ')
[ -n "$opencv_pkgs" ] || die "$exe links no libopencv_*.so.406: not a Debian 12 OpenCV 4.6 build"
echo "$opencv_pkgs opencv-data" | tr ' ' '\n' | sed '/^$/d' >"$d/DEBIAN_PACKAGES"
"$root/scripts/dist/notices.sh" "$arch" "$d" "$root"
cat >"$d/INSTALL.md" <<EOF
# edgemo $version for linux/$arch

Needs Debian 12 (or a distribution with OpenCV 4.6.0 built the same way):
the binary links OpenCV dynamically. Install the packages it needs (listed in
DEBIAN_PACKAGES, read from the binary's own library list):

    sudo apt-get install $opencv_pkgs opencv-data

ONNX Runtime 1.24.1 (CPU) is bundled in lib/; set EDGEMO_ORT_LIB to use
another build (a CUDA/TensorRT one on a GPU or a Jetson).

Try it from this directory:

    bin/edgemo version
    bin/edgemo doctor
    bin/edgemo analyze /path/to/video.mp4

As a service (journal logging, restart on failure, user edgemo):

    sudo mkdir -p /opt/edgemo && sudo cp -r . /opt/edgemo/
    sudo install -Dm644 systemd/edgemo.sysusers.conf /usr/lib/sysusers.d/edgemo.conf && sudo systemd-sysusers
    sudo install -Dm644 edgemo.example.yaml /etc/edgemo/edgemo.yaml   # then edit cameras and MQTT
    sudo install -Dm644 systemd/edgemo.service /etc/systemd/system/edgemo.service
    sudo systemctl daemon-reload && sudo systemctl enable --now edgemo
    journalctl -u edgemo -f

Caches (TensorRT engines) live in /var/lib/edgemo/cache; \`systemctl reload edgemo\`
re-reads the config.
EOF
out=$root/bin/$name.tar.gz
tar -C "$tmp" --owner=0 --group=0 --numeric-owner -czf "$out" "$name"
log "$(basename "$out") ($(du -h "$out" | cut -f1))"
