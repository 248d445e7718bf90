"""Multiply-add based FLOPs per image (2 per multiply-add) of convolution and dense layers. A
layer whose output size is unknown (a nested backbone built for any size) is not counted."""

import math

import keras
from keras import layers


def count_flops(model):
    total = 0
    for layer in model.layers:
        if isinstance(layer, keras.Model):  # a nested network (a pretrained backbone)
            total += count_flops(layer)
            continue
        out = getattr(layer, "output", None)
        if out is None or not hasattr(layer, "kernel_size") and not isinstance(layer, layers.Dense):
            continue
        out_shape = out.shape
        if isinstance(layer, layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
            continue
        if None in out_shape[1:-1]:
            continue
        spatial = math.prod(out_shape[1:-1])
        k = math.prod(layer.kernel_size)
        c_in = layer.input.shape[-1]
        if isinstance(layer, layers.SeparableConv2D):
            total += 2 * spatial * (k * c_in * layer.depth_multiplier + c_in * layer.depth_multiplier * out_shape[-1])
        elif isinstance(layer, layers.DepthwiseConv2D):
            total += 2 * spatial * k * c_in * layer.depth_multiplier
        else:
            total += 2 * spatial * k * c_in * out_shape[-1] // getattr(layer, "groups", 1)
    return int(total)
