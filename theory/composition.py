r"""Composition rules: products, residual blocks, LayerNorm, eval-mode BatchNorm, and network-level bounds.

Token-wise stacks (transformers) act on :math:`X\in\mathbb R^{n\times d}`; their constants are in the Frobenius
norm and their *domain* is tracked as a per-token radius :math:`R` (:math:`\|x_i\|\le R`), because attention is
only Lipschitz on bounded domains (:mod:`theory.attention`). A :class:`LayerBound` maps an input radius to a
Lipschitz constant and an output radius; :func:`network_bound` chains them:

.. math:: \mathrm{Lip}(f_L\circ\dots\circ f_1|_{B_{R_0}})\le\prod_\ell L_\ell(R_{\ell-1}),\qquad R_\ell = \rho_\ell(R_{\ell-1}).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from .validate import InputError, as_real_array, positive_float, positive_int
from .attention import AttentionLayer, AttentionWeights, bounded_dot_product_bound
from .convolution import ConvLayer, circular_spectral_norm, zero_padded_upper
from .numerics import round_up, spectral_norm
from .registry import Mutant, TightFamily, register

__all__ = [
    "product_bound",
    "residual_bound",
    "layernorm_lipschitz",
    "layernorm_output_radius",
    "batchnorm_eval_lipschitz",
    "LayerBound",
    "linear",
    "relu",
    "layernorm",
    "attention",
    "conv2d",
    "residual",
    "network_bound",
]


@register(
    "composition.product",
    norm="l2",
    kind="upper",
    assumptions=("each f_l Lipschitz on the image of the previous layers",),
    source="standard",
    confidence="standard",
    tight=TightFamily("aligned linear maps: f_l(x) = s_l u_{l+1} u_l^T x (ReLU the identity on the positive cone): "
                      "the composition has norm prod s_l", "standard", ratio=1.0),
    mutants=[Mutant("sum for product", lambda constants: float(sum(constants)), "known_false",
                    "two aligned layers of norms 3 and 4: composition 12 > 3 + 1 + 4")],
)
def product_bound(constants: Sequence[float]) -> float:
    r"""Product rule :math:`\mathrm{Lip}(f_L\circ\dots\circ f_1)\le\prod_\ell L_\ell`, rounded outward.

    .. math:: \mathrm{Lip}(f_L\circ\cdots\circ f_1)\le\prod_{\ell}\mathrm{Lip}(f_\ell)
    """
    vals = [positive_float(f"constants[{i}]", c, allow_zero=True) for i, c in enumerate(constants)]
    if not vals:
        raise InputError("constants: expected at least one constant")
    out = 1.0
    for v in vals:
        out = round_up(out * v, rel=1e-15) if v else 0.0
    return round_up(out)


@register(
    "composition.residual",
    norm="l2",
    kind="upper",
    assumptions=("g Lipschitz",),
    source="standard",
    confidence="standard",
    tight=TightFamily("an aligned linear branch g(x) = L P x (P an orthogonal projection): ||I + L P|| = 1 + L",
                      "standard", ratio=1.0),
    mutants=[Mutant("max(1, L)", lambda branch: max(1.0, float(branch)), "known_false",
                    "g(x) = L x with L > 0: x + g(x) has constant 1 + L > max(1, L)"),
             Mutant("L", lambda branch: float(branch), "known_false", "g = 0: x + g(x) = x has constant 1 > 0")],
)
def residual_bound(branch: float) -> float:
    r""":math:`\mathrm{Lip}(x+g(x))\le 1+\mathrm{Lip}(g)`.

    .. math:: \mathrm{Lip}(x\mapsto x+g(x))\le1+\mathrm{Lip}(g)
    """
    return round_up(1.0 + positive_float("branch", branch, allow_zero=True))


@register(
    "composition.layernorm",
    norm="l2",
    kind="upper",
    assumptions=("LN(x) = gamma * (x - mean) / sqrt(var + eps) + beta, biased variance", "eps > 0"),
    source="standard; Castin, Ablin, Peyre 2024 (attained at constant inputs)",
    confidence="derived",
    notes="J = diag(gamma) (I - 11^T/d - y y^T/d) / s with y ⟂ 1, ||y||^2 <= d and s >= sqrt(eps).",
    tight=TightFamily("constant gamma and a constant input (zero variance): the Jacobian is gamma (I - 11^T/d) / "
                      "sqrt(eps), of norm |gamma| / sqrt(eps) for d >= 2", "Castin, Ablin, Peyre 2024", ratio=1.0),
    mutants=[Mutant("no gamma", lambda gamma, eps: 1.0 / math.sqrt(eps), "known_false",
                    "constant gamma = 3 at a constant input: 3 / sqrt(eps) > 1 / sqrt(eps)"),
             Mutant("mean |gamma| for max", lambda gamma, eps: float(np.mean(np.abs(gamma))) / math.sqrt(eps),
                    "known_false", "d large, one |gamma_i| much larger than the rest, a constant input")],
)
def layernorm_lipschitz(gamma, eps: float) -> float:
    r"""Global Lipschitz constant bound of LayerNorm, :math:`\|\gamma\|_\infty/\sqrt\epsilon`.

    .. math:: \mathrm{Lip}_2(\mathrm{LN})\le\|\gamma\|_\infty/\sqrt{\epsilon}

    The Jacobian is :math:`\mathrm{diag}(\gamma)\,(I-\mathbf 1\mathbf 1^\top/d-yy^\top/d)/s` with
    :math:`s=\sqrt{\mathrm{var}(x)+\epsilon}\ge\sqrt\epsilon` and :math:`y\perp\mathbf 1`, :math:`\|y\|^2\le d`, so the
    middle factor is a PSD contraction. Equality at constant inputs when :math:`\gamma` is constant.
    """
    g = as_real_array("gamma", gamma, ndim=1)
    e = positive_float("eps", eps)
    return round_up(float(np.max(np.abs(g))) / math.sqrt(e))


@register(
    "composition.layernorm_radius",
    norm="l2",
    kind="upper",
    assumptions=("LN(x) = gamma * (x - mean) / sqrt(var + eps) + beta, biased variance", "eps > 0", "any input x"),
    source="standard: the normalised vector has squared norm d var / (var + eps) < d",
    confidence="derived",
    covers="the output radius of LayerNorm (what makes attention after a LayerNorm act on a bounded domain)",
    tight=TightFamily("constant gamma, beta = 0, a zero-mean input with var >> eps: ||LN(x)|| -> |gamma| sqrt(d)",
                      "standard", ratio=1.0),
    mutants=[Mutant("no sqrt(d)", lambda gamma, beta: float(np.max(np.abs(gamma))) + float(np.linalg.norm(beta)),
                    "known_false", "d >= 2, constant gamma, beta = 0, var >> eps: |gamma| sqrt(d) > |gamma|")],
)
def layernorm_output_radius(gamma, beta) -> float:
    r"""The output radius of LayerNorm, for every input (the normalised vector has norm :math:`<\sqrt d`).

    .. math:: \|\mathrm{LN}(x)\|_2\le\|\gamma\|_\infty\sqrt d+\|\beta\|_2
    """
    g = as_real_array("gamma", gamma, ndim=1)
    b = as_real_array("beta", beta, ndim=1)
    if b.shape != g.shape:
        raise InputError(f"beta: expected shape {g.shape} (like gamma), got {b.shape}")
    return round_up(float(np.max(np.abs(g))) * math.sqrt(g.size) + float(np.linalg.norm(b)))


@register(
    "composition.batchnorm_eval",
    norm="l2",
    kind="exact",
    assumptions=("inference mode (running statistics)",),
    source="standard (a per-channel affine map)",
    confidence="standard",
    mutants=[Mutant("no eps", lambda gamma, running_var, eps: float(np.max(np.abs(gamma) / np.sqrt(
        np.maximum(np.asarray(running_var, dtype=float), 1e-300)))), "known_false", "any eps > 0: the value changes"),
             Mutant("var not square-rooted", lambda gamma, running_var, eps: float(np.max(np.abs(gamma) / (
                 np.asarray(running_var, dtype=float) + eps))), "known_false", "var + eps != 1")],
)
def batchnorm_eval_lipschitz(gamma, running_var, eps: float) -> float:
    r"""Exact Lipschitz constant of eval-mode BatchNorm, :math:`\max_c|\gamma_c|/\sqrt{\mathrm{var}_c+\epsilon}` (rounded up).

    .. math:: \mathrm{Lip}_2(\mathrm{BN}_{\mathrm{eval}})=\max_c|\gamma_c|/\sqrt{\mathrm{var}_c+\epsilon}
    """
    g = as_real_array("gamma", gamma, ndim=1)
    v = as_real_array("running_var", running_var, ndim=1)
    if v.shape != g.shape:
        raise InputError(f"running_var: expected shape {g.shape} (like gamma), got {v.shape}")
    if (v < 0).any():
        raise InputError("running_var: expected non-negative variances")
    e = positive_float("eps", eps)
    return round_up(float(np.max(np.abs(g) / np.sqrt(v + e))))


@dataclass(frozen=True)
class LayerBound:
    """A layer as the composition rules see it: input radius -> (Lipschitz constant, output radius)."""

    name: str
    lipschitz: Callable[[float], float]
    out_radius: Callable[[float], float]


def linear(weight, bias=None, name: str = "linear") -> LayerBound:
    r"""Token-wise affine map :math:`x\mapsto W^\top x+b` (``weight`` is ``(d_in, d_out)``, row convention)."""
    w = as_real_array("weight", weight, ndim=2)
    b = np.zeros(w.shape[1]) if bias is None else as_real_array("bias", bias, ndim=1)
    if b.shape != (w.shape[1],):
        raise InputError(f"bias: expected shape ({w.shape[1]},), got {b.shape}")
    s = round_up(spectral_norm(w))
    bn = float(np.linalg.norm(b))
    return LayerBound(name, lambda r: s, lambda r: round_up(s * r + bn))


def relu(name: str = "relu") -> LayerBound:
    """ReLU: 1-Lipschitz, does not increase norms."""
    return LayerBound(name, lambda r: 1.0, lambda r: r)


def layernorm(gamma, beta, eps: float, name: str = "layernorm") -> LayerBound:
    """Per-token LayerNorm: :func:`layernorm_lipschitz`, output radius :func:`layernorm_output_radius`."""
    lip = layernorm_lipschitz(gamma, eps).value
    rad = layernorm_output_radius(gamma, beta).value
    return LayerBound(name, lambda r: lip, lambda r: rad)


def attention(weights: AttentionWeights, n_tokens: int, name: str = "attention") -> LayerBound:
    r"""Dot-product MHA on :math:`B_R^n`; output tokens are convex combinations mapped by :math:`M_h`, so
    :math:`\|y_i\|\le\sum_h\|M_h\|_2R`."""
    n = positive_int("n_tokens", n_tokens)
    mnorm = sum(spectral_norm(m) for m in weights.value_output_matrices())

    def lip(r: float) -> float:
        if not math.isfinite(r):
            raise InputError(f"{name}: attention needs a bounded input radius (put a LayerNorm before it)")
        return bounded_dot_product_bound(AttentionLayer.create(weights, n, r)).value

    return LayerBound(name, lip, lambda r: round_up(mnorm * r))


def conv2d(layer: ConvLayer, name: str = "conv2d") -> LayerBound:
    """A convolution layer: circular stride 1, the exact value rounded up (a stride only sub-samples, so the same
    value bounds strided circular layers); zero padding: :func:`theory.convolution.zero_padded_upper`. The radius
    is not tracked (conv stacks are globally Lipschitz)."""
    if not isinstance(layer, ConvLayer):
        raise InputError(f"layer: expected a ConvLayer, got {type(layer).__name__}")
    if layer.padding_mode == "circular":
        val = round_up(circular_spectral_norm(layer.kernel, layer.input_size))
    else:
        val = zero_padded_upper(layer).value
    return LayerBound(name, lambda r: val, lambda r: math.inf)


def residual(*branch: LayerBound, name: str = "residual") -> LayerBound:
    """:math:`x\\mapsto x+g(x)` for the chain ``branch``: constant :math:`1+L_g`, radius :math:`R+\\rho_g(R)`."""
    if not branch:
        raise InputError("branch: expected at least one layer")

    def lip(r: float) -> float:
        return residual_bound(network_bound(branch, r).value).value

    def rad(r: float) -> float:
        rr = r
        for layer in branch:
            rr = layer.out_radius(rr)
        return round_up(r + rr)

    return LayerBound(name, lip, rad)


@register(
    "composition.network",
    norm="l2",
    kind="upper",
    assumptions=("per-token input radius R_0 (inf for globally Lipschitz stacks)",),
    source="standard composition rules; radius propagation derived here",
    confidence="derived",
    value=lambda res: res[0],
    tight=TightFamily("aligned linear/ReLU chains (W_l = s_l u_l u_{l+1}^T with positive unit vectors): the chain "
                      "is linear on the positive cone with norm prod s_l", "standard", ratio=1.0),
)
def network_bound(layers: Sequence[LayerBound], input_radius: float = math.inf) -> tuple[float, list[dict]]:
    """Upper bound for a chain of :class:`LayerBound`; returns ``(bound, per-layer table)``.

    .. math:: \\mathrm{Lip}(f_L\\circ\\dots\\circ f_1|_{B_{R_0}})\\le\\prod_\\ell L_\\ell(R_{\\ell-1}),\\ R_\\ell=\\rho_\\ell(R_{\\ell-1})
    """
    if not layers:
        raise InputError("layers: expected at least one layer")
    if not (isinstance(input_radius, (int, float)) and (input_radius > 0)):
        raise InputError(f"input_radius: expected a number > 0 (or inf), got {input_radius!r}")
    r = float(input_radius)
    consts, table = [], []
    for layer in layers:
        c = layer.lipschitz(r)
        r_out = layer.out_radius(r)
        table.append({"layer": layer.name, "radius_in": r, "lipschitz": c, "radius_out": r_out})
        consts.append(c)
        r = r_out
    return product_bound(consts).value, table
