"""Writes the tiny random VidEmo (Qwen2.5-VL) model set used by the tests
(models/videmo-tiny/ + models/videmo-tiny.manifest.json), with exactly the
onnxruntime-genai `qwen2_5_vl` contract (shared/design/videmo.md):

  vision:    pixel_values f32 [N, C*tps*p*p], image_grid_thw i64 [n, 3]
             -> image_features f32 [N/merge^2, H]
  embedding: input_ids i64 [B, S], image_features f32 [M, H]
             -> inputs_embeds f32 [B, S, H]   (features scattered, in order, to
                the rows whose id is <|video_pad|>)
  decoder:   inputs_embeds f32 [B, S, H], attention_mask i64 [B, T],
             position_ids i64 [3, B, S],
             past_key_values.{i}.key/value f32 [B, KV, P, D]
             -> logits f32 [B, S, V] (or [B, 1, V] with logits="last"),
                present.{i}.key/value f32 [B, KV, T, D]   (T = P + S)

Real transformer ops with random weights: RMSNorm, attention with M-RoPE,
causal + padding mask, GQA, SwiGLU; the decoder's linear layers (and lm_head)
are com.microsoft MatMulNBits (4 bits, block 32, symmetric: no zero-point
input, so the op's default zero point 8 applies). Used by
scripts/make_tiny_videmo.py (test fixture) and
scripts/make_synthetic_videmo.py (VidEmo-3B text dimensions, for benchmarks).

Needs only python3-onnx (>= 1.12) and numpy. Deterministic for a given seed.
"""

import argparse
import hashlib
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
MS_DOMAIN = "com.microsoft"


class Weights:
    """Initializer store: inline, or appended to one external data file (for
    models over protobuf's 2 GB limit)."""

    def __init__(self, external_path=None):
        self.inits = []
        self.external_path = external_path
        self.offset = 0
        self.f = None
        if external_path:
            self.f = open(external_path, "wb")

    def add(self, name, arr):
        arr = np.asarray(arr).copy(order="C")  # (ascontiguousarray would make 0-d arrays 1-d)
        if self.f is None or arr.nbytes < 1024:
            self.inits.append(numpy_helper.from_array(arr, name))
            return name
        t = TensorProto()
        t.name = name
        t.data_type = helper.np_dtype_to_tensor_dtype(arr.dtype) if hasattr(helper, "np_dtype_to_tensor_dtype") else onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[arr.dtype]
        t.dims.extend(arr.shape)
        # 64-byte alignment, so ORT can mmap
        pad = (-self.offset) % 64
        if pad:
            self.f.write(b"\0" * pad)
            self.offset += pad
        self.f.write(arr.tobytes())
        t.data_location = TensorProto.EXTERNAL
        for k, v in (("location", os.path.basename(self.external_path)), ("offset", str(self.offset)), ("length", str(arr.nbytes))):
            e = t.external_data.add()
            e.key, e.value = k, v
        self.offset += arr.nbytes
        self.inits.append(t)
        return name

    def close(self):
        if self.f:
            self.f.close()
            self.f = None


class G:
    """A small graph builder: unique names, constants, common blocks."""

    def __init__(self, w):
        self.w = w
        self.nodes = []
        self.n = 0

    def name(self, p):
        self.n += 1
        return f"{p}_{self.n}"

    def op(self, op, inputs, n_out=1, domain=None, **attrs):
        outs = [self.name(op) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=self.name(op + "_node"), domain=domain, **attrs))
        return outs[0] if n_out == 1 else outs

    def const(self, arr, p="c"):
        return self.w.add(self.name(p), np.asarray(arr))

    def i64(self, *v):
        return self.const(np.array(v, dtype=np.int64), "i64")

    def f32(self, v):
        return self.const(np.array(v, dtype=np.float32), "f32")

    def scalar_i64(self, v):
        return self.const(np.array(v, dtype=np.int64), "s64")

    def rmsnorm(self, x, weight, eps=1e-6):
        sq = self.op("Mul", [x, x])
        ms = self.op("ReduceMean", [sq], axes=[-1], keepdims=1)
        d = self.op("Sqrt", [self.op("Add", [ms, self.f32(eps)])])
        return self.op("Mul", [self.op("Div", [x, d]), weight])

    def silu(self, x):
        return self.op("Mul", [x, self.op("Sigmoid", [x])])

    def gelu(self, x):
        e = self.op("Erf", [self.op("Div", [x, self.f32(np.sqrt(2.0))])])
        return self.op("Mul", [self.op("Mul", [x, self.f32(0.5)]), self.op("Add", [e, self.f32(1.0)])])

    def dim(self, x, i):
        """Dimension i of x as a 1-element int64 tensor."""
        return self.op("Gather", [self.op("Shape", [x]), self.i64(i)], axis=0)

    def rotate_half(self, x, d):
        h = d // 2
        x1 = self.op("Slice", [x, self.i64(0), self.i64(h), self.i64(-1)])
        x2 = self.op("Slice", [x, self.i64(h), self.i64(d), self.i64(-1)])
        return self.op("Concat", [self.op("Neg", [x2]), x1], axis=-1)

    def apply_rope(self, x, cos, sin, d):
        return self.op("Add", [self.op("Mul", [x, cos]), self.op("Mul", [self.rotate_half(x, d), sin])])


def quantize_nbits(w, block=32):
    """Symmetric 4-bit block quantisation of w [K, N] (x @ w) in MatMulNBits'
    layout: B uint8 [N, K/block, block/2] (low nibble first), scales f32
    [N * K/block]; value = (q - 8) * scale."""
    k, n = w.shape
    assert k % block == 0, (k, block)
    wt = w.T.reshape(n, k // block, block).astype(np.float32)
    amax = np.abs(wt).max(axis=-1, keepdims=True)
    scale = amax / 7.0
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(wt / scale), -8, 7).astype(np.int32) + 8
    q = q.astype(np.uint8)
    packed = (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)
    return packed, scale.reshape(-1).astype(np.float32)


def random_nbits(rng, k, n, std, block=32):
    """Random int4 weights directly in MatMulNBits layout (no fp32 matrix:
    for large synthetic models): uniform nibbles, scales so that the weight
    std is about `std`."""
    packed = rng.integers(0, 256, size=(n, k // block, block // 2), dtype=np.uint8)
    # uniform q-8 in [-8, 7] has std ~4.6
    scale = np.full(n * (k // block), std / 4.6, dtype=np.float32)
    scale *= rng.uniform(0.8, 1.2, size=scale.shape).astype(np.float32)
    return packed, scale


def matmul_nbits(g, x, k, n, name, rng, std, quant_from_fp32=True, accuracy_level=0):
    if quant_from_fp32:
        w = (rng.standard_normal((k, n)) * std).astype(np.float32)
        packed, scales = quantize_nbits(w)
    else:
        packed, scales = random_nbits(rng, k, n, std)
    b = g.w.add(name + ".qweight", packed)
    s = g.w.add(name + ".scales", scales)
    return g.op("MatMulNBits", [x, b, s], domain=MS_DOMAIN, K=k, N=n, bits=4, block_size=32, accuracy_level=accuracy_level)


def rope_cos_sin(g, pos_rows, inv_freqs, head_dim):
    """pos_rows: list of int64 tensors [..., L]; inv_freqs: matching list of
    1-D float arrays (one frequency slice per row, concatenated in order).
    Returns cos, sin [..., L, head_dim] as rotate_half expects:
    emb = cat(freqs, freqs)."""
    parts = []
    for p, f in zip(pos_rows, inv_freqs):
        pf = g.op("Unsqueeze", [g.op("Cast", [p], to=TensorProto.FLOAT), g.i64(-1)])
        parts.append(g.op("Mul", [pf, g.const(np.asarray(f, dtype=np.float32), "inv_freq")]))
    freqs = parts[0] if len(parts) == 1 else g.op("Concat", parts, axis=-1)
    emb = g.op("Concat", [freqs, freqs], axis=-1)
    return g.op("Cos", [emb]), g.op("Sin", [emb])


def save(model, path):
    onnx.save_model(model, path)


def make_model(g, inputs, outputs, name):
    graph = helper.make_graph(g.nodes, name, inputs, outputs, initializer=g.w.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS_DOMAIN, 1)], producer_name="edgemo")
    model.ir_version = 8
    return model


# ---------------------------------------------------------------------------
# vision


def build_vision(cfg, rng, path):
    """Patch embedding (Conv3d as a MatMul over the flattened patch), vision
    blocks (RMSNorm, 2-D rotary attention within each temporal group as
    Qwen2.5-VL's cu_seqlens, SwiGLU MLP), then the 2x2 merger (RMSNorm, the
    merge^2 consecutive patches concatenated, GELU MLP -> H). Positions come
    from image_grid_thw (row 0's H and W: all videos in one call must share a
    frame size) and the processor's patch order (each merge block
    contiguous)."""
    w = Weights()
    g = G(w)
    pd, dv, nh, depth, hid = cfg["patch_dim"], cfg["vision_hidden"], cfg["vision_heads"], cfg["vision_depth"], cfg["hidden"]
    m = cfg["merge_size"]
    hd = dv // nh
    px = "pixel_values"
    grid = "image_grid_thw"
    x = g.op("MatMul", [px, g.const((rng.standard_normal((pd, dv)) * (1 / np.sqrt(pd))).astype(np.float32), "patch_embed")])

    # per-patch (frame, row, col) from the grid and the processor order
    n = g.dim(px, 0)
    idx = g.op("Range", [g.scalar_i64(0), g.op("Squeeze", [n, g.i64(0)]), g.scalar_i64(1)])
    row0 = g.op("Gather", [grid, g.scalar_i64(0)], axis=0)  # [3]
    gh = g.op("Gather", [row0, g.scalar_i64(1)], axis=0)
    gw = g.op("Gather", [row0, g.scalar_i64(2)], axis=0)
    hw = g.op("Mul", [gh, gw])
    frame = g.op("Div", [idx, hw])
    r = g.op("Mod", [idx, hw])
    mm = g.scalar_i64(m * m)
    blk = g.op("Div", [r, mm])
    within = g.op("Mod", [r, mm])
    bwn = g.op("Div", [gw, g.scalar_i64(m)])
    hpos = g.op("Add", [g.op("Mul", [g.op("Div", [blk, bwn]), g.scalar_i64(m)]), g.op("Div", [within, g.scalar_i64(m)])])
    wpos = g.op("Add", [g.op("Mul", [g.op("Mod", [blk, bwn]), g.scalar_i64(m)]), g.op("Mod", [within, g.scalar_i64(m)])])
    # VisionRotaryEmbedding(head_dim/2): inv_freq over dim hd/2, used for h then w
    vf = 1.0 / (10000.0 ** (np.arange(0, hd // 2, 2, dtype=np.float64) / (hd // 2)))
    cos, sin = rope_cos_sin(g, [hpos, wpos], [vf, vf], hd)  # [N, hd]
    # block-diagonal mask: attention within one temporal group
    same = g.op("Equal", [g.op("Unsqueeze", [frame, g.i64(1)]), g.op("Unsqueeze", [frame, g.i64(0)])])
    bias = g.op("Where", [same, g.f32(0.0), g.f32(-1e30)])

    for layer in range(depth):
        h = g.rmsnorm(x, g.const(np.ones(dv, np.float32) + 0.1 * rng.standard_normal(dv).astype(np.float32), "vnorm1"))
        qkv = g.op("Add", [g.op("MatMul", [h, g.const((rng.standard_normal((dv, 3 * dv)) / np.sqrt(dv)).astype(np.float32), "qkv")]),
                           g.const((0.02 * rng.standard_normal(3 * dv)).astype(np.float32), "qkv_b")])
        q, k, v = g.op("Split", [qkv, g.i64(dv, dv, dv)], n_out=3, axis=-1)
        heads = []
        for t in (q, k, v):
            heads.append(g.op("Transpose", [g.op("Reshape", [t, g.i64(-1, nh, hd)])], perm=[1, 0, 2]))  # [nh, N, hd]
        q, k, v = heads
        q = g.apply_rope(q, cos, sin, hd)
        k = g.apply_rope(k, cos, sin, hd)
        s = g.op("Mul", [g.op("MatMul", [q, g.op("Transpose", [k], perm=[0, 2, 1])]), g.f32(1.0 / np.sqrt(hd))])
        p = g.op("Softmax", [g.op("Add", [s, bias])], axis=-1)
        o = g.op("Reshape", [g.op("Transpose", [g.op("MatMul", [p, v])], perm=[1, 0, 2]), g.i64(-1, dv)])
        o = g.op("MatMul", [o, g.const((rng.standard_normal((dv, dv)) / np.sqrt(dv)).astype(np.float32), "proj")])
        x = g.op("Add", [x, o])
        h = g.rmsnorm(x, g.const(np.ones(dv, np.float32), "vnorm2"))
        inter = 2 * dv
        gate = g.op("MatMul", [h, g.const((rng.standard_normal((dv, inter)) / np.sqrt(dv)).astype(np.float32), "gate")])
        up = g.op("MatMul", [h, g.const((rng.standard_normal((dv, inter)) / np.sqrt(dv)).astype(np.float32), "up")])
        down = g.op("MatMul", [g.op("Mul", [g.silu(gate), up]), g.const((rng.standard_normal((inter, dv)) / np.sqrt(inter)).astype(np.float32), "down")])
        x = g.op("Add", [x, down])

    # merger
    h = g.rmsnorm(x, g.const(np.ones(dv, np.float32), "ln_q"))
    h = g.op("Reshape", [h, g.i64(-1, m * m * dv)])
    md = m * m * dv
    h = g.gelu(g.op("MatMul", [h, g.const((rng.standard_normal((md, md)) / np.sqrt(md)).astype(np.float32), "mlp0")]))
    out = g.op("MatMul", [h, g.const((rng.standard_normal((md, hid)) / np.sqrt(md)).astype(np.float32), "mlp2")])
    g.nodes.append(helper.make_node("Identity", [out], ["image_features"]))
    model = make_model(g, [
        helper.make_tensor_value_info(px, TensorProto.FLOAT, ["num_patches", pd]),
        helper.make_tensor_value_info(grid, TensorProto.INT64, ["num_videos", 3]),
    ], [helper.make_tensor_value_info("image_features", TensorProto.FLOAT, ["num_tokens", hid])], "videmo_vision")
    save(model, path)


# ---------------------------------------------------------------------------
# embedding


def embedding_table(cfg, rng):
    """int8 table [V, H] with a per-row f32 scale (row = q * scale)."""
    v, h = cfg["vocab"], cfg["hidden"]
    q = rng.integers(-127, 128, size=(v, h), dtype=np.int8)
    scale = (rng.uniform(0.5, 1.5, size=v) / 127.0).astype(np.float32)
    return q, scale


def build_embedding(cfg, rng, path, external=False):
    """Gather from an int8 table with per-row scales (a fp32 table at the
    real vocabulary would be V*H*4 bytes), then the video scatter: row j of
    image_features goes to the j-th <|video_pad|> of the flattened batch
    (CumSum over the pad mask); rows with other ids keep their embedding.
    Surplus pads (more pads than feature rows) get a zero row."""
    w = Weights(path + ".data" if external else None)
    g = G(w)
    hid = cfg["hidden"]
    q, scale = embedding_table(cfg, rng)
    table = w.add("embed_tokens.q", q)
    scales = w.add("embed_tokens.scale", scale)
    ids = "input_ids"
    feats = "image_features"
    emb = g.op("Cast", [g.op("Gather", [table, ids], axis=0)], to=TensorProto.FLOAT)  # [B,S,H]
    emb = g.op("Mul", [emb, g.op("Unsqueeze", [g.op("Gather", [scales, ids], axis=0), g.i64(-1)])])
    flat = g.op("Reshape", [ids, g.i64(-1)])
    is_pad = g.op("Equal", [flat, g.scalar_i64(cfg["tokens"]["video_pad"])])
    cum = g.op("Sub", [g.op("CumSum", [g.op("Cast", [is_pad], to=TensorProto.INT64), g.scalar_i64(0)]), g.scalar_i64(1)])
    m = g.op("Squeeze", [g.dim(feats, 0), g.i64(0)])
    sel = g.op("Where", [is_pad, g.op("Min", [cum, m]), m])
    ext = g.op("Concat", [feats, g.const(np.zeros((1, hid), np.float32), "zero_row")], axis=0)
    gathered = g.op("Reshape", [g.op("Gather", [ext, sel], axis=0), g.op("Shape", [emb])])
    mask = g.op("Unsqueeze", [g.op("Reshape", [is_pad, g.op("Shape", [ids])]), g.i64(-1)])
    out = g.op("Where", [mask, gathered, emb])
    g.nodes.append(helper.make_node("Identity", [out], ["inputs_embeds"]))
    model = make_model(g, [
        helper.make_tensor_value_info(ids, TensorProto.INT64, ["batch", "seq"]),
        helper.make_tensor_value_info(feats, TensorProto.FLOAT, ["num_tokens", hid]),
    ], [helper.make_tensor_value_info("inputs_embeds", TensorProto.FLOAT, ["batch", "seq", hid])], "videmo_embedding")
    w.close()
    save(model, path)


# ---------------------------------------------------------------------------
# decoder


def build_decoder(cfg, rng, path, external=False, quant_from_fp32=True, accuracy_level=0, logits="all", position_layout="3BS"):
    """Qwen2 decoder layers with M-RoPE. Attention: q [B,nh,S,D] is viewed as
    [B,KV,nh/KV,S,D] against k/v [B,KV,1,T,D] (GQA by broadcasting);
    mask = causal (key index <= past + query index) AND attention_mask == 1."""
    w = Weights(path + ".data" if external else None)
    g = G(w)
    hid, L, nh, kv, hd, inter, vocab = (cfg[k] for k in ("hidden", "layers", "heads", "kv_heads", "head_dim", "intermediate", "vocab"))
    sec = cfg["mrope_section"]
    assert sum(sec) == hd // 2, (sec, hd)
    grp = nh // kv
    std = 1.0 / np.sqrt(hid)
    x = "inputs_embeds"
    am = "attention_mask"
    pid_in = "position_ids"
    pid = pid_in if position_layout == "3BS" else g.op("Transpose", [pid_in], perm=[2, 0, 1])

    # M-RoPE cos/sin [B,1,S,D]: frequency slice j of section i comes from row i%3
    inv = 1.0 / (cfg["rope_theta"] ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
    rows, fr = [], []
    start = 0
    for i, n in enumerate(sec):
        rows.append(g.op("Gather", [pid, g.scalar_i64(i % 3)], axis=0))  # [B,S]
        fr.append(inv[start:start + n])
        start += n
    cos, sin = rope_cos_sin(g, rows, fr, hd)
    cos = g.op("Unsqueeze", [cos, g.i64(1)])
    sin = g.op("Unsqueeze", [sin, g.i64(1)])

    # mask [B,1,1,S,T]
    t = g.dim(am, 1)
    s = g.dim(x, 1)
    p = g.op("Sub", [t, s])
    ts = g.op("Squeeze", [t, g.i64(0)])
    ps = g.op("Squeeze", [p, g.i64(0)])
    qi = g.op("Range", [ps, ts, g.scalar_i64(1)])
    ki = g.op("Range", [g.scalar_i64(0), ts, g.scalar_i64(1)])
    causal = g.op("LessOrEqual", [g.op("Unsqueeze", [ki, g.i64(0)]), g.op("Unsqueeze", [qi, g.i64(1)])])  # [S,T]
    pad = g.op("Unsqueeze", [g.op("Equal", [am, g.scalar_i64(1)]), g.i64(1, 2, 3)])  # [B,1,1,1,T]
    bias = g.op("Where", [g.op("And", [causal, pad]), g.f32(0.0), g.f32(-1e30)])

    inputs = [
        helper.make_tensor_value_info(x, TensorProto.FLOAT, ["batch", "seq", hid]),
        helper.make_tensor_value_info(am, TensorProto.INT64, ["batch", "total"]),
        helper.make_tensor_value_info(pid_in, TensorProto.INT64, [3, "batch", "seq"] if position_layout == "3BS" else ["batch", "seq", 3]),
    ]
    outputs = []
    presents = []
    for i in range(L):
        for kind in ("key", "value"):
            inputs.append(helper.make_tensor_value_info(f"past_key_values.{i}.{kind}", TensorProto.FLOAT, ["batch", kv, "past", hd]))

    def lin(h, k, n, name):
        return matmul_nbits(g, h, k, n, name, rng, std, quant_from_fp32, accuracy_level)

    def small(shape, scale, p):
        return g.const((scale * rng.standard_normal(shape)).astype(np.float32), p)

    for i in range(L):
        pre = f"layers.{i}"
        h = g.rmsnorm(x, g.const(np.ones(hid, np.float32), pre + ".in_norm"))
        q = g.op("Add", [lin(h, hid, nh * hd, pre + ".q"), small(nh * hd, 0.02, pre + ".q_b")])
        k = g.op("Add", [lin(h, hid, kv * hd, pre + ".k"), small(kv * hd, 0.02, pre + ".k_b")])
        v = g.op("Add", [lin(h, hid, kv * hd, pre + ".v"), small(kv * hd, 0.02, pre + ".v_b")])
        q = g.op("Transpose", [g.op("Reshape", [q, g.i64(0, 0, nh, hd)])], perm=[0, 2, 1, 3])  # [B,nh,S,D]
        k = g.op("Transpose", [g.op("Reshape", [k, g.i64(0, 0, kv, hd)])], perm=[0, 2, 1, 3])  # [B,kv,S,D]
        v = g.op("Transpose", [g.op("Reshape", [v, g.i64(0, 0, kv, hd)])], perm=[0, 2, 1, 3])
        q = g.apply_rope(q, cos, sin, hd)
        k = g.apply_rope(k, cos, sin, hd)
        pk = f"present.{i}.key"
        pv = f"present.{i}.value"
        g.nodes.append(helper.make_node("Concat", [f"past_key_values.{i}.key", k], [pk], axis=2, name=pre + ".kcat"))
        g.nodes.append(helper.make_node("Concat", [f"past_key_values.{i}.value", v], [pv], axis=2, name=pre + ".vcat"))
        presents += [pk, pv]
        q5 = g.op("Reshape", [q, g.i64(0, kv, grp, -1, hd)])
        k5 = g.op("Unsqueeze", [pk, g.i64(2)])
        v5 = g.op("Unsqueeze", [pv, g.i64(2)])
        sc = g.op("Mul", [g.op("MatMul", [q5, g.op("Transpose", [k5], perm=[0, 1, 2, 4, 3])]), g.f32(1.0 / np.sqrt(hd))])
        pr = g.op("Softmax", [g.op("Add", [sc, bias])], axis=-1)
        o = g.op("MatMul", [pr, v5])  # [B,kv,grp,S,D]
        o = g.op("Reshape", [g.op("Transpose", [g.op("Reshape", [o, g.i64(0, nh, -1, hd)])], perm=[0, 2, 1, 3]), g.i64(0, 0, nh * hd)])
        x = g.op("Add", [x, lin(o, nh * hd, hid, pre + ".o")])
        h = g.rmsnorm(x, g.const(np.ones(hid, np.float32), pre + ".post_norm"))
        gate = lin(h, hid, inter, pre + ".gate")
        up = lin(h, hid, inter, pre + ".up")
        x = g.op("Add", [x, lin(g.op("Mul", [g.silu(gate), up]), inter, hid, pre + ".down")])

    h = g.rmsnorm(x, g.const(np.ones(hid, np.float32), "norm"))
    if logits == "last":
        h = g.op("Slice", [h, g.i64(-1), g.i64(2**62), g.i64(1)])
    out = matmul_nbits(g, h, hid, vocab, "lm_head", rng, 1.0 / np.sqrt(hid) * 4, quant_from_fp32, accuracy_level)
    g.nodes.append(helper.make_node("Identity", [out], ["logits"]))
    outputs.append(helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "seq" if logits == "all" else 1, vocab]))
    for i in range(L):
        for kind in ("key", "value"):
            outputs.append(helper.make_tensor_value_info(f"present.{i}.{kind}", TensorProto.FLOAT, ["batch", kv, "total", hd]))
    model = make_model(g, inputs, outputs, "videmo_decoder")
    w.close()
    save(model, path)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


# ---------------------------------------------------------------------------
# the tiny fixture and its manifest

TOKENS = {  # Qwen2 special tokens (shared/design/videmo.md)
    "endoftext": 151643, "im_start": 151644, "im_end": 151645,
    "vision_start": 151652, "vision_end": 151653, "vision_pad": 151654,
    "image_pad": 151655, "video_pad": 151656,
}

EMOTIONS = ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"]  # DFEW's 7


def letters(n):
    return [chr(ord("A") + i) for i in range(n)]


def question_plan(caption_tokens):
    """VidEmo-style closed-set questions (lettered options, answered by the
    option-letter logits) and one caption question (free text -> rationale).
    The option order and the prompts are data, not code: the Go runner
    composes `prompt + "\\n" + "A. x\\nB. y…" + "\\n" + instruction`."""
    instr = "Answer with the option's letter from the given choices directly."
    yn = [{"letter": "A", "label": "yes"}, {"letter": "B", "label": "no"}]

    def au(code, name, desc):
        return {"id": "au_" + code.lower(), "kind": "choice", "target": "cue", "au": code, "cue": name,
                "prompt": f"Does the person show {desc} in the video?", "instruction": instr, "options": yn, "yes": "yes"}

    return [
        {"id": "emotion", "kind": "choice", "target": "expression",
         "prompt": "What is the emotion of the person in the video?", "instruction": instr,
         "options": [{"letter": l, "label": e} for l, e in zip(letters(len(EMOTIONS)), EMOTIONS)]},
        {"id": "gender", "kind": "choice", "target": "attribute", "attribute": "gender",
         "prompt": "What is the gender of the person in the video?", "instruction": instr,
         "options": [{"letter": "A", "label": "male"}, {"letter": "B", "label": "female"}]},
        {"id": "age", "kind": "choice", "target": "attribute", "attribute": "age_group",
         "prompt": "What is the age group of the person in the video?", "instruction": instr,
         "options": [{"letter": l, "label": a} for l, a in zip(letters(4), ["child", "young adult", "middle-aged", "elderly"])]},
        au("AU6", "cheek_raiser", "raised cheeks (AU6, cheek raiser)"),
        au("AU12", "lip_corner_puller", "pulled-up lip corners (AU12, lip corner puller)"),
        au("AU4", "brow_lowerer", "lowered brows (AU4, brow lowerer)"),
        {"id": "caption", "kind": "caption", "target": "rationale",
         "prompt": "Describe the facial expression of the person in the video and explain what emotion it shows.",
         "max_new_tokens": caption_tokens},
    ]


CUES = [  # caption phrase (lower-case substring) -> cue
    {"phrase": "smil", "name": "lip_corner_puller", "au": "AU12"},
    {"phrase": "lip corner", "name": "lip_corner_puller", "au": "AU12"},
    {"phrase": "cheek", "name": "cheek_raiser", "au": "AU6"},
    {"phrase": "frown", "name": "brow_lowerer", "au": "AU4"},
    {"phrase": "furrow", "name": "brow_lowerer", "au": "AU4"},
    {"phrase": "raised eyebrow", "name": "inner_brow_raiser", "au": "AU1"},
    {"phrase": "brows raised", "name": "inner_brow_raiser", "au": "AU1"},
    {"phrase": "wide eye", "name": "upper_lid_raiser", "au": "AU5"},
    {"phrase": "jaw drop", "name": "jaw_drop", "au": "AU26"},
    {"phrase": "mouth open", "name": "jaw_drop", "au": "AU26"},
    {"phrase": "lip press", "name": "lip_pressor", "au": "AU24"},
    {"phrase": "nose wrinkl", "name": "nose_wrinkler", "au": "AU9"},
    {"phrase": "lips apart", "name": "lips_part", "au": "AU25"},
]

CATEGORY = {"happy": "happiness", "sad": "sadness", "neutral": "neutral", "angry": "anger",
            "surprise": "surprise", "disgust": "disgust", "fear": "fear"}


def preprocess_config(frame_side):
    """engine/videmo.PreprocessConfig; min = max = frame_side^2 fixes the frame
    size for square crops (VidEmo-3B: 100352 / 105369, 308x308)."""
    px = frame_side * frame_side
    return {"patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
            "min_pixels": px, "max_pixels": px, "max_ratio": 200,
            "fps": 2.0, "min_frames": 4, "max_frames": 16, "frame_factor": 2,
            "rescale_factor": 1.0 / 255,
            "image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_std": [0.26862954, 0.26130258, 0.27577711],
            "tokens_per_second": 2}


def io_spec():
    return {
        "vision": {"inputs": ["pixel_values", "image_grid_thw"], "outputs": ["image_features"]},
        "embedding": {"inputs": ["input_ids", "image_features"], "outputs": ["inputs_embeds"]},
        "decoder": {"inputs_embeds": "inputs_embeds", "attention_mask": "attention_mask", "position_ids": "position_ids",
                    "past_key": "past_key_values.%d.key", "past_value": "past_key_values.%d.value",
                    "logits": "logits", "present_key": "present.%d.key", "present_value": "present.%d.value"},
    }


TINY = {
    "hidden": 64, "layers": 2, "heads": 4, "kv_heads": 2, "head_dim": 16, "intermediate": 128,
    "vocab": 151936, "mrope_section": [2, 3, 3], "rope_theta": 1000000.0,
    "vision_hidden": 32, "vision_heads": 2, "vision_depth": 1, "merge_size": 2, "patch_dim": 1176,
    "tokens": TOKENS,
}


def write_manifest(path, name, engine, version, files, cfg, pre, seed, caption_tokens, extra_source=None):
    m = {
        "name": name, "version": version, "task": "video-emotion-vlm", "engine": engine,
        "licence": "Apache-2.0 (random weights generated by edgemo; no trained parameters)",
        "source": dict({"generator": "scripts/make_tiny_videmo.py", "seed": seed,
                        "architecture": "Qwen2.5-VL (VidEmo-3B) onnxruntime-genai qwen2_5_vl contract"}, **(extra_source or {})),
        "files": files,
        "dims": {k: cfg[k] for k in ("hidden", "layers", "heads", "kv_heads", "head_dim", "intermediate", "vocab", "mrope_section", "rope_theta")},
        "tokens": cfg["tokens"],
        "eos": [cfg["tokens"]["im_end"], cfg["tokens"]["endoftext"]],
        "preprocess": pre,
        "io": io_spec(),
        "system": "You are a helpful assistant.",
        # VidEmo's base generation config (Qwen2.5-VL generation_config.json)
        "generation": {"temperature": 0.1, "top_k": 1, "top_p": 0.001, "repetition_penalty": 1.05},
        "questions": question_plan(caption_tokens),
        "cues": CUES,
        "emotion_category": CATEGORY,
    }
    with open(path, "w") as f:
        json.dump(m, f, indent=2)
        f.write("\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=None, help="model directory (default models/videmo-tiny)")
    ap.add_argument("--manifest", default=None, help="manifest to write (default models/videmo-tiny.manifest.json)")
    ap.add_argument("--seed", type=int, default=20251123)
    ap.add_argument("--check", action="store_true", help="do not write the manifest; fail unless the generated files match its sha256")
    a = ap.parse_args()
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    out = a.out or os.path.join(root, "models", "videmo-tiny")
    man = a.manifest or os.path.join(root, "models", "videmo-tiny.manifest.json")
    os.makedirs(out, exist_ok=True)
    cfg = TINY
    files = []
    for role, fn, build in (("vision", "vision.onnx", build_vision), ("embedding", "embedding.onnx", build_embedding), ("decoder", "decoder.onnx", build_decoder)):
        rng = np.random.default_rng([a.seed, len(files)])
        p = os.path.join(out, fn)
        build(cfg, rng, p)
        rel = os.path.relpath(p, os.path.dirname(man))
        files.append({"role": role, "path": rel, "sha256": sha256(p)})
    if a.check:
        want = {f["path"]: f["sha256"] for f in json.load(open(man))["files"]}
        bad = [f"{f['path']}: generated {f['sha256']}, manifest {want.get(f['path'])}" for f in files if want.get(f["path"]) != f["sha256"]]
        if bad:
            sys.exit("make_tiny_videmo: generated files do not match " + man + ":\n  " + "\n  ".join(bad) +
                     "\n(generator, onnx or numpy changed: rerun without --check to rewrite the manifest deliberately)")
        return
    write_manifest(man, "videmo-tiny", "videmo-tiny-int4", "tiny-random-1", files, cfg, preprocess_config(56), a.seed, 24)
    for f in files:
        print(f"{f['path']}  {os.path.getsize(os.path.join(os.path.dirname(man), f['path'])) / 1e6:.1f} MB  {f['sha256'][:12]}")


if __name__ == "__main__":
    main()
