#!/usr/bin/python3
"""Convert a TF.js graph model (model.json + weight shards) to ONNX.

    /usr/bin/python3 scripts/tfjs2onnx.py MODEL.json OUT.onnx [--opset 13] [--pad-channels N] [--prelu-as-conv] [--input-hw H,W]

Needs only numpy and onnx (Debian python3-onnx / python3-numpy).

Design
- An op table (OPS) maps each TF op name to a function that emits ONNX nodes.
  Adding an op is adding one entry; an op that is not in the table stops the
  conversion with its name, so nothing is silently wrong.
- Layout: TF.js graphs are NHWC, ONNX convolutions are NCHW. Every tensor
  carries a layout tag: 4-D activations are kept in NCHW ("nchw") from the
  graph input onwards (one Transpose at the input), weights are converted
  once at conversion time, and a tensor is transposed back to NHWC only where
  an op is not layout-aware (to_nhwc) or at a graph output. ORT folds the
  remaining transposes.
- Shapes: every tensor's static NHWC shape is tracked (batch is -1) so TF's
  SAME padding, which is asymmetric for stride 2, becomes explicit pads.
- Weights: shards of each weightsManifest group are concatenated in order;
  float32/int32/bool are read as is, quantized weights (uint8/uint16 affine
  with scale/min, float16) are dequantized to float32.
- Output bytes are deterministic: no timestamps, nodes and initializers are
  emitted in graph order, names come from the TF graph.
"""
import argparse
import base64
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

PRODUCER = "edgemo-tfjs2onnx"
PRODUCER_VERSION = "1"

NHWC_TO_NCHW = [0, 3, 1, 2]
NCHW_TO_NHWC = [0, 2, 3, 1]
# NHWC axis -> NCHW axis
AXIS_NHWC_TO_NCHW = {0: 0, 1: 2, 2: 3, 3: 1}

TF_DTYPES = {
    "DT_FLOAT": np.float32,
    "DT_INT32": np.int32,
    "DT_BOOL": np.bool_,
    "DT_INT64": np.int64,
}
MANIFEST_DTYPES = {
    "float32": np.float32,
    "int32": np.int32,
    "bool": np.bool_,
    "uint8": np.uint8,
    "uint16": np.uint16,
    "float16": np.float16,
    "int8": np.int8,
}


class ConvertError(Exception):
    pass


# --- weights -------------------------------------------------------------------


def load_weights(model_path, manifest):
    """Returns {name: np.ndarray} for every weight in the manifest."""
    base = os.path.dirname(os.path.abspath(model_path))
    out = {}
    for group in manifest:
        buf = b""
        for p in group["paths"]:
            with open(os.path.join(base, p), "rb") as f:
                buf += f.read()
        off = 0
        for w in group["weights"]:
            shape = [int(d) for d in w["shape"]]
            n = int(np.prod(shape, dtype=np.int64)) if shape else 1
            q = w.get("quantization")
            if w["dtype"] == "string":
                raise ConvertError("weight %s: string weights are not supported" % w["name"])
            if q:
                qdt = MANIFEST_DTYPES[q["dtype"]]
                size = n * np.dtype(qdt).itemsize
                raw = np.frombuffer(buf, dtype=qdt, count=n, offset=off)
                if q["dtype"] == "float16":
                    arr = raw.astype(np.float32)
                else:
                    arr = raw.astype(np.float32) * np.float32(q["scale"]) + np.float32(q["min"])
                target = MANIFEST_DTYPES[q.get("original_dtype", w["dtype"])]
                if target != np.float32:
                    arr = np.round(arr).astype(target)
                off += size
            else:
                dt = MANIFEST_DTYPES[w["dtype"]]
                size = n * np.dtype(dt).itemsize
                arr = np.frombuffer(buf, dtype=dt, count=n, offset=off).copy()
                off += size
            out[w["name"]] = arr.reshape(shape)
        if off != len(buf):
            raise ConvertError("weights group %s: manifest describes %d bytes, shards hold %d" % (group["paths"], off, len(buf)))
    return out


# --- attributes ------------------------------------------------------------------


def attr_s(node, key, default=None):
    a = node.get("attr", {}).get(key)
    if a is None or "s" not in a:
        return default
    return base64.b64decode(a["s"]).decode()


def attr_ints(node, key, default=None):
    a = node.get("attr", {}).get(key)
    if a is None:
        return default
    return [int(x) for x in a.get("list", {}).get("i", [])]


def attr_strs(node, key):
    a = node.get("attr", {}).get(key)
    if a is None:
        return []
    return [base64.b64decode(x).decode() for x in a.get("list", {}).get("s", [])]


def attr_f(node, key, default=None):
    a = node.get("attr", {}).get(key)
    if a is None or "f" not in a:
        return default
    return float(a["f"])


def attr_b(node, key, default=False):
    a = node.get("attr", {}).get(key)
    if a is None or "b" not in a:
        return default
    return bool(a["b"])


# --- converter state -----------------------------------------------------------------


class Tensor:
    """A converted tensor: its ONNX name, layout tag and static NHWC shape."""

    def __init__(self, name, layout, shape, const=None):
        self.name = name
        self.layout = layout  # "nchw" (4-D activation stored NCHW) or "plain"
        self.shape = list(shape) if shape is not None else None  # NHWC / TF order, -1 = dynamic
        self.const = const  # numpy value for TF Const tensors


class Converter:
    def __init__(self, model_json, weights, input_hw=None):
        self.model = model_json
        self.weights = weights
        self.input_hw = input_hw  # (H, W) replacing the 4-D input's own
        self.nodes = []
        self.inits = []
        self.init_names = set()
        self.tensors = {}
        self.counter = 0
        self.inputs = []
        self.outputs = []

    def uniq(self, base):
        self.counter += 1
        return "%s/__%d" % (base, self.counter)

    def add_init(self, name, arr):
        if name not in self.init_names:
            self.init_names.add(name)
            self.inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(self, op, inputs, outputs, name, **attrs):
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, **attrs))

    def get(self, ref):
        name = ref.split(":")[0]
        if name.startswith("^"):
            return None  # control dependency
        if name not in self.tensors:
            raise ConvertError("tensor %s used before it is defined" % name)
        return self.tensors[name]

    def const_value(self, ref):
        t = self.get(ref)
        if t.const is None:
            raise ConvertError("%s must be a constant" % ref)
        return t.const

    def materialize(self, t):
        """ONNX name holding t's value (constants become initializers)."""
        if t.const is not None:
            return self.add_init(t.name, t.const)
        return t.name

    def to_nhwc(self, t):
        """Name of t in TF (NHWC) layout."""
        if t.layout != "nchw":
            return self.materialize(t)
        out = t.name + "/__nhwc"
        if out not in self.tensors:
            self.node("Transpose", [t.name], [out], out, perm=NCHW_TO_NHWC)
            self.tensors[out] = Tensor(out, "plain", t.shape)
        return out

    def as_layout_of(self, t, ref):
        """Name of t arranged to broadcast against tensor ref (for binary ops)."""
        if ref.layout != "nchw" or t.layout == "nchw":
            return self.materialize(t) if t.layout != "nchw" or ref.layout == "nchw" else self.to_nhwc(t)
        if t.const is not None:
            v = t.const
            while v.ndim < 4:
                v = v[np.newaxis]
            v = np.transpose(v, NHWC_TO_NCHW)
            return self.add_init(t.name + "/__nchw", v)
        # a non-constant rank<4 tensor against an NCHW one: broadcast in NHWC
        raise ConvertError("broadcast of non-constant %s against NCHW %s is not supported" % (t.name, ref.name))

    # --- graph --------------------------------------------------------------------

    def convert(self):
        topo = self.model["modelTopology"]
        for n in topo["node"]:
            op = n["op"]
            fn = OPS.get(op)
            if fn is None:
                raise ConvertError("op %s (node %s) is not supported; add it to OPS in scripts/tfjs2onnx.py" % (op, n["name"]))
            fn(self, n)
        sig = self.model.get("signature") or (self.model.get("userDefinedMetadata") or {}).get("signature") or {}
        outs = [v["name"].split(":")[0] for v in sig.get("outputs", {}).values()]
        if not outs:
            consumed = {i.split(":")[0].lstrip("^") for n in topo["node"] for i in n.get("input", [])}
            outs = [n["name"] for n in topo["node"] if n["name"] not in consumed and n["op"] != "Const"]
        for o in outs:
            t = self.tensors[o]
            if t.layout == "nchw" or t.const is not None or t.name != o:
                # expose TF layout under the TF name (+ ":0" to keep names unique)
                name = self.to_nhwc(t) if t.const is None else self.materialize(t)
                out = o + ":0"
                self.node("Identity", [name], [out], out)
                self.outputs.append((out, t))
            else:
                self.outputs.append((o, t))
        return self.build()

    def build(self):
        graph_outputs = []
        for name, t in self.outputs:
            shape = [d if d >= 0 else ("batch" if i == 0 else "%s_%d" % (name, i)) for i, d in enumerate(t.shape)] if t.shape is not None else None
            graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, shape))
        return helper.make_graph(self.nodes, "tfjs", self.inputs, graph_outputs, initializer=self.inits)


# --- shape helpers -----------------------------------------------------------------


def conv_out(size, k, s, d, padding, pads=(0, 0)):
    if size < 0:
        return -1
    eff = (k - 1) * d + 1
    if padding == "SAME":
        return -(-size // s)
    if padding == "VALID":
        return -(-(size - eff + 1) // s)
    return (size + pads[0] + pads[1] - eff) // s + 1


def same_pads(size, k, s, d):
    if size < 0:
        raise ConvertError("SAME padding needs a static spatial size")
    out = -(-size // s)
    eff = (k - 1) * d + 1
    total = max((out - 1) * s + eff - size, 0)
    return total // 2, total - total // 2


def spatial_pads(c, n, x, kh, kw, sh, sw, dh, dw):
    """ONNX pads [top, left, bottom, right] and output (H, W) for TF padding."""
    padding = attr_s(n, "padding", "VALID")
    H, W = x.shape[1], x.shape[2]
    if padding == "SAME":
        t, b = same_pads(H, kh, sh, dh)
        l, r = same_pads(W, kw, sw, dw)
    elif padding == "VALID":
        t = b = l = r = 0
    elif padding == "EXPLICIT":
        e = attr_ints(n, "explicit_paddings")
        t, b, l, r = e[2], e[3], e[4], e[5]
    else:
        raise ConvertError("node %s: padding %s" % (n["name"], padding))
    oh = conv_out(H, kh, sh, dh, "EXPLICIT", (t, b))
    ow = conv_out(W, kw, sw, dw, "EXPLICIT", (l, r))
    return [t, l, b, r], oh, ow


def check_nhwc(n):
    fmt = attr_s(n, "data_format", "NHWC")
    if fmt != "NHWC":
        raise ConvertError("node %s: data_format %s (only NHWC)" % (n["name"], fmt))


# --- op table ----------------------------------------------------------------------


def op_placeholder(c, n):
    dims = [int(d.get("size", -1)) for d in n["attr"]["shape"]["shape"].get("dim", [])]
    name = n["name"]
    if c.input_hw and len(dims) == 4:
        dims[1], dims[2] = c.input_hw
    onnx_shape = [d if d >= 0 else ("batch" if i == 0 else "%s_%d" % (name, i)) for i, d in enumerate(dims)]
    c.inputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, onnx_shape))
    if len(dims) == 4:
        out = name + "/__nchw"
        c.node("Transpose", [name], [out], out, perm=NHWC_TO_NCHW)
        c.tensors[name] = Tensor(out, "nchw", dims)
    else:
        c.tensors[name] = Tensor(name, "plain", dims)


def op_const(c, n):
    name = n["name"]
    if name not in c.weights:
        raise ConvertError("Const %s has no weight in weightsManifest" % name)
    v = c.weights[name]
    c.tensors[name] = Tensor(name, "plain", list(v.shape), const=v)


def emit_activation(c, n, kind, x, out, alpha_ref=None):
    """Applies a TF activation to ONNX tensor x, writing out."""
    if kind == "Relu":
        c.node("Relu", [x], [out], out)
    elif kind == "Relu6":
        lo = c.add_init("__relu6_min", np.array(0, np.float32))
        hi = c.add_init("__relu6_max", np.array(6, np.float32))
        c.node("Clip", [x, lo, hi], [out], out)
    elif kind == "Elu":
        c.node("Elu", [x], [out], out, alpha=1.0)
    elif kind == "Sigmoid":
        c.node("Sigmoid", [x], [out], out)
    elif kind == "Tanh":
        c.node("Tanh", [x], [out], out)
    elif kind == "LeakyRelu":
        c.node("LeakyRelu", [x], [out], out, alpha=attr_f(n, "leakyrelu_alpha", attr_f(n, "alpha", 0.2)))
    elif kind == "Prelu":
        slope = c.const_value(alpha_ref).astype(np.float32).reshape(-1, 1, 1)
        s = c.add_init(alpha_ref.split(":")[0] + "/__nchw", slope)
        c.node("PRelu", [x, s], [out], out)
    else:
        raise ConvertError("node %s: fused activation %s is not supported" % (n["name"], kind))


def conv_common(c, n, depthwise):
    check_nhwc(n)
    inputs = n["input"]
    x = c.get(inputs[0])
    if x.layout != "nchw":
        raise ConvertError("node %s: input %s is not a 4-D activation" % (n["name"], inputs[0]))
    w = c.const_value(inputs[1]).astype(np.float32)
    kh, kw, cin, cm = w.shape
    _, sh, sw, _ = attr_ints(n, "strides", [1, 1, 1, 1])
    _, dh, dw, _ = attr_ints(n, "dilations", [1, 1, 1, 1]) or [1, 1, 1, 1]
    pads, oh, ow = spatial_pads(c, n, x, kh, kw, sh, sw, dh, dw)
    if depthwise:
        # TF [H, W, Cin, M], output channel c*M+m -> ONNX [Cin*M, 1, H, W], group Cin
        wo = np.transpose(w, (2, 3, 0, 1)).reshape(cin * cm, 1, kh, kw)
        cout, group = cin * cm, cin
    else:
        wo = np.transpose(w, (3, 2, 0, 1))  # HWIO -> OIHW
        cout, group = cm, 1
        if x.shape[3] > 0 and x.shape[3] != cin:
            group = x.shape[3] // cin
    fused = attr_strs(n, "fused_ops")
    args = inputs[2:]
    bias = None
    acts = []
    if fused:
        head = fused[0]
        if head == "BiasAdd":
            bias = c.const_value(args[0]).astype(np.float32)
            acts = fused[1:]
            rest = args[1:]
        elif head == "FusedBatchNorm":
            scale, offset, mean, var = [c.const_value(a).astype(np.float32) for a in args[:4]]
            eps = attr_f(n, "epsilon", 0.0)
            k = scale / np.sqrt(var + np.float32(eps))
            wo = wo * k.reshape(-1, 1, 1, 1)
            bias = offset - mean * k
            acts = fused[1:]
            rest = args[4:]
        else:
            acts = fused
            rest = args
    else:
        rest = []
    wname = c.add_init(inputs[1].split(":")[0] + "/__oihw", wo.astype(np.float32))
    conv_in = [x.name, wname]
    if bias is not None:
        conv_in.append(c.add_init(n["name"] + "/__bias", bias.astype(np.float32)))
    out = n["name"]
    conv_out_name = out if not acts else c.uniq(out + "/conv")
    c.node("Conv", conv_in, [conv_out_name], conv_out_name, kernel_shape=[kh, kw], strides=[sh, sw],
           dilations=[dh, dw], pads=pads, group=group)
    cur = conv_out_name
    for i, a in enumerate(acts):
        nxt = out if i == len(acts) - 1 else c.uniq(out + "/" + a)
        emit_activation(c, n, a, cur, nxt, rest[0] if a == "Prelu" and rest else None)
        cur = nxt
    c.tensors[out] = Tensor(out, "nchw", [x.shape[0], oh, ow, cout])


def op_conv2d(c, n):
    conv_common(c, n, depthwise=False)


def op_depthwise(c, n):
    conv_common(c, n, depthwise=True)


def pool_common(c, n, onnx_op):
    check_nhwc(n)
    x = c.get(n["input"][0])
    if x.layout != "nchw":
        raise ConvertError("node %s: input is not a 4-D activation" % n["name"])
    _, kh, kw, _ = attr_ints(n, "ksize")
    _, sh, sw, _ = attr_ints(n, "strides")
    pads, oh, ow = spatial_pads(c, n, x, kh, kw, sh, sw, 1, 1)
    out = n["name"]
    extra = {}
    if onnx_op == "AveragePool":
        extra["count_include_pad"] = 0  # TF SAME averages only real elements
    c.node(onnx_op, [x.name], [out], out, kernel_shape=[kh, kw], strides=[sh, sw], pads=pads, **extra)
    c.tensors[out] = Tensor(out, "nchw", [x.shape[0], oh, ow, x.shape[3]])


def op_maxpool(c, n):
    pool_common(c, n, "MaxPool")


def op_avgpool(c, n):
    pool_common(c, n, "AveragePool")


def broadcast_shape(a, b):
    if a is None or b is None:
        return None
    r = max(len(a), len(b))
    a = [1] * (r - len(a)) + list(a)
    b = [1] * (r - len(b)) + list(b)
    return [x if y == 1 else y if x == 1 else max(x, y) if -1 not in (x, y) else -1 for x, y in zip(a, b)]


def binary(onnx_op):
    def f(c, n):
        a, b = c.get(n["input"][0]), c.get(n["input"][1])
        out = n["name"]
        if a.const is not None and b.const is not None:
            raise ConvertError("node %s: constant folding is not implemented" % out)
        ref = a if a.layout == "nchw" else b
        if a.layout == "nchw" and b.layout == "nchw":
            ins = [a.name, b.name]
            layout = "nchw"
        elif ref.layout == "nchw":
            other = b if ref is a else a
            if other.const is not None and len(other.shape) <= 4:
                o = c.as_layout_of(other, ref)
                ins = [a.name, o] if ref is a else [o, b.name]
                layout = "nchw"
            else:
                ins = [c.to_nhwc(a), c.to_nhwc(b)]
                layout = "plain"
        else:
            ins = [c.materialize(a), c.materialize(b)]
            layout = "plain"
        c.node(onnx_op, ins, [out], out)
        c.tensors[out] = Tensor(out, layout, broadcast_shape(a.shape, b.shape))
    return f


def unary(kind):
    def f(c, n):
        x = c.get(n["input"][0])
        out = n["name"]
        emit_activation(c, n, kind, c.materialize(x) if x.layout != "nchw" else x.name, out,
                        n["input"][1] if kind == "Prelu" else None)
        c.tensors[out] = Tensor(out, x.layout, x.shape)
    return f


def op_identity(c, n):
    x = c.get(n["input"][0])
    out = n["name"]
    c.node("Identity", [c.materialize(x)], [out], out)
    c.tensors[out] = Tensor(out, x.layout, x.shape)


def op_biasadd(c, n):
    binary("Add")(c, n)


def reduce(onnx_op):
    def f(c, n):
        x = c.get(n["input"][0])
        axes = [int(a) for a in np.atleast_1d(c.const_value(n["input"][1]))]
        rank = len(x.shape)
        axes = sorted(a % rank for a in axes)
        keep = attr_b(n, "keep_dims", attr_b(n, "keepdims", False))
        out = n["name"]
        kept_shape = [1 if i in axes else d for i, d in enumerate(x.shape)]
        if x.layout == "nchw":
            nchw_axes = sorted(AXIS_NHWC_TO_NCHW[a] for a in axes)
            if keep:
                c.node(onnx_op, [x.name], [out], out, axes=nchw_axes, keepdims=1)
                c.tensors[out] = Tensor(out, "nchw", kept_shape)
                return
            r = c.uniq(out + "/keep")
            c.node(onnx_op, [x.name], [r], r, axes=nchw_axes, keepdims=1)
            t = c.uniq(out + "/nhwc")
            c.node("Transpose", [r], [t], t, perm=NCHW_TO_NHWC)
            ax = c.add_init(out + "/__axes", np.array(axes, np.int64))
            c.node("Squeeze", [t, ax], [out], out)
        else:
            c.node(onnx_op, [c.materialize(x)], [out], out, axes=axes, keepdims=1 if keep else 0)
        shape = kept_shape if keep else [d for i, d in enumerate(x.shape) if i not in axes]
        c.tensors[out] = Tensor(out, "plain", shape)
    return f


def op_softmax(c, n):
    x = c.get(n["input"][0])
    out = n["name"]
    axis = 1 if x.layout == "nchw" else -1  # TF: last axis (channels)
    c.node("Softmax", [c.materialize(x) if x.layout != "nchw" else x.name], [out], out, axis=axis)
    c.tensors[out] = Tensor(out, x.layout, x.shape)


def op_concat(c, n):
    ins = [c.get(i) for i in n["input"][:-1]]
    axis = int(c.const_value(n["input"][-1]))
    out = n["name"]
    rank = len(ins[0].shape)
    axis %= rank
    if all(t.layout == "nchw" for t in ins):
        c.node("Concat", [t.name for t in ins], [out], out, axis=AXIS_NHWC_TO_NCHW[axis])
        layout = "nchw"
    else:
        c.node("Concat", [c.to_nhwc(t) for t in ins], [out], out, axis=axis)
        layout = "plain"
    shape = list(ins[0].shape)
    shape[axis] = -1 if any(t.shape[axis] < 0 for t in ins) else sum(t.shape[axis] for t in ins)
    c.tensors[out] = Tensor(out, layout, shape)


def op_reshape(c, n):
    x = c.get(n["input"][0])
    shape = [int(s) for s in c.const_value(n["input"][1])]
    out = n["name"]
    if c.input_hw and -1 not in shape and len(shape) >= 2 and all(d >= 0 for d in x.shape):
        # A TF.js graph bakes its input size into Reshape targets (BlazeFace's
        # [1, 512, 16] for 256x256): at another input size the dimension that
        # counts positions, the one after the batch, follows the input.
        total, rest = int(np.prod(x.shape)), int(np.prod(shape)) // shape[1]
        if rest == 0 or total % rest:
            raise ConvertError("node %s: Reshape to %s does not follow --input-hw (input %s)" % (n["name"], shape, x.shape))
        shape[1] = total // rest
    s = c.add_init(out + "/__shape", np.array(shape, np.int64))
    c.node("Reshape", [c.to_nhwc(x), s], [out], out)
    known = [d for d in x.shape]
    if -1 in shape and all(d >= 0 for d in known):
        total = int(np.prod(known))
        rest = int(np.prod([d for d in shape if d != -1]))
        shape = [total // rest if d == -1 else d for d in shape]
    c.tensors[out] = Tensor(out, "plain", shape)


def op_pad(c, n):
    x = c.get(n["input"][0])
    pads = c.const_value(n["input"][1]).astype(np.int64).reshape(-1, 2)
    value = float(c.const_value(n["input"][2])) if n["op"] == "PadV2" else 0.0
    out = n["name"]
    rank = len(pads)
    if x.layout == "nchw":
        order = NHWC_TO_NCHW
        src = x.name
    else:
        order = list(range(rank))
        src = c.materialize(x)
    onnx_pads = [int(pads[a][0]) for a in order] + [int(pads[a][1]) for a in order]
    p = c.add_init(out + "/__pads", np.array(onnx_pads, np.int64))
    v = c.add_init(out + "/__value", np.array(value, np.float32))
    c.node("Pad", [src, p, v], [out], out, mode="constant")
    shape = [d if d < 0 else d + int(pads[i][0] + pads[i][1]) for i, d in enumerate(x.shape)]
    c.tensors[out] = Tensor(out, x.layout, shape)


def op_matmul(c, n):
    a, b = c.get(n["input"][0]), c.get(n["input"][1])
    if len(a.shape) != 2 or len(b.shape) != 2:
        raise ConvertError("node %s: only 2-D MatMul is supported" % n["name"])
    out = n["name"]
    ta, tb = attr_b(n, "transpose_a"), attr_b(n, "transpose_b")
    fused = attr_strs(n, "fused_ops")
    ins = [c.to_nhwc(a), c.to_nhwc(b)]
    acts = fused
    if fused and fused[0] == "BiasAdd":
        ins.append(c.materialize(c.get(n["input"][2])))
        acts = fused[1:]
    elif fused:
        raise ConvertError("node %s: fused_ops %s" % (out, fused))
    mm = out if not acts else c.uniq(out + "/gemm")
    c.node("Gemm", ins, [mm], mm, transA=int(ta), transB=int(tb))
    cur = mm
    for i, act in enumerate(acts):
        nxt = out if i == len(acts) - 1 else c.uniq(out + "/" + act)
        emit_activation(c, n, act, cur, nxt)
        cur = nxt
    rows = a.shape[1] if ta else a.shape[0]
    cols = b.shape[0] if tb else b.shape[1]
    c.tensors[out] = Tensor(out, "plain", [rows, cols])


OPS = {
    "Pad": op_pad,
    "PadV2": op_pad,
    "MatMul": op_matmul,
    "_FusedMatMul": op_matmul,
    "Placeholder": op_placeholder,
    "Const": op_const,
    "Conv2D": op_conv2d,
    "_FusedConv2D": op_conv2d,
    "DepthwiseConv2dNative": op_depthwise,
    "FusedDepthwiseConv2dNative": op_depthwise,
    "MaxPool": op_maxpool,
    "AvgPool": op_avgpool,
    "Add": binary("Add"),
    "AddV2": binary("Add"),
    "BiasAdd": op_biasadd,
    "Sub": binary("Sub"),
    "Mul": binary("Mul"),
    "RealDiv": binary("Div"),
    "Maximum": binary("Max"),
    "Minimum": binary("Min"),
    "Relu": unary("Relu"),
    "Relu6": unary("Relu6"),
    "Elu": unary("Elu"),
    "Sigmoid": unary("Sigmoid"),
    "Tanh": unary("Tanh"),
    "LeakyRelu": unary("LeakyRelu"),
    "Prelu": unary("Prelu"),
    "Mean": reduce("ReduceMean"),
    "Sum": reduce("ReduceSum"),
    "Max": reduce("ReduceMax"),
    "Softmax": op_softmax,
    "ConcatV2": op_concat,
    "Reshape": op_reshape,
    "Identity": op_identity,
}


# --- channel padding ---------------------------------------------------------------

# Ops through which an all-zero channel stays all zero (f(0) = 0 per channel),
# so a tensor may carry extra zero channels through them.
ZERO_PRESERVING = {"Relu", "LeakyRelu", "Elu", "Tanh", "Clip", "PRelu", "MaxPool", "AveragePool"}


def pad_channels(model, align):
    """Zero-pads activations' channel counts to multiples of align, in place.

    Why: ONNX Runtime's x86 CPU provider runs convolutions in its blocked
    NCHWc layout only where channel counts are multiples of the SIMD block (16
    floats with AVX-512, 8 with AVX2); around any other conv it reorders to
    NCHW and back. BlazeFace-back's 24-channel layers cost it ~30 reorders a
    frame. The added channels are exactly zero (zero weights and bias, only
    zero-preserving ops and zero-extending Pads in between) and every consumer
    reads them with zero weights, so the model computes the same function;
    only float summation order can change. Graph inputs and outputs, and every
    tensor touching an op this pass does not know, keep their channel count.

    Returns the number of convolutions whose weights changed.
    """
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    inferred = onnx.shape_inference.infer_shapes(model).graph
    chans = {}
    for vi in list(inferred.value_info) + list(inferred.input) + list(inferred.output):
        dims = vi.type.tensor_type.shape.dim
        if len(dims) == 4 and dims[1].HasField("dim_value"):
            chans[vi.name] = dims[1].dim_value
    prod, cons = {}, {}
    for n in g.node:
        for o in n.output:
            prod[o] = n
        for i in n.input:
            cons.setdefault(i, []).append(n)

    def attr(n, key, default):
        for a in n.attribute:
            if a.name == key:
                return helper.get_attribute_value(a)
        return default

    def init_value(name):
        return numpy_helper.to_array(inits[name]) if name in inits else None

    def is_act(t):
        return t in chans and t not in inits

    def channel_pad_ok(n):
        """A Pad that only appends zero channels (any spatial padding)."""
        pads = init_value(n.input[1]) if len(n.input) > 1 else None
        value = init_value(n.input[2]) if len(n.input) > 2 and n.input[2] else np.zeros(())
        return (pads is not None and value is not None and pads.size == 8 and attr(n, "mode", b"constant") in (b"constant", "constant")
                and int(pads[0]) == 0 and int(pads[4]) == 0 and int(pads[1]) == 0 and float(value.reshape(-1)[0] if value.size else 0) == 0)

    def transparent(n):
        """n keeps zero channels zero and can be rewritten for padded inputs."""
        op = n.op_type
        if op == "Conv":
            w = init_value(n.input[1])
            grp = attr(n, "group", 1)
            return w is not None and (grp == 1 or (grp == chans.get(n.input[0]) == w.shape[0] and w.shape[1] == 1))
        if op == "Clip":
            lo = init_value(n.input[1]) if len(n.input) > 1 and n.input[1] else np.array(-np.inf)
            hi = init_value(n.input[2]) if len(n.input) > 2 and n.input[2] else np.array(np.inf)
            return lo is not None and hi is not None and lo.size == 1 and hi.size == 1 and float(lo) <= 0 <= float(hi)
        if op == "PRelu":
            sl = init_value(n.input[1])
            return sl is not None and (sl.size == 1 or sl.shape == (chans.get(n.input[0]), 1, 1))
        if op in ZERO_PRESERVING:
            return True
        if op == "Add":
            return all(is_act(i) and chans[i] == chans.get(n.output[0]) for i in n.input)
        if op == "Pad":
            return channel_pad_ok(n)
        return False

    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a, b):
        parent[find(a)] = find(b)

    pinned = set(i.name for i in g.input) | set(o.name for o in g.output)
    for t in chans:
        if t in inits:
            continue
        p = prod.get(t)
        if p is None or not transparent(p):
            pinned.add(t)
        for c in cons.get(t, []):
            if not transparent(c):
                pinned.add(t)
    for n in g.node:
        if not n.output or n.output[0] not in chans or not transparent(n):
            continue
        out = n.output[0]
        if n.op_type in ZERO_PRESERVING:
            union(out, n.input[0])
        elif n.op_type == "Add":
            for i in n.input:
                union(out, i)
        elif n.op_type == "Conv" and attr(n, "group", 1) != 1:
            union(out, n.input[0])  # depthwise: one group per channel

    target = {}
    for t in chans:
        if t not in inits:
            r = find(t)
            target[r] = -(-chans[t] // align) * align
    for t in pinned:
        if t in chans:
            target[find(t)] = chans[t]

    def P(t):
        return target[find(t)]

    # a channel Pad can only add channels: fall back to the real count
    # before it where padding would need it to remove some
    changed = True
    while changed:
        changed = False
        for n in g.node:
            if n.op_type == "Pad" and n.output[0] in chans and P(n.output[0]) < P(n.input[0]):
                target[find(n.input[0])] = chans[n.input[0]]
                changed = True

    uses = {}
    for n in g.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1

    def replace(n, k, arr):
        name = n.input[k]
        t = numpy_helper.from_array(np.ascontiguousarray(arr), name)
        if uses.get(name, 0) > 1:  # shared: give this node its own copy
            t.name = name = name + "/__pad_%s" % n.name
            n.input[k] = name
            g.initializer.append(t)
        else:
            inits[name].CopyFrom(t)
        inits[name] = t

    def grow(a, axis, n):
        if a.shape[axis] == n:
            return a
        shape = list(a.shape)
        shape[axis] = n
        out = np.zeros(shape, a.dtype)
        out[tuple(slice(0, d) for d in a.shape)] = a
        return out

    changed_convs = 0
    for n in g.node:
        if not n.output or n.output[0] not in chans:
            continue
        out, inp = n.output[0], n.input[0]
        if n.op_type == "Conv":
            w = init_value(n.input[1])
            grp = attr(n, "group", 1)
            po, pi = P(out), P(inp)
            if grp == 1:
                nw = grow(grow(w, 0, po), 1, pi)
            else:
                nw = grow(w, 0, po)
                for a in n.attribute:
                    if a.name == "group":
                        a.i = po
            if nw.shape != w.shape:
                changed_convs += 1
                replace(n, 1, nw)
                if len(n.input) > 2 and n.input[2]:
                    replace(n, 2, grow(init_value(n.input[2]), 0, po))
        elif n.op_type == "PRelu" and P(out) != chans[out]:
            sl = init_value(n.input[1])
            if sl.size != 1:
                replace(n, 1, grow(sl, 0, P(out)))
        elif n.op_type == "Pad" and (P(out), P(inp)) != (chans[out], chans[inp]):
            pads = init_value(n.input[1]).astype(np.int64).copy()
            pads[5] = P(out) - P(inp)
            replace(n, 1, pads)
    # A Pad that only appends zero channels becomes a 1x1 convolution with
    # identity weights (exact: 1*x plus zeros): ORT has no NCHWc Pad, so the
    # Pad would take its result, the residual Add after it and every Add down
    # that chain back to NCHW.
    for n in g.node:
        if n.op_type != "Pad" or not channel_pad_ok(n):
            continue
        pads = init_value(n.input[1])
        if any(int(v) for i, v in enumerate(pads) if i != 5):
            continue  # spatial padding too: keep the Pad
        pi = P(n.input[0]) if n.input[0] in chans else None
        if pi is None:
            continue
        po = pi + int(pads[5])
        x = n.input[0]
        del n.input[:]
        del n.attribute[:]
        if po == pi:
            n.op_type = "Identity"
            n.input.append(x)
            continue
        eye = np.zeros((po, pi, 1, 1), np.float32)
        eye[np.arange(pi), np.arange(pi), 0, 0] = 1
        w = n.name + "/__eye"
        g.initializer.append(numpy_helper.from_array(eye, w))
        n.op_type = "Conv"
        n.input.extend([x, w])
        n.attribute.extend([helper.make_attribute("kernel_shape", [1, 1])])
    # initializers no node reads any more (replaced, not shared)
    used = set(i for n in g.node for i in n.input)
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
    return changed_convs


# --- peephole folds ---------------------------------------------------------------


def fold_affine_and_clip(model):
    """Folds what a TF.js graph leaves unfused into forms ORT's CPU kernels fuse, in place.

    - Conv -> Mul(per-channel constant) -> Add(per-channel constant): a
      batch norm TF.js kept as element-wise ops after a convolution. The
      scale goes into the weights and bias, the offset into the bias (what
      ORT's ConvMulFusion and ConvAddFusion do at load time).
    - Relu -> Min(c) -> Max(0): tf.keras' relu6 as clip_by_value. It becomes
      one Clip(0, c), the same function. Why: ORT fuses Clip into its NCHWc
      convolution but not Min and Max, so it reorders every such activation
      to NCHW and back around them (faceres: 27 pairs, a fifth of its Run).

    Returns the number of nodes removed.
    """
    g = model.graph
    nodes = list(g.node)  # one wrapper per node, so identity below holds
    inits = {i.name: i for i in g.initializer}
    outputs = {o.name for o in g.output}
    removed = set()

    def const(name):
        return numpy_helper.to_array(inits[name]) if name in inits else None

    def only_reader(t, rd):
        rs = rd.get(t, [])
        return rs[0] if len(rs) == 1 and t not in outputs else None

    def channel_vector(v, cout):
        """v as one value per output channel, if it broadcasts that way on NCHW."""
        if v is None or v.dtype != np.float32:
            return None
        if v.size == 1:
            return np.full(cout, v.reshape(-1)[0], np.float32)
        if v.ndim == 4 and v.shape[0] == 1 and v.shape[1] == cout and v.shape[2] == v.shape[3] == 1:
            return v.reshape(cout)
        return None

    def add_init(name, arr):
        g.initializer.append(numpy_helper.from_array(np.asarray(arr, np.float32), name))
        inits[name] = g.initializer[-1]
        return name

    rd = readers(nodes, removed)
    for n in nodes:
        if n.op_type != "Conv" or len(n.input) < 2 or n.input[1] not in inits:
            continue
        if len(rd.get(n.input[1], [])) != 1 or (len(n.input) > 2 and len(rd.get(n.input[2], [])) != 1):
            continue  # a shared weight or bias: leave it
        w = const(n.input[1])
        b = const(n.input[2]) if len(n.input) > 2 else np.zeros(w.shape[0], np.float32)
        folded = False
        while True:
            nxt = only_reader(n.output[0], rd)
            if nxt is None or nxt.op_type not in ("Mul", "Add"):
                break
            other = nxt.input[1] if nxt.input[0] == n.output[0] else nxt.input[0]
            v = channel_vector(const(other), w.shape[0])
            if v is None:
                break
            if nxt.op_type == "Mul":
                w, b = w * v.reshape(-1, 1, 1, 1), b * v
            else:
                b = b + v
            removed.add(id(nxt))
            n.output[0] = nxt.output[0]
            rd = readers(nodes, removed)
            folded = True
        if folded:
            wname, bname = add_init(n.name + "/__wfold", w), add_init(n.name + "/__bfold", b)
            del n.input[1:]
            n.input.extend([wname, bname])
            rd = readers(nodes, removed)
    prod = {o: n for n in nodes if id(n) not in removed for o in n.output}
    for n in nodes:
        if n.op_type != "Max" or id(n) in removed:
            continue
        lo, mn = const(n.input[1]), prod.get(n.input[0])
        if lo is None or lo.size != 1 or mn is None or mn.op_type != "Min":
            continue
        hi = const(mn.input[1])
        if hi is None or hi.size != 1 or only_reader(mn.output[0], rd) is not n:
            continue
        lo, hi = float(lo.reshape(-1)[0]), float(hi.reshape(-1)[0])
        if not lo <= hi:
            continue
        x, r = mn.input[0], prod.get(mn.input[0])
        if r is not None and r.op_type == "Relu" and lo >= 0 and only_reader(r.output[0], rd) is mn:
            x = r.input[0]  # max(., lo) with lo >= 0 clamps below as the Relu did
            removed.add(id(r))
        removed.add(id(mn))
        n.op_type = "Clip"
        lo_name, hi_name = add_init(n.name + "/__clip_lo", lo), add_init(n.name + "/__clip_hi", hi)
        del n.input[:]
        n.input.extend([x, lo_name, hi_name])
    del g.node[:]
    g.node.extend([n for n in nodes if id(n) not in removed])
    used = set(i for n in g.node for i in n.input)
    live = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(live)
    return len(removed)


def readers(nodes, removed):
    """Each tensor's readers among the nodes not removed."""
    r = {}
    for n in nodes:
        if id(n) not in removed:
            for i in n.input:
                r.setdefault(i, []).append(n)
    return r


def prelu_as_convs(model):
    """Rewrites each PRelu with per-channel slopes a as depthwise 1x1 convolutions, in place:

        PRelu(x) = Relu(Conv(x, 1)) + Conv(Relu(Conv(x, -1)), -a)

    the same function (max(x, 0) + a min(x, 0); float rounding aside). Why:
    ONNX Runtime's x86 NCHWc layout has no PRelu kernel, so it reorders every
    PRelu's input to NCHW and back (facemesh: 62 reorders a Run); the
    depthwise convolutions with Relu fused, and the Add as the last one's
    sum input, stay blocked (12 reorders, 1.3-1.5x the Run). Three passes
    over the tensor instead of one, so only for AVX-512 (--prelu-as-conv;
    models/arm64/ converts without it).

    Returns the number of PRelus rewritten.
    """
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    out, k = [], 0
    for n in list(g.node):
        a = numpy_helper.to_array(inits[n.input[1]]) if n.op_type == "PRelu" and n.input[1] in inits else None
        if a is None or a.ndim != 3 or a.shape[1:] != (1, 1):
            out.append(n)
            continue
        x, y, c = n.input[0], n.output[0], a.shape[0]

        def weight(name, v):
            g.initializer.append(numpy_helper.from_array(np.asarray(v, np.float32).reshape(c, 1, 1, 1), name))
            return name

        def dw(src, w, dst):
            out.append(helper.make_node("Conv", [src, w], [dst], name=dst, group=c, kernel_shape=[1, 1]))

        base = n.name or y
        dw(x, weight(base + "/__pos_w", np.ones(c)), base + "/__pos")
        out.append(helper.make_node("Relu", [base + "/__pos"], [base + "/__pos_relu"], name=base + "/__pos_relu"))
        dw(x, weight(base + "/__neg_w", -np.ones(c)), base + "/__neg")
        out.append(helper.make_node("Relu", [base + "/__neg"], [base + "/__neg_relu"], name=base + "/__neg_relu"))
        dw(base + "/__neg_relu", weight(base + "/__slope_w", -a.reshape(c)), base + "/__slope")
        out.append(helper.make_node("Add", [base + "/__slope", base + "/__pos_relu"], [y], name=y + "/__sum"))
        k += 1
    del g.node[:]
    g.node.extend(out)
    used = set(i for nd in g.node for i in nd.input)
    live = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(live)
    return k



def convert(model_path, opset=13, pad_align=0, prelu_as_conv=False, input_hw=None):
    with open(model_path) as f:
        model_json = json.load(f)
    if model_json.get("format") not in (None, "graph-model"):
        raise ConvertError("%s: format %r, want graph-model" % (model_path, model_json.get("format")))
    weights = load_weights(model_path, model_json.get("weightsManifest", []))
    c = Converter(model_json, weights, input_hw)
    graph = c.convert()
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                              producer_name=PRODUCER, producer_version=PRODUCER_VERSION)
    model.ir_version = 8  # ONNX 1.12 / ORT >= 1.10
    fold_affine_and_clip(model)
    if prelu_as_conv:
        prelu_as_convs(model)
    if pad_align:
        pad_channels(model, pad_align)
    model.doc_string = "converted from TF.js graph model %s (%s)" % (
        os.path.basename(model_path), model_json.get("convertedBy") or model_json.get("generatedBy") or "")
    onnx.checker.check_model(model)
    return model


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model_json")
    ap.add_argument("out")
    ap.add_argument("--opset", type=int, default=13)
    ap.add_argument("--pad-channels", type=int, default=0, metavar="N",
                    help="zero-pad activation channels to multiples of N (16: ORT's AVX-512 NCHWc block); same function, fewer layout reorders")
    ap.add_argument("--prelu-as-conv", action="store_true",
                    help="per-channel PRelu as depthwise 1x1 convolutions, which ORT's AVX-512 NCHWc layout fuses; same function, fewer layout reorders")
    ap.add_argument("--input-hw", metavar="H,W",
                    help="convert for this input height and width instead of the graph's (BlazeFace 256x256 as 160,256 for 16:9 frames); every SAME padding is recomputed for it")
    args = ap.parse_args()
    hw = None
    if args.input_hw:
        try:
            hw = tuple(int(v) for v in args.input_hw.split(","))
        except ValueError:
            hw = ()
        if len(hw) != 2 or min(hw) < 1:
            ap.error("--input-hw %r: want H,W, two positive integers" % args.input_hw)
    try:
        model = convert(args.model_json, args.opset, args.pad_channels, args.prelu_as_conv, hw)
    except (ConvertError, KeyError, ValueError, OSError) as e:
        print("tfjs2onnx: %s: %s" % (args.model_json, e), file=sys.stderr)
        return 1
    data = model.SerializeToString(deterministic=True)
    tmp = args.out + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
