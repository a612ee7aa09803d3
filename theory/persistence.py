r"""Stability lemmas of Vietoris–Rips persistence diagrams, as registered upper bounds (pure numpy/scipy).

Conventions (``docs/research/topolip.md`` §4.5, ripser's): the Vietoris–Rips filtration of a finite cloud
:math:`X=\{x_1..x_N\}\subset\mathbb R^D` gives a simplex :math:`\sigma` the value :math:`\operatorname{diam}_X\sigma`
(an edge enters at :math:`\|x_i-x_j\|`, not at half of it), homology over :math:`\mathbb Z/2`.
:math:`\mathrm{Dgm}_k(X)` is the multiset of finite (birth, death) pairs of :math:`H_k` with death > birth; the
essential classes (one for :math:`H_0`, none for k >= 1 since the full simplex is contractible) are equal for X and
Y and left out. Diagram distances use the :math:`L_\infty` ground metric with the diagonal (gudhi
``internal_p=inf``):

.. math:: W_p(D_1,D_2)=\Big(\inf_{\gamma}\sum_{z}\|z-\gamma(z)\|_\infty^p\Big)^{1/p},\qquad W_\infty=d_B .

The lemmas (docs/research/topolip.md §5.2), with X and Y two clouds of the same size N and the correspondence
:math:`x_i\leftrightarrow y_i`:

* **L1** (:func:`bottleneck_pointwise_bound`): :math:`d_B\le2\max_i\|x_i-y_i\|`.
* **L1'** (:func:`bottleneck_distortion_bound`): :math:`d_B\le\max_{i<j}|d_X(i,j)-d_Y(i,j)|` (sharper; L1 follows
  from it by the triangle inequality).
* **L2** (:func:`bottleneck_w2_bound`): :math:`d_B\le2\sqrt N\,W_2(\mu_X,\mu_Y)` (uniform empirical measures).
* **L3** (:func:`cellular_wasserstein_bound`): Skraba–Turner cellular stability,
  :math:`W_p(\mathrm{Dgm}_k)\le\big(\sum_{\sigma}|\operatorname{diam}_X\sigma-\operatorname{diam}_Y\sigma|^p\big)^{1/p}`
  over the k- **and** (k+1)-simplices of the full simplex on N vertices.

:func:`distance_matrix` computes the pairwise distances the diagrams are built from (float64, by differences
where the Gram expansion would cancel), :func:`mst_edge_lengths` the exact :math:`H_0` deaths.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.optimize import linear_sum_assignment

from .validate import InputError, as_real_array, positive_int
from .numerics import UNIT_ROUNDOFF, round_up
from .registry import Mutant, TightFamily, register

__all__ = [
    "distance_matrix",
    "mst_edge_lengths",
    "check_order",
    "max_displacement",
    "bottleneck_pointwise_bound",
    "bottleneck_distortion_bound",
    "bottleneck_w2_bound",
    "cellular_wasserstein_bound",
    "stability_constant",
]

#: unit roundoff of float64
#: relative accuracy asked of every distance (the Gram route is refined by differences below it)
DISTANCE_RTOL = 1e-10


def cloud(name: str, points, minimum: int = 2) -> np.ndarray:
    """``points`` as an ``(N, D)`` float64 array of finite values with N >= ``minimum`` (1-D input is refused)."""
    x = as_real_array(name, points, ndim=2)
    if x.shape[0] < minimum:
        raise InputError(f"{name}: expected at least {minimum} points, got {x.shape[0]}")
    return x


def paired_clouds(x, y, minimum: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Two clouds with the same number of points (the correspondence is the row order)."""
    a, b = cloud("x", x, minimum), cloud("y", y, minimum)
    if a.shape[0] != b.shape[0]:
        raise InputError(f"y: expected {a.shape[0]} points like x (row i of y corresponds to row i of x), "
                              f"got {b.shape[0]}")
    return a, b


def check_order(p, name: str = "p") -> float:
    """A diagram-distance order: a real p >= 1 or ``"inf"`` / ``math.inf`` (bottleneck); returns a float."""
    if isinstance(p, str):
        if p.lower() in ("inf", "infinity"):
            return math.inf
        raise InputError(f"{name}: expected a number >= 1 or 'inf', got {p!r}")
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)):
        raise InputError(f"{name}: expected a number >= 1 or 'inf', got {p!r}")
    v = float(p)
    if math.isnan(v) or v < 1:
        raise InputError(f"{name}: expected a number >= 1 or 'inf', got {p!r}")
    return v


def _differences(x: np.ndarray, rows: np.ndarray, cols: np.ndarray, chunk: int = 4096) -> np.ndarray:
    out = np.empty(rows.size)
    for s in range(0, rows.size, chunk):
        diff = x[rows[s:s + chunk]] - x[cols[s:s + chunk]]
        out[s:s + chunk] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return out


def distance_matrix(points, method: str = "auto") -> np.ndarray:
    r"""Pairwise Euclidean distances ``(N, N)`` in float64, each to relative accuracy ~1e-10 or better.

    ``"differences"``: :math:`\|x_i-x_j\|` from the differences (exact up to a few ulps; memory-light chunks).
    ``"gram"``: BLAS route on the centred cloud, :math:`d^2=n_i+n_j-2\langle y_i,y_j\rangle`, whose absolute error is
    at most :math:`(D+3)u(n_i+n_j)` (Higham, dot products); every pair where that bound exceeds
    ``DISTANCE_RTOL`` :math:`\cdot d^2` is recomputed by differences, so the cancellation of near-duplicate points
    never reaches the result. ``"auto"``: differences for small problems (N^2 D <= 2e7), else gram.
    """
    x = cloud("points", points, minimum=1)
    if method not in ("auto", "differences", "gram"):
        raise InputError(f"method: expected one of ('auto', 'differences', 'gram'), got {method!r}")
    n, d = x.shape
    if method == "auto":
        method = "differences" if n * n * d <= 2e7 else "gram"
    dm = np.zeros((n, n))
    if n == 1:
        return dm
    if method == "differences":
        iu, ju = np.triu_indices(n, 1)
        dm[iu, ju] = _differences(x, iu, ju)
        return dm + dm.T
    y = x - x.mean(axis=0)
    sq = np.einsum("ij,ij->i", y, y)
    d2 = sq[:, None] + sq[None, :]
    err = (d + 3) * UNIT_ROUNDOFF * d2  # bound on |fl(d^2) - d^2| of the expansion
    d2 -= 2.0 * (y @ y.T)
    np.fill_diagonal(d2, 0.0)
    bad = np.triu(np.maximum(d2, 0.0) * DISTANCE_RTOL < err, 1)
    np.sqrt(np.maximum(d2, 0.0), out=dm)
    rows, cols = np.nonzero(bad)
    if rows.size:
        vals = _differences(x, rows, cols)
        dm[rows, cols] = vals
        dm[cols, rows] = vals
    np.fill_diagonal(dm, 0.0)
    return np.maximum(dm, dm.T)  # exact symmetry (both triangles hold the same numbers already)


def mst_edge_lengths(dm) -> np.ndarray:
    r"""Sorted edge lengths of a Euclidean minimum spanning tree (Prim, O(N^2)): the finite :math:`H_0` deaths of
    the Vietoris–Rips filtration (all births 0), zero-length edges included (the caller drops them)."""
    d = as_real_array("dm", dm, ndim=2)
    n = d.shape[0]
    if d.shape != (n, n):
        raise InputError(f"dm: expected a square matrix, got shape {d.shape}")
    best = d[0].copy()
    done = np.zeros(n, dtype=bool)
    done[0] = True
    out = np.empty(n - 1)
    for t in range(n - 1):
        cand = np.where(done, np.inf, best)
        j = int(np.argmin(cand))
        out[t] = cand[j]
        done[j] = True
        np.minimum(best, d[j], out=best)
    return np.sort(out)


def max_displacement(x, y) -> float:
    r""":math:`\max_i\|x_i-y_i\|` (float64, differences)."""
    a, b = paired_clouds(x, y, minimum=1)
    diff = a - b
    return float(np.sqrt(np.einsum("ij,ij->i", diff, diff)).max())


@register(
    "persistence.bottleneck_pointwise",
    norm="bottleneck",
    kind="upper",
    assumptions=("X, Y finite clouds of the same size N with the correspondence x_i <-> y_i",
                 "Vietoris-Rips in ripser's convention (edge value = full distance)",
                 "L_inf ground metric on diagrams; essential classes left out (equal for X and Y)"),
    source="Chazal, Cohen-Steiner, Guibas, Memoli, Oudot 2009 (d_B <= 2 d_GH); Cohen-Steiner, Edelsbrunner, "
    "Harer 2007 (function stability); docs/research/topolip.md section 5.2 L1",
    confidence="standard",
    covers="every homology degree k; a layer applied per sample gives d_B <= 2 Lip(h) max_i ||x_i - y_i||",
    tight=TightFamily("two nearest points moved apart by eps each along their line, far from the rest: their H0 bar "
                      "(0, delta) becomes (0, delta + 2 eps), d_B = 2 eps", "standard", ratio=1.0),
    mutants=[Mutant("factor 1 for 2", lambda x, y: max_displacement(x, y), "known_false",
                    "two points moved apart by eps each: d_B = 2 eps")],
)
def bottleneck_pointwise_bound(x, y) -> float:
    r"""L1: :math:`d_B(\mathrm{Dgm}_k(X),\mathrm{Dgm}_k(Y))\le2\max_i\|x_i-y_i\|` for every k.

    .. math:: d_B\big(\mathrm{Dgm}_k\mathrm{VR}(X),\mathrm{Dgm}_k\mathrm{VR}(Y)\big)\le2\max_i\|x_i-y_i\|_2

    Proof: every pairwise distance moves by at most :math:`2\varepsilon` (triangle inequality), so the two
    Vietoris–Rips filtrations of the full simplex differ by at most :math:`2\varepsilon` in sup norm and the
    bottleneck stability of sublevel-set filtrations (Cohen-Steiner et al. 2007) applies.
    """
    return round_up(2.0 * max_displacement(x, y))


@register(
    "persistence.bottleneck_distortion",
    norm="bottleneck",
    kind="upper",
    assumptions=("X, Y finite clouds of the same size N with the correspondence x_i <-> y_i",
                 "Vietoris-Rips in ripser's convention; L_inf ground metric; essential classes left out"),
    source="Cohen-Steiner, Edelsbrunner, Harer 2007 (stability for filtrations of one complex: the sup norm "
    "of the difference of the simplex values is the max edge-length change); docs/research/anchors.md section 6",
    confidence="standard",
    covers="every homology degree k; sharper than persistence.bottleneck_pointwise",
    tight=TightFamily("one pair distance changed (two points moved apart): d_B = the change of their H0 death",
                      "standard", ratio=1.0),
)
def bottleneck_distortion_bound(x, y) -> float:
    r"""L1': :math:`d_B\le\max_{i<j}|d_X(i,j)-d_Y(i,j)|` (the sup norm of the change of the Rips filtration
    values: a simplex' diameter is the max of its edges, and :math:`|\max a-\max b|\le\max|a-b|`).

    .. math:: d_B\big(\mathrm{Dgm}_k\mathrm{VR}(X),\mathrm{Dgm}_k\mathrm{VR}(Y)\big)\le\max_{i<j}|d_X(i,j)-d_Y(i,j)|
    """
    a, b = paired_clouds(x, y)
    return round_up(float(np.abs(distance_matrix(a) - distance_matrix(b)).max()))


@register(
    "persistence.bottleneck_w2",
    norm="bottleneck",
    kind="upper",
    assumptions=("|X| = |Y| = N, mu uniform empirical measures", "Vietoris-Rips in ripser's convention",
                 "L_inf ground metric; essential classes left out"),
    source="derived here from L1 (docs/research/topolip.md section 5.2 L2); the sqrt(N) cannot be dropped",
    confidence="derived",
    covers="every homology degree k; the bridge from a W2-Lipschitz constant of a layer to diagram distances",
    tight=TightFamily("two points moved apart by eps each: d_B = 2 eps, W2 = eps sqrt(2/N): ratio 1/sqrt(2) (L1 is "
                      "tight for two moving points, the sqrt(N) step for one: no family makes both tight)",
                      "derived here", ratio=0.7071),
    mutants=[Mutant("no factor 2", lambda x, y: bottleneck_w2_bound.raw(x, y) / 2.0, "known_false",
                    "two points moved apart by eps each: d_B = 2 eps > sqrt(2) eps"),
             Mutant("sqrt(N - 1) for sqrt(N)", lambda x, y: _w2_bridge(x, y, -1), "unknown",
                    "at N = 2 it equals the best known witness (ratio 1/sqrt(2)): not shown false")],
)
def bottleneck_w2_bound(x, y) -> float:
    r"""L2: :math:`d_B\le2\sqrt N\,W_2(\mu_X,\mu_Y)`.

    .. math:: d_B\big(\mathrm{Dgm}_k\mathrm{VR}(X),\mathrm{Dgm}_k\mathrm{VR}(Y)\big)\le2\sqrt N\,W_2(\mu_X,\mu_Y)

    Proof: for uniform measures of equal size an optimal plan is a permutation :math:`\sigma^*` (Birkhoff), so
    :math:`\max_i\|x_i-y_{\sigma^*(i)}\|^2\le\sum_i\|x_i-y_{\sigma^*(i)}\|^2=N\,W_2^2`; diagrams do not depend on the
    labelling of Y, so L1 applied to :math:`(x_i,y_{\sigma^*(i)})` gives the claim. One point moved by D costs
    :math:`D/\sqrt N` in :math:`W_2` and up to D in :math:`d_B`, so the factor is necessary.
    ``W_2`` here is recomputed exactly (Hungarian on the float64 squared-distance matrix).
    """
    a, b = paired_clouds(x, y)
    return round_up(2.0 * math.sqrt(a.shape[0]) * uniform_w2(a, b))


def _w2_bridge(x, y, shift: int) -> float:
    a, b = paired_clouds(x, y)
    return 2.0 * math.sqrt(max(a.shape[0] + shift, 0)) * uniform_w2(a, b)


def uniform_w2(x, y) -> float:
    r""":math:`W_2(\mu_X,\mu_Y)` of two uniform measures on clouds of the same size, exactly: for equal sizes an
    optimal plan is a permutation (Birkhoff), found by the Hungarian method on the float64 squared distances."""
    a, b = paired_clouds(x, y, minimum=1)
    diff = a[:, None, :] - b[None, :, :]
    cost = np.einsum("ijk,ijk->ij", diff, diff)
    r, c = linear_sum_assignment(cost)
    return math.sqrt(float(cost[r, c].mean()))


def _simplex_diameters(dm: np.ndarray, dim: int, chunk: int = 64) -> np.ndarray:
    """Diameters of every ``dim``-simplex (dim = 1: edges, 2: triangles) of the full simplex, in a fixed order."""
    n = dm.shape[0]
    iu, ju = np.triu_indices(n, 1)
    if dim == 1:
        return dm[iu, ju]
    if dim != 2:
        raise InputError(f"degree: simplices of dimension {dim} are not supported (degree <= 1)")
    parts = []
    for i in range(n - 2):  # triangles (i, j, k), i < j < k
        j, k = np.triu_indices(n - i - 1, 1)
        j, k = j + i + 1, k + i + 1
        parts.append(np.maximum(np.maximum(dm[i, j], dm[i, k]), dm[j, k]))
    return np.concatenate(parts) if parts else np.zeros(0)


#: above this N the degree-1 cellular bound (C(N, 3) triangles) is refused
MAX_TRIANGLE_POINTS = 400


@register(
    "persistence.cellular_wasserstein",
    norm="wasserstein",
    kind="upper",
    assumptions=("|X| = |Y| = N with the correspondence x_i <-> y_i; 1 <= p < inf",
                 "Delta^(j): the j-simplices of the full simplex on N vertices (vertices have value 0: for k = 0 "
                 "only the edges count)",
                 "Vietoris-Rips in ripser's convention; L_inf ground metric (the theorem's L_p ground metric "
                 "is larger, so it implies this form); essential classes left out"),
    source="Skraba & Turner, Wasserstein stability for persistence diagrams (arXiv 2006.16824), cellular "
    "Wasserstein stability for monotone functions on a finite CW complex; docs/research/topolip.md section 5.2 L3",
    confidence="reconstructed",
    covers="degrees 0 and 1 (degree 1 sums over edges and triangles: N <= 400)",
    tight=TightFamily("N = 2 points: one edge, whose change is the change of the only H0 death", "standard",
                      ratio=1.0),
    notes="docs/research/topolip.md states L3 with the (k+1)-simplices only; that is the same for k = 0 but, for k = 1, a change "
    "of edge lengths that keeps every triangle diameter moves H1 births at zero cost on the right, so the "
    "k-simplices are kept (the degree-k form of the theorem as recalled here; the paper was not read).",
    mutants=[Mutant("triangles only for degree 1", lambda x, y, p=2.0, degree=0: _cellular(x, y, p, degree, False),
                    "known_false", "a square turned into a rectangle with the same diagonals: every triangle keeps "
                    "its diameter, the H1 birth moves"),
             Mutant("no p-th root", lambda x, y, p=2.0, degree=0: _cellular(x, y, p, degree, True, root=False),
                    "known_false", "one distance changed by 0.1, p = 2: 0.01 < the change of the diagram")],
)
def cellular_wasserstein_bound(x, y, p: float = 2.0, degree: int = 0) -> float:
    r"""L3: :math:`W_p(\mathrm{Dgm}_k)\le\|\operatorname{diam}_X-\operatorname{diam}_Y\|_{\ell_p(\Delta^{(k)}\cup\Delta^{(k+1)})}`.

    .. math:: W_p\big(\mathrm{Dgm}_k\mathrm{VR}(X),\mathrm{Dgm}_k\mathrm{VR}(Y)\big)\le\Big(\sum_{\sigma\in\Delta^{(k)}\cup\Delta^{(k+1)}}|\operatorname{diam}_X\sigma-\operatorname{diam}_Y\sigma|^p\Big)^{1/p}

    The Rips filtration of X is a monotone function on the finite simplex :math:`\Delta` on N vertices; Skraba and
    Turner's cellular stability bounds the degree-k p-Wasserstein distance by the :math:`\ell_p` norm of the change
    over the cells of dimensions k and k+1 (only those cells are ever paired in degree k). :math:`H_k` of the
    Rips complex depends on its (k+1)-skeleton only. The statement is **reconstructed** (see ``notes``).
    """
    a, b = paired_clouds(x, y)
    p = check_order(p)
    if math.isinf(p):
        raise InputError("p: the cellular bound needs a finite p (use persistence.bottleneck_* for p = inf)")
    degree = positive_int("degree", degree, minimum=0)
    if degree > 1:
        raise InputError(f"degree: expected 0 or 1, got {degree}")
    n = a.shape[0]
    if degree == 1 and n > MAX_TRIANGLE_POINTS:
        raise InputError(f"x: the degree-1 cellular bound sums over C(N, 3) triangles; expected N <= "
                              f"{MAX_TRIANGLE_POINTS}, got {n}")
    da, db = distance_matrix(a), distance_matrix(b)
    dims = (1,) if degree == 0 else (1, 2)  # vertices have value 0 in both filtrations
    deltas = [np.abs(_simplex_diameters(da, dim) - _simplex_diameters(db, dim)) for dim in dims]
    scale = max(float(dl.max(initial=0.0)) for dl in deltas)
    if scale == 0.0:
        return 0.0
    total = sum(float(((dl / scale) ** p).sum()) for dl in deltas)  # scaled: no overflow/underflow of |.|^p
    return round_up(scale * total ** (1.0 / p))


def _cellular(x, y, p, degree, edges: bool, root: bool = True) -> float:
    """The cellular sum with the k-simplices dropped for degree 1 (``edges=False``) or without the p-th root."""
    a, b = paired_clouds(x, y)
    p = check_order(p)
    da, db = distance_matrix(a), distance_matrix(b)
    dims = (1,) if degree == 0 else ((1, 2) if edges else (2,))
    total = sum(float((np.abs(_simplex_diameters(da, dim) - _simplex_diameters(db, dim)) ** p).sum()) for dim in dims)
    return total ** (1.0 / p) if root else total


def stability_constant(p, degree: int, n_points: int) -> float:
    r"""The constant C with :math:`W_p(\mathrm{Dgm}_k(h(X)),\mathrm{Dgm}_k(h(Y)))\le C\,\mathrm{Lip}(h)\max_i\|x_i-y_i\|`.

    p = inf: C = 2 (L1). p < inf: every simplex diameter moves by at most :math:`2\varepsilon`, so L3 gives
    :math:`C=2\,(\binom N2+[k=1]\binom N3)^{1/p}` (grows with N: compare only at fixed N). Used by TopoLip variant C.
    """
    p = check_order(p)
    degree = positive_int("degree", degree, minimum=0)
    if degree > 1:
        raise InputError(f"degree: expected 0 or 1, got {degree}")
    n = positive_int("n_points", n_points, minimum=2)
    if math.isinf(p):
        return 2.0
    cells = math.comb(n, 2) + (math.comb(n, 3) if degree == 1 else 0)
    return round_up(2.0 * cells ** (1.0 / p))
