r"""The four models of the TopoLip experiment (no torchvision / timm), each probe-able and certifiable.

* :class:`ToyAttn`: patch embedding (+ learned positions) and ``depth`` bias-free multi-head dot-product
  attention layers, **no residual, no normalisation** (the paper's "Attn"), mean-pool over tokens, linear head.
* :class:`ToyConv`: ``depth`` x [conv 3x3, zero padding 1, stride 1, ReLU], **no residual, no normalisation**
  (the paper's "Conv"), global average pool, linear head.
* :class:`SmallViT`: patch embedding + positions, ``depth`` pre-norm blocks
  :math:`x\mapsto x+\mathrm{MHA}(\mathrm{LN}(x))`, :math:`x\mapsto x+\mathrm{MLP}(\mathrm{LN}(x))` (MLP with ReLU, so
  the 1-Lipschitz rule applies), final LayerNorm, mean-pool, linear head.
* :class:`ResNet18`: the CIFAR ResNet-18 (3x3 stem, stride 1, no max-pool; BasicBlocks [2, 2, 2, 2] with widths
  w, 2w, 4w, 8w and strides 1, 2, 2, 2; 1x1 conv + BatchNorm shortcut when the shape changes), GAP, linear.

Inputs are images in the pixel box :math:`[0,1]^{C\times H\times W}`; every model first applies the fixed
per-channel normalisation of its data set. Every model exposes

* ``layer_outputs(x) -> list[Tensor]``: index 0 is the input image, then each probed block, last the logits;
* ``layer_names()``: the names of those entries;
* ``block_bounds() -> list[list[LayerBound]]``: for probed block :math:`\ell\ge1` the :mod:`theory.composition`
  chain of the map from output :math:`\ell-1` to output :math:`\ell` (float64 copies of the current weights,
  BatchNorm in eval mode), so :func:`certified_bounds` gives a certified upper bound of the whole network and of
  every block (TopoLip variant C). All constants are for the Euclidean norm of the flattened tensors and hold on
  the pixel box: the normalisation layer sets the per-token radius of token models from the box, which is what the
  attention bounds need (:func:`theory.composition.attention` refuses an unbounded domain).

Conv bounds: stride-1 zero padding 1 (and the stride-2 convolutions and 1x1 stride-2 shortcuts of ResNet-18) are
covered by :func:`theory.convolution.zero_padded_upper_bound` on the input grid (a stride is a coordinate
sub-sampling of the stride-1 output, so the same bound holds); a 1x1 unpadded kernel is exactly the spectral norm
of its channel matrix. A residual block with a projection shortcut
:math:`x\mapsto g(x)+s(x)` gets :math:`\mathrm{Lip}(g)+\mathrm{Lip}(s)` (triangle inequality); pooling over
:math:`m` positions is :math:`1/\sqrt m`-Lipschitz (Cauchy-Schwarz).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from boundlab.theory import composition as comp

from .attention import multi_head_attention
from .data import patch_tokens
from boundlab.theory.validate import InputError, choice, positive_int
from boundlab.theory.attention import AttentionWeights
from boundlab.theory.convolution import ConvLayer
from boundlab.theory.numerics import round_up, spectral_norm

__all__ = ["MODELS", "ModelConfig", "build_model", "certified_bounds", "ProbedModel", "ToyAttn", "ToyConv",
           "SmallViT", "ResNet18", "MultiHeadAttention"]

MODELS = ("attn", "conv", "vit", "resnet")


@dataclass(frozen=True)
class ModelConfig:
    """Widths and depths (recorded in every result file). ``width`` is d for token models, channels for conv
    models (ResNet-18: the first stage, 64 in the standard model)."""

    width: int = 64
    depth: int = 6
    heads: int = 4
    patch: int = 4
    mlp_ratio: int = 2
    init: str = "kaiming"  # toy Attn/Conv only: "kaiming" (fan-in, ReLU gain for Conv, linear gain for Attn) or
    #                        "pytorch" (PyTorch's default, which shrinks the signal of un-normalised deep stacks)

    def as_dict(self) -> dict:
        return asdict(self)


def _init_weights(model: nn.Module, init: str, nonlinearity: str) -> None:
    """Re-initialise every conv/linear weight of a toy model (fan-in Kaiming normal, zero bias) unless
    ``init == "pytorch"``. Measured on digits (small scale, 5 epochs, seed 0): toy Conv test accuracy 0.26 with
    PyTorch's default vs 0.84 with Kaiming, toy Attn 0.23 vs 0.74 - without it the toy-model verdicts compare
    untrained models."""
    choice("init", init, ("kaiming", "pytorch"))
    if init == "pytorch":
        return
    for mod in model.modules():
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            nn.init.kaiming_normal_(mod.weight, nonlinearity=nonlinearity)
            if mod.bias is not None:
                nn.init.zeros_(mod.bias)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float64).numpy()


def _const(name: str, lip: float, radius=None) -> comp.LayerBound:
    """A layer with a fixed constant; ``radius``: ``None`` keeps the radius, a callable maps it."""
    return comp.LayerBound(name, lambda r: lip, radius if radius is not None else (lambda r: r))


def _sum_of_branches(main: list, shortcut: list, name: str) -> comp.LayerBound:
    r""":math:`x\mapsto g(x)+s(x)`: :math:`\mathrm{Lip}\le\mathrm{Lip}(g)+\mathrm{Lip}(s)`; radius untracked (conv nets)."""
    def lip(r: float) -> float:
        return round_up(comp.network_bound(main, r).value + comp.network_bound(shortcut, r).value)

    return comp.LayerBound(name, lip, lambda r: math.inf)


class Normalise(nn.Module):
    """``(x - mean) / std`` per channel, fixed buffers."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x):
        return (x - self.mean) / self.std

    def bound(self, patch_values: int | None = None) -> comp.LayerBound:
        """Constant :math:`\\max_c 1/s_c`; with ``patch_values`` (pixels per token, all channels), the per-token
        radius of the normalised pixel box, :math:`\\sqrt{P}\\max_c\\max(m_c, 1-m_c)/s_c`."""
        m, s = _np(self.mean).ravel(), _np(self.std).ravel()
        lip = round_up(float(np.max(1.0 / s)))
        if patch_values is None:
            return comp.LayerBound("normalise", lambda r: lip, lambda r: math.inf)
        box = float(np.max(np.maximum(m, 1.0 - m) / s))
        rad = round_up(math.sqrt(patch_values) * box)
        return comp.LayerBound("normalise", lambda r: lip, lambda r: rad)


class MultiHeadAttention(nn.Module):
    r"""Bias-free dot-product MHA, :math:`\sum_h\mathrm{softmax}(XQ_hK_h^\top X^\top/\sqrt{d_k})XV_hO_h`."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        if dim % heads:
            raise InputError(f"heads: width {dim} is not divisible by heads={heads}")
        self.heads, self.dk = heads, dim // heads
        self.q = nn.Linear(dim, dim, bias=False)
        self.k = nn.Linear(dim, dim, bias=False)
        self.v = nn.Linear(dim, dim, bias=False)
        self.o = nn.Linear(dim, dim, bias=False)

    def _per_head(self, lin: nn.Linear, out: bool = False) -> torch.Tensor:
        """A fused nn.Linear weight as per-head matrices in the row convention: (H, d, d_k), or (H, d_k, d) for
        the output projection (``x @ W.T`` split by column blocks, resp. row blocks)."""
        wt = lin.weight.T  # (in, out)
        if out:
            return wt.reshape(self.heads, self.dk, wt.shape[1])  # (H, d_k, d)
        return wt.reshape(wt.shape[0], self.heads, self.dk).permute(1, 0, 2)  # (H, d, d_k)

    def forward(self, x):
        q, k, v = self._per_head(self.q), self._per_head(self.k), self._per_head(self.v)
        return multi_head_attention(x, q, k, v, self._per_head(self.o, out=True))

    def weights(self) -> AttentionWeights:
        # nn.Linear stores (out, in); the theory's row convention wants (in, out), heads split by column blocks
        return AttentionWeights.from_arrays(_np(self.q.weight).T, _np(self.k.weight).T, _np(self.v.weight).T,
                                            _np(self.o.weight).T, heads=self.heads)


class ProbedModel(nn.Module):
    """Common interface: ``forward``, ``layer_outputs``, ``layer_names``, ``block_bounds``."""

    name = "model"

    def layer_names(self) -> list[str]:
        raise NotImplementedError

    def layer_outputs(self, x) -> list[torch.Tensor]:
        raise NotImplementedError

    def block_bounds(self) -> list[list[comp.LayerBound]]:
        raise NotImplementedError

    def forward(self, x):
        return self.layer_outputs(x)[-1]


# --------------------------------------------------------------------------- token models
class _PatchEmbed(nn.Module):
    def __init__(self, channels: int, image_size: int, patch: int, dim: int):
        super().__init__()
        if image_size % patch:
            raise InputError(f"patch: image size {image_size} is not divisible by patch={patch}")
        self.patch, self.channels = patch, channels
        self.tokens = (image_size // patch) ** 2
        self.proj = nn.Linear(channels * patch * patch, dim)
        self.pos = nn.Parameter(torch.zeros(self.tokens, dim))
        nn.init.normal_(self.pos, std=0.02)

    def forward(self, x):
        return self.proj(patch_tokens(x, self.patch)) + self.pos  # (B, T, dim)

    def bounds(self) -> list[comp.LayerBound]:
        # patch extraction is a permutation of coordinates (an isometry); the position add is a translation
        pos = float(np.max(np.linalg.norm(_np(self.pos), axis=1)))
        return [comp.linear(_np(self.proj.weight).T, _np(self.proj.bias), name="patch_embed"),
                _const("position", 1.0, lambda r: round_up(r + pos))]


def _mean_pool_tokens(n: int) -> comp.LayerBound:
    return _const("mean_pool", round_up(1.0 / math.sqrt(n)))


class ToyAttn(ProbedModel):
    name = "attn"

    def __init__(self, channels, image_size, num_classes, mean, std, cfg: ModelConfig):
        super().__init__()
        self.norm_in = Normalise(mean, std)
        self.embed = _PatchEmbed(channels, image_size, cfg.patch, cfg.width)
        self.layers = nn.ModuleList(MultiHeadAttention(cfg.width, cfg.heads) for _ in range(cfg.depth))
        self.head = nn.Linear(cfg.width, num_classes)
        _init_weights(self, cfg.init, "linear")

    def layer_names(self):
        return ["input", "embed"] + [f"attn{i + 1}" for i in range(len(self.layers))] + ["logits"]

    def layer_outputs(self, x):
        outs = [x]
        h = self.embed(self.norm_in(x))
        outs.append(h)
        for layer in self.layers:
            h = layer(h)
            outs.append(h)
        outs.append(self.head(h.mean(dim=1)))
        return outs

    def block_bounds(self):
        n = self.embed.tokens
        blocks = [[self.norm_in.bound(self.embed.channels * self.embed.patch ** 2)] + self.embed.bounds()]
        blocks += [[comp.attention(a.weights(), n, name=f"attn{i + 1}")] for i, a in enumerate(self.layers)]
        blocks.append([_mean_pool_tokens(n), comp.linear(_np(self.head.weight).T, _np(self.head.bias), "head")])
        return blocks


class _ViTBlock(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.attn = MultiHeadAttention(dim, heads)
        self.fc1, self.fc2 = nn.Linear(dim, mlp_ratio * dim), nn.Linear(mlp_ratio * dim, dim)

    def forward(self, x):
        x = x + self.attn(self.ln1(x))
        return x + self.fc2(F.relu(self.fc1(self.ln2(x))))

    def bounds(self, n: int, name: str) -> list[comp.LayerBound]:
        ln = lambda m, nm: comp.layernorm(_np(m.weight), _np(m.bias), m.eps, name=nm)  # noqa: E731
        return [comp.residual(ln(self.ln1, "ln1"), comp.attention(self.attn.weights(), n), name=f"{name}.attn"),
                comp.residual(ln(self.ln2, "ln2"), comp.linear(_np(self.fc1.weight).T, _np(self.fc1.bias)),
                              comp.relu(), comp.linear(_np(self.fc2.weight).T, _np(self.fc2.bias)),
                              name=f"{name}.mlp")]


class SmallViT(ProbedModel):
    name = "vit"

    def __init__(self, channels, image_size, num_classes, mean, std, cfg: ModelConfig):
        super().__init__()
        self.norm_in = Normalise(mean, std)
        self.embed = _PatchEmbed(channels, image_size, cfg.patch, cfg.width)
        self.blocks = nn.ModuleList(_ViTBlock(cfg.width, cfg.heads, cfg.mlp_ratio) for _ in range(cfg.depth))
        self.ln = nn.LayerNorm(cfg.width)
        self.head = nn.Linear(cfg.width, num_classes)

    def layer_names(self):
        return ["input", "embed"] + [f"block{i + 1}" for i in range(len(self.blocks))] + ["logits"]

    def layer_outputs(self, x):
        outs = [x]
        h = self.embed(self.norm_in(x))
        outs.append(h)
        for blk in self.blocks:
            h = blk(h)
            outs.append(h)
        outs.append(self.head(self.ln(h).mean(dim=1)))
        return outs

    def block_bounds(self):
        n = self.embed.tokens
        blocks = [[self.norm_in.bound(self.embed.channels * self.embed.patch ** 2)] + self.embed.bounds()]
        blocks += [b.bounds(n, f"block{i + 1}") for i, b in enumerate(self.blocks)]
        blocks.append([comp.layernorm(_np(self.ln.weight), _np(self.ln.bias), self.ln.eps, "ln"),
                       _mean_pool_tokens(n), comp.linear(_np(self.head.weight).T, _np(self.head.bias), "head")])
        return blocks


# --------------------------------------------------------------------------- conv models
def _gap(h: int, w: int) -> comp.LayerBound:
    return _const("avg_pool", round_up(1.0 / math.sqrt(h * w)))


def _bn_bound(bn: nn.BatchNorm2d, name: str) -> comp.LayerBound:
    lip = comp.batchnorm_eval_lipschitz(_np(bn.weight), _np(bn.running_var), bn.eps).value
    return comp.LayerBound(name, lambda r: lip, lambda r: math.inf)


def conv_layer(conv: nn.Conv2d, size: int) -> ConvLayer:
    """The :class:`theory.convolution.ConvLayer` of a torch ``nn.Conv2d`` (zero padding, its stride) on a
    ``size`` x ``size`` input: the one place a torch conv becomes the validated layer the bounds take."""
    if conv.padding_mode != "zeros" or isinstance(conv.padding, str) or conv.stride[0] != conv.stride[1] \
            or conv.dilation != (1, 1) or conv.groups != 1:
        raise InputError(f"conv: only zero-padded, square-stride, undilated, ungrouped convolutions are bounded, got "
                         f"{conv}")
    return ConvLayer.create(_np(conv.weight), size, tuple(conv.padding), conv.stride[0])


def _conv_bound(conv: nn.Conv2d, size: int, name: str) -> comp.LayerBound:
    """Zero-padded conv (any stride) via :func:`theory.composition.conv2d`; a 1x1 kernel without padding is a
    per-pixel linear map (then sub-sampled by the stride), whose norm is exactly the channel matrix's spectral norm."""
    layer = conv_layer(conv, size)
    w = layer.kernel
    if w.shape[2:] == (1, 1) and not any(layer.padding):
        val = round_up(spectral_norm(w[:, :, 0, 0]))
        return comp.LayerBound(name, lambda r: val, lambda r: math.inf)
    return comp.conv2d(layer, name=name)


class ToyConv(ProbedModel):
    name = "conv"

    def __init__(self, channels, image_size, num_classes, mean, std, cfg: ModelConfig):
        super().__init__()
        self.norm_in = Normalise(mean, std)
        self.size = image_size
        w = cfg.width
        self.convs = nn.ModuleList(nn.Conv2d(channels if i == 0 else w, w, 3, padding=1) for i in range(cfg.depth))
        self.head = nn.Linear(w, num_classes)
        _init_weights(self, cfg.init, "relu")

    def layer_names(self):
        return ["input"] + [f"conv{i + 1}" for i in range(len(self.convs))] + ["logits"]

    def layer_outputs(self, x):
        outs = [x]
        h = self.norm_in(x)
        for conv in self.convs:
            h = F.relu(conv(h))
            outs.append(h)
        outs.append(self.head(h.mean(dim=(2, 3))))
        return outs

    def block_bounds(self):
        blocks = []
        for i, conv in enumerate(self.convs):
            chain = [self.norm_in.bound()] if i == 0 else []
            blocks.append(chain + [_conv_bound(conv, self.size, f"conv{i + 1}"), comp.relu()])
        blocks.append([_gap(self.size, self.size), comp.linear(_np(self.head.weight).T, _np(self.head.bias), "head")])
        return blocks


class _BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = None
        if stride != 1 or cin != cout:
            self.short = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.stride = stride

    def forward(self, x):
        out = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        return F.relu(out + (x if self.short is None else self.short(x)))

    def bounds(self, size: int, name: str) -> list[comp.LayerBound]:
        mid = conv_layer(self.conv1, size).output_size[0]
        main = [_conv_bound(self.conv1, size, "conv1"), _bn_bound(self.bn1, "bn1"), comp.relu(),
                _conv_bound(self.conv2, mid, "conv2"), _bn_bound(self.bn2, "bn2")]
        if self.short is None:
            body = comp.residual(*main, name=name)
        else:
            body = _sum_of_branches(main, [_conv_bound(self.short[0], size, "short"), _bn_bound(self.short[1], "bn")],
                                    name)
        return [body, comp.relu()]


class ResNet18(ProbedModel):
    name = "resnet"

    def __init__(self, channels, image_size, num_classes, mean, std, cfg: ModelConfig):
        super().__init__()
        self.norm_in = Normalise(mean, std)
        self.size = image_size
        w = cfg.width
        self.stem = nn.Conv2d(channels, w, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(w)
        blocks, cin = [], w
        for i, (mult, stride) in enumerate(((1, 1), (2, 2), (4, 2), (8, 2))):
            for j in range(2):
                blocks.append(_BasicBlock(cin, w * mult, stride if j == 0 else 1))
                cin = w * mult
        self.blocks = nn.ModuleList(blocks)
        self.head = nn.Linear(cin, num_classes)

    def layer_names(self):
        return ["input", "stem"] + [f"layer{i // 2 + 1}.{i % 2}" for i in range(len(self.blocks))] + ["logits"]

    def layer_outputs(self, x):
        outs = [x]
        h = F.relu(self.bn(self.stem(self.norm_in(x))))
        outs.append(h)
        for blk in self.blocks:
            h = blk(h)
            outs.append(h)
        outs.append(self.head(h.mean(dim=(2, 3))))
        return outs

    def block_bounds(self):
        size = self.size
        blocks = [[self.norm_in.bound(), _conv_bound(self.stem, size, "stem"), _bn_bound(self.bn, "bn"), comp.relu()]]
        for i, blk in enumerate(self.blocks):
            blocks.append(blk.bounds(size, f"layer{i // 2 + 1}.{i % 2}"))
            size = conv_layer(blk.conv1, size).output_size[0]
        blocks.append([_gap(size, size), comp.linear(_np(self.head.weight).T, _np(self.head.bias), "head")])
        return blocks


_CLASSES = {"attn": ToyAttn, "conv": ToyConv, "vit": SmallViT, "resnet": ResNet18}


def build_model(name: str, *, channels: int, image_size: int, num_classes: int, mean, std,
                config: ModelConfig | None = None, seed: int = 0) -> ProbedModel:
    """A fresh model, initialised from ``seed`` (PyTorch's default initialisers under ``torch.manual_seed``)."""
    choice("model", name, MODELS)
    cfg = config or ModelConfig()
    for field in ("width", "depth", "heads", "patch", "mlp_ratio"):
        positive_int(field, getattr(cfg, field))
    positive_int("channels", channels)
    positive_int("image_size", image_size)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InputError(f"seed: expected an integer, got {seed!r}")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = _CLASSES[name](channels, image_size, num_classes, tuple(mean), tuple(std), cfg)
    return model


def certified_bounds(model: ProbedModel) -> dict:
    """Certified upper bounds (float64, rounded outward) on the pixel box for the current weights.

    Returns ``{"network": L, "blocks": [L_1, ..., L_B], "table": per-layer table}`` where ``L_l`` bounds the
    Lipschitz constant of the map from probed output ``l-1`` to output ``l`` (flattened, Euclidean) and ``L`` the
    whole network (input image -> logits). BatchNorm is taken in eval mode (running statistics)."""
    blocks = model.block_bounds()
    chain = [layer for block in blocks for layer in block]
    total, table = comp.network_bound(chain, math.inf).details
    per_block, i = [], 0
    for block in blocks:
        consts = [row["lipschitz"] for row in table[i:i + len(block)]]
        per_block.append(comp.product_bound(consts).value)
        i += len(block)
    return {"network": total, "blocks": per_block, "table": table}
