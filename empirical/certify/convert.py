"""The studied torch models as :mod:`theory.local` networks: the one place a model becomes what the certificate takes.

Every parameter is copied in float64 (read as an exact real); BatchNorm is taken in eval mode with its running
statistics and eps, LayerNorm with its eps, convolutions with their exact zero padding and stride
(:func:`empirical.models.conv_layer`), the input normalisation with the model's buffers. :func:`network_of` refuses
a model it does not know (one line naming it) instead of guessing.
"""

from __future__ import annotations

import torch
import torch.nn as nn

from boundlab.theory import local as TL
from boundlab.theory.validate import InputError

from ..models import ResNet18, SmallViT, ToyAttn, ToyConv, conv_layer

__all__ = ["network_of"]


def _np(t: torch.Tensor):
    return t.detach().to("cpu", torch.float64).numpy()


def _normalise(mod) -> TL.ChannelAffine:
    return TL.ChannelAffine.normalise(_np(mod.mean).ravel(), _np(mod.std).ravel())


def _bn(bn: nn.BatchNorm2d) -> TL.ChannelAffine:
    if not bn.track_running_stats or bn.running_var is None:
        raise InputError("model: BatchNorm without running statistics cannot be certified in eval mode")
    w = _np(bn.weight) if bn.weight is not None else None
    b = _np(bn.bias) if bn.bias is not None else None
    import numpy as np

    c = bn.num_features
    return TL.ChannelAffine.batchnorm(w if w is not None else np.ones(c), b if b is not None else np.zeros(c),
                                      _np(bn.running_mean), _np(bn.running_var), float(bn.eps))


def _conv(conv: nn.Conv2d, size: int) -> TL.Conv:
    return TL.Conv.create(conv_layer(conv, size), None if conv.bias is None else _np(conv.bias))


def _dense(lin: nn.Linear) -> TL.Dense:
    return TL.Dense.create(_np(lin.weight), None if lin.bias is None else _np(lin.bias))


def _token(lin: nn.Linear) -> TL.TokenDense:
    return TL.TokenDense.create(_np(lin.weight), None if lin.bias is None else _np(lin.bias))


def _ln(ln: nn.LayerNorm) -> TL.LayerNorm:
    return TL.LayerNorm.create(_np(ln.weight), _np(ln.bias), float(ln.eps))


def _embed(model) -> tuple[list, list]:
    e = model.embed
    layers = [_normalise(model.norm_in), TL.Patchify.create(e.channels, int(round((e.tokens ** 0.5) * e.patch)),
                                                            e.patch),
              _token(e.proj), TL.AddConstant.create(_np(e.pos))]
    return layers, ["normalise", "patchify", "patch_embed", "position"]


def network_of(model) -> TL.Network:
    """The :class:`theory.local.Network` of a studied model (ToyAttn, ToyConv, SmallViT, ResNet18) in eval mode."""
    if isinstance(model, ToyConv):
        layers, names = [_normalise(model.norm_in)], ["normalise"]
        for i, conv in enumerate(model.convs):
            layers += [_conv(conv, model.size), TL.Relu.create()]
            names += [f"conv{i + 1}", f"relu{i + 1}"]
        layers += [TL.Mean.create("spatial"), _dense(model.head)]
        names += ["avg_pool", "head"]
        c = model.convs[0].in_channels
        return TL.Network.create((c, model.size, model.size), layers, names)
    if isinstance(model, ResNet18):
        size = model.size
        layers = [_normalise(model.norm_in), _conv(model.stem, size), _bn(model.bn), TL.Relu.create()]
        names = ["normalise", "stem", "bn", "relu"]
        for i, blk in enumerate(model.blocks):
            mid = conv_layer(blk.conv1, size).output_size[0]
            branch = [_conv(blk.conv1, size), _bn(blk.bn1), TL.Relu.create(), _conv(blk.conv2, mid), _bn(blk.bn2)]
            short = [] if blk.short is None else [_conv(blk.short[0], size), _bn(blk.short[1])]
            layers += [TL.Residual.create(branch, short), TL.Relu.create()]
            names += [f"layer{i // 2 + 1}.{i % 2}", f"layer{i // 2 + 1}.{i % 2}.relu"]
            size = mid
        layers += [TL.Mean.create("spatial"), _dense(model.head)]
        names += ["avg_pool", "head"]
        c = model.stem.in_channels
        return TL.Network.create((c, model.size, model.size), layers, names)
    if isinstance(model, ToyAttn):
        layers, names = _embed(model)
        for i, a in enumerate(model.layers):
            layers.append(TL.Attention.create(a.weights()))
            names.append(f"attn{i + 1}")
        layers += [TL.Mean.create("tokens"), _dense(model.head)]
        names += ["mean_pool", "head"]
        return TL.Network.create(_image_shape(model), layers, names)
    if isinstance(model, SmallViT):
        layers, names = _embed(model)
        for i, b in enumerate(model.blocks):
            layers.append(TL.Residual.create([_ln(b.ln1), TL.Attention.create(b.attn.weights())]))
            layers.append(TL.Residual.create([_ln(b.ln2), _token(b.fc1), TL.Relu.create(), _token(b.fc2)]))
            names += [f"block{i + 1}.attn", f"block{i + 1}.mlp"]
        layers += [_ln(model.ln), TL.Mean.create("tokens"), _dense(model.head)]
        names += ["ln", "mean_pool", "head"]
        return TL.Network.create(_image_shape(model), layers, names)
    raise InputError(f"model: no local certificate for {type(model).__name__} (ToyAttn, ToyConv, SmallViT, ResNet18)")


def _image_shape(model) -> tuple[int, int, int]:
    e = model.embed
    g = int(round(e.tokens ** 0.5))
    return (e.channels, g * e.patch, g * e.patch)
