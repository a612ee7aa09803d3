r"""Rank collapse of pure self-attention (Dong, Cordonnier, Loukas 2021): residuals, paths, collapse bounds.

Conventions follow :mod:`theory.attention` (row tokens). A self-attention network (SAN) of depth L has layers

.. math:: X^l=\sum_{h=1}^H P^l_h X^{l-1}W^l_h,\qquad P^l_h=\mathrm{softmax}\Big(\frac{X^{l-1}W^l_{Q,h}W^{l\top}_{K,h}X^{l-1\top}}{\sqrt{d_{qk}}}\Big),

(no biases), with the *effective* value matrix :math:`W_h=V_hO_h` of :class:`~theory.attention.AttentionWeights`
(``value @ output``); ``output`` must map back to the token width so that layers stack. With skip connections a
layer is :math:`X^{l-1}+\sum_hP^l_hX^{l-1}W^l_h`; with an MLP it is :math:`f_l\big(\sum_hP^l_hX^{l-1}W^l_h\big)`.

The residual is :math:`\mathrm{res}(X)=X-\mathbf 1x^\top` and collapse is measured in the *composite* quantity

.. math:: \|X\|_{1,\infty}=\sqrt{\|X\|_1\|X\|_\infty},\qquad \|X\|_1=\max_j\sum_i|X_{ij}|,\ \|X\|_\infty=\max_i\sum_j|X_{ij}|,

which is **not a norm** (it fails the triangle inequality) but is sub-multiplicative. The square root matters:
the authors' plotting helper ``functions.py::composite_norm`` drops it (``shared/research/seed_papers.md`` §A.3).

Everything here is *reconstructed*: the paper's text was not readable, the statements come from third-party
restatements (``seed_papers.md`` §A, tags [C]/[M]); the uncertain choices (the attention-dependent factor
:math:`\gamma` of arXiv v2, which shift defines the residual, the logit-spread limit 1.256) are parameters.

References
----------
Y. Dong, J.-B. Cordonnier, A. Loukas. *Attention is not all you need: pure attention loses rank doubly
exponentially with depth.* ICML 2021 (arXiv 2103.03404, v2 Aug 2023).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .validate import InputError, as_real_array, choice, positive_float, positive_int
from .attention import AttentionWeights
from .numerics import inf_norm, round_down, round_up
from .registry import register

__all__ = [
    "one_norm",
    "composite_norm",
    "shift_vector",
    "residual",
    "residual_ratio",
    "ResidualBounds",
    "optimal_residual_bounds",
    "Path",
    "path_decomposition",
    "path_counts",
    "path_length_pmf",
    "collapse_beta",
    "VALUE_FORMS",
    "mlp_lipschitz",
    "logit_spread",
    "single_head_collapse_bound",
    "multi_head_collapse_bound",
    "spread_limited_collapse_bound",
    "mlp_collapse_bound",
    "local_collapse_exponent",
    "log_log_slope",
    "skip_zero_value_identity",
    "layernorm_rows",
    "right_multiplication_misfit",
    "layernorm_equal_std_rewrite",
    "composite_product_bound",
    "collapse_order",
    "collapse_order_sharp",
    "mlp_slowing",
]

#: the bound on the logit spread max_{j'}|E_ij - E_ij'| in the authors' reply (GitHub issue #1, 2023-07-02):
#: e^u <= 1 + 2u holds for u in [0, 1.2564]
SPREAD_LIMIT = 1.256
SHIFTS = ("mean", "median", "midrange")

_U = 2.0**-53


# --------------------------------------------------------------------------- norms and residuals
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
    kind="upper",
    latex=r"\|AB\|_{1,\infty}\le\|A\|_{1,\infty}\|B\|_{1,\infty}",
    assumptions=("A (n x m), B (m x k) real",),
    source="derived here (both factors are induced norms, hence sub-multiplicative); Dong et al. 2021, Sec. 2",
    confidence="derived",
    covers="the composite quantity ||X||_{1,inf} = sqrt(||X||_1 ||X||_inf)",
    notes="The triangle inequality fails (tests/test_rank_collapse.py); sub-multiplicativity is what the proofs use.",
)
def composite_product_bound(a, b) -> float:
    r"""Upper bound :math:`\|A\|_{1,\infty}\|B\|_{1,\infty}` on :math:`\|AB\|_{1,\infty}`, rounded outward.

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
    kind="exact",
    latex=r"\min_x\|X-\mathbf 1x^\top\|_1=\max_j\sum_i|X_{ij}-\mathrm{med}_iX_{ij}|,\quad \min_x\|X-\mathbf 1x^\top\|_\infty=\max_{Y^\top\mathbf 1=0,\ \sum_i\|y_i\|_\infty\le1}\langle Y,X\rangle",
    assumptions=("X real n x d",),
    source="derived here (columns decouple for the 1-norm; LP duality for the inf-norm); residual as in Dong et al. 2021, Sec. 2",
    confidence="derived",
    covers="optimal-shift residual norms, exact for ||.||_1, certified LP bracket for ||.||_inf, composite bracket",
)
def optimal_residual_bounds(lower, upper=None) -> ResidualBounds:
    r"""Certified brackets of :math:`\min_x\|X-\mathbf 1x^\top\|` in the 1-, :math:`\infty`- and composite norms.

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
@dataclass(frozen=True)
class Path:
    """One path of the decomposition: the head taken at each layer (0 is the skip branch when ``skip``)."""

    heads: tuple[int, ...]
    attention: np.ndarray  # P_path = P^L_{h_L} ... P^1_{h_1}, (n, n)
    weight: np.ndarray  # W_path = W^1_{h_1} ... W^L_{h_L}, (d, d)
    skip: bool = False

    @property
    def length(self) -> int:
        """Number of attention hops (non-skip layers); the depth when there are no skips."""
        return sum(1 for h in self.heads if h != 0) if self.skip else len(self.heads)


def _probs(name: str, attention, n: int | None = None) -> list[np.ndarray]:
    """Validate per-layer attention matrices: a list of (H, n, n) arrays."""
    if not isinstance(attention, (list, tuple)) or not attention:
        raise InputError(f"{name}: expected a non-empty list of (heads, n, n) arrays (depth >= 1)")
    out = []
    for l, p in enumerate(attention):
        a = as_real_array(f"{name}[{l}]", p, ndim=3)
        if a.shape[1] != a.shape[2] or (n is not None and a.shape[1] != n):
            raise InputError(f"{name}[{l}]: expected shape (heads, n, n) with n = {n}, got {a.shape}")
        n = a.shape[1]
        out.append(a)
    return out


@register(
    "rank.path_decomposition",
    kind="exact",
    latex=r"\mathrm{SAN}(X)=\sum_{\mathrm{path}\in[H]^L}P_{\mathrm{path}}XW_{\mathrm{path}},\ P_{\mathrm{path}}=P^L_{h_L}\cdots P^1_{h_1},\ W_{\mathrm{path}}=W^1_{h_1}\cdots W^L_{h_L}",
    assumptions=("bias-free SAN", "P^l_h computed on the forward pass", "skips: head 0 with P_0 = I, W_0 = I"),
    source="Dong, Cordonnier, Loukas, ICML 2021, Thm 2.1 (restated in secondary sources)",
    confidence="reconstructed",
    covers="pure self-attention networks with and without skip connections",
    notes="The identity is multilinearity of the layer maps once the P^l_h are fixed; P_path is row-stochastic.",
)
def path_decomposition(x, attention, values, skip: bool = False) -> tuple[np.ndarray, list[Path]]:
    r"""Sum over paths :math:`\sum_{\mathrm{path}}P_{\mathrm{path}}XW_{\mathrm{path}}` and the paths themselves.

    ``attention[l]``: the ``(H, n, n)`` attention matrices of layer l+1 (from a forward pass);
    ``values[l]``: the ``(H, d, d)`` effective value matrices :math:`W^l_h=V^l_hO^l_h`. With ``skip`` a head 0
    with :math:`P_0=I`, :math:`W_0=I` is added per layer, so there are :math:`(1+H)^L` paths
    (:math:`H^L` without). Exact: expanding :math:`X^l=\sum_hP^l_hX^{l-1}W^l_h` (or with the identity term)
    layer by layer distributes the product over the sums.
    """
    a = as_real_array("x", x, ndim=2)
    probs = _probs("attention", attention, a.shape[0])
    if not isinstance(values, (list, tuple)) or len(values) != len(probs):
        raise InputError(f"values: expected a list of {len(probs)} (heads, d, d) arrays, one per layer")
    ws = []
    d = a.shape[1]
    for l, (w, p) in enumerate(zip(values, probs)):
        w = as_real_array(f"values[{l}]", w, ndim=3)
        if w.shape != (p.shape[0], d, d):
            raise InputError(f"values[{l}]: expected shape ({p.shape[0]}, {d}, {d}), got {w.shape}")
        ws.append(w)
    n = a.shape[0]
    if skip:
        probs = [np.concatenate([np.eye(n)[None], p]) for p in probs]
        ws = [np.concatenate([np.eye(d)[None], w]) for w in ws]
    paths = []
    total = np.zeros_like(a)
    for heads in itertools.product(*(range(p.shape[0]) for p in probs)):
        pp, ww = np.eye(n), np.eye(d)
        for l, h in enumerate(heads):
            pp = probs[l][h] @ pp
            ww = ww @ ws[l][h]
        total += pp @ a @ ww
        paths.append(Path(tuple(heads), pp, ww, skip))
    return total, paths


@register(
    "rank.path_count",
    kind="exact",
    latex=r"|\mathcal P_l|=\binom Ll H^l,\qquad \sum_{l=0}^L|\mathcal P_l|=(1+H)^L",
    assumptions=("SAN with skip connections, depth L, H heads per layer",),
    source="Dong, Cordonnier, Loukas, ICML 2021, Sec. 3.1; paper-plotting/paths_counting.ipynb (Binomial(L, H/(H+1)))",
    confidence="standard",
    covers="path counts by length; without skips all H^L paths have length L",
)
def path_counts(depth: int, heads: int, skip: bool = True) -> np.ndarray:
    r"""Number of paths of each length :math:`l=0..L`: :math:`\binom Ll H^l` with skips, :math:`H^L\,[l=L]` without."""
    L = positive_int("depth", depth)
    H = positive_int("heads", heads)
    if skip:
        return np.array([math.comb(L, l) * H**l for l in range(L + 1)], dtype=np.int64)
    out = np.zeros(L + 1, dtype=np.int64)
    out[L] = H**L
    return out


def path_length_pmf(depth: int, heads: int) -> np.ndarray:
    r"""Proportion of paths of length l with skips, :math:`\binom Ll H^l/(1+H)^L`: the Binomial(L, H/(H+1)) pmf."""
    counts = path_counts(depth, heads, skip=True)
    return counts / float((1 + heads) ** depth)


# --------------------------------------------------------------------------- collapse bounds
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
    err = (k + 2) * _U * 1.01 * (np.abs(a) @ np.abs(b))
    return norm(a @ b) + norm(err)


def _comp_upper(m: np.ndarray) -> float:
    return math.sqrt(inf_norm(m.T) * inf_norm(m))


VALUE_FORMS = ("effective", "factored")


def collapse_beta(layers, value: str = "effective") -> float:
    r""":math:`\beta=\max_{l,h}\|W^l_{Q,h}W^{l\top}_{K,h}\|_1\,\|W^l_{V,h}W^l_{O,h}\|_{1,\infty}`, rounded up.

    *Reconstructed choice* (seed_papers.md §A.5): the restatements name :math:`\|W_{V,h}\|_{1,\infty}`, while the
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


def mlp_lipschitz(first, second) -> float:
    r"""Composite-norm Lipschitz constant of a row-wise MLP :math:`f(z)=\sigma(zA+a)B+b` (:math:`\sigma` 1-Lipschitz
    entrywise): :math:`\lambda=\sqrt{\|A\|_1\|B\|_1\|A\|_\infty\|B\|_\infty}`.

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
        return optimal_residual_bounds(a).composite_upper
    mean = a.mean(axis=0)
    dev = np.abs(a - mean) + (a.shape[0] + 3) * _U * 1.01 * (np.abs(a) + np.abs(mean))
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


def _thm23(layers, x, gamma: float, lam: float, shift: str, value: str = "effective") -> float:
    ls = _layers(layers)
    g = positive_float("gamma", gamma)
    a = as_real_array("x", x, ndim=2)
    if a.shape[1] != ls[0].dim:
        raise InputError(f"x: expected {ls[0].dim} columns (the token width), got shape {a.shape}")
    heads = max(w.heads for w in ls)
    c = round_up(4.0 * g * collapse_beta(ls, value) * heads * lam / math.sqrt(ls[0].head_dim))
    return _collapse_rhs(c, len(ls), _residual_upper(a, shift))


_DONG_ASSUMPTIONS = (
    "bias-free SAN, no skip connections, no normalisation",
    "beta = max_{l,h} ||W_QK||_1 ||W_V W_O||_{1,inf} (effective value matrix; parameter value='factored' uses ||W_V|| ||W_O||)",
    "residual: optimal shift (default) or token mean (parameter shift)",
    "gamma: the v2 attention-dependent factor, definition not recovered; gamma = 1 is the ICML/v1 form",
)


@register(
    "rank.dong_thm22",
    kind="upper",
    latex=r"\|\mathrm{res}(\mathrm{SAN}(X))\|_{1,\infty}\le\Big(\frac{4\gamma\beta}{\sqrt{d_{qk}}}\Big)^{\frac{3^L-1}2}\|\mathrm{res}(X)\|_{1,\infty}^{3^L}",
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

    .. math:: \Big(\frac{4\gamma\beta}{\sqrt{d_{qk}}}\Big)^{\frac{3^L-1}2}\|\mathrm{res}(X)\|_{1,\infty}^{3^L}

    *Reconstructed* (seed_papers.md §A.4): the exponent follows from the cubic single-layer form by induction;
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
    kind="upper",
    latex=r"\|\mathrm{res}(\mathrm{SAN}(X))\|_{1,\infty}\le\Big(\frac{4\gamma\beta H}{\sqrt{d_{qk}}}\Big)^{\frac{3^L-1}2}\|\mathrm{res}(X)\|_{1,\infty}^{3^L}",
    assumptions=("H heads per layer",) + _DONG_ASSUMPTIONS,
    source="Dong, Cordonnier, Loukas, ICML 2021, Thm 2.3 (restated in secondary sources; gamma added in arXiv v2)",
    confidence="reconstructed",
    covers="multi-head pure self-attention networks of depth L, composite residual norm",
    notes="One restatement misprints the exponent as (3L-1)/2; (3^L-1)/2 is used.",
)
def multi_head_collapse_bound(layers, x, gamma: float = 1.0, shift: str = "optimal",
                              value: str = "effective") -> float:
    r"""Theorem 2.3 (H heads): :math:`\big(4\gamma\beta H/\sqrt{d_{qk}}\big)^{(3^L-1)/2}\|\mathrm{res}(X)\|_{1,\infty}^{3^L}`.

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
    kind="upper",
    latex=r"\max_{l,i,j,j'}|E^l_{ij}-E^l_{ij'}|<1.256\ \Rightarrow\ \|\mathrm{res}(\mathrm{SAN}(X))\|_{1,\infty}\le\Big(\frac{4\gamma\beta H}{\sqrt{d_{qk}}}\Big)^{\frac{3^L-1}2}\|\mathrm{res}(X)\|_{1,\infty}^{3^L}",
    assumptions=_DONG_ASSUMPTIONS + ("logit spread max_{j'}|E_ij - E_ij'| < limit (1.256) at every layer, every shift",),
    source="Dong et al. arXiv v2 (2023) as described by the authors in twistedcubic/attention-rank-collapse issue #1",
    confidence="reconstructed",
    covers="multi-head pure SAN on inputs whose logit spread is below the limit at every layer",
    notes="The v2 constant gamma is unknown; gamma = 1 is tested. Raises if the spread assumption fails.",
)
def spread_limited_collapse_bound(layers, x, inputs, gamma: float = 1.0, limit: float = SPREAD_LIMIT,
                                  shift: str = "optimal", value: str = "effective") -> float:
    r"""Theorem 2.3 under the logit-spread assumption of the authors' updated proof.

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
    kind="upper",
    latex=r"\|\mathrm{res}(X^L)\|_{1,\infty}\le\Big(\frac{4\gamma\beta H\lambda}{\sqrt{d_{qk}}}\Big)^{\frac{3^L-1}2}\|\mathrm{res}(X)\|_{1,\infty}^{3^L},\ X^{l}=f_l\Big(\sum_hP^l_hX^{l-1}W^l_h\Big)",
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
        lam = max(lam, mlp_lipschitz(a_mat, b_mat))
    return _thm23(ls, x, gamma, lam, shift, value)


# --------------------------------------------------------------------------- local rate, skips, LayerNorm
@register(
    "rank.cubic_rate",
    kind="claim",
    latex=r"\frac{d\log\|\mathrm{res}(\mathrm{SA}(\mathbf 1x^\top+\epsilon R))\|}{d\log\epsilon}\xrightarrow[\epsilon\to0]{}3",
    assumptions=("one self-attention layer, generic weights (the epsilon^3 coefficient is non-zero)",),
    source="Dong, Cordonnier, Loukas, ICML 2021, Thm 2.2 with L = 1 (cubic rate; restated)",
    confidence="reconstructed",
    covers="local rate of collapse of one attention layer near a rank-one input",
    notes="Derived: P = softmax(1u^T + E) with E = O(eps^2) and res(P R W) = O(||P - 1q^T|| ||R||) = O(eps^3).",
)
def local_collapse_exponent(depth: int = 1) -> int:
    r"""The claimed local exponent :math:`3^L` of :math:`\|\mathrm{res}(\mathrm{SAN}(\mathbf 1x^\top+\epsilon R))\|` in ε.

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
    kind="claim",
    latex=r"W^l_{V,h}=0\ \forall l,h\ \Rightarrow\ X^L=X\ \text{(skips)},\ \text{so}\ \|\mathrm{res}(X^L)\|\ge\|\mathrm{res}(X)\|",
    assumptions=("SAN with skip connections, any depth, heads, query/key weights",),
    source="Dong, Cordonnier, Loukas, ICML 2021, Claim 3.1 (restated; the proof is the length-0 path)",
    confidence="reconstructed",
    covers="existence of non-collapsing parameterisations with skips, for any depth and arbitrarily small beta",
)
def skip_zero_value_identity(x) -> np.ndarray:
    r"""The claimed output of a skip-connected SAN whose value matrices are all zero: the input itself.

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
    kind="claim",
    latex=r"\mathrm{LN}\Big(\sum_hP_hXW_h\Big)=\sum_hP_hXW_hD_{LN}^{-1}+\mathbf 1b_{LN}^\top\quad\text{(LN only right-multiplies)}",
    assumptions=("standard per-token LayerNorm (each row divided by its own std)",),
    source="Dong, Cordonnier, Loukas, ICML 2021, Sec. 3.3 (restated); disputed by Wu et al. 2024 (arXiv 2405.18781)",
    confidence="reconstructed",
    covers="LayerNorm after attention",
    notes="Expected FALSE unless all rows share one std: per-token LN is a left, data-dependent diagonal. The "
    "property finds the counterexample; see rank.layernorm_equal_std for the case where the rewrite is exact.",
)
def right_multiplication_misfit(z, ln_out) -> float:
    r"""Relative misfit :math:`\min_{M,b}\|\mathrm{LN}(Z)-ZM-\mathbf 1b^\top\|_F/\|\mathrm{LN}(Z)-\mathbf 1\overline{\mathrm{LN}(Z)}^\top\|_F`.

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
    kind="exact",
    latex=r"\mathrm{std}(z_i)\equiv s\ \Rightarrow\ \mathrm{LN}(Z)=Z\,C\,\mathrm{diag}(\gamma)/\sqrt{s^2+\epsilon}+\mathbf 1\beta^\top,\ C=I-\tfrac1d\mathbf 1\mathbf 1^\top",
    assumptions=("standard per-token LayerNorm", "every row has the same (biased) standard deviation s"),
    source="derived here (the case where Dong et al.'s Sec. 3.3 rewrite is exact)",
    confidence="derived",
    covers="LayerNorm on inputs with equal row standard deviations",
)
def layernorm_equal_std_rewrite(z, gamma, beta, eps: float) -> np.ndarray:
    r"""The right-multiplication form :math:`ZC\,\mathrm{diag}(\gamma)/\sqrt{s^2+\epsilon}+\mathbf 1\beta^\top` with
    :math:`s^2` the mean row variance.

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
_EMPIRICAL = dict(
    kind="claim",
    source="Dong, Cordonnier, Loukas, ICML 2021, Sec. 5.1 / Fig. 2 (trend restated; numbers not recovered)",
    confidence="reconstructed",
)


@register(
    "rank.empirical_collapse",
    latex=r"\frac{\|\mathrm{res}(\mathrm{SAN}_L(X))\|_{1,\infty}}{\|\mathrm{SAN}_L(X)\|_{1,\infty}}\le"
    r"\frac{\|\mathrm{res}(\mathrm{Net}_L(X))\|_{1,\infty}}{\|\mathrm{Net}_L(X)\|_{1,\infty}},\ \mathrm{Net}\in\{\mathrm{SAN{+}skip},\ \mathrm{transformer}\}",
    assumptions=("same attention weights in both networks", "residual ratio with the token-mean shift",
                 "fan-in initialisation, qk_scale <= 1 (regime recorded per case)"),
    covers="pure attention collapses faster than skip-connected variants (random and real-image inputs)",
    **_EMPIRICAL,
)
def collapse_order(collapsing, reference) -> tuple[float, float]:
    r"""The sides of "pure attention ends more collapsed": ``(ratio_L(SAN), ratio_L(reference))`` from per-layer
    residual ratios (:func:`residual_ratio`, column 0 the input); the claim is ``lower <= upper``."""
    a = as_real_array("collapsing", collapsing, ndim=1)
    b = as_real_array("reference", reference, ndim=1)
    if a.shape != b.shape:
        raise InputError(f"reference: expected the shape of collapsing {a.shape}, got {b.shape}")
    return float(a[-1]), float(b[-1])


@register(
    "rank.empirical_collapse_sharp",
    latex=r"\mathrm{ratio}_L(\mathrm{SAN})\le\mathrm{ratio}_L(\mathrm{SAN{+}skip})\quad\text{(sharp attention)}",
    assumptions=("single head, qk_scale in [2, 8] (sharp, near-permutation attention)",),
    covers="the same ordering where it is expected to FAIL",
    notes="Expected falsified: attention close to a permutation preserves the residual; outside 4 beta H < sqrt(d).",
    **_EMPIRICAL,
)
def collapse_order_sharp(collapsing, reference) -> tuple[float, float]:
    """:func:`collapse_order` in the sharp-attention regime."""
    return collapse_order(collapsing, reference)


@register(
    "rank.empirical_mlp_slows",
    latex=r"\mathrm{ratio}_l(\mathrm{SAN{+}MLP})\ge\tfrac12\,\mathrm{ratio}_l(\mathrm{SAN})\ \ \forall l\ \text{with}\ \mathrm{ratio}_l(\mathrm{SAN})>10^{-10}",
    assumptions=("same attention weights", "MLP relu(zA+a)B+b at fan-in scale 1 (contracting, lambda < 1)",
                 "factor 1/2 and float floor 1e-10 so that only clear reversals count"),
    covers="'MLP alone only slows collapse' at initialisation",
    notes="Expected falsified for contracting MLPs; the paper's remark is that a larger lambda slows collapse.",
    **_EMPIRICAL,
)
def mlp_slowing(san, mlp, margin: float = 0.5, floor: float = 1e-10) -> tuple[float, float, int]:
    r"""The sides of "an MLP only slows collapse" at the layer where it is most violated:
    ``(margin * ratio_l(SAN), ratio_l(SAN+MLP), l)`` over layers whose SAN ratio exceeds ``floor``."""
    a = as_real_array("san", san, ndim=1)
    b = as_real_array("mlp", mlp, ndim=1)
    if a.shape != b.shape:
        raise InputError(f"mlp: expected the shape of san {a.shape}, got {b.shape}")
    m = positive_float("margin", margin)
    live = np.flatnonzero(a > positive_float("floor", floor))
    if live.size == 0:
        raise InputError("san: every ratio is below the float floor; nothing to compare")
    l = int(live[np.argmax(a[live] / np.maximum(b[live], 1e-300))])
    return m * float(a[l]), float(b[l]), l
