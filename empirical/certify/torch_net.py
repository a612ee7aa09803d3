"""A :mod:`theory.local` network as a torch function (float64, batched): what the empirical side differentiates.

The certificate is about the description; the properties and the brackets measure the same description's
Jacobians here, and :func:`torch_function` of :func:`empirical.certify.convert.network_of` equals the model it came
from (tests/test_certify.py), so the empirical lower bounds are of the model itself.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from boundlab.theory import local as TL

from ..attention import multi_head_attention

__all__ = ["torch_function"]


def _t(a):
    return torch.as_tensor(a, dtype=torch.float64)


def _layer_fn(layer):
    if isinstance(layer, TL.Dense):
        w, b = _t(layer.weight), _t(layer.bias)
        return lambda x: x.flatten(1) @ w.T + b
    if isinstance(layer, TL.Conv):
        cl = layer.layer
        k, b = _t(cl.kernel), _t(layer.bias)
        t_, b_, l_, r_ = cl.padding
        return lambda x: F.conv2d(F.pad(x, (l_, r_, t_, b_)), k, b, stride=cl.stride)
    if isinstance(layer, TL.ChannelAffine):
        s, t = _t(layer.scale.mid), _t(layer.shift.mid)

        def affine(x):
            shape = (1, -1) + (1,) * (x.dim() - 2)
            return x * s.view(shape) + t.view(shape)

        return affine
    if isinstance(layer, TL.Patchify):
        idx = torch.as_tensor(layer.index)
        return lambda x: x.flatten(1)[:, idx]
    if isinstance(layer, TL.TokenDense):
        w, b = _t(layer.weight), _t(layer.bias)
        return lambda x: x @ w.T + b
    if isinstance(layer, TL.AddConstant):
        v = _t(layer.value)
        return lambda x: x + v
    if isinstance(layer, TL.Mean):
        return (lambda x: x.mean(dim=1)) if layer.over == "tokens" else (lambda x: x.mean(dim=(2, 3)))
    if isinstance(layer, TL.Relu):
        return torch.relu
    if isinstance(layer, TL.LayerNorm):
        g, b, e = _t(layer.gamma), _t(layer.beta), layer.eps
        return lambda x: F.layer_norm(x, (g.shape[0],), g, b, e)
    if isinstance(layer, TL.Attention):
        w = layer.weights
        q, k, v, o = (_t(a) for a in (w.query, w.key, w.value, w.output))
        return lambda x: multi_head_attention(x, q, k, v, o)
    if isinstance(layer, TL.Residual):
        br = [_layer_fn(x) for x in layer.branch]
        sc = [_layer_fn(x) for x in layer.shortcut]

        def res(x):
            a, s = x, x
            for f in br:
                a = f(a)
            for f in sc:
                s = f(s)
            return a + s

        return res
    raise TypeError(f"layer: {type(layer).__name__} has no torch function")  # pragma: no cover


def torch_function(network: TL.Network):
    """``f(x)``: batch ``(B, *input_shape)`` -> ``(B, output_dim)`` in float64, sample-wise."""
    fns = [_layer_fn(layer) for layer in network.layers]
    out_dim = math.prod(network.output_shape)

    def f(x):
        h = x
        for fn in fns:
            h = fn(h)
        return h.reshape(h.shape[0], out_dim)

    return f
