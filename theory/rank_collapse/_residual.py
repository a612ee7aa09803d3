"""Norms and residuals: the composite quantity, the residual and its optimal certified bounds."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from ..numerics import inf_norm, round_down, round_up
from ..registry import Mutant, TightFamily, register
from ..validate import InputError, as_real_array, choice

#: shifts that define the residual X - 1 s^T (s = column means, medians or mid-ranges)
SHIFTS = ("mean", "median", "midrange")


def one_norm(x) -> float:
    r"""Induced :math:`\ell_1` operator norm :math:`\|X\|_1=\max_j\sum_i|X_{ij}|` (largest absolute column sum)."""
    return inf_norm(as_real_array("x", x, ndim=2).T)


def composite_norm(x) -> float:
    r""":math:`\|X\|_{1,\infty}=\sqrt{\|X\|_1\|X\|_\infty}` (the geometric mean, **with** the square root).

    Not a norm: with :math:`A=\begin{psmallmatrix}1&1\\0&0\end{psmallmatrix}`,
    :math:`B=\begin{psmallmatrix}1&0\\1&0\end{psmallmatrix}`, :math:`\|A+B\|_{1,\infty}=3>2\sqrt2`.
    """
    a = as_real_array("x", x, ndim=2)
    return math.sqrt(inf_norm(a.T) * inf_norm(a))


@register(
    "rank.composite_submultiplicative",
    norm="composite",
    kind="upper",
    assumptions=("A (n x m), B (m x k) real",),
    source="derived here (both factors are induced norms, hence sub-multiplicative); Dong et al. 2021, Sec. 2",
    confidence="derived",
    covers="the composite quantity ||X||_{1,inf} = sqrt(||X||_1 ||X||_inf)",
    notes="The triangle inequality fails (tests/test_rank_collapse.py); sub-multiplicativity is what the proofs use.",
    tight=TightFamily("1 x 1 matrices: |ab| = |a| |b|", "derived here", ratio=1.0),
    mutants=[Mutant("no square roots", lambda a, b: composite_norm(a) ** 2 * composite_norm(b) ** 2, "known_false",
                    "1 x 1 with |ab| < 1: (ab)^2 < |ab|"),
             Mutant("1-norms only", lambda a, b: one_norm(a) * one_norm(b), "known_false",
                    "A = 1_n, B = 1_k^T with k > n: ||AB||_{1,inf} = sqrt(nk) > n = ||A||_1 ||B||_1")],
)
def composite_product_bound(a, b) -> float:
    r"""Upper bound :math:`\|A\|_{1,\infty}\|B\|_{1,\infty}` on :math:`\|AB\|_{1,\infty}`, rounded outward.

    .. math:: \|AB\|_{1,\infty}\le\|A\|_{1,\infty}\|B\|_{1,\infty}

    Proof: :math:`\|AB\|_1\le\|A\|_1\|B\|_1` and :math:`\|AB\|_\infty\le\|A\|_\infty\|B\|_\infty` (induced norms);
    multiply and take square roots.
    """
    a = as_real_array("a", a, ndim=2)
    b = as_real_array("b", b, ndim=2)
    if a.shape[1] != b.shape[0]:
        raise InputError(f"b: expected {a.shape[1]} rows to match a {a.shape}, got shape {b.shape}")
    return round_up(composite_norm(a) * composite_norm(b))


def shift_vector(x, kind: str = "mean") -> np.ndarray:
    """The shift :math:`x` of :math:`\\mathrm{res}(X)=X-\\mathbf 1x^\\top`: column ``mean``, ``median`` or ``midrange``."""
    a = as_real_array("x", x, ndim=2)
    choice("kind", kind, SHIFTS)
    if kind == "mean":
        return a.mean(axis=0)
    if kind == "median":
        return np.median(a, axis=0)
    return 0.5 * (a.min(axis=0) + a.max(axis=0))


def residual(x, shift="mean") -> np.ndarray:
    r""":math:`\mathrm{res}(X)=X-\mathbf 1x^\top` for ``shift`` one of :data:`SHIFTS` or an explicit vector.

    The experiments of Dong et al. use the token mean (``mean``); the theorems use the minimising shift, whose
    norms :func:`optimal_residual_bounds` brackets.
    """
    a = as_real_array("x", x, ndim=2)
    if isinstance(shift, str):
        s = shift_vector(a, shift)
    else:
        s = as_real_array("shift", shift, ndim=1)
        if s.shape != (a.shape[1],):
            raise InputError(f"shift: expected shape ({a.shape[1]},), got {s.shape}")
    return a - s[None, :]


def residual_ratio(x) -> float:
    r"""The experiments' collapse metric :math:`\|\mathrm{res}(X)\|_{1,\infty}/\|X\|_{1,\infty}` (mean shift); 0 for X = 0."""
    a = as_real_array("x", x, ndim=2)
    den = composite_norm(a)
    return composite_norm(residual(a, "mean")) / den if den > 0 else 0.0


@dataclass(frozen=True)
class ResidualBounds:
    r"""Certified brackets of the optimal-shift residual norms of X (or of every X in a box).

    ``one``: :math:`\min_x\|X-\mathbf 1x^\top\|_1`; ``inf``: :math:`\min_x\|X-\mathbf 1x^\top\|_\infty`;
    ``composite``: :math:`\min_x\|X-\mathbf 1x^\top\|_{1,\infty}`. Each ``*_lower`` is rounded down and each
    ``*_upper`` rounded up; ``shift`` is the vector that attains ``composite_upper``.
    """

    one_lower: float
    one_upper: float
    inf_lower: float
    inf_upper: float
    composite_lower: float
    composite_upper: float
    shift: np.ndarray


def _fraction_down(value: Fraction) -> float:
    """The largest float <= ``value`` (exact rational input)."""
    f = float(value)
    if Fraction(f) > value:
        f = float(np.nextafter(f, -math.inf))
    return f


def _box(lower, upper) -> tuple[np.ndarray, np.ndarray]:
    lo = as_real_array("lower", lower, ndim=2)
    if upper is None:
        return lo, lo
    hi = as_real_array("upper", upper, ndim=2)
    if hi.shape != lo.shape:
        raise InputError(f"upper: expected the shape of lower {lo.shape}, got {hi.shape}")
    if (hi < lo).any():
        raise InputError("upper: expected upper >= lower entrywise")
    return lo, hi


def _one_lower(lo: np.ndarray, hi: np.ndarray) -> float:
    r"""Per column, pair the k-th largest with the k-th smallest entry: :math:`|y_a-x|+|y_b-x|\ge|y_a-y_b|`.

    For a point matrix this is exactly :math:`\min_{x_j}\sum_i|X_{ij}-x_j|` (attained at the median).
    """
    n = lo.shape[0]
    order = np.argsort(0.5 * (lo + hi), axis=0, kind="stable")
    best = 0.0
    for j in range(lo.shape[1]):
        col = order[:, j]
        top, bot = col[::-1][: n // 2], col[: n // 2]
        gaps = np.maximum(0.0, lo[top, j] - hi[bot, j])
        best = max(best, float(np.sum(gaps)))
    return round_down(best)


def _worst_deviation(lo: np.ndarray, hi: np.ndarray, s: np.ndarray) -> np.ndarray:
    """Entrywise max over the box of |Y_ij - s_j|."""
    return np.maximum(np.abs(lo - s[None, :]), np.abs(hi - s[None, :]))


def _inf_dual(mid: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    r"""LP dual of :math:`\min_x\max_i\|m_i-x\|_1`: :math:`\max\langle Y,M\rangle` s.t. :math:`Y^\top\mathbf 1=0`,
    :math:`\sum_i\max_j|Y_{ij}|\le1` (HiGHS). Returns the dual matrix Y and candidate primal shifts.

    The LP is solved for :math:`(M-\mathbf 1c^\top)/s` (c: column medians, s: largest deviation), which has the same
    optimal Y (the objective only changes by the factor s on :math:`Y^\top\mathbf 1=0`); unscaled, HiGHS returned
    Y = 0 for a 5 x 1 column of values 0.0125 +- 6e-5.
    """
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix

    n, d = mid.shape
    center = np.median(mid, axis=0)
    scale = float(np.abs(mid - center).max())
    if scale == 0.0:
        return np.zeros((n, d)), [center]
    m = (mid - center) / scale
    ny = n * d
    c = np.concatenate([-m.reshape(-1), np.zeros(n)])
    rows, vals, cols, b = [], [], [], []
    r = 0
    for i in range(n):
        for j in range(d):
            for sign in (1.0, -1.0):  # sign * Y_ij - s_i <= 0
                rows += [r, r]
                cols += [i * d + j, ny + i]
                vals += [sign, -1.0]
                b.append(0.0)
                r += 1
    rows += [r] * n
    cols += list(range(ny, ny + n))
    vals += [1.0] * n
    b.append(1.0)
    a_ub = coo_matrix((vals, (rows, cols)), shape=(r + 1, ny + n)).tocsr()
    a_eq = coo_matrix(([1.0] * ny, ([j for i in range(n) for j in range(d)], list(range(ny)))),
                      shape=(d, ny + n)).tocsr()
    bounds = [(None, None)] * ny + [(0, None)] * n
    res = linprog(c, A_ub=a_ub, b_ub=b, A_eq=a_eq, b_eq=np.zeros(d), bounds=bounds, method="highs")
    if res.x is None:
        return np.zeros((n, d)), [center]
    y = res.x[:ny].reshape(n, d)
    shifts = [center]
    marg = getattr(getattr(res, "eqlin", None), "marginals", None)
    if marg is not None and np.all(np.isfinite(marg)):
        shifts += [center - scale * np.asarray(marg, dtype=np.float64), center + scale * np.asarray(marg)]
    return y, shifts


def _inf_lower(lo: np.ndarray, hi: np.ndarray, y: np.ndarray) -> float:
    r"""Certified :math:`\min_x\max_i\|Y^0_i-x\|_1\ge\frac1S\big[\sum\min(Y\,lo,Y\,hi)-\sum_j\max(c_jL_j,c_jH_j)\big]`.

    For any Y with :math:`S=\sum_i\max_j|Y_{ij}|`, :math:`\langle Y/S,Z\rangle\le\|Z\|_\infty` (dual norms). A minimising
    x can be clamped into the column ranges :math:`[L_j,H_j]` of the box without increasing any
    :math:`|Y^0_{ij}-x_j|`, so :math:`c^\top x\le\sum_j\max(c_jL_j,c_jH_j)` with :math:`c=Y^\top\mathbf 1`. Evaluated
    in exact rational arithmetic, so the float dual only affects tightness, never validity.
    """
    n, d = lo.shape
    s_tot = sum((Fraction(float(v)) for v in np.abs(y).max(axis=1)), Fraction(0))
    if s_tot == 0:
        return 0.0
    col_lo, col_hi = lo.min(axis=0), hi.max(axis=0)
    total = Fraction(0)
    for i in range(n):
        for j in range(d):
            yij = Fraction(float(y[i, j]))
            if yij:
                total += min(yij * Fraction(float(lo[i, j])), yij * Fraction(float(hi[i, j])))
    for j in range(d):
        cj = sum((Fraction(float(v)) for v in y[:, j]), Fraction(0))
        total -= max(cj * Fraction(float(col_lo[j])), cj * Fraction(float(col_hi[j])))
    return max(0.0, _fraction_down(total / s_tot))


@register(
    "rank.residual",
    value=lambda rb: rb.one_upper,
    norm="composite",
    kind="exact",
    assumptions=("X real n x d",),
    source="derived here (columns decouple for the 1-norm; LP duality for the inf-norm); residual as in Dong et al. 2021, Sec. 2",
    confidence="derived",
    covers="optimal-shift residual norms, exact for ||.||_1, certified LP bracket for ||.||_inf, composite bracket",
    notes="The record's number is the exact 1-norm residual min_x ||X - 1 x^T||_1 (one_upper, equal to one_lower to "
    "rounding); the inf-norm and composite brackets are in the details.",
)
def optimal_residual_bounds(lower, upper=None) -> ResidualBounds:
    r"""Certified brackets of :math:`\min_x\|X-\mathbf 1x^\top\|` in the 1-, :math:`\infty`- and composite norms.

    .. math:: \min_x\|X-\mathbf 1x^\top\|_1=\max_j\sum_i|X_{ij}-\mathrm{med}_iX_{ij}|,\quad \min_x\|X-\mathbf 1x^\top\|_\infty=\max_{Y^\top\mathbf 1=0,\ \sum_i\|y_i\|_\infty\le1}\langle Y,X\rangle

    * 1-norm: the columns decouple and :math:`\min_{x_j}\sum_i|X_{ij}-x_j|` is attained at the column median, so
      the value is exact (:func:`_one_lower` pairs extreme entries; equality for a point matrix).
    * :math:`\infty`-norm: an LP. The upper bound is the objective at the best of {mean, median, midrange, LP
      shift}; the lower bound is a dual certificate evaluated in exact rational arithmetic (:func:`_inf_lower`).
    * composite: :math:`\min_x\sqrt{f_1(x)f_\infty(x)}\ge\sqrt{\min f_1\cdot\min f_\infty}` (lower);
      the upper bound uses *one* shift for both factors.

    With ``upper`` given, ``(lower, upper)`` is an entrywise box and every bound holds for every X in it (the
    lower bounds for the least favourable X): this is how an interval enclosure of a network output is certified.
    """
    lo, hi = _box(lower, upper)
    if lo.shape[0] < 2:
        raise InputError(f"lower: expected at least 2 tokens (rows), got shape {lo.shape}")
    mid = 0.5 * (lo + hi)
    dual, lp_shifts = _inf_dual(mid)
    candidates = [shift_vector(mid, k) for k in SHIFTS] + lp_shifts
    best = None
    for s in candidates:
        dev = _worst_deviation(lo, hi, s)
        f1, finf = float(dev.sum(axis=0).max()), float(dev.sum(axis=1).max())
        comp = math.sqrt(f1 * finf)
        if best is None or comp < best[0]:
            best = (comp, s)
    med = shift_vector(mid, "median")
    dev_med = _worst_deviation(lo, hi, med)
    one_up = float(dev_med.sum(axis=0).max())
    inf_up = min(float(_worst_deviation(lo, hi, s).sum(axis=1).max()) for s in candidates)
    one_lo = _one_lower(lo, hi)
    inf_lo = _inf_lower(lo, hi, dual)
    return ResidualBounds(
        one_lower=one_lo,
        one_upper=round_up(one_up),
        inf_lower=inf_lo,
        inf_upper=round_up(inf_up),
        composite_lower=round_down(math.sqrt(one_lo * inf_lo)),
        composite_upper=round_up(best[0]),
        shift=best[1],
    )


# --------------------------------------------------------------------------- path decomposition
