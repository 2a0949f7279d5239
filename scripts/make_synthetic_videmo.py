"""Writes a synthetic VidEmo model set with VidEmo-3B's REAL text-model
dimensions (hidden 2048, 36 layers, 16 heads, 2 KV heads, head dim 128,
intermediate 11008, vocab 151936, mrope [16, 24, 24]) and random int4
weights, for benchmarking the Go runner's prefill and decode loop:

    /usr/bin/python3 scripts/make_synthetic_videmo.py            # -> deps/videmo-synthetic/ (~2.3 GB)
    go test ./engine/videmo -run '^$' -bench VLM3B -benchtime 1x

Not part of set-up and never committed (deps/ is ignored). Differences from
a real export, all deliberate, none affecting the text decoder's cost:
  - the vision graph is the tiny fixture's (1 block, hidden 32) with the
    real 2048-wide output: the benchmark measures the language model;
  - the embedding table is int8 with per-row scales (311 MB) instead of fp16;
  - the decoder's weights are random nibbles in MatMulNBits layout with
    random per-block scales (no fp32 matrix is ever built), accuracy_level 4
    (int8 activations on CPU, as onnxruntime-genai's int4 CPU models);
  - logits are computed for the last position only (declared [B, 1, V]; the
    runner reads the layout from the model): a [1, S, 151936] prefill output
    would cost S x 0.6 GFLOP and S x 0.6 MB for rows nobody reads.
Use --layers N to write fewer decoder layers (the manifest says so, and
per-layer timings can be scaled by 36/N).
"""

import argparse
import copy
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_tiny_videmo as t  # noqa: E402

REAL = dict(t.TINY, hidden=2048, layers=36, heads=16, kv_heads=2, head_dim=128, intermediate=11008,
            vocab=151936, mrope_section=[16, 24, 24], rope_theta=1000000.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=None, help="directory (default deps/videmo-synthetic)")
    ap.add_argument("--layers", type=int, default=36)
    ap.add_argument("--frame", type=int, default=112, help="frame side in pixels for the manifest's preprocessing (VidEmo: 308)")
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = a.out or os.path.join(root, "deps", "videmo-synthetic")
    os.makedirs(out, exist_ok=True)
    cfg = copy.deepcopy(REAL)
    cfg["layers"] = a.layers
    man = os.path.join(out, "videmo-synthetic.manifest.json")
    files = []
    for role, fn in (("vision", "vision.onnx"), ("embedding", "embedding.onnx"), ("decoder", "decoder.onnx")):
        rng = np.random.default_rng([a.seed, len(files)])
        p = os.path.join(out, fn)
        print("writing", p, flush=True)
        if role == "vision":
            t.build_vision(cfg, rng, p)
        elif role == "embedding":
            t.build_embedding(cfg, rng, p, external=True)
        else:
            t.build_decoder(cfg, rng, p, external=True, quant_from_fp32=False, accuracy_level=4, logits="last")
        files.append({"role": role, "path": fn, "sha256": t.sha256(p)})
        if os.path.exists(p + ".data"):
            files.append({"role": role + ".data", "path": fn + ".data", "sha256": t.sha256(p + ".data")})
    t.write_manifest(man, "videmo-synthetic", "videmo-3b-synthetic-int4", f"synthetic-{a.layers}of36", files, cfg,
                     t.preprocess_config(a.frame), a.seed, 32,
                     extra_source={"generator": "scripts/make_synthetic_videmo.py", "layers_of_36": a.layers})
    for f in files:
        print(f"{f['path']}  {os.path.getsize(os.path.join(out, f['path'])) / 1e6:.0f} MB")


if __name__ == "__main__":
    main()
