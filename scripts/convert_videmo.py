"""Converts a Hugging Face Qwen2.5-VL checkpoint (VidEmo-3B, KlingTeam/VidEmo-3B,
as the hub serves it) into edgemo's three ONNX graphs, with no torch, no
transformers and no GPU: numpy and python3-onnx only.

    python3 scripts/convert_videmo.py --from CHECKPOINT_DIR --out OUT_DIR
    (or: edgemo convert videmo --from CHECKPOINT_DIR --out OUT_DIR)

Input: config.json, model.safetensors or the shards listed in
model.safetensors.index.json (BF16, F16 or F32), tokenizer.json,
generation_config.json and preprocessor_config.json (the last two optional:
Qwen2.5-VL's values are used when absent).

Output (OUT_DIR, complete: point models.videmo at the manifest):
  vision.onnx (+ .data)     fp32. pixel_values [N, 1176] plus the grid-dependent
                            inputs the Go runner computes (vision_pos_ids, the
                            windowed blocks' and the full-attention blocks'
                            attention groups), so one graph serves every grid
  embedding.onnx (+ .data)  the token table (kept in the checkpoint's bf16 when it
                            is bf16) and the video-feature scatter
  decoder.onnx (+ .data)    the text model with a KV cache; linear layers and the
                            (tied) LM head int4 MatMulNBits, block 32, with zero
                            points (--decoder int4, default) or fp32 (--decoder fp32)
  tokenizer.json            copied from the checkpoint
  videmo.manifest.json      files + sha256, dims, tokens, preprocessing,
                            generation config, the question plan

The graphs are written by hand from the weights (as onnxruntime-genai's model
builder does), tensor by tensor: a tensor is read from its memory-mapped
shard, converted and appended to the graph's external data file, then
dropped, so peak memory is about the largest tensor (the token table) a few
times over, not the model. The architecture is transformers v4.49.0's
Qwen2_5_VLForConditionalGeneration (VidEmo's version): see docs/videmo.md.
"""

import argparse
import hashlib
import json
import os
import resource
import shutil
import struct
import sys
import time

import numpy as np

try:
    import onnx
    from onnx import TensorProto, helper, numpy_helper
except ImportError:  # a clear message instead of a traceback
    sys.exit("convert_videmo: python3-onnx is missing: apt install python3-onnx python3-numpy")

OPSET = 17
MS = "com.microsoft"
F32_LOWEST = float(np.finfo(np.float32).min)  # transformers' masked value: torch.finfo(float32).min


class ConvertError(Exception):
    """A problem with the input checkpoint: printed as one line, exit status 2."""


# --------------------------------------------------------------------------- checkpoint

# transformers 4.49 defaults of what config.json may omit (save_pretrained writes only the
# values that differ from them).
TEXT_DEFAULTS = {"rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": False, "hidden_act": "silu"}
VISION_DEFAULTS = {"depth": 32, "hidden_size": 3584, "intermediate_size": 3420, "num_heads": 16, "in_channels": 3,
                   "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "out_hidden_size": 3584,
                   "window_size": 112, "fullatt_block_indexes": [7, 15, 23, 31], "tokens_per_second": 4,
                   "hidden_act": "silu"}
DTYPES = {"BF16": (np.uint16, 2), "F16": (np.float16, 2), "F32": (np.float32, 4)}


def read_config(src):
    p = os.path.join(src, "config.json")
    if not os.path.isfile(p):
        raise ConvertError(f"{p}: missing; --from must be a Hugging Face checkpoint folder (config.json, *.safetensors, tokenizer.json)")
    try:
        cfg = json.load(open(p))
    except ValueError as e:
        raise ConvertError(f"{p}: not valid JSON ({e}); download the checkpoint again")
    mt = cfg.get("model_type")
    if mt != "qwen2_5_vl":
        raise ConvertError(f"{p}: model_type is {mt!r}, this converter takes 'qwen2_5_vl' (VidEmo-3B/7B, Qwen2.5-VL); "
                           "point --from at a Qwen2.5-VL checkpoint")
    # transformers >= 4.52 nests the text model's values under text_config
    text = dict(TEXT_DEFAULTS, **{k: v for k, v in cfg.items() if k not in ("vision_config", "text_config")})
    text.update(cfg.get("text_config") or {})
    vis = dict(VISION_DEFAULTS, **(cfg.get("vision_config") or {}))
    if "in_chans" in vis:  # Qwen2.5-VL-3B-Instruct's config.json spells it so
        vis["in_channels"] = vis["in_chans"]
    need = ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "vocab_size"]
    miss = [k for k in need if k not in text]
    if miss:
        raise ConvertError(f"{p}: missing {', '.join(miss)}; the file is incomplete, download it again")
    rs = text.get("rope_scaling") or {}
    sec = rs.get("mrope_section")
    hd = text["hidden_size"] // text["num_attention_heads"]
    if not sec or len(sec) != 3 or sum(sec) * 2 != hd:
        raise ConvertError(f"{p}: rope_scaling.mrope_section {sec} must be 3 sections summing to head_dim/2 = {hd // 2}")
    if text["num_attention_heads"] % text["num_key_value_heads"]:
        raise ConvertError(f"{p}: num_attention_heads {text['num_attention_heads']} is not a multiple of num_key_value_heads")
    if vis["hidden_size"] % vis["num_heads"]:
        raise ConvertError(f"{p}: vision_config.hidden_size is not a multiple of num_heads")
    for k in ("hidden_act",):
        if text[k] != "silu" or vis[k] != "silu":
            raise ConvertError(f"{p}: hidden_act must be silu (text {text[k]!r}, vision {vis[k]!r}): not a Qwen2.5-VL checkpoint")
    return cfg, text, vis


def param_specs(text, vis):
    """{key: shape} of every tensor a Qwen2.5-VL checkpoint holds (transformers 4.49 names)."""
    H, nh, nkv = text["hidden_size"], text["num_attention_heads"], text["num_key_value_heads"]
    hd = H // nh
    I, V, L = text["intermediate_size"], text["vocab_size"], text["num_hidden_layers"]
    D, VI, depth = vis["hidden_size"], vis["intermediate_size"], vis["depth"]
    p, tps, m = vis["patch_size"], vis["temporal_patch_size"], vis["spatial_merge_size"]
    s = {"model.embed_tokens.weight": (V, H), "model.norm.weight": (H,)}
    for i in range(L):
        b = f"model.layers.{i}."
        s.update({b + "self_attn.q_proj.weight": (nh * hd, H), b + "self_attn.q_proj.bias": (nh * hd,),
                  b + "self_attn.k_proj.weight": (nkv * hd, H), b + "self_attn.k_proj.bias": (nkv * hd,),
                  b + "self_attn.v_proj.weight": (nkv * hd, H), b + "self_attn.v_proj.bias": (nkv * hd,),
                  b + "self_attn.o_proj.weight": (H, nh * hd),
                  b + "mlp.gate_proj.weight": (I, H), b + "mlp.up_proj.weight": (I, H), b + "mlp.down_proj.weight": (H, I),
                  b + "input_layernorm.weight": (H,), b + "post_attention_layernorm.weight": (H,)})
    if not text["tie_word_embeddings"]:
        s["lm_head.weight"] = (V, H)
    s["visual.patch_embed.proj.weight"] = (D, vis["in_channels"], tps, p, p)
    for i in range(depth):
        b = f"visual.blocks.{i}."
        s.update({b + "norm1.weight": (D,), b + "norm2.weight": (D,),
                  b + "attn.qkv.weight": (3 * D, D), b + "attn.qkv.bias": (3 * D,),
                  b + "attn.proj.weight": (D, D), b + "attn.proj.bias": (D,),
                  b + "mlp.gate_proj.weight": (VI, D), b + "mlp.gate_proj.bias": (VI,),
                  b + "mlp.up_proj.weight": (VI, D), b + "mlp.up_proj.bias": (VI,),
                  b + "mlp.down_proj.weight": (D, VI), b + "mlp.down_proj.bias": (D,)})
    cm = D * m * m
    s.update({"visual.merger.ln_q.weight": (D,), "visual.merger.mlp.0.weight": (cm, cm), "visual.merger.mlp.0.bias": (cm,),
              "visual.merger.mlp.2.weight": (vis["out_hidden_size"], cm), "visual.merger.mlp.2.bias": (vis["out_hidden_size"],)})
    return s


def canonical(key):
    """transformers >= 4.52 names (model.language_model.*, model.visual.*) -> 4.49 names."""
    if key.startswith("model.language_model."):
        return "model." + key[len("model.language_model."):]
    if key.startswith("model.visual."):
        return "visual." + key[len("model.visual."):]
    return key


class Checkpoint:
    """The tensors of a checkpoint's safetensors files, memory-mapped, by 4.49 key."""

    def __init__(self, src, specs):
        self.src = src
        index = os.path.join(src, "model.safetensors.index.json")
        single = os.path.join(src, "model.safetensors")
        if os.path.isfile(index):
            try:
                wm = json.load(open(index))["weight_map"]
            except (ValueError, KeyError) as e:
                raise ConvertError(f"{index}: not a safetensors index ({e}); download it again")
            files = sorted(set(wm.values()))
            for f in files:
                if not os.path.isfile(os.path.join(src, f)):
                    raise ConvertError(f"{os.path.join(src, f)}: missing (listed in model.safetensors.index.json); "
                                       f"download every shard of the checkpoint ({len(files)} files)")
        elif os.path.isfile(single):
            files = ["model.safetensors"]
        else:
            raise ConvertError(f"{src}: no model.safetensors nor model.safetensors.index.json; download the checkpoint's weights")
        self.tensors = {}
        for f in files:
            self._read_header(os.path.join(src, f))
        got = set(self.tensors)
        missing = sorted(set(specs) - got)
        if missing:
            raise ConvertError(f"{src}: the checkpoint lacks {len(missing)} tensor(s) config.json implies, e.g. {missing[:3]}; "
                               "an incomplete download, or config.json belongs to another model")
        for k, shape in specs.items():
            if tuple(self.tensors[k][2]) != tuple(shape):
                raise ConvertError(f"{self.tensors[k][0]}: tensor {k} has shape {list(self.tensors[k][2])}, config.json implies "
                                   f"{list(shape)}; config.json and the weights do not belong together")
        self.extra = sorted(got - set(specs))

    def _read_header(self, path):
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                raise ConvertError(f"{path}: truncated ({size} bytes, no header); download it again")
            n = struct.unpack("<Q", raw)[0]
            if n <= 0 or 8 + n > size or n > 100 << 20:
                raise ConvertError(f"{path}: header length {n} does not fit the file ({size} bytes): truncated or not safetensors; download it again")
            try:
                hdr = json.loads(fh.read(n))
            except ValueError as e:
                raise ConvertError(f"{path}: header is not JSON ({e}): not a safetensors file; download it again")
        base = 8 + n
        end = 0
        for k, v in hdr.items():
            if k == "__metadata__":
                continue
            dt = v.get("dtype")
            if dt not in DTYPES:
                raise ConvertError(f"{path}: tensor {k} is {dt}; the converter reads BF16, F16 and F32")
            b, e = v["data_offsets"]
            if e - b != DTYPES[dt][1] * int(np.prod(v["shape"], dtype=np.int64)):
                raise ConvertError(f"{path}: tensor {k}: {e - b} bytes for shape {v['shape']} {dt}: corrupt header")
            end = max(end, e)
            self.tensors[canonical(k)] = (path, dt, tuple(v["shape"]), base + b)
        if base + end > size:
            raise ConvertError(f"{path}: truncated: the header needs {base + end} bytes, the file has {size}; download it again")

    def dtype(self, key):
        return self.tensors[key][1]

    def raw(self, key, rows=None):
        """The tensor (or rows [a, b) of its first axis) as stored, bf16 as uint16 bit
        patterns. Read with pread into fresh memory rather than memory-mapped: mapped pages
        of a 7 GB checkpoint would stay resident and count against the converter."""
        path, dt, shape, off = self.tensors[key]
        npdt, sz = DTYPES[dt]
        row = int(np.prod(shape[1:], dtype=np.int64)) if len(shape) > 1 else 1
        a, b = rows if rows is not None else (0, shape[0])
        fd = os.open(path, os.O_RDONLY)
        try:
            buf = np.empty((b - a) * row, dtype=npdt)
            mv = memoryview(buf.view(np.uint8))
            got, pos = 0, off + a * row * sz
            while got < len(mv):
                n = os.preadv(fd, [mv[got:]], pos + got)
                if n <= 0:
                    raise ConvertError(f"{path}: short read at byte {pos + got} (tensor {key}); the file changed or is truncated")
                got += n
        finally:
            os.close(fd)
        return buf.reshape((b - a,) + tuple(shape[1:]))

    def f32(self, key, rows=None):
        """The tensor (or rows [a, b)) as float32: bf16 widened exactly."""
        x = self.raw(key, rows)
        if self.dtype(key) == "BF16":
            return (x.astype(np.uint32) << np.uint32(16)).view(np.float32)
        return x.astype(np.float32, copy=False)


# --------------------------------------------------------------------------- graph building


def tensor_type(dtype):
    dt = np.dtype(dtype)
    if hasattr(helper, "np_dtype_to_tensor_dtype"):  # onnx >= 1.13
        return helper.np_dtype_to_tensor_dtype(dt)
    return onnx.mapping.NP_TYPE_TO_TENSOR_TYPE[dt]


class Weights:
    """Initializers, small ones inline and the rest appended to one external data file."""

    def __init__(self, data_path):
        self.inits = []
        self.data_path = data_path
        self.f = open(data_path, "wb")
        self.offset = 0

    def add(self, name, arr):
        arr = np.ascontiguousarray(arr) if np.ndim(arr) else np.asarray(arr)
        if arr.nbytes < 1024:
            self.inits.append(numpy_helper.from_array(arr, name))
            return name
        return self.add_raw(name, arr.dtype, arr.shape, [arr])

    def add_raw(self, name, dtype, shape, chunks, onnx_type=None):
        """Appends chunks (arrays whose bytes, in order, are the tensor) to the data file."""
        t = TensorProto()
        t.name = name
        t.data_type = onnx_type if onnx_type is not None else tensor_type(dtype)
        t.dims.extend(shape)
        pad = (-self.offset) % 64  # 64-byte alignment, so ORT can map it
        self.f.write(b"\0" * pad)
        self.offset += pad
        start = self.offset
        for c in chunks:
            b = np.ascontiguousarray(c).tobytes()
            self.f.write(b)
            self.offset += len(b)
        t.data_location = TensorProto.EXTERNAL
        for k, v in (("location", os.path.basename(self.data_path)), ("offset", str(start)), ("length", str(self.offset - start))):
            e = t.external_data.add()
            e.key, e.value = k, v
        self.inits.append(t)
        return name

    def close(self):
        self.f.close()


class G:
    """A small graph builder: unique deterministic names, constants, common blocks."""

    def __init__(self, w):
        self.w, self.nodes, self.n = w, [], 0

    def name(self, p):
        self.n += 1
        return f"{p}_{self.n}"

    def op(self, op, inputs, n_out=1, domain=None, out=None, **attrs):
        outs = [out] if out else [self.name(op) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=self.name(op + "_node"), domain=domain, **attrs))
        return outs[0] if n_out == 1 else outs

    def const(self, arr, p="c"):
        return self.w.add(self.name(p), np.asarray(arr))

    def i64(self, *v):
        return self.const(np.array(v, dtype=np.int64), "i64")

    def s64(self, v):
        return self.const(np.array(v, dtype=np.int64), "s64")

    def f32(self, v):
        return self.const(np.array(v, dtype=np.float32), "f32")

    def rmsnorm(self, x, weight, eps):
        # Qwen2RMSNorm: x * rsqrt(mean(x^2) + eps), then weight * that (float32)
        ms = self.op("ReduceMean", [self.op("Mul", [x, x])], axes=[-1], keepdims=1)
        r = self.op("Reciprocal", [self.op("Sqrt", [self.op("Add", [ms, self.f32(eps)])])])
        return self.op("Mul", [weight, self.op("Mul", [x, r])])

    def silu(self, x):
        return self.op("Mul", [x, self.op("Sigmoid", [x])])

    def gelu(self, x):  # nn.GELU(): exact, erf
        e = self.op("Erf", [self.op("Div", [x, self.f32(np.sqrt(2.0))])])
        return self.op("Mul", [self.op("Mul", [x, self.f32(0.5)]), self.op("Add", [e, self.f32(1.0)])])

    def dim(self, x, i):
        return self.op("Gather", [self.op("Shape", [x]), self.i64(i)], axis=0)

    def rotate_half(self, x, d):
        x1 = self.op("Slice", [x, self.i64(0), self.i64(d // 2), self.i64(-1)])
        x2 = self.op("Slice", [x, self.i64(d // 2), self.i64(d), self.i64(-1)])
        return self.op("Concat", [self.op("Neg", [x2]), x1], axis=-1)

    def rope(self, x, cos, sin, d):
        return self.op("Add", [self.op("Mul", [x, cos]), self.op("Mul", [self.rotate_half(x, d), sin])])


def cos_sin(g, rows, freqs):
    """rows: int64 position tensors [..., L]; freqs: matching float32 arrays of inverse
    frequencies. cos, sin of cat(p_0*f_0, ..., p_k*f_k) twice (rotate_half's layout)."""
    parts = []
    for p, f in zip(rows, freqs):
        pf = g.op("Unsqueeze", [g.op("Cast", [p], to=TensorProto.FLOAT), g.i64(-1)])
        parts.append(g.op("Mul", [pf, g.const(np.asarray(f, dtype=np.float32), "inv_freq")]))
    fr = parts[0] if len(parts) == 1 else g.op("Concat", parts, axis=-1)
    emb = g.op("Concat", [fr, fr], axis=-1)
    return g.op("Cos", [emb]), g.op("Sin", [emb])


def inv_freq(theta, dim):
    """1 / theta^(arange(0, dim, 2) / dim), in float32 as torch computes it."""
    e = np.arange(0, dim, 2, dtype=np.int64).astype(np.float32) / np.float32(dim)
    return (np.float32(1.0) / np.power(np.float32(theta), e, dtype=np.float32)).astype(np.float32)


def make_model(g, inputs, outputs, name):
    graph = helper.make_graph(g.nodes, name, inputs, outputs, initializer=g.w.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(MS, 1)],
                              producer_name="edgemo convert_videmo")
    model.ir_version = 8
    return model


def linear_f32(g, x, ck, key, bias=None):
    """x @ W^T (+ b) with the checkpoint's W [out, in] stored transposed [in, out] in fp32."""
    w = g.w.add(key + ".T", np.ascontiguousarray(ck.f32(key).T))
    y = g.op("MatMul", [x, w])
    if bias:
        y = g.op("Add", [y, g.w.add(bias, ck.f32(bias))])
    return y


# --------------------------------------------------------------------------- int4


def quantize_rows(w, block, symmetric):
    """MatMulNBits 4-bit blocks of w [n, K] (rows = output features, the checkpoint's layout):
    B uint8 [n, nb, block/2] (low nibble first), scales f32 [n, nb], zero points uint8
    [n, ceil(nb/2)] (None when symmetric: the op's default zero point 8)."""
    n, k = w.shape
    nb = -(-k // block)
    if nb * block != k:
        w = np.pad(w, ((0, 0), (0, nb * block - k)))
    b = w.reshape(n, nb, block)
    if symmetric:
        amax = np.abs(b).max(axis=-1)
        scale = amax / np.float32(7.0)
        scale[scale == 0] = 1.0
        q = np.clip(np.rint(b / scale[..., None]), -8, 7) + 8
        zp = None
    else:
        # ORT's quantizer: the range always holds 0, zero point rounded into [0, 15]
        lo = np.minimum(b.min(axis=-1), 0)
        hi = np.maximum(b.max(axis=-1), 0)
        scale = (hi - lo) / np.float32(15.0)
        scale[scale == 0] = 1.0
        z = np.clip(np.rint(-lo / scale), 0, 15)
        q = np.clip(np.rint(b / scale[..., None]) + z[..., None], 0, 15)
        z = z.astype(np.uint8)
        if nb % 2:
            z = np.pad(z, ((0, 0), (0, 1)))
        zp = (z[:, 0::2] | (z[:, 1::2] << 4)).astype(np.uint8)
    q = q.astype(np.uint8)
    packed = (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)
    return packed, scale.astype(np.float32), zp


def linear_int4(g, x, ck, key, a, bias=None, chunk_rows=8192):
    """MatMulNBits over the checkpoint's W [N, K], quantised in chunks of output rows."""
    N, K = ck.tensors[key][2]
    nb = -(-K // a.block)
    bs, ss, zs = [], [], []
    for r0 in range(0, N, chunk_rows):
        p, s, z = quantize_rows(ck.f32(key, (r0, min(N, r0 + chunk_rows))), a.block, a.symmetric)
        bs.append(p)
        ss.append(s)
        if z is not None:
            zs.append(z)
    ins = [x, g.w.add_raw(key + ".q4", np.uint8, (N, nb, a.block // 2), bs),
           g.w.add_raw(key + ".scales", np.float32, (N * nb,), ss)]
    if zs:
        ins.append(g.w.add_raw(key + ".zp", np.uint8, (N * ((nb + 1) // 2),), zs))
    y = g.op("MatMulNBits", ins, domain=MS, K=K, N=N, bits=4, block_size=a.block, accuracy_level=a.accuracy_level)
    if bias:
        y = g.op("Add", [y, g.w.add(bias, ck.f32(bias))])
    return y


# --------------------------------------------------------------------------- vision

VISION_INPUTS = ["pixel_values", "vision_pos_ids", "window_index", "window_mask", "window_inverse",
                 "frame_index", "frame_mask", "frame_inverse"]


def grouped_attention(g, q, k, v, index, mask, inverse, nh, hd, D):
    """Attention within groups of patches: q, k, v [N, nh, hd] are gathered into [G, L]
    groups (index), padded keys masked (mask: 0 or float32 lowest), and the result put back
    in patch order (inverse). Exactly transformers' block-diagonal mask over cu_seqlens,
    without the N x N matrix."""
    def grp(t, perm):
        return g.op("Transpose", [g.op("Gather", [t, index], axis=0)], perm=perm)  # from [G, L, nh, hd]
    qg = grp(q, [0, 2, 1, 3])  # [G, nh, L, hd]
    kt = grp(k, [0, 2, 3, 1])  # [G, nh, hd, L]
    vg = grp(v, [0, 2, 1, 3])
    s = g.op("Div", [g.op("MatMul", [qg, kt]), g.f32(np.sqrt(hd))])
    s = g.op("Add", [s, g.op("Unsqueeze", [mask, g.i64(1, 2)])])
    p = g.op("Softmax", [s], axis=-1)
    o = g.op("Transpose", [g.op("MatMul", [p, vg])], perm=[0, 2, 1, 3])  # [G, L, nh, hd]
    o = g.op("Reshape", [o, g.i64(-1, D)])
    return g.op("Gather", [o, inverse], axis=0)  # [N, D]


def build_vision(ck, vis, path):
    w = Weights(path + ".data")
    g = G(w)
    D, nh = vis["hidden_size"], vis["num_heads"]
    hd = D // nh
    m = vis["spatial_merge_size"]
    pdim = vis["in_channels"] * vis["temporal_patch_size"] * vis["patch_size"] ** 2
    eps = 1e-6  # hard-coded in 4.49's vision RMSNorms
    # patch embedding: Conv3d with kernel = stride = the patch, no bias: one MatMul
    pe = ck.f32("visual.patch_embed.proj.weight").reshape(D, pdim)
    x = g.op("MatMul", ["pixel_values", w.add("patch_embed.T", np.ascontiguousarray(pe.T))])
    # 2-D rotary (Qwen2_5_VisionRotaryEmbedding(head_dim/2)): rows then columns
    f = inv_freq(10000.0, hd // 2)
    hp = g.op("Gather", ["vision_pos_ids", g.s64(0)], axis=1)
    wp = g.op("Gather", ["vision_pos_ids", g.s64(1)], axis=1)
    cos, sin = cos_sin(g, [hp, wp], [f, f])  # [N, hd]
    cos = g.op("Unsqueeze", [cos, g.i64(1)])  # [N, 1, hd]
    sin = g.op("Unsqueeze", [sin, g.i64(1)])
    full = set(vis["fullatt_block_indexes"])
    for i in range(vis["depth"]):
        b = f"visual.blocks.{i}."
        h = g.rmsnorm(x, w.add(b + "norm1.weight", ck.f32(b + "norm1.weight")), eps)
        qkv = g.op("Reshape", [linear_f32(g, h, ck, b + "attn.qkv.weight", b + "attn.qkv.bias"), g.i64(0, 3, nh, hd)])
        q, k, v = (g.op("Squeeze", [t, g.i64(1)]) for t in g.op("Split", [qkv], n_out=3, axis=1))
        q = g.rope(q, cos, sin, hd)
        k = g.rope(k, cos, sin, hd)
        kind = "frame" if i in full else "window"
        o = grouped_attention(g, q, k, v, kind + "_index", kind + "_mask", kind + "_inverse", nh, hd, D)
        x = g.op("Add", [x, linear_f32(g, o, ck, b + "attn.proj.weight", b + "attn.proj.bias")])
        h = g.rmsnorm(x, w.add(b + "norm2.weight", ck.f32(b + "norm2.weight")), eps)
        gate = g.silu(linear_f32(g, h, ck, b + "mlp.gate_proj.weight", b + "mlp.gate_proj.bias"))
        up = linear_f32(g, h, ck, b + "mlp.up_proj.weight", b + "mlp.up_proj.bias")
        x = g.op("Add", [x, linear_f32(g, g.op("Mul", [gate, up]), ck, b + "mlp.down_proj.weight", b + "mlp.down_proj.bias")])
    # patch merger: RMSNorm, m^2 consecutive patches (one merge block, processor order) concatenated, GELU MLP
    h = g.rmsnorm(x, w.add("visual.merger.ln_q.weight", ck.f32("visual.merger.ln_q.weight")), eps)
    h = g.op("Reshape", [h, g.i64(-1, m * m * D)])
    h = g.gelu(linear_f32(g, h, ck, "visual.merger.mlp.0.weight", "visual.merger.mlp.0.bias"))
    out = linear_f32(g, h, ck, "visual.merger.mlp.2.weight", "visual.merger.mlp.2.bias")
    g.op("Identity", [out], out="image_features")
    I, F = TensorProto.INT64, TensorProto.FLOAT
    vi = helper.make_tensor_value_info
    model = make_model(g, [
        vi("pixel_values", F, ["num_patches", pdim]),
        vi("vision_pos_ids", I, ["num_patches", 2]),
        vi("window_index", I, ["windows", "window_len"]),
        vi("window_mask", F, ["windows", "window_len"]),
        vi("window_inverse", I, ["num_patches"]),
        vi("frame_index", I, ["frames", "frame_len"]),
        vi("frame_mask", F, ["frames", "frame_len"]),
        vi("frame_inverse", I, ["num_patches"]),
    ], [vi("image_features", F, ["num_tokens", vis["out_hidden_size"]])], "videmo_vision")
    w.close()
    onnx.save_model(model, path)


# --------------------------------------------------------------------------- embedding


def build_embedding(ck, text, video_pad, path, chunk_rows=16384):
    """Token table lookup, then the video scatter: row j of image_features goes to the j-th
    <|video_pad|> of the flattened batch (CumSum over the pad mask); other rows keep their
    embedding. A bf16 table stays bf16 (Gather, then an exact Cast to float32)."""
    w = Weights(path + ".data")
    g = G(w)
    key = "model.embed_tokens.weight"
    V, H = ck.tensors[key][2]
    if ck.dtype(key) == "BF16":
        chunks = (ck.raw(key, (r, min(V, r + chunk_rows))) for r in range(0, V, chunk_rows))
        table = w.add_raw("embed_tokens", np.uint16, (V, H), chunks, onnx_type=TensorProto.BFLOAT16)
    else:
        table = w.add_raw("embed_tokens", np.float32, (V, H), (ck.f32(key, (r, min(V, r + chunk_rows))) for r in range(0, V, chunk_rows)))
    emb = g.op("Gather", [table, "input_ids"], axis=0)
    if ck.dtype(key) == "BF16":
        emb = g.op("Cast", [emb], to=TensorProto.FLOAT)
    flat = g.op("Reshape", ["input_ids", g.i64(-1)])
    is_pad = g.op("Equal", [flat, g.s64(video_pad)])
    cum = g.op("Sub", [g.op("CumSum", [g.op("Cast", [is_pad], to=TensorProto.INT64), g.s64(0)]), g.s64(1)])
    nfeat = g.op("Squeeze", [g.dim("image_features", 0), g.i64(0)])
    sel = g.op("Where", [is_pad, g.op("Min", [cum, nfeat]), nfeat])  # surplus pads read the zero row
    ext = g.op("Concat", ["image_features", g.const(np.zeros((1, H), np.float32), "zero_row")], axis=0)
    gathered = g.op("Reshape", [g.op("Gather", [ext, sel], axis=0), g.op("Shape", [emb])])
    mask = g.op("Unsqueeze", [g.op("Reshape", [is_pad, g.op("Shape", ["input_ids"])]), g.i64(-1)])
    g.op("Where", [mask, gathered, emb], out="inputs_embeds")
    vi = helper.make_tensor_value_info
    model = make_model(g, [vi("input_ids", TensorProto.INT64, ["batch", "seq"]),
                           vi("image_features", TensorProto.FLOAT, ["num_tokens", H])],
                       [vi("inputs_embeds", TensorProto.FLOAT, ["batch", "seq", H])], "videmo_embedding")
    w.close()
    onnx.save_model(model, path)


# --------------------------------------------------------------------------- decoder


def build_decoder(ck, text, a, path):
    """Qwen2 decoder layers with M-RoPE and a KV cache. q [B,nh,S,D] is viewed as
    [B,kv,nh/kv,S,D] against k/v [B,kv,1,T,D] (GQA by broadcasting, as repeat_kv);
    mask = causal (key index <= past + query index) AND attention_mask == 1."""
    w = Weights(path + ".data")
    g = G(w)
    H, L, nh, kv = text["hidden_size"], text["num_hidden_layers"], text["num_attention_heads"], text["num_key_value_heads"]
    hd, V, eps = H // nh, text["vocab_size"], float(text["rms_norm_eps"])
    sec = text["rope_scaling"]["mrope_section"]
    grp = nh // kv
    x, am, pid = "inputs_embeds", "attention_mask", "position_ids"

    def lin(h, key, bias=None):
        if a.decoder == "fp32":
            return linear_f32(g, h, ck, key, bias)
        return linear_int4(g, h, ck, key, a, bias)

    # M-RoPE: frequency slice j of section i comes from position row i (t, h, w)
    inv = inv_freq(text["rope_theta"], hd)
    rows, fr, s0 = [], [], 0
    for i, n in enumerate(sec):
        rows.append(g.op("Gather", [pid, g.s64(i)], axis=0))  # [B, S]
        fr.append(inv[s0:s0 + n])
        s0 += n
    cos, sin = cos_sin(g, rows, fr)
    cos = g.op("Unsqueeze", [cos, g.i64(1)])  # [B, 1, S, hd]
    sin = g.op("Unsqueeze", [sin, g.i64(1)])

    # mask [B, 1, 1, S, T]
    t = g.dim(am, 1)
    s = g.dim(x, 1)
    ts = g.op("Squeeze", [t, g.i64(0)])
    ps = g.op("Squeeze", [g.op("Sub", [t, s]), g.i64(0)])
    qi = g.op("Range", [ps, ts, g.s64(1)])
    ki = g.op("Range", [g.s64(0), ts, g.s64(1)])
    causal = g.op("LessOrEqual", [g.op("Unsqueeze", [ki, g.i64(0)]), g.op("Unsqueeze", [qi, g.i64(1)])])
    pad = g.op("Unsqueeze", [g.op("Equal", [am, g.s64(1)]), g.i64(1, 2, 3)])
    bias = g.op("Where", [g.op("And", [causal, pad]), g.f32(0.0), g.f32(F32_LOWEST)])

    F, I = TensorProto.FLOAT, TensorProto.INT64
    vi = helper.make_tensor_value_info
    inputs = [vi(x, F, ["batch", "seq", H]), vi(am, I, ["batch", "total"]), vi(pid, I, [3, "batch", "seq"])]
    outputs = []
    for i in range(L):
        for kind in ("key", "value"):
            inputs.append(vi(f"past_key_values.{i}.{kind}", F, ["batch", kv, "past", hd]))
    for i in range(L):
        b = f"model.layers.{i}."
        h = g.rmsnorm(x, w.add(b + "input_layernorm.weight", ck.f32(b + "input_layernorm.weight")), eps)
        q = lin(h, b + "self_attn.q_proj.weight", b + "self_attn.q_proj.bias")
        k = lin(h, b + "self_attn.k_proj.weight", b + "self_attn.k_proj.bias")
        v = lin(h, b + "self_attn.v_proj.weight", b + "self_attn.v_proj.bias")
        q = g.op("Transpose", [g.op("Reshape", [q, g.i64(0, 0, nh, hd)])], perm=[0, 2, 1, 3])
        k = g.op("Transpose", [g.op("Reshape", [k, g.i64(0, 0, kv, hd)])], perm=[0, 2, 1, 3])
        v = g.op("Transpose", [g.op("Reshape", [v, g.i64(0, 0, kv, hd)])], perm=[0, 2, 1, 3])
        q = g.rope(q, cos, sin, hd)
        k = g.rope(k, cos, sin, hd)
        pk = g.op("Concat", [f"past_key_values.{i}.key", k], axis=2, out=f"present.{i}.key")
        pv = g.op("Concat", [f"past_key_values.{i}.value", v], axis=2, out=f"present.{i}.value")
        q5 = g.op("Reshape", [q, g.i64(0, kv, grp, -1, hd)])
        k5 = g.op("Unsqueeze", [pk, g.i64(2)])
        v5 = g.op("Unsqueeze", [pv, g.i64(2)])
        sc = g.op("Div", [g.op("MatMul", [q5, g.op("Transpose", [k5], perm=[0, 1, 2, 4, 3])]), g.f32(np.sqrt(hd))])
        pr = g.op("Softmax", [g.op("Add", [sc, bias])], axis=-1)
        o = g.op("MatMul", [pr, v5])  # [B, kv, grp, S, hd]
        o = g.op("Reshape", [g.op("Transpose", [g.op("Reshape", [o, g.i64(0, nh, -1, hd)])], perm=[0, 2, 1, 3]), g.i64(0, 0, nh * hd)])
        x = g.op("Add", [x, lin(o, b + "self_attn.o_proj.weight")])
        h = g.rmsnorm(x, w.add(b + "post_attention_layernorm.weight", ck.f32(b + "post_attention_layernorm.weight")), eps)
        gate = g.silu(lin(h, b + "mlp.gate_proj.weight"))
        up = lin(h, b + "mlp.up_proj.weight")
        x = g.op("Add", [x, lin(g.op("Mul", [gate, up]), b + "mlp.down_proj.weight")])
    h = g.rmsnorm(x, w.add("model.norm.weight", ck.f32("model.norm.weight")), eps)
    if a.logits == "last":  # a prefill needs only its last position's logits
        h = g.op("Slice", [h, g.i64(-1), g.i64(2 ** 62), g.i64(1)])
    head = "model.embed_tokens.weight" if text["tie_word_embeddings"] else "lm_head.weight"
    g.op("Identity", [lin(h, head)], out="logits")
    outputs.append(vi("logits", F, ["batch", "seq" if a.logits == "all" else 1, V]))
    for i in range(L):
        for kind in ("key", "value"):
            outputs.append(vi(f"present.{i}.{kind}", F, ["batch", kv, "total", hd]))
    model = make_model(g, inputs, outputs, "videmo_decoder")
    w.close()
    onnx.save_model(model, path)


# --------------------------------------------------------------------------- manifest

SPECIAL = {"endoftext": "<|endoftext|>", "im_start": "<|im_start|>", "im_end": "<|im_end|>",
           "vision_start": "<|vision_start|>", "vision_end": "<|vision_end|>", "vision_pad": "<|vision_pad|>",
           "image_pad": "<|image_pad|>", "video_pad": "<|video_pad|>"}

EMOTIONS = ["happy", "sad", "neutral", "angry", "surprise", "disgust", "fear"]  # DFEW's 7, VidEmo's eval order
# Mikels et al. (2005)'s eight, EmoVid's (arXiv 2511.11002) label set; the order of tree.MikelsCategories
MIKELS = ["amusement", "awe", "contentment", "excitement", "anger", "disgust", "fear", "sadness"]
INSTRUCTION = "Answer with the option's letter from the given choices directly."
CAPTION = "Describe the facial expression of the person in the video and explain what emotion it shows."


def question_plan(caption_tokens):
    """Closed-set questions (lettered options, read from the option letters' logits) and the
    caption. Prompts and option order are data the Go runner reads, not code."""
    yn = [{"letter": "A", "label": "yes"}, {"letter": "B", "label": "no"}]

    def letters(n):
        return [chr(ord("A") + i) for i in range(n)]

    def au(code, name, desc):
        return {"id": "au_" + code.lower(), "kind": "choice", "target": "cue", "au": code, "cue": name,
                "prompt": f"Does the person show {desc} in the video?", "instruction": INSTRUCTION, "options": yn, "yes": "yes"}

    return [
        {"id": "emotion", "kind": "choice", "target": "expression", "prompt": "What is the emotion of the person in the video?",
         "instruction": INSTRUCTION, "options": [{"letter": l, "label": e} for l, e in zip(letters(7), EMOTIONS)]},
        {"id": "gender", "kind": "choice", "target": "attribute", "attribute": "gender",
         "prompt": "What is the gender of the person in the video?", "instruction": INSTRUCTION,
         "options": [{"letter": "A", "label": "male"}, {"letter": "B", "label": "female"}]},
        {"id": "age", "kind": "choice", "target": "attribute", "attribute": "age_group",
         "prompt": "What is the age group of the person in the video?", "instruction": INSTRUCTION,
         "options": [{"letter": l, "label": x} for l, x in zip(letters(4), ["child", "young adult", "middle-aged", "elderly"])]},
        {"id": "mikels", "kind": "choice", "target": "mikels",
         "prompt": "Which emotion category best describes what the person in the video feels?", "instruction": INSTRUCTION,
         "options": [{"letter": l, "label": x} for l, x in zip(letters(8), MIKELS)]},
        au("AU6", "cheek_raiser", "raised cheeks (AU6, cheek raiser)"),
        au("AU12", "lip_corner_puller", "pulled-up lip corners (AU12, lip corner puller)"),
        au("AU4", "brow_lowerer", "lowered brows (AU4, brow lowerer)"),
        {"id": "caption", "kind": "caption", "target": "rationale", "prompt": CAPTION, "max_new_tokens": caption_tokens},
    ]


CUES = [  # caption phrase (lower-case substring) -> cue
    ("smil", "lip_corner_puller", "AU12"), ("lip corner", "lip_corner_puller", "AU12"), ("cheek", "cheek_raiser", "AU6"),
    ("frown", "brow_lowerer", "AU4"), ("furrow", "brow_lowerer", "AU4"), ("raised eyebrow", "inner_brow_raiser", "AU1"),
    ("brows raised", "inner_brow_raiser", "AU1"), ("wide eye", "upper_lid_raiser", "AU5"), ("jaw drop", "jaw_drop", "AU26"),
    ("mouth open", "jaw_drop", "AU26"), ("lip press", "lip_pressor", "AU24"), ("nose wrinkl", "nose_wrinkler", "AU9"),
    ("lips apart", "lips_part", "AU25"),
]
CATEGORY = {"happy": "happiness", "sad": "sadness", "neutral": "neutral", "angry": "anger",
            "surprise": "surprise", "disgust": "disgust", "fear": "fear"}

# VidEmo serves through ms-swift with VIDEO_MAX_PIXELS=100352 FPS_MAX_FRAMES=16; qwen-vl-utils
# 0.0.10 then has VIDEO_MIN_PIXELS = VIDEO_MAX_PIXELS = VIDEO_TOTAL_PIXELS = 100352, so the
# per-frame budget is [100352, max(min(100352, 100352/n*2), int(100352*1.05))] = [100352, 105369].
VIDEO_MIN_PIXELS, VIDEO_MAX_PIXELS_FRAME = 100352, 105369


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def special_tokens(tok_path):
    try:
        tj = json.load(open(tok_path))
    except (OSError, ValueError) as e:
        raise ConvertError(f"{tok_path}: cannot read ({e}); download the checkpoint's tokenizer.json again")
    by = {t["content"]: t["id"] for t in tj.get("added_tokens", [])}
    miss = [c for c in SPECIAL.values() if c not in by]
    if miss:
        raise ConvertError(f"{tok_path}: lacks the Qwen2 special tokens {miss}: not Qwen2.5-VL's tokenizer")
    return {k: by[c] for k, c in SPECIAL.items()}


def write_manifest(out, a, cfg, text, vis, gen, pre_cfg, tokens, files, src_sha):
    H, nh = text["hidden_size"], text["num_attention_heads"]
    eos = gen.get("eos_token_id", [tokens["im_end"], tokens["endoftext"]])
    if isinstance(eos, int):
        eos = [eos]
    m = {
        "name": a.name, "version": a.version, "task": "video-emotion-vlm",
        "engine": f"{a.name}-{a.decoder}",
        "licence": a.licence,
        "source": {"generator": "scripts/convert_videmo.py", "checkpoint": os.path.basename(os.path.abspath(a.src)),
                   "checkpoint_sha256": src_sha, "architecture": "Qwen2_5_VLForConditionalGeneration (transformers 4.49)",
                   "converter_args": {"decoder": a.decoder, "block_size": a.block, "symmetric": a.symmetric,
                                      "accuracy_level": a.accuracy_level, "logits": a.logits}},
        "files": files,
        "dims": {"hidden": H, "layers": text["num_hidden_layers"], "heads": nh, "kv_heads": text["num_key_value_heads"],
                 "head_dim": H // nh, "intermediate": text["intermediate_size"], "vocab": text["vocab_size"],
                 "mrope_section": text["rope_scaling"]["mrope_section"], "rope_theta": text["rope_theta"]},
        "vision": {"depth": vis["depth"], "hidden": vis["hidden_size"], "heads": vis["num_heads"],
                   "window_size": vis["window_size"], "fullatt_block_indexes": vis["fullatt_block_indexes"],
                   "spatial_merge_size": vis["spatial_merge_size"], "patch_size": vis["patch_size"]},
        "tokens": tokens,
        "eos": eos,
        "preprocess": {"patch_size": vis["patch_size"], "temporal_patch_size": vis["temporal_patch_size"],
                       "merge_size": vis["spatial_merge_size"],
                       "min_pixels": VIDEO_MIN_PIXELS, "max_pixels": VIDEO_MAX_PIXELS_FRAME, "max_ratio": 200,
                       "fps": 2.0, "min_frames": 4, "max_frames": 16, "frame_factor": 2,
                       "rescale_factor": pre_cfg.get("rescale_factor", 1.0 / 255),
                       "image_mean": pre_cfg.get("image_mean", [0.48145466, 0.4578275, 0.40821073]),
                       "image_std": pre_cfg.get("image_std", [0.26862954, 0.26130258, 0.27577711]),
                       "tokens_per_second": vis["tokens_per_second"]},
        "io": {"vision": {"inputs": VISION_INPUTS, "outputs": ["image_features"]},
               "embedding": {"inputs": ["input_ids", "image_features"], "outputs": ["inputs_embeds"]},
               "decoder": {"inputs_embeds": "inputs_embeds", "attention_mask": "attention_mask", "position_ids": "position_ids",
                           "past_key": "past_key_values.%d.key", "past_value": "past_key_values.%d.value",
                           "logits": "logits", "present_key": "present.%d.key", "present_value": "present.%d.value"}},
        "system": "You are a helpful assistant.",
        "generation": {"temperature": gen.get("temperature", 0.1), "top_k": gen.get("top_k", 1),
                       "top_p": gen.get("top_p", 0.001), "repetition_penalty": gen.get("repetition_penalty", 1.05)},
        "questions": question_plan(a.caption_tokens),
        "cues": [{"phrase": p, "name": n, "au": u} for p, n, u in CUES],
        "emotion_category": CATEGORY,
    }
    path = os.path.join(out, "videmo.manifest.json")
    with open(path, "w") as f:
        json.dump(m, f, indent=2)
        f.write("\n")
    return path


# --------------------------------------------------------------------------- main


def convert(a):
    t0 = time.time()
    cfg, text, vis = read_config(a.src)
    specs = param_specs(text, vis)
    tok_src = a.tokenizer or os.path.join(a.src, "tokenizer.json")
    if not os.path.isfile(tok_src):
        raise ConvertError(f"{tok_src}: missing; download the checkpoint's tokenizer.json (or pass --tokenizer PATH)")
    tokens = special_tokens(tok_src)
    if cfg.get("video_token_id", tokens["video_pad"]) != tokens["video_pad"]:
        raise ConvertError(f"config.json video_token_id {cfg.get('video_token_id')} is not the tokenizer's <|video_pad|> {tokens['video_pad']}")
    ck = Checkpoint(a.src, specs)
    gen_p = os.path.join(a.src, "generation_config.json")
    gen = json.load(open(gen_p)) if os.path.isfile(gen_p) else {}
    pre_p = os.path.join(a.src, "preprocessor_config.json")
    pre = json.load(open(pre_p)) if os.path.isfile(pre_p) else {}
    os.makedirs(a.out, exist_ok=True)
    files = []
    for role, fn, build in (("vision", "vision.onnx", lambda p: build_vision(ck, vis, p)),
                            ("embedding", "embedding.onnx", lambda p: build_embedding(ck, text, tokens["video_pad"], p)),
                            ("decoder", "decoder.onnx", lambda p: build_decoder(ck, text, a, p))):
        p = os.path.join(a.out, fn)
        t1 = time.time()
        build(p)
        files.append({"role": role, "path": fn, "sha256": sha256(p)})
        files.append({"role": role + ".data", "path": fn + ".data", "sha256": sha256(p + ".data")})
        log(a, f"{fn}: {(os.path.getsize(p) + os.path.getsize(p + '.data')) / 1e6:.1f} MB in {time.time() - t1:.1f} s")
    shutil.copy(tok_src, os.path.join(a.out, "tokenizer.json"))
    files.append({"role": "tokenizer", "path": "tokenizer.json", "sha256": sha256(os.path.join(a.out, "tokenizer.json"))})
    src_sha = {os.path.basename(p): None for p in sorted({v[0] for v in ck.tensors.values()})}
    if a.hash_checkpoint:
        for f in src_sha:
            src_sha[f] = sha256(os.path.join(a.src, f))
    man = write_manifest(a.out, a, cfg, text, vis, gen, pre, tokens, files, src_sha)
    total = sum(os.path.getsize(os.path.join(a.out, f["path"])) for f in files)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    summary = {"manifest": man, "seconds": round(time.time() - t0, 1), "peak_rss_bytes": peak, "output_bytes": total,
               "ignored_tensors": ck.extra[:5]}
    print(json.dumps(summary))


def log(a, msg):
    if not a.quiet:
        print("convert_videmo: " + msg, file=sys.stderr, flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--from", dest="src", required=True, help="Hugging Face checkpoint folder")
    ap.add_argument("--out", required=True, help="output folder (graphs, tokenizer.json, videmo.manifest.json)")
    ap.add_argument("--decoder", choices=["int4", "fp32"], default="int4", help="decoder weights (default int4)")
    ap.add_argument("--block", type=int, default=32, help="int4 block size (default 32)")
    ap.add_argument("--symmetric", action="store_true", help="int4 without zero points")
    ap.add_argument("--accuracy-level", type=int, default=4, choices=[0, 1, 2, 3, 4],
                    help="MatMulNBits accuracy_level (4: int8 activations on CPU, as onnxruntime-genai's CPU models)")
    ap.add_argument("--logits", choices=["last", "all"], default="last", help="logits of the last position only (default) or all")
    ap.add_argument("--tokenizer", help="tokenizer.json, when the checkpoint folder has none")
    ap.add_argument("--name", default="videmo-3b", help="model name (tree source.model)")
    ap.add_argument("--version", default="1")
    ap.add_argument("--licence", default="as the checkpoint's (VidEmo-3B: see its model card)")
    ap.add_argument("--caption-tokens", type=int, default=256, help="the caption question's generation budget")
    ap.add_argument("--hash-checkpoint", action="store_true", help="record each safetensors file's sha256 in the manifest")
    ap.add_argument("--quiet", action="store_true")
    a = ap.parse_args()
    if a.block < 16 or a.block & (a.block - 1):
        sys.exit("convert_videmo: --block must be a power of two >= 16")
    try:
        convert(a)
    except ConvertError as e:
        print(f"convert_videmo: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
