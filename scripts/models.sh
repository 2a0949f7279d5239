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
convert_tfjs models/facemesh.manifest.json deps/human-models/models/facemesh.json
convert_tfjs models/faceres.manifest.json deps/human-models/models/faceres.json
convert_tfjs models/antispoof.manifest.json deps/human-models/models/antispoof.json

# VidEmo tiny test fixture (random weights, the ORT-GenAI qwen2_5_vl
# contract): generated, never downloaded; skipped when every file matches
# models/videmo-tiny.manifest.json, else regenerated and checked against it.
videmo_tiny() {
	local manifest=$root/models/videmo-tiny.manifest.json ok=1 f want
	while read -r f want; do
		[ -f "$root/models/$f" ] && [ "$(sha "$root/models/$f")" = "$want" ] || ok=0
	done < <(mf "$manifest" '"\n".join(x["path"] + " " + x["sha256"] for x in m["files"])')
	[ "$ok" = 1 ] && return 0
	log "generate models/videmo-tiny (scripts/make_tiny_videmo.py)"
	"$py" "$root/scripts/make_tiny_videmo.py" --check ||
		die "models/videmo-tiny: generated files do not match $manifest"
}
videmo_tiny
