"""The local cubic rate, the skip-connection claim and the LayerNorm rewrites."""

from __future__ import annotations

import math

import numpy as np

from ..registry import register
from ..validate import InputError, as_real_array, positive_float, positive_int


@register(
    "rank.cubic_rate",
    norm="none",
    kind="claim",
    assumptions=("one self-attention layer, generic weights (the epsilon^3 coefficient is non-zero)",),
    source="Dong, Cordonnier, Loukas, ICML 2021, Thm 2.2 with L = 1 (cubic rate; restated)",
    confidence="reconstructed",
    covers="local rate of collapse of one attention layer near a rank-one input",
    notes="Derived: P = softmax(1u^T + E) with E = O(eps^2) and res(P R W) = O(||P - 1q^T|| ||R||) = O(eps^3).",
)
def local_collapse_exponent(depth: int = 1) -> int:
    r"""The claimed local exponent :math:`3^L` of :math:`\|\mathrm{res}(\mathrm{SAN}(\mathbf 1x^\top+\epsilon R))\|` in ε.

    .. math:: \frac{d\log\|\mathrm{res}(\mathrm{SA}(\mathbf 1x^\top+\epsilon R))\|}{d\log\epsilon}\xrightarrow[\epsilon\to0]{}3

    For one layer: write :math:`X=\mathbf 1x^\top+\epsilon R`; the row-constant logit terms drop out, the column
    term :math:`\epsilon\mathbf 1x^\top WR^\top` gives a rank-one :math:`\mathbf 1q^\top`, and
    :math:`E=\epsilon^2RWR^\top/\sqrt{d_{qk}}` perturbs it by :math:`O(\epsilon^2)`; since
    :math:`\mathrm{res}(PXW)=\mathrm{res}(\epsilon PRW)` vanishes for :math:`P=\mathbf 1q^\top`, the residual is
    :math:`O(\epsilon^3)`. Depth L composes to :math:`3^L`.
    """
    return 3 ** positive_int("depth", depth)


def log_log_slope(eps, values) -> float:
    r"""Least-squares slope of :math:`\log(\mathrm{values})` against :math:`\log(\epsilon)` (all positive)."""
    e = as_real_array("eps", eps, ndim=1)
    v = as_real_array("values", values, ndim=1)
    if e.shape != v.shape or e.size < 2:
        raise InputError(f"values: expected the shape of eps {e.shape} (at least 2 points), got {v.shape}")
    if (e <= 0).any() or (v <= 0).any():
        raise InputError("values: expected positive eps and values for a log-log slope")
    return float(np.polyfit(np.log(e), np.log(v), 1)[0])


@register(
    "rank.skip_claim31",
    value=lambda z: float(np.max(np.abs(z))),
    norm="none",
    kind="claim",
    assumptions=("SAN with skip connections, any depth, heads, query/key weights",),
    source="Dong, Cordonnier, Loukas, ICML 2021, Claim 3.1 (restated; the proof is the length-0 path)",
    confidence="reconstructed",
    covers="existence of non-collapsing parameterisations with skips, for any depth and arbitrarily small beta",
)
def skip_zero_value_identity(x) -> np.ndarray:
    r"""The claimed output of a skip-connected SAN whose value matrices are all zero: the input itself.

    .. math:: W^l_{V,h}=0\ \forall l,h\ \Rightarrow\ X^L=X\ \text{(skips)},\ \text{so}\ \|\mathrm{res}(X^L)\|\ge\|\mathrm{res}(X)\|

    Each layer is :math:`X^{l-1}+\sum_hP_hX^{l-1}\cdot0=X^{l-1}`, whatever the attention; hence infinitely many
    parameterisations (any :math:`W_{QK}`) keep :math:`\|\mathrm{res}(X^L)\|=\|\mathrm{res}(X)\|` with
    :math:`\beta=0`.
    """
    return as_real_array("x", x, ndim=2).copy()


def layernorm_rows(z, gamma, beta, eps: float) -> np.ndarray:
    r"""Standard per-token LayerNorm :math:`\gamma\odot(z_i-\bar z_i)/\sqrt{\mathrm{var}(z_i)+\epsilon}+\beta` (biased variance)."""
    a = as_real_array("z", z, ndim=2)
    g = as_real_array("gamma", gamma, ndim=1)
    b = as_real_array("beta", beta, ndim=1)
    if g.shape != (a.shape[1],) or b.shape != g.shape:
        raise InputError(f"gamma: expected shape ({a.shape[1]},) like beta, got {g.shape} and {b.shape}")
    e = positive_float("eps", eps, allow_zero=True)
    c = a - a.mean(axis=1, keepdims=True)
    s = np.sqrt((c**2).mean(axis=1, keepdims=True) + e)
    if (s == 0).any():
        raise InputError("eps: a constant token with eps = 0 has no LayerNorm")
    return c / s * g + b


@register(
    "rank.layernorm_right_multiplication",
    expect="falsified",
    refutation="rows with different standard deviations: LayerNorm is a left diagonal scaling, no right "
    "multiplication reproduces it (corpus rank.layernorm_right_multiplication)",
    norm="none",
    kind="claim",
    assumptions=("standard per-token LayerNorm (each row divided by its own std)",),
    source="Dong, Cordonnier, Loukas, ICML 2021, Sec. 3.3 (restated); disputed by Wu et al. 2024 (arXiv 2405.18781)",
    confidence="reconstructed",
    covers="LayerNorm after attention",
    notes="Expected FALSE unless all rows share one std: per-token LN is a left, data-dependent diagonal. The "
    "property finds the counterexample; see rank.layernorm_equal_std for the case where the rewrite is exact.",
)
def right_multiplication_misfit(z, ln_out) -> float:
    r"""Relative misfit :math:`\min_{M,b}\|\mathrm{LN}(Z)-ZM-\mathbf 1b^\top\|_F/\|\mathrm{LN}(Z)-\mathbf 1\overline{\mathrm{LN}(Z)}^\top\|_F`.

    .. math:: \mathrm{LN}\Big(\sum_hP_hXW_h\Big)=\sum_hP_hXW_hD_{LN}^{-1}+\mathbf 1b_{LN}^\top\quad\text{(LN only right-multiplies)}

    The claim says LN acts as a right multiplication (plus a bias row); this is the least-squares distance of the
    observed LN output from *every* such form (any d x d matrix M, more generous than the claimed diagonal
    :math:`D_{LN}^{-1}`), so a clearly positive misfit falsifies the claim. Needs n >= d + 2 tokens to be
    informative (otherwise an affine fit interpolates any output). Returns 0 for a constant output.
    """
    a = as_real_array("z", z, ndim=2)
    y = as_real_array("ln_out", ln_out, ndim=2)
    if y.shape != a.shape:
        raise InputError(f"ln_out: expected the shape of z {a.shape}, got {y.shape}")
    design = np.hstack([a, np.ones((a.shape[0], 1))])
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    scale = np.linalg.norm(y - y.mean(axis=0))
    return float(np.linalg.norm(y - design @ coef) / scale) if scale > 0 else 0.0


@register(
    "rank.layernorm_equal_std",
    value=lambda z: float(np.max(np.abs(z))),
    norm="none",
    kind="exact",
    assumptions=("standard per-token LayerNorm", "every row has the same (biased) standard deviation s"),
    source="derived here (the case where Dong et al.'s Sec. 3.3 rewrite is exact)",
    confidence="derived",
    covers="LayerNorm on inputs with equal row standard deviations",
)
def layernorm_equal_std_rewrite(z, gamma, beta, eps: float) -> np.ndarray:
    r"""The right-multiplication form :math:`ZC\,\mathrm{diag}(\gamma)/\sqrt{s^2+\epsilon}+\mathbf 1\beta^\top` with
    :math:`s^2` the mean row variance.

    .. math:: \mathrm{std}(z_i)\equiv s\ \Rightarrow\ \mathrm{LN}(Z)=Z\,C\,\mathrm{diag}(\gamma)/\sqrt{s^2+\epsilon}+\mathbf 1\beta^\top,\ C=I-\tfrac1d\mathbf 1\mathbf 1^\top

    Equal to :func:`layernorm_rows` exactly when every row has variance :math:`s^2` (centering is the right
    multiplication by C; the per-row division is then one scalar).
    """
    a = as_real_array("z", z, ndim=2)
    g = as_real_array("gamma", gamma, ndim=1)
    b = as_real_array("beta", beta, ndim=1)
    if g.shape != (a.shape[1],) or b.shape != g.shape:
        raise InputError(f"gamma: expected shape ({a.shape[1]},) like beta, got {g.shape} and {b.shape}")
    e = positive_float("eps", eps, allow_zero=True)
    d = a.shape[1]
    c = np.eye(d) - np.ones((d, d)) / d
    s2 = float(((a @ c) ** 2).mean())
    if s2 + e == 0:
        raise InputError("eps: constant tokens with eps = 0 have no LayerNorm")
    return a @ c @ np.diag(g) / math.sqrt(s2 + e) + b


# --------------------------------------------------------------------------- empirical collapse claims (Sec. 5)
