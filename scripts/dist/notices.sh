#!/usr/bin/env bash
# Writes THIRD_PARTY_NOTICES.md and licenses/ into a release directory: every
# bundled model (from its manifest), ONNX Runtime, and every Go module
# compiled into the binary (its own LICENSE file from the module cache).
#
#   scripts/dist/notices.sh ARCH DIR ROOT   (called by scripts/dist.sh)
set -euo pipefail
arch=$1 d=$2 root=$3
die() { printf 'notices: error: %s\n' "$*" >&2; exit 1; }
n=$d/THIRD_PARTY_NOTICES.md
lic=$d/licenses
mkdir -p "$lic"
{
	echo "# Third-party notices"
	echo
	echo "## Models (models/)"
	echo
	python3 - "$d/models" <<'PY'
import glob, json, os, sys
for m in sorted(glob.glob(os.path.join(sys.argv[1], "*.manifest.json"))):
    j = json.load(open(m))
    src = j.get("source", {})
    print(f"- {j['name']} ({j['files'][0]['path']}): {j['licence']}; source {src.get('package', src.get('url', ''))}")
PY
	echo
	echo "Texts: licenses/human-models.LICENSE (MIT, the TF.js models and conversions),"
	echo "licenses/Apache-2.0 (the MediaPipe BlazeFace and FaceMesh models, Google)."
	echo
	echo "## ONNX Runtime 1.24.1 (lib/libonnxruntime.so.1)"
	echo
	echo "From the onnxruntime-node@1.24.1 npm package (bin/napi-v6/linux/$([ "$arch" = amd64 ] && echo x64 || echo arm64)), MIT"
	echo "(the package's package.json; the tarball carries no licence file): licenses/onnxruntime.LICENSE."
	echo
	echo "## OpenCV 4.6.0 (not bundled)"
	echo
	echo "Linked dynamically from Debian's libopencv-*406 packages (Apache-2.0); see /usr/share/doc/libopencv-core406/copyright."
	echo
	echo "## Go modules compiled into bin/edgemo"
	echo
} >"$n"
cp "$root/deps/human-models/LICENSE" "$lic/human-models.LICENSE"
cp /usr/share/common-licenses/Apache-2.0 "$lic/Apache-2.0"
cat >"$lic/onnxruntime.LICENSE" <<'MIT'
MIT License

Copyright (c) Microsoft Corporation

Permission is hereby granted, free of charge, to any person obtaining a copy
of this software and associated documentation files (the "Software"), to deal
in the Software without restriction, including without limitation the rights
to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
copies of the Software, and to permit persons to whom the Software is
furnished to do so, subject to the following conditions:

The above copyright notice and this permission notice shall be included in all
copies or substantial portions of the Software.

THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
SOFTWARE.
MIT
(cd "$root" && GOOS=linux GOARCH=$arch CGO_ENABLED=1 go list -deps -f '{{with .Module}}{{if not .Main}}{{.Path}} {{.Version}} {{.Dir}}{{end}}{{end}}' ./cmd/edgemo) |
	sort -u | while read -r path ver dir; do
		f=$(ls "$dir"/LICENSE* "$dir"/LICENCE* "$dir"/COPYING* 2>/dev/null | head -1 || true)
		[ -n "$f" ] || die "Go module $path $ver has no LICENSE file in $dir"
		out=$lic/go-$(echo "$path" | tr / _).LICENSE
		cp "$f" "$out"
		extra=""
		# Apache-2.0 NOTICE files travel with the licence.
		for nf in "$dir"/NOTICE*; do
			[ -f "$nf" ] || continue
			cp "$nf" "$lic/go-$(echo "$path" | tr / _).NOTICE"
			extra=", licenses/go-$(echo "$path" | tr / _).NOTICE"
		done
		echo "- $path $ver: licenses/$(basename "$out")$extra" >>"$n"
	done
