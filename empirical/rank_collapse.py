r"""Token networks for the rank-collapse experiments (Dong et al. 2021): pure attention, +MLP, +skip, transformer.

A :class:`TokenNetwork` is a stack of blocks, each a multi-head attention layer
:math:`Z=\sum_hP_hXW_h` (:math:`W_h=V_hO_h`, :class:`theory.attention.AttentionWeights`) followed by the
variant's wiring (no biases in the attention, as in the theorems):

=============== =========================================================
``san``         :math:`X'=Z`
``san_mlp``     :math:`X'=f(Z)`, :math:`f(z)=\mathrm{relu}(zA+a)B+b` row-wise (Cor. 3.2)
``san_skip``    :math:`X'=X+Z`
``transformer`` post-LN (BERT-style): :math:`Y=\mathrm{LN}_1(X+Z)`, :math:`X'=\mathrm{LN}_2(Y+f(Y))`
=============== =========================================================

Weights are float64 numpy arrays (so :mod:`theory` bounds read them); :func:`random_network` draws them from a
seeded torch generator, attention weights first, so the four variants built from one seed share their attention
weights (paired comparisons). :func:`forward` runs a batch on CPU or CUDA and returns every layer's output and
attention matrices. :func:`image_patch_tokens` turns images into patch tokens (ViT-style), and
:func:`digits_patch_tokens` does so for the real 8x8 handwritten digits shipped with scikit-learn.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from boundlab.theory.validate import InputError, as_real_array, choice, positive_float, positive_int
from boundlab.theory.attention import AttentionWeights
from boundlab.theory.rank_collapse import residual_ratio

from ._torch import DTYPE, as_tensor, generator, resolve_device
from ..io.progress import emit
from .attention import multi_head_attention
from .data import digits_images, patch_tokens

__all__ = ["VARIANTS", "INPUTS", "Block", "TokenNetwork", "Forward", "random_network", "forward", "residual_ratios",
           "image_patch_tokens", "digits_patch_tokens", "collapse_inputs", "CollapseCurve", "collapse_curves"]

VARIANTS = ("san", "san_mlp", "san_skip", "transformer")
INPUTS = ("gaussian", "digits")


@dataclass(frozen=True)
class Block:
    """One layer: attention weights, an optional MLP ``(A, a, B, b)`` and optional post-LN ``(g1, b1, g2, b2)``."""

    attention: AttentionWeights
    mlp: tuple | None = None
    norms: tuple | None = None


@dataclass(frozen=True)
class TokenNetwork:
    """A stack of :class:`Block` wired as ``variant`` (one of :data:`VARIANTS`); LayerNorm epsilon ``eps``."""

    variant: str
    blocks: tuple[Block, ...]
    eps: float = 1e-5

    def __post_init__(self):
        choice("variant", self.variant, VARIANTS)
        if not self.blocks:
            raise InputError("blocks: expected at least one block (depth >= 1)")
        d = self.blocks[0].attention.dim
        for l, b in enumerate(self.blocks):
            if not isinstance(b.attention, AttentionWeights):
                raise InputError(f"blocks[{l}]: expected AttentionWeights, got {type(b.attention).__name__}")
            if b.attention.dim != d or b.attention.out_dim != d:
                raise InputError(f"blocks[{l}]: expected token width {d} in and out, got "
                                      f"{b.attention.dim} -> {b.attention.out_dim}")
            if self.variant in ("san_mlp", "transformer") and b.mlp is None:
                raise InputError(f"blocks[{l}]: variant {self.variant!r} needs an MLP")
            if self.variant == "transformer" and b.norms is None:
                raise InputError(f"blocks[{l}]: variant 'transformer' needs LayerNorm parameters")

    @property
    def depth(self) -> int:
        return len(self.blocks)

    @property
    def dim(self) -> int:
        return self.blocks[0].attention.dim

    @property
    def layers(self) -> list[AttentionWeights]:
        """The attention weights per layer (what :mod:`theory.rank_collapse` bounds read)."""
        return [b.attention for b in self.blocks]

    @property
    def mlps(self) -> list[tuple]:
        return [b.mlp for b in self.blocks]

    def with_variant(self, variant: str) -> "TokenNetwork":
        """The same weights wired as another variant (needs the MLP / norms that variant uses)."""
        return TokenNetwork(variant, self.blocks, self.eps)


@dataclass
class Forward:
    """Layer outputs ``outputs[l]`` (``outputs[0]`` is the input), each ``(B, n, d)``, and per-layer attention
    matrices ``attention[l]`` of layer l+1, each ``(B, H, n, n)``."""

    outputs: list[torch.Tensor]
    attention: list[torch.Tensor]


def _randn(shape, scale: float, g: torch.Generator, dev) -> np.ndarray:
    return (torch.randn(shape, generator=g, device=dev, dtype=DTYPE) * scale).cpu().numpy()


def random_network(variant: str, depth: int, dim: int, heads: int = 1, head_dim: int | None = None, *,
                   seed: int = 0, qk_scale: float = 1.0, value_scale: float = 1.0, hidden: int | None = None,
                   mlp_scale: float = 1.0, eps: float = 1e-5, device=None) -> TokenNetwork:
    r"""Gaussian weights with fan-in scaling (entries :math:`\mathcal N(0,s^2/\mathrm{fan\_in})`), from ``seed``.

    ``qk_scale`` scales :math:`W_Q,W_K`, ``value_scale`` scales :math:`W_V` (:math:`W_O` has fan-in scale 1),
    ``mlp_scale`` both MLP matrices (hidden width ``hidden``, default 2 * dim); MLP biases are
    :math:`\mathcal N(0,0.1^2)`; LayerNorm gains 1 and biases 0. Draw order (attention for all layers, then
    MLPs) makes every variant of one seed share the attention weights.
    """
    choice("variant", variant, VARIANTS)
    L = positive_int("depth", depth)
    d = positive_int("dim", dim)
    H = positive_int("heads", heads)
    dk = positive_int("head_dim", head_dim if head_dim is not None else max(1, d // H))
    k = positive_int("hidden", hidden if hidden is not None else 2 * d)
    for name, v in (("qk_scale", qk_scale), ("value_scale", value_scale), ("mlp_scale", mlp_scale)):
        positive_float(name, v, allow_zero=True)
    dev = resolve_device(device)
    g = generator(seed, dev)
    atts = []
    for _ in range(L):
        q = _randn((H, d, dk), qk_scale / math.sqrt(d), g, dev)
        kk = _randn((H, d, dk), qk_scale / math.sqrt(d), g, dev)
        v = _randn((H, d, dk), value_scale / math.sqrt(d), g, dev)
        o = _randn((H, dk, d), 1.0 / math.sqrt(H * dk), g, dev)
        atts.append(AttentionWeights.from_arrays(q, kk, v, o))
    blocks = []
    for l in range(L):
        mlp = (_randn((d, k), mlp_scale / math.sqrt(d), g, dev), _randn((k,), 0.1, g, dev),
               _randn((k, d), mlp_scale / math.sqrt(k), g, dev), _randn((d,), 0.1, g, dev))
        norms = (np.ones(d), np.zeros(d), np.ones(d), np.zeros(d))
        blocks.append(Block(atts[l], mlp, norms))
    return TokenNetwork(variant, tuple(blocks), positive_float("eps", eps))


def _t(a, dev) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a), dtype=DTYPE, device=dev)


def _attention(x: torch.Tensor, w: AttentionWeights, dev) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum_h P_h X W_h, P) for a batch (:func:`empirical.attention.multi_head_attention`)."""
    return multi_head_attention(x, _t(w.query, dev), _t(w.key, dev), _t(w.value, dev), _t(w.output, dev),
                                return_probs=True)


def _mlp(z: torch.Tensor, mlp, dev) -> torch.Tensor:
    a, a0, b, b0 = (_t(v, dev) for v in mlp)
    return torch.relu(z @ a + a0) @ b + b0


def forward(net: TokenNetwork, x, device=None) -> Forward:
    """Run ``x`` (``(n, d)`` or a batch ``(B, n, d)``) through ``net``; float64, every layer kept."""
    if not isinstance(net, TokenNetwork):
        raise InputError(f"net: expected TokenNetwork, got {type(net).__name__}")
    dev = resolve_device(device)
    xt = as_tensor("x", x, dev)
    if xt.dim() == 2:
        xt = xt.unsqueeze(0)
    if xt.dim() != 3 or xt.shape[-1] != net.dim:
        raise InputError(f"x: expected shape (n, {net.dim}) or (B, n, {net.dim}), got {tuple(xt.shape)}")
    outs, atts = [xt], []
    h = xt
    for b in net.blocks:
        z, p = _attention(h, b.attention, dev)
        atts.append(p)
        if net.variant == "san":
            h = z
        elif net.variant == "san_skip":
            h = h + z
        elif net.variant == "san_mlp":
            h = _mlp(z, b.mlp, dev)
        else:
            g1, c1, g2, c2 = (_t(v, dev) for v in b.norms)
            y = F.layer_norm(h + z, (net.dim,), g1, c1, net.eps)
            h = F.layer_norm(y + _mlp(y, b.mlp, dev), (net.dim,), g2, c2, net.eps)
        outs.append(h)
    return Forward(outs, atts)


def residual_ratios(net: TokenNetwork, x, device=None) -> np.ndarray:
    r"""Per sample and layer, :math:`\|\mathrm{res}(X^l)\|_{1,\infty}/\|X^l\|_{1,\infty}` (mean shift, as in the
    paper's experiments), shape ``(B, L+1)``; column 0 is the input."""
    fw = forward(net, x, device)
    outs = [o.detach().cpu().numpy() for o in fw.outputs]
    return np.array([[residual_ratio(o[b]) for o in outs] for b in range(outs[0].shape[0])])


def image_patch_tokens(images, patch: int) -> np.ndarray:
    """Non-overlapping ``patch x patch`` patches as tokens: ``(N, H, W[, C]) -> (N, (H/p)(W/p), p*p*C)``
    (:func:`empirical.data.patch_tokens` on channel-last images)."""
    a = as_real_array("images", images, ndim=(3, 4))
    p = positive_int("patch", patch)
    if a.ndim == 3:
        a = a[..., None]
    if a.shape[1] % p or a.shape[2] % p:
        raise InputError(f"patch: {p} does not divide the image size {a.shape[1]}x{a.shape[2]}")
    return patch_tokens(np.ascontiguousarray(a.transpose(0, 3, 1, 2)), p)


def digits_patch_tokens(indices, patch: int = 2) -> np.ndarray:
    """Real images: scikit-learn's 8x8 handwritten digits (:func:`empirical.data.digits_images`), as patch tokens
    (``patch=2``: 16 tokens of width 4). ``indices`` selects images (0..1796)."""
    images = digits_images()[0]
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    if idx.size == 0 or idx.min() < 0 or idx.max() >= len(images):
        raise InputError(f"indices: expected indices in [0, {len(images) - 1}], got {idx.tolist()}")
    return image_patch_tokens(images[idx], patch)


def collapse_inputs(kind: str, samples: int, *, patch: int = 2, seed: int = 0) -> np.ndarray:
    """``samples`` token matrices ``(samples, (8/patch)^2, patch^2)``: ``digits`` = patches of real 8x8 handwritten
    digits (images drawn without replacement by ``seed``), ``gaussian`` = i.i.d. standard normal tokens of the same
    shape (the random-input baseline)."""
    choice("kind", kind, INPUTS)
    b = positive_int("samples", samples)
    p = positive_int("patch", patch)
    if 8 % p:
        raise InputError(f"patch: expected a divisor of the digit size 8, got {p}")
    rng = np.random.default_rng(seed)
    if kind == "digits":
        if b > 1797:
            raise InputError(f"samples: the digits data set has 1797 images, got {b}")
        return digits_patch_tokens(np.sort(rng.choice(1797, size=b, replace=False)), patch=p)
    return rng.standard_normal((b, (8 // p) ** 2, p * p))


@dataclass
class CollapseCurve:
    r"""Residual ratio :math:`\|\mathrm{res}(X^l)\|_{1,\infty}/\|X^l\|_{1,\infty}` (mean shift) per layer
    :math:`l=0..L` over every (network seed, input) pair: ``mean``, ``std``, ``median``, and ``ratios`` of shape
    ``(networks * samples, L + 1)``."""

    variant: str
    mean: np.ndarray
    std: np.ndarray
    median: np.ndarray
    ratios: np.ndarray = field(repr=False)


def collapse_curves(x, depth: int, *, heads: int = 1, networks: int = 3, seed: int = 0, qk_scale: float = 1.0,
                    value_scale: float = 1.0, mlp_scale: float = 1.0, variants=VARIANTS, device=None,
                    progress=None) -> dict[str, CollapseCurve]:
    r"""The experiment of Dong et al. Sec. 5.1 / Fig. 2 at initialisation, on inputs ``x`` ``(B, n, d)``.

    For each network seed ``seed .. seed + networks - 1`` every variant is built by :func:`random_network` from
    that seed (so the four variants share their attention weights) and run on the whole batch; ``progress`` (a
    :data:`boundlab.io.progress.Reporter`) gets one step per (seed, variant). The paper used BERT/ALBERT/XLNet on 32 wiki_bio
    sequences; these are small random networks on image-patch or Gaussian tokens (the regime is the arguments).
    """
    a = as_real_array("x", x, ndim=3)
    L = positive_int("depth", depth)
    m = positive_int("networks", networks)
    if not variants:
        raise InputError("variants: expected at least one of " + ", ".join(VARIANTS))
    for v in variants:
        choice("variants", v, VARIANTS)
    rows: dict[str, list[np.ndarray]] = {v: [] for v in variants}
    for s in range(seed, seed + m):
        for v in variants:
            net = random_network(v, L, a.shape[2], heads=heads, seed=s, qk_scale=qk_scale, value_scale=value_scale,
                                 mlp_scale=mlp_scale, device=device)
            rows[v].append(residual_ratios(net, a, device))
            emit(progress, "rank collapse", (s - seed) * len(variants) + variants.index(v) + 1,
                 m * len(variants), f"network seed {s}, {v}: done")
    out = {}
    for v, r in rows.items():
        r = np.concatenate(r, axis=0)
        out[v] = CollapseCurve(v, r.mean(axis=0), r.std(axis=0), np.median(r, axis=0), r)
    return out
