r"""QK-eigenspectrum statistics and attention localization (Bao, Hataya, Karakida 2024), as testable statements.

For a query-key matrix :math:`W=W_QW_K^\top\in\mathbb R^{d\times d}` and tokens :math:`x_t\in\mathbb R^d`, the logits
of a query q are :math:`z_t=q^\top Wx_t/\sqrt d` (``scale="sqrt_d"``; ``"none"`` drops the :math:`1/\sqrt d`,
since whether the paper's :math:`W_{QK}` includes it is unknown) and :math:`p=\mathrm{softmax}(z)`.

Localization is measured by the entropy :math:`H(p)`, the effective support :math:`1/\sum_tp_t^2` and the
support of :math:`\mathrm{sparsemax}(z)` (a stand-in for the paper's piecewise-linear softmax, whose exact form
was not recovered). The paper's theorems are **not** encoded (their statements were unreachable,
``docs/research/seed_papers.md`` §B.3 [X]); what is encoded:

* exact spectral statistics under three conventions (§B.2: the eigenvalues of a non-symmetric W can be complex
  and the "algebraic" variance :math:`\mathrm{tr}(W^2)/d-\mu^2` can be negative);
* exact Gaussian moment identities (§B.3 [D]);
* the trends P1–P3 of §B.4 [D] (our operationalisation of the abstract's claims), as predicates over measured
  entropy curves along a grid of eigenvalue variances at a fixed mean. Whether they hold depends on the regime
  (self-token or not, T/d, scaling): each property records its regime.

References
----------
H. Bao, R. Hataya, R. Karakida. *Self-attention networks localize when QK-eigenspectrum concentrates.*
ICML 2024 (arXiv 2402.02098).
A. Martins, R. Astudillo. *From softmax to sparsemax.* ICML 2016.
S. Zhai et al. *Stabilizing transformer training by preventing attention entropy collapse.* ICML 2023.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .validate import InputError, as_real_array, choice, positive_float, positive_int
from .numerics import round_up
from .registry import Mutant, register

__all__ = [
    "CONVENTIONS",
    "SpectralStats",
    "spectral_stats",
    "spectrum_with_moments",
    "qk_matrix",
    "GaussianMoments",
    "gaussian_logit_moments",
    "attention_entropy",
    "effective_support",
    "sparsemax",
    "sparsemax_support",
    "entropy_support_order",
    "TrendSides",
    "trend_p1",
    "trend_p1_no_self",
    "trend_p1_large_variance",
    "trend_p2",
    "trend_p3",
    "trend_p3_self_mean",
]

CONVENTIONS = ("symmetric", "complex", "algebraic")


def _square(name: str, w) -> np.ndarray:
    a = as_real_array(name, w, ndim=2)
    if a.shape[0] != a.shape[1]:
        raise InputError(f"{name}: expected a square matrix, got shape {a.shape}")
    return a


@dataclass(frozen=True)
class SpectralStats:
    """Mean and variance of the QK eigenspectrum under one convention."""

    mean: float
    variance: float
    convention: str


@register(
    "qk.spectral_stats",
    value=lambda st: st.variance,
    norm="none",
    kind="exact",
    assumptions=("W square real", "convention: symmetric part, complex eigenvalues, or algebraic trace form"),
    source="definitions for Bao, Hataya, Karakida, ICML 2024 (convention not recovered: docs/research/seed_papers.md B.2)",
    confidence="derived",
    covers="QK eigenspectrum mean and variance; the three conventions agree for symmetric W",
    mutants=[Mutant("tr(W W^T) for tr(W^2)", lambda w, convention="symmetric": _stats_mutant(w, convention, "fro"),
                    "known_false", "a rotation block [[a, -b], [b, a]], b != 0: tr(W^2) = 2(a^2 - b^2) != tr(W W^T)"),
             Mutant("no modulus", lambda w, convention="symmetric": _stats_mutant(w, convention, "nomod"),
                    "known_false", "a rotation block: the complex deviations squared without modulus give a^2 - b^2")],
)
def spectral_stats(w, convention: str = "symmetric") -> SpectralStats:
    r"""Mean and variance of the eigenvalues of W.

    .. math:: \mu=\tfrac1d\sum_i\lambda_i=\tfrac{\mathrm{tr}W}d,\quad \sigma^2=\tfrac1d\sum_i|\lambda_i-\mu|^2\ \ (\text{or }\tfrac{\mathrm{tr}(W^2)}d-\mu^2)

    ``symmetric``: eigenvalues of :math:`(W+W^\top)/2` (real), :math:`\sigma^2=\frac1d\sum(\lambda_i-\mu)^2`.
    ``complex``: eigenvalues of W, :math:`\sigma^2=\frac1d\sum|\lambda_i-\mu|^2\ge0`.
    ``algebraic``: :math:`\sigma^2=\mathrm{tr}(W^2)/d-\mu^2=\frac1d\sum(\lambda_i-\mu)^2` without the modulus, which
    is negative e.g. for a rotation (the trap of docs/research/seed_papers.md §B.2). In every convention :math:`\mu=\mathrm{tr}W/d`.
    """
    a = _square("w", w)
    choice("convention", convention, CONVENTIONS)
    d = a.shape[0]
    mu = float(np.trace(a)) / d
    if convention == "symmetric":
        lam = np.linalg.eigvalsh(0.5 * (a + a.T))
        var = float(np.mean((lam - mu) ** 2))
    elif convention == "complex":
        lam = np.linalg.eigvals(a)
        var = float(np.mean(np.abs(lam - mu) ** 2))
    else:
        var = float(np.sum(a * a.T)) / d - mu * mu
    return SpectralStats(mu, var, convention)


def _stats_mutant(w, convention: str, slip: str) -> float:
    """The variance with a slip in the non-symmetric conventions (the symmetric one is unchanged)."""
    a = _square("w", w)
    d = a.shape[0]
    mu = float(np.trace(a)) / d
    if convention == "algebraic" and slip == "fro":
        return float(np.sum(a * a)) / d - mu * mu
    if convention == "complex" and slip == "nomod":
        return float(np.mean((np.linalg.eigvals(a) - mu) ** 2).real)
    return spectral_stats.raw(a, convention).variance


def spectrum_with_moments(mean: float, variance: float, base) -> np.ndarray:
    r"""Eigenvalues :math:`\lambda=\mu+\sigma\,(\xi-\bar\xi)/\mathrm{std}(\xi)` with exactly the given mean and
    variance (population convention), shaped by ``base`` :math:`\xi` (at least two distinct entries)."""
    mu = float(mean)
    if not math.isfinite(mu):
        raise InputError(f"mean: expected a finite number, got {mean!r}")
    s2 = positive_float("variance", variance, allow_zero=True)
    xi = as_real_array("base", base, ndim=1)
    sd = float(np.std(xi))
    if sd == 0:
        raise InputError("base: expected at least two distinct entries")
    return mu + math.sqrt(s2) * (xi - xi.mean()) / sd


def qk_matrix(eigenvalues, basis) -> np.ndarray:
    r""":math:`W=Q\,\mathrm{diag}(\lambda)Q^\top` with Q the orthonormal factor of ``basis`` (QR); symmetric, so
    every convention of :func:`spectral_stats` gives the mean and variance of ``eigenvalues``."""
    lam = as_real_array("eigenvalues", eigenvalues, ndim=1)
    b = _square("basis", basis)
    if b.shape[0] != lam.size:
        raise InputError(f"basis: expected shape ({lam.size}, {lam.size}), got {b.shape}")
    q, _ = np.linalg.qr(b)
    return (q * lam) @ q.T


@dataclass(frozen=True)
class GaussianMoments:
    r"""Moments of the bilinear logits for :math:`x,y\sim\mathcal N(0,I_d)` independent, after the scale c."""

    self_mean: float  # E[c x^T W x]
    self_variance: float  # Var[c x^T W x]
    cross_second_moment: float  # E[(c x^T W y)^2]


@register(
    "qk.gaussian_moments",
    value=lambda mom: mom.cross_second_moment,
    norm="none",
    kind="exact",
    assumptions=("x, y ~ N(0, I_d) independent",),
    source="derived here (Isserlis' theorem); docs/research/seed_papers.md B.3 [D]",
    confidence="derived",
    covers="self- and cross-token logit moments of any square W; scale c multiplies means by c, variances by c^2",
    mutants=[Mutant("tr(W W^T) for tr(W^2) in the variance", lambda w, scale="sqrt_d": _moments_mutant(w, scale),
                    "known_false", "any non-symmetric W: Var[x^T W x] = tr(W^2) + ||W||_F^2 changes")],
)
def gaussian_logit_moments(w, scale: str = "sqrt_d") -> GaussianMoments:
    r"""Exact moments of :math:`c\,x^\top Wx` and :math:`c\,x^\top Wy` (:math:`c=1/\sqrt d` or 1).

    .. math:: \mathbb E[x^\top Wx]=\mathrm{tr}W,\ \mathrm{Var}[x^\top Wx]=\mathrm{tr}(W^2)+\|W\|_F^2,\ \mathbb E[(x^\top Wy)^2]=\|W\|_F^2

    Proof: :math:`\mathbb E[x^\top Wx]=\sum_iW_{ii}`; by Isserlis,
    :math:`\mathbb E[(x^\top Wx)^2]=\sum_{ijkl}W_{ij}W_{kl}(\delta_{ij}\delta_{kl}+\delta_{ik}\delta_{jl}+\delta_{il}\delta_{jk})
    =(\mathrm{tr}W)^2+\|W\|_F^2+\mathrm{tr}(W^2)`; and :math:`\mathbb E[(x^\top Wy)^2]=\sum W_{ij}W_{kl}\delta_{ik}\delta_{jl}=\|W\|_F^2`.
    For symmetric W with eigenvalue mean μ and variance σ²: :math:`\mathrm{tr}W=d\mu`, :math:`\|W\|_F^2=\mathrm{tr}(W^2)=d(\sigma^2+\mu^2)`.
    """
    a = _square("w", w)
    choice("scale", scale, ("sqrt_d", "none"))
    c2 = 1.0 / a.shape[0] if scale == "sqrt_d" else 1.0
    fro2 = float(np.sum(a * a))
    return GaussianMoments(
        self_mean=float(np.trace(a)) * math.sqrt(c2),
        self_variance=(float(np.sum(a * a.T)) + fro2) * c2,
        cross_second_moment=fro2 * c2,
    )


def _moments_mutant(w, scale: str) -> GaussianMoments:
    a = _square("w", w)
    c2 = 1.0 / a.shape[0] if scale == "sqrt_d" else 1.0
    fro2 = float(np.sum(a * a))
    return GaussianMoments(float(np.trace(a)) * math.sqrt(c2), 2.0 * fro2 * c2, fro2 * c2)


def _probs(p) -> np.ndarray:
    a = as_real_array("p", p, ndim=(1, 2))
    if (a < 0).any() or not np.allclose(a.sum(axis=-1), 1.0, rtol=0, atol=1e-9):
        raise InputError("p: expected probability vectors (non-negative, rows summing to 1)")
    return a


def attention_entropy(p) -> np.ndarray | float:
    r"""Shannon entropy :math:`-\sum_tp_t\log p_t` (nats) of each row (:math:`0\log0=0`)."""
    a = _probs(p)
    with np.errstate(divide="ignore", invalid="ignore"):
        h = -np.sum(np.where(a > 0, a * np.log(a), 0.0), axis=-1)
    return float(h) if np.ndim(h) == 0 else h


def effective_support(p) -> np.ndarray | float:
    r"""Inverse participation ratio :math:`1/\sum_tp_t^2\in[1,T]` of each row."""
    a = _probs(p)
    v = 1.0 / np.sum(a * a, axis=-1)
    return float(v) if np.ndim(v) == 0 else v


@register(
    "qk.sparsemax",
    value=lambda p: float(np.max(p)),
    norm="none",
    kind="exact",
    assumptions=("z real vector (or rows of a matrix)",),
    source="Martins, Astudillo, From Softmax to Sparsemax, ICML 2016, Prop. 1",
    confidence="standard",
    covers="Euclidean projection onto the simplex; its support is the localization stand-in of docs/research/seed_papers.md B.4",
)
def sparsemax(z) -> np.ndarray:
    r"""Sparsemax of each row: sort :math:`z_{(1)}\ge\dots`, :math:`k=\max\{k:1+kz_{(k)}>\sum_{j\le k}z_{(j)}\}`,
    :math:`\tau=(\sum_{j\le k}z_{(j)}-1)/k`, :math:`p=(z-\tau)_+`.

    .. math:: \mathrm{sparsemax}(z)=\arg\min_{p\in\Delta^{T-1}}\|p-z\|_2^2=(z-\tau\mathbf 1)_+,\ \ \sum_t(z_t-\tau)_+=1
    """
    a = as_real_array("z", z, ndim=(1, 2))
    flat = np.atleast_2d(a)
    srt = -np.sort(-flat, axis=1)
    cs = np.cumsum(srt, axis=1)
    ks = np.arange(1, flat.shape[1] + 1)
    support = (1 + ks * srt) > cs
    k = support.sum(axis=1)
    tau = (cs[np.arange(flat.shape[0]), k - 1] - 1) / k
    p = np.maximum(flat - tau[:, None], 0.0)
    return p.reshape(a.shape)


def sparsemax_support(z) -> np.ndarray | int:
    """Number of non-zero entries of :func:`sparsemax` per row."""
    s = np.count_nonzero(np.atleast_2d(sparsemax(z).details) > 0, axis=1)
    return int(s[0]) if np.ndim(z) == 1 else s


@register(
    "qk.entropy_support_order",
    value=lambda sides: float(np.max(sides[0])),
    norm="none",
    kind="upper",
    assumptions=("p a probability vector on T tokens",),
    source="standard (Renyi entropies are non-increasing in their order: H_2 <= H_1 <= H_0)",
    confidence="standard",
    covers="entropy vs effective support of attention rows",
)
def entropy_support_order(p) -> tuple[np.ndarray, np.ndarray]:
    r"""The two upper bounds on the measures: returns ``(exp H(p), T)`` per row, which the claim says bound
    :math:`1/\sum p_t^2` and :math:`\exp H(p)` respectively (rounded up).

    .. math:: \log\frac1{\sum_tp_t^2}\le H(p)\le\log T
    """
    a = _probs(p)
    h = np.atleast_1d(attention_entropy(a))
    return np.array([round_up(math.exp(v)) for v in h]), np.full(h.shape, float(a.shape[-1]))


# --------------------------------------------------------------------------- trends P1-P3 (docs/research/seed_papers.md B.4)
@dataclass(frozen=True)
class TrendSides:
    r"""A trend claim reduced to one inequality ``lower <= upper`` on measured mean entropies.

    ``lower`` already has the statistical margin subtracted (``k`` paired standard errors), so a violation is
    significant at that level; ``pair`` is the grid index pair (or point) that realises it.
    """

    lower: float
    upper: float
    pair: tuple[int, ...]


def _upper_side(sides: "TrendSides") -> float:
    """The claimed side of a trend claim (what the measured side must not exceed)."""
    return sides.upper


def _curve(sigma2, entropy, stderr) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    s = as_real_array("sigma2", sigma2, ndim=1)
    h = as_real_array("entropy", entropy, ndim=1)
    se = as_real_array("stderr", stderr, ndim=(1, 2))
    if h.shape != s.shape or s.size < 2:
        raise InputError(f"entropy: expected the shape of sigma2 {s.shape} (at least 2 points), got {h.shape}")
    if np.any(np.diff(s) <= 0):
        raise InputError("sigma2: expected a strictly increasing grid of variances")
    if se.shape not in (s.shape, (s.size, s.size)) or (se < 0).any():
        raise InputError(f"stderr: expected non-negative errors of shape {s.shape} or paired {(s.size,) * 2}")
    return s, h, se


def _pair_se(se: np.ndarray, i: int, j: int) -> float:
    return float(se[i, j]) if se.ndim == 2 else math.hypot(se[i], se[j])


def _monotone_sides(h: np.ndarray, se: np.ndarray, k: float, increasing: bool) -> TrendSides:
    """Worst pair i < j against 'h non-decreasing' (or non-increasing): lower = h_i - k se, upper = h_j."""
    best = None
    n = h.size
    for i in range(n):
        for j in range(i + 1, n):
            a, b = (i, j) if increasing else (j, i)
            lower, upper = h[a] - k * _pair_se(se, i, j), h[b]
            if best is None or lower - upper > best.lower - best.upper:
                best = TrendSides(float(lower), float(upper), (a, b))
    return best


_P1 = dict(
    kind="claim",
    source="Bao, Hataya, Karakida, ICML 2024, abstract ('a small eigenspectrum variance leads attention to be "
    "localized'); operationalised in docs/research/seed_papers.md B.4 (P1) [D]",
    confidence="reconstructed",
)


@register(
    "qk.trend_p1",
    value=_upper_side,
    norm="none",
    assumptions=("fixed eigenvalue mean mu > 0", "the query is one of the keys (self-token)",
                 "T <= d, 1/sqrt(d) scaling, sigma^2 <= mu^2"),
    covers="P1 in the self-token regime where the self logit mean sqrt(d) mu dominates",
    **_P1,
)
def trend_p1(sigma2, entropy, stderr, k: float = 4.0) -> TrendSides:
    r"""P1: at fixed :math:`\mu\ne0`, lowering :math:`\sigma^2` localizes, i.e. the mean entropy is
    non-decreasing in :math:`\sigma^2`. Returns the worst pair (i < j) as
    :math:`H_i-k\,\mathrm{se}_{ij}\le H_j` (violated only by a significant decrease).

    .. math:: \mu\ne0,\ \sigma_a^2<\sigma_b^2\ \Rightarrow\ \mathbb E\,H\big(p;\mu,\sigma_a^2\big)\le\mathbb E\,H\big(p;\mu,\sigma_b^2\big)
    """
    _, h, se = _curve(sigma2, entropy, stderr)
    return _monotone_sides(h, se, positive_float("k", k), increasing=True)


@register(
    "qk.trend_p1_large_variance",
    value=_upper_side,
    expect="falsified",
    refutation="past sigma^2 ~ mu^2 the mean entropy falls again (1.50 -> 1.14 nats at sigma^2 = 10 mu^2): the curve "
    "is not monotone (corpus qk.trend_p1_large_variance)",
    norm="none",
    assumptions=("fixed eigenvalue mean mu > 0", "self-token regime as qk.trend_p1",
                 "variance grid extended past mu^2 (up to 10 mu^2)"),
    covers="P1 where it is expected to FAIL: past sigma^2 ~ mu^2 a larger variance localizes again (its large "
    "eigenvalues sharpen the cross logits), so the entropy curve is not monotone",
    notes="Expected falsified (a finding about the regime: P1 holds for sigma^2 <= mu^2 only).",
    **_P1,
)
def trend_p1_large_variance(sigma2, entropy, stderr, k: float = 4.0) -> TrendSides:
    r"""P1 (same inequality as :func:`trend_p1`) on a variance grid that extends past :math:`\mu^2`.

    .. math:: \mu\ne0,\ \sigma_a^2<\sigma_b^2\ \Rightarrow\ \mathbb E\,H\big(p;\mu,\sigma_a^2\big)\le\mathbb E\,H\big(p;\mu,\sigma_b^2\big)
    """
    return trend_p1.raw(sigma2, entropy, stderr, k)


@register(
    "qk.trend_p1_no_self",
    value=_upper_side,
    expect="falsified",
    refutation="without the self-token the cross logits have variance ~ sigma^2 + mu^2: lowering sigma^2 spreads "
    "attention (significant decrease, ratio 1.10; corpus qk.trend_p1_no_self)",
    norm="none",
    assumptions=("fixed eigenvalue mean mu != 0", "the query is independent of the keys (no self-token)"),
    covers="P1 where it is expected to FAIL: cross logits have variance ~ sigma^2 + mu^2, so lowering sigma^2 "
    "spreads attention",
    notes="Expected falsified (a finding about the regime, not a weakened claim).",
    **_P1,
)
def trend_p1_no_self(sigma2, entropy, stderr, k: float = 4.0) -> TrendSides:
    r"""P1 (same inequality as :func:`trend_p1`) in the no-self-token regime.

    .. math:: \mu\ne0,\ \sigma_a^2<\sigma_b^2\ \Rightarrow\ \mathbb E\,H\big(p;\mu,\sigma_a^2\big)\le\mathbb E\,H\big(p;\mu,\sigma_b^2\big)
    """
    return trend_p1.raw(sigma2, entropy, stderr, k)


@register(
    "qk.trend_p2",
    value=_upper_side,
    norm="none",
    kind="claim",
    assumptions=("eigenvalue mean mu = 0", "self-token or not (recorded)"),
    source="Bao, Hataya, Karakida, ICML 2024, abstract ('small spectral-variance with a nonzero mean'); "
    "operationalised in docs/research/seed_papers.md B.4 (P2) [D]",
    confidence="reconstructed",
    covers="P2: with zero mean, lowering the variance brings no localization",
)
def trend_p2(sigma2, entropy, stderr, k: float = 4.0) -> TrendSides:
    r"""P2: at :math:`\mu=0` lowering :math:`\sigma^2` brings no localization benefit: the mean entropy is
    non-increasing in :math:`\sigma^2`. Worst pair as :math:`H_j-k\,\mathrm{se}\le H_i` for i < j.

    .. math:: \mu=0,\ \sigma_a^2<\sigma_b^2\ \Rightarrow\ \mathbb E\,H\big(p;0,\sigma_a^2\big)\ge\mathbb E\,H\big(p;0,\sigma_b^2\big)
    """
    _, h, se = _curve(sigma2, entropy, stderr)
    return _monotone_sides(h, se, positive_float("k", k), increasing=False)


def _p3_sides(h: np.ndarray, se: np.ndarray, log_t: float, delta: float, k: float) -> TrendSides:
    r"""P3 as three requirements, reported as the worst slack: the smallest variance is near-uniform
    (:math:`H_0\ge(1-\delta)\log T`), the largest near-one-hot (:math:`H_{-1}\le\delta\log T`), and some grid point
    lies in the band :math:`[\delta\log T,(1-\delta)\log T]`. Each gives lower/upper in nats; the worst is returned."""
    se1 = se if se.ndim == 1 else np.sqrt(np.diag(se))
    cands = [
        TrendSides(float((1 - delta) * log_t - k * se1[0]), float(h[0]), (0,)),
        TrendSides(float(h[-1] - k * se1[-1]), float(delta * log_t), (h.size - 1,)),
    ]
    dist = np.maximum(delta * log_t - (h + k * se1), (h - k * se1) - (1 - delta) * log_t)
    i = int(np.argmin(dist))
    cands.append(TrendSides(float(dist[i]), 0.0, (i,)))
    return max(cands, key=lambda t: t.lower - t.upper)


_P3 = dict(
    kind="claim",
    source="Bao, Hataya, Karakida, ICML 2024, abstract ('can prevent both rank and entropy collapses'); "
    "operationalised in docs/research/seed_papers.md B.4 (P3) [D]",
    confidence="reconstructed",
)


@register(
    "qk.trend_p3",
    value=_upper_side,
    norm="none",
    assumptions=("eigenvalue mean mu = 0", "variance grid spanning small to large logit spread", "delta = 0.1"),
    covers="P3: the entropy curve runs from uniform to one-hot through a moderate band",
    **_P3,
)
def trend_p3(sigma2, entropy, stderr, n_tokens: int, delta: float = 0.1, k: float = 4.0) -> TrendSides:
    r"""P3 on a measured curve over a variance grid (see :func:`_p3_sides`); ``n_tokens`` is T.

    .. math:: \sigma^2\to0:\ H\to\log T\ (\text{rank-collapse side});\ \sigma^2\to\infty:\ H\to0\ (\text{entropy collapse});\ \exists\ \text{moderate }\sigma^2:\ \delta\log T\le H\le(1-\delta)\log T
    """
    _, h, se = _curve(sigma2, entropy, stderr)
    t = positive_int("n_tokens", n_tokens, minimum=2)
    dl = positive_float("delta", delta)
    if dl >= 0.5:
        raise InputError(f"delta: expected a number in (0, 0.5), got {dl}")
    return _p3_sides(h, se, math.log(t), dl, positive_float("k", k))


@register(
    "qk.trend_p3_self_mean",
    value=_upper_side,
    expect="falsified",
    refutation="with the self-token and mean mu != 0 the smallest variance is one-hot self attention, not "
    "near-uniform (ratio 3.0; corpus qk.trend_p3_self_mean)",
    norm="none",
    assumptions=("eigenvalue mean mu > 0 with sqrt(d) mu >> sqrt(log T)", "self-token regime"),
    covers="P3 where it is expected to FAIL: small variance gives one-hot self-attention (entropy collapse), "
    "not uniform attention",
    notes="Expected falsified (a finding about the regime).",
    **_P3,
)
def trend_p3_self_mean(sigma2, entropy, stderr, n_tokens: int, delta: float = 0.1, k: float = 4.0) -> TrendSides:
    r"""P3 (same requirements as :func:`trend_p3`) in the self-token regime with a large positive mean.

    .. math:: \sigma^2\to0:\ H\to\log T\ (\text{rank-collapse side});\ \sigma^2\to\infty:\ H\to0\ (\text{entropy collapse});\ \exists\ \text{moderate }\sigma^2:\ \delta\log T\le H\le(1-\delta)\log T
    """
    return trend_p3.raw(sigma2, entropy, stderr, n_tokens, delta, k)
