"""Counting the floating-point operations of a Keras model, two independent ways.

- `count_flops_analytic(model)`: walks the Keras graph (nested models included) and counts
  2 x multiply-accumulates of every Conv2D, Conv2DTranspose, DepthwiseConv2D,
  SeparableConv2D and Dense layer (+1 per output for a bias), from the layers' own input and
  output shapes. Element-wise work (BatchNorm, activations, adds, pooling, resize) is NOT
  counted: on these models it is a few percent.
- `count_flops_profiler(model)`: traces the model at batch 1, freezes the variables into
  constants and runs TensorFlow's graph profiler (`ProfileOptionBuilder.float_operation()`),
  which counts the registered FLOPs of every op in the graph (element-wise ops included).

Both return FLOPs per image (one face) at batch 1. 1 multiply-add = 2 FLOPs.
"""
import math

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2
from tensorflow.python.profiler import model_analyzer, option_builder

_CONV = ("Conv2D", "Conv2DTranspose", "DepthwiseConv2D", "SeparableConv2D", "Dense")


def _shape(x):
    return tuple(int(d) if d is not None else 1 for d in x.shape[1:])


def _leaves(model):
    """Leaf layers of a Keras model, recursing into nested models (each layer once)."""
    seen, out = set(), []

    def walk(m):
        for layer in m.layers:
            if id(layer) in seen:
                continue
            seen.add(id(layer))
            if isinstance(layer, keras.Model):
                walk(layer)
            else:
                out.append(layer)
    walk(model)
    return out


def layer_flops(layer):
    """FLOPs of one leaf layer per image (0 for layers that are not conv/dense).

    Conv2D: 2*Ho*Wo*Co*kh*kw*Ci/groups; Conv2DTranspose: 2*Hi*Wi*Ci*kh*kw*Co (every input
    pixel scatters a kh x kw x Co patch); DepthwiseConv2D: 2*Ho*Wo*Ci*m*kh*kw;
    SeparableConv2D: depthwise + 1x1 pointwise; Dense: 2*in*units per row. Bias: +1 per output.
    """
    kind = type(layer).__name__
    if kind not in _CONV:
        return 0
    ins, outs = _shape(layer.input), _shape(layer.output)
    bias = math.prod(outs) if getattr(layer, "use_bias", False) else 0
    if kind == "Dense":
        rows = math.prod(ins[:-1]) if len(ins) > 1 else 1
        return 2 * rows * ins[-1] * layer.units + bias
    kh, kw = layer.kernel_size
    ci, co = ins[-1], outs[-1]
    if kind == "Conv2D":
        return 2 * outs[0] * outs[1] * co * kh * kw * ci // getattr(layer, "groups", 1) + bias
    if kind == "Conv2DTranspose":
        return 2 * ins[0] * ins[1] * ci * kh * kw * co + bias
    if kind == "DepthwiseConv2D":
        return 2 * outs[0] * outs[1] * ci * layer.depth_multiplier * kh * kw + bias
    mid = ci * layer.depth_multiplier  # SeparableConv2D
    return 2 * outs[0] * outs[1] * (mid * kh * kw + mid * co) + bias


def count_flops_analytic(model, by_layer=False):
    """FLOPs per image of `model` (conv/dense layers only, see module docstring).
    by_layer=True returns (total, {layer name: flops}) with the non-zero layers."""
    per = {}
    for layer in _leaves(model):
        f = layer_flops(layer)
        if f:
            per[layer.name] = per.get(layer.name, 0) + f
    total = int(sum(per.values()))
    return (total, per) if by_layer else total


def frozen_graph(model):
    """GraphDef of model(x, training=False) at batch 1 with variables folded into constants."""
    spec = tf.TensorSpec((1,) + tuple(model.inputs[0].shape[1:]), model.inputs[0].dtype)
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    return convert_variables_to_constants_v2(fn).graph


def count_flops_profiler(model):
    """FLOPs per image counted by TensorFlow's profiler on the frozen batch-1 graph
    (every op with a registered FLOP count, element-wise ops included)."""
    graph = frozen_graph(model)
    opts = (option_builder.ProfileOptionBuilder(
        option_builder.ProfileOptionBuilder.float_operation()).with_empty_output().build())
    prof = model_analyzer.profile(graph, options=opts)
    return int(prof.total_float_ops)


def matmul_flops(n):
    """FLOPs of an n x n by n x n matrix product (2 n^3)."""
    return 2 * int(n) ** 3


def achieved_gflops(flops_per_image, images_per_s):
    """GFLOP/s delivered at `images_per_s` (None when either is unknown)."""
    if not flops_per_image or not images_per_s or not np.isfinite(images_per_s):
        return None
    return flops_per_image * images_per_s / 1e9
