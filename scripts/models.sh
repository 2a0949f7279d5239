#!/usr/bin/env bash
# Converts the source models fetched by scripts/setup.sh into models/*.onnx.
# Called by scripts/setup.sh; idempotent: a model whose output exists with the
# sha256 its manifest names is skipped.
#
# Each entry: manifest, source model.json (under deps/), output file. The
# source files are checked against the manifest's source.sha256 before
# conversion, and the output against files[0].sha256 after it.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
log() { printf '\033[1mmodels:\033[0m %s\n' "$*" >&2; }
die() { printf 'models: error: %s\n' "$*" >&2; exit 1; }

sha() { sha256sum "$1" | cut -d' ' -f1; }
# manifest field via python's json (no jq dependency)
mf() { "$py" -c 'import json,sys; m=json.load(open(sys.argv[1])); print(eval(sys.argv[2], {}, {"m": m}))' "$1" "$2"; }

convert_tfjs() { # manifest source_json
	local manifest=$root/$1 src=$root/$2
	local out want
	out="$(dirname "$manifest")/$(mf "$manifest" 'm["files"][0]["path"]')"
	want=$(mf "$manifest" 'm["files"][0]["sha256"]')
	if [ -f "$out" ] && [ "$(sha "$out")" = "$want" ]; then
		return 0
	fi
	[ -x "$py" ] || die "$py not found (apt install python3-onnx python3-numpy)"
	local f
	for f in "$src" "${src%.json}.bin"; do
		[ -f "$f" ] || die "$f: missing; run scripts/setup.sh"
		local w
		w=$(mf "$manifest" "m['source']['sha256']['$(basename "$f")']")
		[ "$(sha "$f")" = "$w" ] || die "$f: sha256 $(sha "$f") does not match $1 ($w); delete deps/human-models and rerun scripts/setup.sh"
	done
	local args
	args=$(mf "$manifest" '" ".join(m["source"].get("converter_args", []))')
	log "convert ${src#"$root"/} -> ${out#"$root"/}${args:+ ($args)}"
	# shellcheck disable=SC2086 # args are words from our own manifest
	"$py" "$root/scripts/tfjs2onnx.py" "$src" "$out" $args
	local got
	got=$(sha "$out")
	[ "$got" = "$want" ] || die "${out#"$root"/}: converted sha256 $got does not match $1 ($want); converter or source changed: update the manifest deliberately"
}

convert_tfjs models/emotion.manifest.json deps/human-models/models/emotion.json
# face models of the fast tier (issue 5): detector, mesh, attributes, liveness
convert_tfjs models/blazeface-front.manifest.json deps/human-models/models/blazeface-front.json
convert_tfjs models/blazeface-back.manifest.json deps/human-models/models/blazeface-back.json
# the same network for 16:9 frames (--input-hw 160,256): 5/8 of the pixels
convert_tfjs models/blazeface-back-wide.manifest.json deps/human-models/models/blazeface-back.json
convert_tfjs models/facemesh.manifest.json deps/human-models/models/facemesh.json
convert_tfjs models/faceres.manifest.json deps/human-models/models/faceres.json
convert_tfjs models/antispoof.manifest.json deps/human-models/models/antispoof.json
# The detectors and the mesh again for arm64 (models/arm64/, picked by an
# arm64 binary and its release archive): without --pad-channels 16 and
# --prelu-as-conv, which suit AVX-512's NCHWc blocks and are pure overhead
# on NEON (scripts/arm64.sh insncount).
convert_tfjs models/arm64/blazeface-front.manifest.json deps/human-models/models/blazeface-front.json
convert_tfjs models/arm64/blazeface-back.manifest.json deps/human-models/models/blazeface-back.json
convert_tfjs models/arm64/blazeface-back-wide.manifest.json deps/human-models/models/blazeface-back.json
convert_tfjs models/arm64/facemesh.manifest.json deps/human-models/models/facemesh.json

# int8 variants (docs/int8.md): a converted model quantised with its
# committed calibration table (models/int8/<model>.ranges.json, made by
# scripts/int8calib), both checked against the manifest's source.sha256,
# the output against files[0].sha256. The emotion head, faceres and antispoof; int8
# BlazeFace was slower on ORT's CPU provider and lost faces.
quantize_int8() { # manifest
	local manifest=$root/$1
	local dir out want
	dir=$(dirname "$manifest")
	out="$dir/$(mf "$manifest" 'm["files"][0]["path"]')"
	want=$(mf "$manifest" 'm["files"][0]["sha256"]')
	if [ -f "$out" ] && [ "$(sha "$out")" = "$want" ]; then
		return 0
	fi
	local src ranges f w
	src="$dir/$(mf "$manifest" 'm["source"]["path"]')"
	ranges="$dir/$(mf "$manifest" '[k for k in m["source"]["sha256"] if k.endswith(".ranges.json")][0]')"
	for f in "$src" "$ranges"; do
		[ -f "$f" ] || die "$f: missing; run scripts/setup.sh"
		w=$(mf "$manifest" "m['source']['sha256']['${f#"$dir"/}']")
		[ "$(sha "$f")" = "$w" ] || die "${f#"$root"/}: sha256 $(sha "$f") does not match $1 ($w); recalibrate (go run ./scripts/int8calib) and update the manifest deliberately"
	done
	local args
	args=$(mf "$manifest" '" ".join(m["source"].get("converter_args", []))')
	log "quantize ${src#"$root"/} -> ${out#"$root"/} (${ranges#"$root"/}${args:+, $args})"
	# shellcheck disable=SC2086 # args are words from our own manifest
	"$py" "$root/scripts/quantize_int8.py" quantize "$src" "$ranges" "$out" $args
	local got
	got=$(sha "$out")
	[ "$got" = "$want" ] || die "${out#"$root"/}: quantised sha256 $got does not match $1 ($want); quantiser, onnx or numpy changed: update the manifest deliberately"
}
quantize_int8 models/emotion-int8.manifest.json
quantize_int8 models/faceres-int8.manifest.json
quantize_int8 models/antispoof-int8.manifest.json

# VidEmo's test model set: the Qwen2.5-VL reference checkpoint (the real
# architecture at a tiny size; weights derived by the documented algorithm in
# testdata/qwen2_5_vl/derive.py, numpy only, sha256-checked), converted by the
# project's own converter, int4 (models/videmo-tiny) and fp32
# (models/videmo-tiny-fp32). Skipped when every file matches the committed
# manifest; else regenerated, and the result must match it byte for byte.
videmo_ref() {
	local ckpt=$root/deps/qwen2_5_vl-ref/checkpoint ref=$root/testdata/qwen2_5_vl
	local want
	want=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["model_safetensors"]["sha256"])' "$ref/golden/weights.json")
	if [ ! -f "$ckpt/model.safetensors" ] || [ "$(sha "$ckpt/model.safetensors")" != "$want" ]; then
		log "derive the Qwen2.5-VL reference checkpoint -> deps/qwen2_5_vl-ref/checkpoint"
		"$py" "$ref/derive.py" "$ref/golden/checkpoint" "$ckpt" >/dev/null ||
			die "deps/qwen2_5_vl-ref/checkpoint/model.safetensors: sha256 does not match testdata/qwen2_5_vl/golden/weights.json (numpy changed its generator?)"
	fi
	cp "$root/deps/tokenizer/qwen2/tokenizer.json" "$ckpt/tokenizer.json"
}

videmo_tiny() { # out-dir converter-args...
	local out=$1
	shift
	local manifest=$root/models/$out/videmo.manifest.json ok=1 f want
	while read -r f want; do
		[ -f "$root/models/$out/$f" ] && [ "$(sha "$root/models/$out/$f")" = "$want" ] || ok=0
	done < <(mf "$manifest" '"\n".join(x["path"] + " " + x["sha256"] for x in m["files"])')
	[ "$ok" = 1 ] && return 0
	videmo_ref
	log "convert the reference checkpoint -> models/$out ($*)"
	local tmp
	tmp=$(mktemp -d)
	"$py" "$root/scripts/convert_videmo.py" --from "$root/deps/qwen2_5_vl-ref/checkpoint" --out "$tmp" --quiet \
		--name videmo-tiny --version ref-4.49.0 --caption-tokens 24 \
		--licence "Apache-2.0 (weights derived by testdata/qwen2_5_vl/derive.py; no trained parameters)" "$@" >/dev/null
	cmp -s "$tmp/videmo.manifest.json" "$manifest" ||
		die "models/$out: converted files differ from $manifest (diff $tmp/videmo.manifest.json $manifest); converter, onnx or numpy changed: update the manifest deliberately"
	while read -r f want; do
		mv "$tmp/$f" "$root/models/$out/$f"
	done < <(mf "$manifest" '"\n".join(x["path"] + " " + x["sha256"] for x in m["files"])')
	rm -rf "$tmp"
}
videmo_tiny videmo-tiny
videmo_tiny videmo-tiny-fp32 --decoder fp32
