#!/usr/bin/env bash
# linux/arm64 edgemo built on this amd64 machine and tested under qemu-user.
#
#   scripts/arm64.sh sysroot        deps/arm64-sysroot + deps/onnxruntime-arm64 (idempotent)
#   scripts/arm64.sh build          bin/edgemo-linux-arm64 (VERSION, COMMIT from the environment)
#   scripts/arm64.sh test [--smoke] doctor, analyze and Go test binaries under qemu-aarch64
#   scripts/arm64.sh insncount [N]  guest instructions per BlazeFace Run of each variant (slow: minutes)
#
# The sysroot is Debian 12's arm64 packages of OpenCV 4.6 and their
# dependency closure, downloaded with apt-get download and unpacked with
# dpkg-deb -x: nothing is installed into the host. apt runs with a private
# state directory (deps/arm64-apt: its own package lists, an empty dpkg
# status, APT::Architecture=arm64) against the host's sources, so neither
# `dpkg --add-architecture` nor the host's package lists are touched.
# apt checks every .deb against the signed Release files, as for any
# download.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
deps=$root/deps
sysroot=$deps/arm64-sysroot
aptdir=$deps/arm64-apt
ortdir=$deps/onnxruntime-arm64
bin=$root/bin/edgemo-linux-arm64

log() { printf '\033[1marm64:\033[0m %s\n' "$*" >&2; }
die() { printf 'arm64: error: %s\n' "$*" >&2; exit 1; }

# OpenCV modules gocv v0.31 and capture/avdec.cpp call into (linked with
# -tags customenv instead of pkg-config's opencv4, which names every contrib
# module and so would need the whole libopencv-dev closure: VTK, Qt, HDF5 dev).
opencv_modules=(core imgproc imgcodecs videoio highgui objdetect dnn video features2d calib3d photo)
# Runtime packages: apt resolves their dependency closure (flann comes in
# through features2d).
runtime_pkgs=()
for m in "${opencv_modules[@]}"; do runtime_pkgs+=("libopencv-$m""406"); done
# FFmpeg's libraries, which capture/avdec.cpp links (OpenCV's videoio needs them too).
ffmpeg_libs=(avformat avcodec swscale avutil)
runtime_pkgs+=(libavformat59 libavcodec59 libswscale6 libavutil57)
# Header-only: the -dev packages of the modules opencv2/opencv.hpp includes,
# unpacked without their dependencies (their .so links and headers are all
# that is used from them).
header_pkgs=()
for m in "${opencv_modules[@]}" flann ml stitching; do header_pkgs+=("libopencv-$m-dev"); done
for m in "${ffmpeg_libs[@]}"; do header_pkgs+=("lib$m-dev"); done

ORT_TGZ=$deps/cache/onnxruntime-node-1.24.1.tgz
ORT_TGZ_SHA=57181cf6e6e711b155c5b942d591fd63ded0b5de5c4922d51fd994e7f6ac2772
ORT_ARM64_SHA=7954e8bdedb497f830c6a679e818d98399b7f4d81ade1126c3e0be74d28111ab

sha() { sha256sum "$1" | cut -d' ' -f1; }

apt_arm64() {
	apt-get -q -o Dir::State="$aptdir/state" -o Dir::State::status="$aptdir/state/status" \
		-o Dir::Cache="$aptdir/cache" -o APT::Architecture=arm64 -o APT::Architectures::=arm64 \
		-o Debug::NoLocking=1 -o APT::Sandbox::User="$(id -un)" "$@"
}

cmd_sysroot() {
	"$root/scripts/setup.sh" --arm64
	local stamp want
	want=$(printf "%s\n" "${runtime_pkgs[@]}" "${header_pkgs[@]}" | sha256sum | cut -d" " -f1)
	stamp=$sysroot/.edgemo-sysroot
	if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
		log "Debian 12 arm64 packages (private apt state in deps/arm64-apt, nothing installed) -> deps/arm64-sysroot"
		mkdir -p "$aptdir/state/lists/partial" "$aptdir/cache/archives/partial" "$aptdir/debs"
		: >"$aptdir/state/status"
		apt_arm64 update -qq || die "apt-get update (arm64, private state) failed: needs the host's Debian apt sources"
		local closure
		closure=$(apt_arm64 install -s --no-install-recommends "${runtime_pkgs[@]}" | awk '/^Inst /{print $2}')
		[ -n "$closure" ] || die "apt could not resolve ${runtime_pkgs[*]} for arm64"
		(cd "$aptdir/debs" && rm -f ./*.deb && apt_arm64 download $closure "${header_pkgs[@]}" >/dev/null) ||
			die "apt-get download of the arm64 packages failed"
		rm -rf "$sysroot"
		mkdir -p "$sysroot"
		local d
		for d in "$aptdir"/debs/*.deb; do dpkg-deb -x "$d" "$sysroot"; done
		# What the packages' postinst would do: update-alternatives links for
		# BLAS/LAPACK (libopencv_core needs libblas.so.3, liblapack.so.3).
		ln -sf blas/libblas.so.3 "$sysroot/usr/lib/aarch64-linux-gnu/libblas.so.3"
		ln -sf lapack/liblapack.so.3 "$sysroot/usr/lib/aarch64-linux-gnu/liblapack.so.3"
		find "$sysroot/usr/lib" -name '*.a' -delete # static archives: never linked
		for d in "$aptdir"/debs/*.deb; do dpkg-deb -f "$d" Package Version | paste -sd' '; done >"$sysroot/.packages"
		echo "$want" >"$stamp"
		log "sysroot: $(wc -l <"$sysroot/.packages") packages ($(du -sh "$sysroot" | cut -f1))"
	fi
	if [ ! -f "$ortdir/libonnxruntime.so.1" ] || [ "$(sha "$ortdir/libonnxruntime.so.1")" != "$ORT_ARM64_SHA" ]; then
		[ -f "$ORT_TGZ" ] && [ "$(sha "$ORT_TGZ")" = "$ORT_TGZ_SHA" ] ||
			die "$ORT_TGZ missing or not sha256 $ORT_TGZ_SHA; delete it and run scripts/setup.sh"
		log "extract ONNX Runtime linux/arm64 (MIT) from onnxruntime-node@1.24.1 -> deps/onnxruntime-arm64/"
		mkdir -p "$ortdir"
		tar xzf "$ORT_TGZ" -O package/bin/napi-v6/linux/arm64/libonnxruntime.so.1 >"$ortdir/libonnxruntime.so.1.tmp"
		[ "$(sha "$ortdir/libonnxruntime.so.1.tmp")" = "$ORT_ARM64_SHA" ] ||
			die "deps/onnxruntime-arm64/libonnxruntime.so.1: sha256 $(sha "$ortdir/libonnxruntime.so.1.tmp"), want $ORT_ARM64_SHA"
		mv "$ortdir/libonnxruntime.so.1.tmp" "$ortdir/libonnxruntime.so.1"
		tar xzf "$ORT_TGZ" -O package/package.json >"$ortdir/package.json"
	fi
}

# cross_env exports what go build needs to cross-compile the cgo packages
# (gocv, capture, onnxruntime_go) against the sysroot.
cross_env() {
	local lib=$sysroot/usr/lib/aarch64-linux-gnu ldflags=""
	local m
	for m in "${opencv_modules[@]}"; do ldflags+=" -lopencv_$m"; done
	for m in "${ffmpeg_libs[@]}"; do ldflags+=" -l$m"; done
	export CGO_ENABLED=1 GOOS=linux GOARCH=arm64 CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++
	export CGO_CPPFLAGS="-I$sysroot/usr/include/opencv4 -I$sysroot/usr/include/aarch64-linux-gnu/opencv4 -I$sysroot/usr/include/aarch64-linux-gnu"
	export CGO_LDFLAGS="-L$lib -Wl,-rpath-link,$lib:$sysroot/lib/aarch64-linux-gnu:$sysroot/usr/lib$ldflags"
}

# check_needed fails naming every shared library an arm64 ELF file needs
# (transitively) that the sysroot does not hold: what a device must install.
check_needed() {
	python3 - "$sysroot" "$@" <<'EOF'
import os, subprocess, sys
root, todo = sys.argv[1], list(sys.argv[2:])
dirs = ["lib/aarch64-linux-gnu", "usr/lib/aarch64-linux-gnu", "lib", "usr/lib"]
seen, missing = set(), set()
while todo:
    out = subprocess.run(["readelf", "-d", todo.pop()], capture_output=True, text=True, check=True).stdout
    for n in (l.split("[", 1)[1].split("]")[0] for l in out.splitlines() if "(NEEDED)" in l):
        if n in seen:
            continue
        seen.add(n)
        f = next((os.path.join(root, d, n) for d in dirs if os.path.exists(os.path.join(root, d, n))), None)
        if f is None:
            missing.add(n)
        else:
            todo.append(f)
if missing:
    sys.exit("arm64: error: not in deps/arm64-sysroot: " + " ".join(sorted(missing)) + " (add their packages to scripts/arm64.sh)")
print(f"arm64: {len(seen)} shared libraries resolved in deps/arm64-sysroot", file=sys.stderr)
EOF
}

cmd_build() {
	cmd_sysroot
	cross_env
	local ld="-X main.version=${VERSION:-dev}"
	[ -n "${COMMIT:-}" ] && ld+=" -X main.commit=$COMMIT"
	log "go build (linux/arm64, aarch64-linux-gnu-g++, -tags customenv) -> bin/edgemo-linux-arm64"
	(cd "$root" && go build -tags customenv -ldflags "$ld" -o "$bin" ./cmd/edgemo)
	check_needed "$bin" "$ortdir/libonnxruntime.so.1"
}

# Under qemu-user, ONNX Runtime's NEON kernels run ~1000x slower than on
# the host (every vector float op is a softfloat helper), so the analyses
# are short: a few frames, the detector every 4th, 4-crop windows. The same
# flags run on the amd64 binary and the trees are compared field by field.
# -cpu cortex-a76 (ARMv8.2, NEON + dotprod, no SVE): close to Jetson Orin's
# Cortex-A78AE; qemu's default "max" adds SVE/SME, which ORT then uses and
# qemu emulates another ~8x slower.
qemu() { qemu-aarch64-static -cpu cortex-a76 -L "$sysroot" "$@"; }
analyze_flags=(--progress off --log-level warn --fps 4 --detect-every 4 --window-length 4 --window-stride 4)
# Go packages whose tests need neither a browser nor a broker nor the
# edgemo binary on PATH. Left out: engine, engine/videmo, internal/pipeline,
# capture (hundreds of ORT runs or decodes each: hours at qemu's speed; the
# analyze comparison above is their arm64 check), cmd/edgemo and
# internal/daemon (exec the binary or start a broker). --smoke runs the pure
# Go ones only, which need no second (matprofile) gocv cross-compile.
test_pkgs=(engine/tree engine/registry engine/ring engine/schedule window internal/config internal/progress facetrack)
smoke_pkgs=(engine/tree engine/ring internal/progress)

cmd_test() {
	local smoke=0
	[ "${1:-}" = "--smoke" ] && smoke=1
	[ -x "$bin" ] || die "bin/edgemo-linux-arm64 missing: make build-arm64 first"
	cmd_sysroot
	local out=$root/bin/arm64-test t0 t
	rm -rf "$out" && mkdir -p "$out"
	export EDGEMO_ORT_LIB=$ortdir/libonnxruntime.so.1
	t0=$(date +%s)
	log "doctor (arm64, qemu)"
	(cd "$root" && qemu "$bin" doctor 2>&1) | tee "$out/doctor.txt"
	grep -q '^ok    onnxruntime' "$out/doctor.txt" || die "doctor: ONNX Runtime did not load under qemu"
	local v
	for v in blazeface-back blazeface-back-wide blazeface-front; do # the arm64 conversion, not the AVX-512 one
		grep -q "^ok    model $v .*models/arm64/$v.onnx (arm64)\$" "$out/doctor.txt" ||
			die "doctor: the arm64 binary did not pick models/arm64/$v (run scripts/setup.sh: scripts/models.sh converts it)"
	done
	(cd "$root" && qemu "$bin" version)
	local src name
	for src in deps/media/astronaut.png deps/media/Megamind.avi; do
		name=$(basename "$src")
		local extra=()
		# A short clip: 68 frames of the 11 s sample. Adaptive detection is
		# off for the comparison: its per-frame choices (region check or
		# full detection, steady or not) are score thresholds that turn the
		# NEON and AVX-512 kernels' last-bit differences into different
		# schedules, boxes a pixel apart and, through the emotion head,
		# other labels (docs/jetson.md has the figures); with a fixed
		# schedule both runs detect on the same frames. The schedule's own
		# logic is tested under qemu with facetrack's Go tests below.
		[ "$name" = Megamind.avi ] && extra=(--fps 6 --window-fps 2 --adaptive=false)
		log "analyze $src (amd64, then arm64 under qemu)"
		(cd "$root" && EDGEMO_ORT_LIB= bin/edgemo analyze "$src" "${analyze_flags[@]}" "${extra[@]}" >"$out/$name.amd64.jsonl")
		t=$(date +%s)
		(cd "$root" && qemu "$bin" analyze "$src" "${analyze_flags[@]}" "${extra[@]}" >"$out/$name.arm64.jsonl")
		log "analyze $name under qemu: $(($(date +%s) - t)) s"
		(cd "$root" && go run ./scripts/treediff "$out/$name.amd64.jsonl" "$out/$name.arm64.jsonl") | tee "$out/$name.diff.txt"
		[ $smoke = 1 ] && break
	done
	local pkgs=("${test_pkgs[@]}")
	[ $smoke = 1 ] && pkgs=("${smoke_pkgs[@]}")
	(
		cross_env
		cd "$root"
		for p in "${pkgs[@]}"; do
			log "go test -c ./$p (arm64), run under qemu"
			go test -c -tags customenv,matprofile -o "$out/$(echo "$p" | tr / _).test" "./$p"
		done
	)
	for p in "${pkgs[@]}"; do
		(cd "$root/$p" && qemu "$out/$(echo "$p" | tr / _).test" -test.count=1 -test.timeout=20m) || die "go test ./$p failed under qemu"
	done
	log "test-arm64 passed in $(($(date +%s) - t0)) s"
}

# Guest instructions per BlazeFace Run, not emulated time: qemu's log of
# every executed block (-d in_asm,exec,nochain) streams through a fifo into
# scripts/insncount on the host, which sums the blocks the Run thread
# executes between marks (see scripts/insncount/main.go). The log is
# ~100 bytes per executed block, so it never touches the disk.
cmd_insncount() {
	local n=${1:-3}
	cmd_sysroot
	local out=$root/bin/insncount
	mkdir -p "$out"
	log "go build ./scripts/insncount (arm64 guest, then the host counter)"
	(cross_env && cd "$root" && go build -tags customenv -o "$out/insncount-linux-arm64" ./scripts/insncount)
	(cd "$root" && go build -o "$out/insncount" ./scripts/insncount)
	export EDGEMO_ORT_LIB=$ortdir/libonnxruntime.so.1
	local m fifo t
	for m in ${INSNCOUNT_MODELS:-models/blazeface-back models/arm64/blazeface-back models/blazeface-front models/arm64/blazeface-front}; do
		fifo=$out/qemu.log.fifo
		rm -f "$fifo" && mkfifo "$fifo"
		t=$(date +%s)
		"$out/insncount" count -bin "$out/insncount-linux-arm64" -log "$fifo" >"$out/$(echo "$m" | tr / _).txt" &
		(cd "$root" && qemu -d in_asm,exec,nochain -D "$fifo" "$out/insncount-linux-arm64" run -model "$m.manifest.json" -n "$n")
		wait $! || die "insncount count failed on $m"
		rm -f "$fifo"
		# per Run: the median of Runs 2..N (the first allocates ORT's buffers)
		local runs rest
		runs=$(awk '/^run /{print $3}' "$out/$(echo "$m" | tr / _).txt")
		rest=$(echo "$runs" | tail -n +2 | sort -n)
		[ -n "$rest" ] || rest=$runs
		printf '%-28s %s guest instructions per Run (median of %s; first Run %s) in %s s\n' "$m" \
			"$(echo "$rest" | sed -n "$((($(echo "$rest" | wc -l) + 1) / 2))p")" "$(echo "$rest" | wc -l)" "$(echo "$runs" | head -1)" "$(($(date +%s) - t))"
	done
}

case "${1:-}" in
sysroot) cmd_sysroot ;;
build) cmd_build ;;
test) shift; cmd_test "$@" ;;
insncount) shift; cmd_insncount "$@" ;;
env) cross_env; env | grep -E '^(CGO_|GOOS|GOARCH|CC|CXX)=' ;;
*) die "usage: scripts/arm64.sh sysroot|build|test [--smoke]|insncount [N]|env" ;;
esac
