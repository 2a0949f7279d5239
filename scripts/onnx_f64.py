#!/usr/bin/python3
"""Evaluate an ONNX graph in float64 with numpy: the exact-arithmetic
reference the converted models' fidelity tests compare both ONNX Runtime and
TF.js against (both compute in float32, each with its own summation order).

    /usr/bin/python3 scripts/onnx_f64.py MODEL.onnx IN.json OUT.json

IN.json: {"shape": [1, H, W, C], "inputs": [[...flat float...], ...]}
OUT.json: {"outputs": {name: [[...flat...] per input]}}

Ops: the ones the BlazeFace graphs use (Transpose, Conv incl. grouped and
depthwise, Relu, Add, MaxPool, Pad, Reshape, Identity); any other stops
with its name.
"""
import json
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper


def attrs(n):
    return {a.name: helper.get_attribute_value(a) for a in n.attribute}


def windows(x, kh, kw, sh, sw):
    """[N, C, Ho, Wo, kh, kw] view of the (already padded) x."""
    n, c, h, w = x.shape
    ho, wo = (h - kh) // sh + 1, (w - kw) // sw + 1
    s = x.strides
    return np.lib.stride_tricks.as_strided(x, (n, c, ho, wo, kh, kw), (s[0], s[1], s[2] * sh, s[3] * sw, s[2], s[3]), writeable=False)


def conv(x, w, b, a):
    if any(d != 1 for d in a.get("dilations", [1, 1])):
        raise SystemExit("onnx_f64: dilated Conv is not supported")
    o, cg, kh, kw = w.shape
    g = a.get("group", 1)
    sh, sw = a.get("strides", [1, 1])
    pt, pl, pb, pr = a.get("pads", [0, 0, 0, 0])
    p = windows(np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr))), kh, kw, sh, sw)
    og = o // g
    out = np.empty((x.shape[0], o) + p.shape[2:4])
    for gi in range(g):
        out[:, gi * og:(gi + 1) * og] = np.einsum("nchwij,ocij->nohw", p[:, gi * cg:(gi + 1) * cg], w[gi * og:(gi + 1) * og], optimize=True)
    if b is not None:
        out += b.reshape(1, -1, 1, 1)
    return out


def maxpool(x, a):
    kh, kw = a["kernel_shape"]
    sh, sw = a.get("strides", [1, 1])
    pt, pl, pb, pr = a.get("pads", [0, 0, 0, 0])
    return windows(np.pad(x, ((0, 0), (0, 0), (pt, pb), (pl, pr)), constant_values=-np.inf), kh, kw, sh, sw).max(axis=(4, 5))


def pad(x, pads, value):
    r = len(pads) // 2
    return np.pad(x, [(int(pads[k]), int(pads[k + r])) for k in range(r)], constant_values=value)


def run(graph, consts, x):
    v = dict(consts)
    v[graph.input[0].name] = x
    for n in graph.node:
        a = attrs(n)
        i = [v[name] if name else None for name in n.input]
        op = n.op_type
        if op == "Transpose":
            r = np.transpose(i[0], a["perm"])
        elif op == "Conv":
            r = conv(i[0], i[1], i[2] if len(i) > 2 else None, a)
        elif op == "Relu":
            r = np.maximum(i[0], 0)
        elif op == "Add":
            r = i[0] + i[1]
        elif op == "MaxPool":
            r = maxpool(i[0], a)
        elif op == "Pad":
            r = pad(i[0], i[1], float(i[2]) if len(i) > 2 and i[2] is not None else 0.0)
        elif op == "Reshape":
            r = i[0].reshape([int(d) for d in i[1]])
        elif op == "Identity":
            r = i[0]
        else:
            raise SystemExit("onnx_f64: op %s (node %s) is not supported" % (op, n.name))
        v[n.output[0]] = r
    return {o.name: v[o.name] for o in graph.output}


def main():
    model_path, in_path, out_path = sys.argv[1:4]
    graph = onnx.load(model_path).graph
    consts = {}
    for t in graph.initializer:
        arr = numpy_helper.to_array(t)
        consts[t.name] = arr.astype(np.float64) if arr.dtype.kind == "f" else arr
    with open(in_path) as f:
        req = json.load(f)
    outs = {}
    for flat in req["inputs"]:
        x = np.array(flat, np.float64).reshape(req["shape"])
        for name, val in run(graph, consts, x).items():
            outs.setdefault(name, []).append(val.reshape(-1).tolist())
    with open(out_path, "w") as f:
        json.dump({"outputs": outs}, f)


if __name__ == "__main__":
    main()
