"""Dong et al.'s collapse bounds (Thm 2.2, 2.3, the logit-spread form, Cor. 3.2) and their constants."""

from __future__ import annotations

import math

import numpy as np

from ..attention import AttentionWeights
from ..numerics import UNIT_ROUNDOFF, inf_norm, round_up
from ..registry import Mutant, TightFamily, register
from ..validate import InputError, as_real_array, choice, positive_float
from ._residual import optimal_residual_bounds

#: the bound on the logit spread max_{j'}|E_ij - E_ij'| in the authors' reply (GitHub issue #1, 2023-07-02):
#: e^u <= 1 + 2u holds for u in [0, 1.2564]
SPREAD_LIMIT = 1.256


def _layers(layers) -> list[AttentionWeights]:
    if not isinstance(layers, (list, tuple)) or not layers:
        raise InputError("layers: expected a non-empty list of AttentionWeights (depth >= 1)")
    for l, w in enumerate(layers):
        if not isinstance(w, AttentionWeights):
            raise InputError(f"layers[{l}]: expected AttentionWeights, got {type(w).__name__}")
        if w.out_dim != w.dim:
            raise InputError(f"layers[{l}]: output width {w.out_dim} != token width {w.dim}; layers must stack")
        if w.dim != layers[0].dim or w.head_dim != layers[0].head_dim:
            raise InputError(f"layers[{l}]: expected token width {layers[0].dim} and d_qk "
                                  f"{layers[0].head_dim} like layers[0], got {w.dim} and {w.head_dim}")
    return list(layers)


def _certified_product_norm(a: np.ndarray, b: np.ndarray, norm) -> float:
    """Upper bound on norm(a @ b) for the exact real product: float product plus gamma_k |a||b| (Higham)."""
    k = a.shape[1]
    err = (k + 2) * UNIT_ROUNDOFF * 1.01 * (np.abs(a) @ np.abs(b))
    return norm(a @ b) + norm(err)


def _comp_upper(m: np.ndarray) -> float:
    return math.sqrt(inf_norm(m.T) * inf_norm(m))


VALUE_FORMS = ("effective", "factored")


def collapse_beta(layers, value: str = "effective") -> float:
    r""":math:`\beta=\max_{l,h}\|W^l_{Q,h}W^{l\top}_{K,h}\|_1\,\|W^l_{V,h}W^l_{O,h}\|_{1,\infty}`, rounded up.

    *Reconstructed choice* (docs/research/seed_papers.md §A.5): the restatements name :math:`\|W_{V,h}\|_{1,\infty}`, while the
    layer the proof expands is :math:`\sum_hP_hXW_h` with :math:`W_h=W_{V,h}W_{O,h}`. ``value="effective"`` (default)
    uses :math:`\|W_h\|_{1,\infty}`; ``"factored"`` uses :math:`\|W_{V,h}\|_{1,\infty}\|W_{O,h}\|_{1,\infty}`, which
    is never smaller (sub-multiplicativity), so the default is the stronger, more falsifiable statement and
    the two coincide when :math:`O_h=I`. Float products carry Higham's :math:`\gamma_k|A||B|` term, so the
    result bounds the exact product's norms.
    """
    choice("value", value, VALUE_FORMS)
    best = 0.0
    for w in _layers(layers):
        for q, k, v, o in zip(w.query, w.key, w.value, w.output):
            qk = _certified_product_norm(q, k.T, lambda m: inf_norm(m.T))
            if value == "effective":
                vo_1 = _certified_product_norm(v, o, lambda m: inf_norm(m.T))
                vo_inf = _certified_product_norm(v, o, inf_norm)
            else:
                vo_1 = inf_norm(v.T) * inf_norm(o.T)
                vo_inf = inf_norm(v) * inf_norm(o)
            best = max(best, qk * math.sqrt(vo_1 * vo_inf))
    return round_up(best)


@register(
    "rank.mlp_lipschitz",
    norm="composite",
    kind="upper",
    assumptions=("row-wise MLP f(Z) = sigma(Z A + 1 a^T) B + 1 b^T", "sigma 1-Lipschitz entrywise (ReLU)"),
    source="derived here; the lambda of Dong, Cordonnier, Loukas 2021, Cor. 3.2 (constant recalled)",
    confidence="derived",
    covers="the composite-norm Lipschitz constant that rank.dong_cor32 multiplies in",
    tight=TightFamily("d = hidden = 1 in the linear regime (pre-activations positive): f is z -> z a b + const",
                      "derived here", ratio=1.0),
    mutants=[Mutant("no ||B|| factors", lambda first, second: math.sqrt(inf_norm(np.asarray(first, float).T)
                                                                        * inf_norm(np.asarray(first, float))),
                    "known_false", "d = hidden = 1, linear regime, |b| > 1: the constant is |a| |b| > |a|"),
             Mutant("no square root", lambda first, second: inf_norm(np.asarray(first, float).T) * inf_norm(
                 np.asarray(second, float).T), "unknown", "||A||_1 ||B||_1 alone: sub-multiplicative in the 1-norm")],
)
def mlp_lipschitz(first, second) -> float:
    r"""Composite-norm Lipschitz constant of a row-wise MLP :math:`f(z)=\sigma(zA+a)B+b` (:math:`\sigma` 1-Lipschitz
    entrywise).

    .. math:: \|f(Z)-f(Z')\|_{1,\infty}\le\lambda\|Z-Z'\|_{1,\infty},\qquad\lambda=\sqrt{\|A\|_1\|B\|_1\|A\|_\infty\|B\|_\infty}

    Proof: :math:`|\sigma(u)-\sigma(v)|\le|u-v|` entrywise and induced 1- and :math:`\infty`-norms are monotone in
    the entrywise absolute value, so :math:`\|f(Z)-f(Z')\|_p\le\|A\|_p\|B\|_p\|Z-Z'\|_p` for p = 1, :math:`\infty`.
    In particular :math:`\|\mathrm{res}(f(Z))\|_{1,\infty}\le\|f(Z)-\mathbf 1f(z)^\top\|_{1,\infty}\le\lambda\|Z-\mathbf 1z^\top\|_{1,\infty}`.
    """
    a = as_real_array("first", first, ndim=2)
    b = as_real_array("second", second, ndim=2)
    if a.shape[1] != b.shape[0]:
        raise InputError(f"second: expected {a.shape[1]} rows to match first {a.shape}, got {b.shape}")
    return round_up(math.sqrt(inf_norm(a.T) * inf_norm(b.T) * inf_norm(a) * inf_norm(b)))


def _residual_upper(x, shift: str) -> float:
    """Upper bound on ||res(X)||_{1,inf} for the exact reals: optimal shift (best candidate) or the token mean.

    For the mean, each computed entry of X - 1 mean^T is off by at most (n + 3) u (|X_ij| + |mean_j|)
    (summation error of the mean, then one subtraction), which is added before taking norms.
    """
    a = as_real_array("x", x, ndim=2)
    if a.shape[0] < 2:
        raise InputError(f"x: expected at least 2 tokens (rows), got shape {a.shape}")
    choice("shift", shift, ("optimal", "mean"))
    if shift == "optimal":
        return optimal_residual_bounds(a).details.composite_upper
    mean = a.mean(axis=0)
    dev = np.abs(a - mean) + (a.shape[0] + 3) * UNIT_ROUNDOFF * 1.01 * (np.abs(a) + np.abs(mean))
    return round_up(_comp_upper(dev))


def _collapse_rhs(constant: float, depth: int, rho: float) -> float:
    r""":math:`c^{(3^L-1)/2}\rho^{3^L}` rounded up; ``inf`` on overflow (the bound is then vacuous)."""
    e1, e2 = (3**depth - 1) // 2, 3**depth
    if rho == 0.0:
        return 0.0
    log_val = e1 * math.log(constant) + e2 * math.log(rho) if constant > 0 else -math.inf
    if log_val > 700:
        return math.inf
    if log_val < -700:  # underflow: a tiny positive number, never a false zero
        return round_up(math.exp(log_val) + 1e-300)
    return round_up(round_up(math.pow(constant, e1), 1e-12) * round_up(math.pow(rho, e2), 1e-12), 1e-11)


def _thm23(layers, x, gamma: float, lam: float, shift: str, value: str = "effective", *,
           count_heads: bool = True, constant: float = 4.0) -> float:
    """The right side of Thm 2.2/2.3/Cor 3.2; ``count_heads=False`` / another ``constant`` are the slips that
    ``boundlab mutate`` plants (the registered bounds always use H and 4)."""
    ls = _layers(layers)
    g = positive_float("gamma", gamma)
    a = as_real_array("x", x, ndim=2)
    if a.shape[1] != ls[0].dim:
        raise InputError(f"x: expected {ls[0].dim} columns (the token width), got shape {a.shape}")
    heads = max(w.heads for w in ls) if count_heads else 1
    c = round_up(constant * g * collapse_beta(ls, value) * heads * lam / math.sqrt(ls[0].head_dim))
    return _collapse_rhs(c, len(ls), _residual_upper(a, shift))


_DONG_ASSUMPTIONS = (
    "bias-free SAN, no skip connections, no normalisation",
    "beta = max_{l,h} ||W_QK||_1 ||W_V W_O||_{1,inf} (effective value matrix; parameter value='factored' uses ||W_V|| ||W_O||)",
    "residual: optimal shift (default) or token mean (parameter shift)",
    "gamma: the v2 attention-dependent factor, definition not recovered; gamma = 1 is the ICML/v1 form",
)


@register(
    "rank.dong_thm22",
    norm="composite",
    kind="upper",
    assumptions=("single head",) + _DONG_ASSUMPTIONS,
    source="Dong, Cordonnier, Loukas, ICML 2021, Thm 2.2 (restated in secondary sources; gamma added in arXiv v2)",
    confidence="reconstructed",
    covers="single-head pure self-attention networks of depth L, composite residual norm",
    notes="Tested with gamma = 1 (the gamma-free form) on all inputs; see rank.dong_thm23_spread for the "
    "logit-spread form.",
)
def single_head_collapse_bound(layers, x, gamma: float = 1.0, shift: str = "optimal",
                               value: str = "effective") -> float:
    r"""Theorem 2.2 (single head): the right side, an upper bound on :math:`\|\mathrm{res}(\mathrm{SAN}(X))\|_{1,\infty}`.

    .. math:: \|\mathrm{res}(\mathrm{SAN}(X))\|_{1,\infty}\le\Big(\frac{4\gamma\beta}{\sqrt{d_{qk}}}\Big)^{\frac{3^L-1}2}\|\mathrm{res}(X)\|_{1,\infty}^{3^L}

    *Reconstructed* (docs/research/seed_papers.md §A.4): the exponent follows from the cubic single-layer form by induction;
    :math:`\gamma` is a parameter (its v2 definition was not recovered; ``gamma=1`` is the ICML form);
    ``shift="optimal"`` bounds :math:`\|\mathrm{res}(X)\|` by the best of several shifts (a valid upper bound on
    the minimum), ``shift="mean"`` uses the experiments' mean-centred residual on both sides; ``value`` picks the
    value-matrix norm in :math:`\beta` (:func:`collapse_beta`).
    """
    ls = _layers(layers)
    if any(w.heads != 1 for w in ls):
        raise InputError(f"layers: Thm 2.2 is for a single head, got heads {[w.heads for w in ls]}")
    return _thm23(ls, x, gamma, 1.0, shift, value)


@register(
    "rank.dong_thm23",
    norm="composite",
    kind="upper",
    assumptions=("H heads per layer",) + _DONG_ASSUMPTIONS,
    source="Dong, Cordonnier, Loukas, ICML 2021, Thm 2.3 (restated in secondary sources; gamma added in arXiv v2)",
    confidence="reconstructed",
    covers="multi-head pure self-attention networks of depth L, composite residual norm",
    notes="One restatement misprints the exponent as (3L-1)/2; (3^L-1)/2 is used.",
    mutants=[
        Mutant("H dropped", lambda layers, x, gamma=1.0, shift="optimal", value="effective": _thm23(
            layers, x, gamma, 1.0, shift, value, count_heads=False), "known_false",
            "H identical copies of a single head: the residual is H times the single head's (ratio up to 1/8 of "
            "the H = 1 bound at n = 2, d = 1), so the H-free bound fails for H > 8"),
        Mutant("constant 4 -> 2", lambda layers, x, gamma=1.0, shift="optimal", value="effective": _thm23(
            layers, x, gamma, 1.0, shift, value, constant=2.0), "unknown",
            "the worst certified ratio is 1/8: a constant up to 8x smaller is not known to be false"),
    ],
)
def multi_head_collapse_bound(layers, x, gamma: float = 1.0, shift: str = "optimal",
                              value: str = "effective") -> float:
    r"""Theorem 2.3 (H heads): :math:`\big(4\gamma\beta H/\sqrt{d_{qk}}\big)^{(3^L-1)/2}\|\mathrm{res}(X)\|_{1,\infty}^{3^L}`.

    .. math:: \|\mathrm{res}(\mathrm{SAN}(X))\|_{1,\infty}\le\Big(\frac{4\gamma\beta H}{\sqrt{d_{qk}}}\Big)^{\frac{3^L-1}2}\|\mathrm{res}(X)\|_{1,\infty}^{3^L}

    H is the largest head count over the layers. See :func:`single_head_collapse_bound` for the conventions.
    """
    return _thm23(layers, x, gamma, 1.0, shift, value)


def logit_spread(layers, inputs) -> float:
    r"""Largest logit spread :math:`\max_{l,h,i,j,j'}|E_{ij}-E_{ij'}|`, :math:`E=RW_{QK}R^\top/\sqrt{d_{qk}}`, over
    *every* shift in the box.

    :math:`R=X^{l-1}-\mathbf 1x^\top` depends on the shift x, which the theorem takes as the (unknown) minimiser;
    since a minimiser can be clamped into the column ranges of :math:`X^{l-1}`,
    :math:`E_{ij}-E_{ij'}=(x_i-x)^\top A(x_j-x_{j'})` is maximised over that box in closed form (linear in x).
    ``inputs[l]`` is the input of layer l+1 (``inputs[0]`` = X). Evaluated in float64 with a 1e-9 relative
    margin: it decides whether an assumption holds, so callers keep a safety factor (the tests use 0.8 x limit).
    """
    ls = _layers(layers)
    if not isinstance(inputs, (list, tuple)) or len(inputs) != len(ls):
        raise InputError(f"inputs: expected a list of {len(ls)} layer inputs (n, d), one per layer")
    worst = 0.0
    for l, (w, xin) in enumerate(zip(ls, inputs)):
        a_in = as_real_array(f"inputs[{l}]", xin, ndim=2)
        lo, hi = a_in.min(axis=0), a_in.max(axis=0)
        for a in w.logit_matrices():
            diff = a_in[:, None, :] - a_in[None, :, :]  # (j, j', d): x_j - x_j'
            u = diff @ a.T  # A (x_j - x_j'), (j, j', d)
            base = np.einsum("id,jkd->ijk", a_in, u)  # x_i^T u
            umin = np.minimum(u * lo, u * hi).sum(-1)
            umax = np.maximum(u * lo, u * hi).sum(-1)
            sup = np.maximum(np.abs(base - umin[None]), np.abs(base - umax[None]))
            worst = max(worst, float(sup.max()))
    return round_up(worst, 1e-9)


@register(
    "rank.dong_thm23_spread",
    norm="composite",
    kind="upper",
    assumptions=_DONG_ASSUMPTIONS + ("logit spread max_{j'}|E_ij - E_ij'| < limit (1.256) at every layer, every shift",),
    source="Dong et al. arXiv v2 (2023) as described by the authors in twistedcubic/attention-rank-collapse issue #1",
    confidence="reconstructed",
    covers="multi-head pure SAN on inputs whose logit spread is below the limit at every layer",
    notes="The v2 constant gamma is unknown; gamma = 1 is tested. Raises if the spread assumption fails.",
)
def spread_limited_collapse_bound(layers, x, inputs, gamma: float = 1.0, limit: float = SPREAD_LIMIT,
                                  shift: str = "optimal", value: str = "effective") -> float:
    r"""Theorem 2.3 under the logit-spread assumption of the authors' updated proof.

    .. math:: \max_{l,i,j,j'}|E^l_{ij}-E^l_{ij'}|<1.256\ \Rightarrow\ \|\mathrm{res}(\mathrm{SAN}(X))\|_{1,\infty}\le\Big(\frac{4\gamma\beta H}{\sqrt{d_{qk}}}\Big)^{\frac{3^L-1}2}\|\mathrm{res}(X)\|_{1,\infty}^{3^L}

    The authors' reply (issue #1, 2023-07-02) says the updated upper bound on :math:`P_{ij}` "uses an assumption
    that :math:`\max_{j'}|E_{ij}-E_{ij'}|<1.256`" (where :math:`e^u\le1+2u`). Whether v2 keeps that assumption
    or absorbs it into :math:`\gamma` is unknown, so ``limit`` and ``gamma`` are parameters. ``inputs`` are the
    layer inputs of the forward pass (:func:`logit_spread`); a spread at or above ``limit`` raises.
    """
    ls = _layers(layers)
    lim = positive_float("limit", limit)
    spread = logit_spread(ls, inputs)
    if spread >= lim:
        raise InputError(f"inputs: logit spread {spread:.6g} >= limit {lim:g}; the assumption of this form fails")
    return _thm23(ls, x, gamma, 1.0, shift, value)


@register(
    "rank.dong_cor32",
    norm="composite",
    kind="upper",
    assumptions=_DONG_ASSUMPTIONS[1:] + (
        "f_l row-wise MLP sigma(zA+a)B+b, sigma 1-Lipschitz entrywise",
        "lambda = max_l sqrt(||A_l||_1 ||B_l||_1 ||A_l||_inf ||B_l||_inf) (a computable valid constant)",
    ),
    source="Dong, Cordonnier, Loukas, ICML 2021, Cor. 3.2 (restated); lambda derived here",
    confidence="reconstructed",
    covers="SAN + MLP (no skips) of depth L",
)
def mlp_collapse_bound(layers, mlps, x, gamma: float = 1.0, shift: str = "optimal",
                       value: str = "effective") -> float:
    r"""Corollary 3.2: :math:`\big(4\gamma\beta H\lambda/\sqrt{d_{qk}}\big)^{(3^L-1)/2}\|\mathrm{res}(X)\|_{1,\infty}^{3^L}`.

    .. math:: \|\mathrm{res}(X^L)\|_{1,\infty}\le\Big(\frac{4\gamma\beta H\lambda}{\sqrt{d_{qk}}}\Big)^{\frac{3^L-1}2}\|\mathrm{res}(X)\|_{1,\infty}^{3^L},\ X^{l}=f_l\Big(\sum_hP^l_hX^{l-1}W^l_h\Big)

    ``mlps[l] = (A, a, B, b)`` for :math:`f_l(z)=\mathrm{relu}(zA+a)B+b`; :math:`\lambda` from :func:`mlp_lipschitz`
    (max over layers). Biases do not enter :math:`\lambda`.
    """
    ls = _layers(layers)
    if not isinstance(mlps, (list, tuple)) or len(mlps) != len(ls):
        raise InputError(f"mlps: expected a list of {len(ls)} (A, a, B, b) tuples, one per layer")
    lam = 0.0
    for l, m in enumerate(mlps):
        if not isinstance(m, (list, tuple)) or len(m) != 4:
            raise InputError(f"mlps[{l}]: expected (A, a, B, b)")
        a_mat = as_real_array(f"mlps[{l}][0]", m[0], ndim=2)
        b_mat = as_real_array(f"mlps[{l}][2]", m[2], ndim=2)
        if a_mat.shape[0] != ls[0].dim or b_mat.shape[1] != ls[0].dim:
            raise InputError(f"mlps[{l}]: expected A ({ls[0].dim}, k) and B (k, {ls[0].dim}), got "
                                  f"{a_mat.shape} and {b_mat.shape}")
        lam = max(lam, mlp_lipschitz(a_mat, b_mat).value)
    return _thm23(ls, x, gamma, lam, shift, value)


# --------------------------------------------------------------------------- local rate, skips, LayerNorm
