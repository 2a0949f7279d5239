#!/usr/bin/python3
"""Writes a tiny, valid ONNX model shaped like the emotion head but with the
wrong input: input_1 [N, 32, 32, 1] instead of [N, 64, 64, 1]. Tests use it to
check that loading the wrong model is a clear error, not a crash.

usage: /usr/bin/python3 testdata/make_wrong_shape_model.py out.onnx
"""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

x = helper.make_tensor_value_info("input_1", TensorProto.FLOAT, ["batch", 32, 32, 1])
y = helper.make_tensor_value_info("Identity", TensorProto.FLOAT, ["batch", 7])
shape = numpy_helper.from_array(np.array([-1, 1024], np.int64), "shape")
w = numpy_helper.from_array(np.zeros((1024, 7), np.float32), "w")
g = helper.make_graph([
    helper.make_node("Reshape", ["input_1", "shape"], ["flat"]),
    helper.make_node("MatMul", ["flat", "w"], ["logits"]),
    helper.make_node("Softmax", ["logits"], ["Identity"], axis=-1),
], "wrong_shape", [x], [y], initializer=[shape, w])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
m.ir_version = 8
onnx.checker.check_model(m)
with open(sys.argv[1], "wb") as f:
    f.write(m.SerializeToString())
