#!/usr/bin/python3
"""Static int8 quantisation of a converted ONNX model into QDQ form.

    /usr/bin/python3 scripts/quantize_int8.py expose MODEL.onnx OUT.onnx
    /usr/bin/python3 scripts/quantize_int8.py quantize MODEL.onnx RANGES.json OUT.onnx
        [--ranges percentile|minmax] [--fp32 NAME ...] [--first-fp32]

Needs only numpy and onnx (Debian python3-onnx / python3-numpy); ONNX
Runtime's Python quantiser is not needed.

expose writes MODEL with every float activation a quantised op may read or
write as an extra graph output (static shapes from onnx shape inference), so
scripts/int8calib can run it through ONNX Runtime on real inputs and record
each tensor's range (RANGES.json).

quantize writes the QDQ model ONNX Runtime's CPU provider fuses into
QLinearConv and QLinearAdd:
- weights int8, symmetric, per output channel (DequantizeLinear on int8
  initializers, axis 0); biases int32 at input scale x weight scale;
- activations uint8, asymmetric, one QuantizeLinear/DequantizeLinear pair per
  tensor with the calibrated range (uint8 activations with int8 weights are
  MLAS's u8s8 kernels, VNNI on AVX-512);
- a Relu or a Clip (relu6) after a quantised Conv/Add that is its input's only reader is
  removed: its output's range starts at 0, so zero point 0 clamps as the
  Relu did (the same fold ORT's own quantiser makes); a Relu after a
  MaxPool of a quantised Conv likewise (the two commute);
- Identity nodes are dropped, a MaxPool of a quantised tensor keeps its
  input's scale so it runs on uint8;
- Convs whose output leaves the network (BlazeFace's score and box heads,
  the emotion head's class map) stay float32: their outputs are logits and
  input pixels, which 256 levels cannot hold; --fp32 keeps more (by node or
  output name), --first-fp32 the first Conv, --fp32-depthwise the depthwise
  ones (all three measured slower than the whole net in int8: every float
  island costs a DequantizeLinear, a QuantizeLinear and a layout change).
Output bytes are deterministic: names derive from the model's, nodes keep
graph order, and the ranges file is the only other input.
"""
import argparse
import hashlib
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper, shape_inference

PRODUCER = "edgemo-quantize-int8"
PRODUCER_VERSION = "1"

# ops whose float outputs calibration records
EXPOSE_OPS = {"Conv", "Add", "Relu", "Clip", "MaxPool", "Pad", "Transpose"}


class QuantError(Exception):
    pass


def save(model, path):
    data = model.SerializeToString(deterministic=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# --- expose ----------------------------------------------------------------------


def expose(model):
    """model with each float output of EXPOSE_OPS added as a graph output."""
    inferred = shape_inference.infer_shapes(model)
    vi = {v.name: v for v in inferred.graph.value_info}
    have = {o.name for o in model.graph.output}
    for n in model.graph.node:
        if n.op_type not in EXPOSE_OPS:
            continue
        for o in n.output:
            if o in have:
                continue
            v = vi.get(o)
            if v is None or v.type.tensor_type.elem_type != TensorProto.FLOAT:
                raise QuantError("%s (%s): no float shape from shape inference" % (o, n.op_type))
            model.graph.output.append(v)
            have.add(o)
    return model


# --- quantize --------------------------------------------------------------------


def act_params(lo, hi):
    """uint8 scale and zero point for [lo, hi] (widened to hold 0 exactly)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-8:
        hi = lo + 1e-8
    scale = np.float32((hi - lo) / 255.0)
    zp = int(np.clip(np.round(-lo / float(scale)), 0, 255))
    return scale, np.uint8(zp)


def weight_params(w):
    """int8 weights, symmetric per output channel (axis 0), and their scales."""
    flat = w.reshape(w.shape[0], -1).astype(np.float64)
    amax = np.abs(flat).max(axis=1)
    scale = np.where(amax > 0, amax / 127.0, 1.0).astype(np.float32)
    q = np.clip(np.round(flat / scale.astype(np.float64)[:, None]), -127, 127).astype(np.int8)
    return q.reshape(w.shape), scale


class Graph:
    def __init__(self, model):
        self.model = model
        self.g = model.graph
        self.inits = {i.name: i for i in self.g.initializer}
        self.outputs = {o.name for o in self.g.output}
        self.inputs = {i.name for i in self.g.input}

    def producers(self, nodes):
        return {o: n for n in nodes for o in n.output}

    def consumers(self, nodes):
        c = {}
        for n in nodes:
            for j, x in enumerate(n.input):
                c.setdefault(x, []).append((n, j))
        return c


def drop_identities(gr):
    """Identity nodes removed (their readers read the input), except those
    that write a graph output."""
    rename, nodes = {}, []
    for n in gr.g.node:
        for j, x in enumerate(n.input):
            if x in rename:
                n.input[j] = rename[x]
        if n.op_type == "Identity" and n.output[0] not in gr.outputs:
            rename[n.output[0]] = n.input[0]
            continue
        nodes.append(n)
    return nodes


def head_convs(nodes, cons):
    """Convs whose output no Conv, Add, Relu, Clip or MaxPool reads: the heads."""
    inner = {"Conv", "Add", "Relu", "Clip", "MaxPool"}
    out = set()
    for n in nodes:
        if n.op_type == "Conv" and not any(c.op_type in inner for c, _ in cons.get(n.output[0], [])):
            out.add(node_id(n))
    return out


def node_id(n):
    return n.name or n.output[0]


def depthwise_convs(nodes, inits):
    out = set()
    for n in nodes:
        if n.op_type != "Conv":
            continue
        g = next((a.i for a in n.attribute if a.name == "group"), 1)
        if g > 1 and g == inits[n.input[1]].dims[0]:
            out.add(node_id(n))
    return out


def clip_bounds(n, inits):
    """A Clip's constant (lo, hi) when lo <= 0 <= hi, else None."""
    def value(j, default):
        if len(n.input) <= j or not n.input[j]:
            return default
        if n.input[j] not in inits:
            return None
        return float(numpy_helper.to_array(inits[n.input[j]]).reshape(-1)[0])
    lo, hi = value(1, -np.inf), value(2, np.inf)
    if lo is None or hi is None or not lo <= 0 <= hi:
        return None
    return lo, hi


def quantize(model, ranges, method="percentile", fp32=(), first_fp32=False, fp32_depthwise=False):
    gr = Graph(model)
    nodes = drop_identities(gr)
    cons = gr.consumers(nodes)
    keep = head_convs(nodes, cons) | set(fp32)
    if first_fp32:
        keep.add(node_id(next(n for n in nodes if n.op_type == "Conv")))
    if fp32_depthwise:
        keep |= depthwise_convs(nodes, gr.inits)

    def is_q(n):
        if n.op_type == "Add":
            return not ({node_id(n), n.output[0]} & set(fp32))
        return n.op_type == "Conv" and not ({node_id(n), n.output[0]} & keep)

    # Relu and Clip folding: a quantised Conv/Add writing the activation's
    # output directly, its uint8 range clamped to the activation's bounds
    # (Relu: [0, inf); faceres's relu6: Clip [0, 6]), so saturation clamps
    # as the activation did.
    prod = gr.producers(nodes)
    bounds = {}
    folded = []
    for n in nodes:
        if n.op_type == "Relu":
            b = (0.0, np.inf)
        elif n.op_type == "Clip" and clip_bounds(n, gr.inits) is not None:
            b = clip_bounds(n, gr.inits)
        else:
            continue
        x = n.input[0]
        p = prod.get(x)
        if p is not None and is_q(p) and len(cons.get(x, [])) == 1 and x not in gr.outputs:
            p.output[0] = n.output[0]
            bounds[n.output[0]] = b
            folded.append(n)
        elif (n.op_type == "Relu" and p is not None and p.op_type == "MaxPool" and len(cons.get(x, [])) == 1
              and x not in gr.outputs):
            # Relu(MaxPool(y)) = MaxPool(Relu(y)): both are monotonic. The
            # Relu moves into y's producer's range, and the MaxPool runs on
            # uint8 between two quantised Convs (antispoof) instead of a
            # Dequantize, Relu and Quantize after it.
            y = p.input[0]
            pp = prod.get(y)
            if pp is not None and is_q(pp) and len(cons.get(y, [])) == 1 and y not in gr.outputs:
                p.output[0] = n.output[0]
                bounds[y] = b
                folded.append(n)
    gone = {id(n) for n in folded}
    nodes = [n for n in nodes if id(n) not in gone]

    def rng(t):
        r = ranges.get(t)
        if r is None:
            raise QuantError("%s: no calibrated range (rerun scripts/int8calib on this model)" % t)
        lo, hi = (r["lo"], r["hi"]) if method == "percentile" else (r["min"], r["max"])
        if t in bounds:
            lo, hi = max(lo, bounds[t][0]), min(hi, bounds[t][1])
        return lo, hi

    # quantised tensors and their (scale, zero point)
    qparams = {}
    for n in nodes:
        if not is_q(n):
            continue
        acts = [n.input[0]] if n.op_type == "Conv" else list(n.input)
        for t in acts + [n.output[0]]:
            if t in gr.inits:
                raise QuantError("%s: %s reads initializer %s as an activation" % (node_id(n), n.op_type, t))
            qparams.setdefault(t, act_params(*rng(t)))
    # A Relu left in place (its input has other readers) starts at 0; a
    # MaxPool over a quantised tensor keeps its input's scale, so ORT runs it
    # on uint8 (the max of quantised values is one of them: exact).
    for n in nodes:
        if n.op_type == "Relu" and n.output[0] in qparams:
            qparams[n.output[0]] = act_params(0.0, rng(n.output[0])[1])
        elif n.op_type in ("MaxPool", "Pad") and n.input[0] in qparams and n.output[0] in qparams:
            qparams[n.output[0]] = qparams[n.input[0]]

    new_inits, out_nodes = [], []

    def init(name, arr):
        new_inits.append(numpy_helper.from_array(arr, name))
        return name

    qname = {}

    def emit_q(t):
        s, z = qparams[t]
        qname[t] = t + "/q"
        out_nodes.append(helper.make_node("QuantizeLinear", [t, init(t + "/q_scale", s), init(t + "/q_zp", z)],
                                          [t + "/q"], name=t + "/Quantize"))

    dq_count = {}

    def emit_dq(t):
        k = dq_count.get(t, 0)
        dq_count[t] = k + 1
        out = "%s/dq%d" % (t, k)
        out_nodes.append(helper.make_node("DequantizeLinear", [qname[t], t + "/q_scale", t + "/q_zp"], [out],
                                          name="%s/Dequantize%d" % (t, k)))
        return out

    for t in sorted(qparams):
        if t in gr.inputs:
            emit_q(t)
    for n in nodes:
        x0 = n.input[0]
        for j, x in enumerate(n.input):
            if x in qparams:
                n.input[j] = emit_dq(x)
        if is_q(n) and n.op_type == "Conv":
            wname = n.input[1]
            w = numpy_helper.to_array(gr.inits[wname])
            wq, ws = weight_params(w)
            n.input[1] = wname + "/dq"
            out_nodes.append(helper.make_node(
                "DequantizeLinear", [init(wname + "/int8", wq), init(wname + "/scale", ws),
                                     init(wname + "/zp", np.zeros(len(ws), np.int8))],
                [wname + "/dq"], name=wname + "/Dequantize", axis=0))
            if len(n.input) > 2 and n.input[2]:
                bname = n.input[2]
                b = numpy_helper.to_array(gr.inits[bname]).astype(np.float64)
                s_in = float(qparams[x0][0])
                bs = (s_in * ws.astype(np.float64)).astype(np.float32)
                bq = np.round(b / bs.astype(np.float64)).astype(np.int32)
                n.input[2] = bname + "/dq"
                out_nodes.append(helper.make_node(
                    "DequantizeLinear", [init(bname + "/int32", bq), init(bname + "/scale", bs),
                                         init(bname + "/zp", np.zeros(len(bs), np.int32))],
                    [bname + "/dq"], name=bname + "/Dequantize", axis=0))
        out_nodes.append(n)
        for o in n.output:
            if o in qparams:
                emit_q(o)

    used = {x for n in out_nodes for x in n.input}
    g = gr.g
    kept = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(kept + new_inits)
    del g.node[:]
    g.node.extend(out_nodes)
    del g.value_info[:]
    model.producer_name, model.producer_version = PRODUCER, PRODUCER_VERSION
    model.doc_string = "int8 QDQ (%s ranges) of: %s" % (method, model.doc_string)
    onnx.checker.check_model(model)
    return model, {"quantized": sum(1 for n in nodes if is_q(n)), "fp32_convs": len(keep),
                   "activations_folded": len(folded), "tensors": len(qparams)}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("expose", help="add every calibrated tensor as a graph output")
    e.add_argument("model")
    e.add_argument("out")
    q = sub.add_parser("quantize", help="write the int8 QDQ model")
    q.add_argument("model")
    q.add_argument("ranges")
    q.add_argument("out")
    q.add_argument("--ranges", dest="method", choices=["percentile", "minmax"], default="percentile")
    q.add_argument("--fp32", nargs="*", default=[], metavar="NAME", help="nodes (name or output) to keep float32")
    q.add_argument("--first-fp32", action="store_true", help="keep the first Conv float32")
    q.add_argument("--fp32-depthwise", action="store_true", help="keep depthwise Convs float32")
    q.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    try:
        model = onnx.load(args.model)
        if args.cmd == "expose":
            save(expose(model), args.out)
            return 0
        with open(args.ranges) as f:
            table = json.load(f)
        with open(args.model, "rb") as f:
            sha = hashlib.sha256(f.read()).hexdigest()
        if table.get("source_sha256") != sha:
            raise QuantError("%s was calibrated on a model with sha256 %s, this one is %s: rerun scripts/int8calib"
                             % (args.ranges, table.get("source_sha256"), sha))
        ranges = table["tensors"]
        model, info = quantize(model, ranges, args.method, args.fp32, args.first_fp32, args.fp32_depthwise)
        save(model, args.out)
        if args.verbose:
            print(json.dumps(info), file=sys.stderr)
    except (QuantError, KeyError, ValueError, OSError, StopIteration) as ex:
        print("quantize_int8: %s: %s" % (args.model, ex), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
