r"""Vietoris–Rips persistence diagrams (H0, H1) of point clouds and exact distances between diagrams.

Pipeline of :func:`persistence_diagrams` (ripser's convention: an edge enters at the full distance, Z/2):

1. distances in float64 (:func:`theory.persistence.distance_matrix`: BLAS Gram route, refined by differences
   wherever the expansion could cancel);
2. :math:`H_0` exactly: the finite deaths are the edge lengths of a Euclidean minimum spanning tree (births 0);
3. :math:`H_1` with a ripser-class engine on the **truncated** filtration :math:`\{\sigma:\operatorname{diam}\sigma\le t\}`.
   Truncation is exact here: (a) an edge ij that has a *strict witness* k (:math:`\max(d_{ik},d_{jk})<d_{ij}`) cannot
   give birth to an :math:`H_1` class of positive persistence (the triangle ijk enters with it and makes
   :math:`ij\simeq ik+kj`, two older edges), so every birth is at most :math:`t_b`, the longest edge of the relative
   neighbourhood graph (:func:`h1_birth_bound`); (b) the pairs of a filtration prefix with death <= t are pairs
   of the full filtration, and classes alive at t show up as essential bars; while any is essential, t grows
   (the fraction of edges kept grows by 1.3x) up to the enclosing radius, where the complex is a cone and no
   :math:`H_1` survives. High-dimensional clouds need only 5-25% of the edges (measured, benchmarks/test_topology.py).
   Never the full 2-skeleton (gudhi's runs out of memory at N = 500 in 64 dimensions); gudhi's edge collapse is
   offered but is very slow on high-dimensional noisy clouds (measured > 200 s at N = 1000, D = 4096).
4. Diagram values are float64 entries of the distance matrix: gudhi computes in float64; giotto-ph and
   ripser.py work in float32, so their values are snapped to the nearest float64 edge length (exact unless two
   distinct lengths are within one float32 ulp, ~6e-8 relative). giotto-ph's ``return_generators`` was tried
   to read the exact edges back, but its H1 birth edges do not always carry the birth value (measured:
   9e-4 relative mismatch at N = 1000, D = 4096), so it is not used.

Engines: ``"giotto"`` (giotto-ph ``ripser_parallel``, 2 threads), ``"ripser"`` (ripser.py), ``"gudhi"``
(``RipsComplex`` 1-skeleton + ``expansion``, optional ``collapse_edges``), ``"auto"`` = the first installed of
giotto, ripser, gudhi (gudhi is a project dependency; giotto-ph and ripser are optional).

:func:`diagram_distance`: exact :math:`W_1, W_2` (gudhi.wasserstein on POT's network simplex, ``internal_p=inf``)
and the exact bottleneck distance (gudhi, ``e=0``), finite points only.
"""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass

import numpy as np

from boundlab.theory.validate import InputError, as_real_array, positive_int
from boundlab.theory.persistence import check_order, cloud, distance_matrix, mst_edge_lengths

__all__ = ["ENGINES", "Diagrams", "available_engines", "h1_birth_bound", "persistence_diagrams",
           "diagram_distance", "finite_diagram"]

ENGINES = ("auto", "giotto", "ripser", "gudhi", "gudhi_collapse")
_MODULES = {"giotto": "gph", "ripser": "ripser", "gudhi": "gudhi", "gudhi_collapse": "gudhi"}


@dataclass(frozen=True)
class Diagrams:
    """Vietoris–Rips persistence of one point cloud, ripser's convention.

    ``finite[k]``: ``(m_k, 2)`` float64 (birth, death) pairs of :math:`H_k` with death > birth, sorted;
    ``essential[k]``: births of the infinite bars (:math:`H_0` has one, at 0). ``threshold``: the filtration value
    up to which the engine ran (all pairs of the full filtration are present; see the module docstring).
    """

    finite: tuple
    essential: tuple
    engine: str = ""
    threshold: float = math.inf


def available_engines() -> tuple[str, ...]:
    """The engines whose package is installed, in the order ``"auto"`` tries them."""
    return tuple(e for e in ("giotto", "ripser", "gudhi", "gudhi_collapse")
                 if importlib.util.find_spec(_MODULES[e]) is not None)


def _engine(engine: str) -> str:
    if not isinstance(engine, str) or engine not in ENGINES:
        raise InputError(f"engine: expected one of {ENGINES}, got {engine!r}")
    if engine == "auto":
        return available_engines()[0]
    if importlib.util.find_spec(_MODULES[engine]) is None:
        raise InputError(f"engine: {engine!r} needs the package {_MODULES[engine]!r}, which is not installed "
                              f"(installed: {available_engines()})")
    return engine


def h1_birth_bound(dm: np.ndarray, candidates: int = 16, batch: int = 4096) -> float:
    r"""An upper bound :math:`t_b` on every :math:`H_1` birth of positive persistence: the longest edge with no
    strict witness (the longest edge of the relative neighbourhood graph), 0 if there is none.

    Cheap pass: ``candidates`` central points (smallest median distance) are tried as witnesses of every edge at
    once; the edges they do not certify are then checked against all N points, longest first, until the first
    edge without a witness (exact).
    """
    n = dm.shape[0]
    if n < 3:
        return 0.0
    cand = np.argsort(np.median(dm, axis=1))[: min(candidates, n)]
    m = np.full((n, n), np.inf)
    for c in cand:
        np.minimum(m, np.maximum(dm[:, c][:, None], dm[c][None, :]), out=m)
    iu, ju = np.nonzero(np.triu(m >= dm, 1))
    if iu.size == 0:
        return 0.0
    w = dm[iu, ju]
    order = np.argsort(w, kind="stable")[::-1]
    for s in range(0, order.size, batch):
        o = order[s:s + batch]
        wit = np.maximum(dm[iu[o]], dm[ju[o]]).min(axis=1) < w[o]
        if not wit.all():
            return float(w[o][int(np.argmin(wit))])
    return 0.0


def _snap(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Nearest element of the sorted array ``lengths`` for each finite value (infinite values stay)."""
    out = np.asarray(values, dtype=np.float64).copy()
    fin = np.isfinite(out)
    if fin.any() and lengths.size:
        v = out[fin]
        i = np.clip(np.searchsorted(lengths, v), 1, lengths.size - 1) if lengths.size > 1 else np.zeros(v.size, int)
        lo, hi = lengths[np.maximum(i - 1, 0)], lengths[i]
        out[fin] = np.where(np.abs(v - lo) <= np.abs(hi - v), lo, hi)
    return out


def _run_engine(engine: str, dm: np.ndarray, maxdim: int, thresh: float) -> tuple[list, list]:
    """Finite pairs and essential births per degree 1..maxdim on the filtration truncated at ``thresh``."""
    finite, essential = [], []
    if engine in ("giotto", "ripser"):
        if engine == "giotto":
            from gph import ripser_parallel

            res = ripser_parallel(dm, maxdim=maxdim, thresh=thresh, metric="precomputed", n_threads=2)
        else:
            from ripser import ripser

            res = ripser(dm, maxdim=maxdim, thresh=thresh, distance_matrix=True)
        lengths = np.unique(dm[np.triu_indices(dm.shape[0], 1)])
        for k in range(1, maxdim + 1):
            d = np.asarray(res["dgms"][k], dtype=np.float64).reshape(-1, 2)
            inf = ~np.isfinite(d[:, 1])
            finite.append(np.stack([_snap(d[~inf, 0], lengths), _snap(d[~inf, 1], lengths)], axis=1))
            essential.append(_snap(d[inf, 0], lengths))
        return finite, essential
    import gudhi

    st = gudhi.RipsComplex(distance_matrix=dm, max_edge_length=thresh).create_simplex_tree(max_dimension=1)
    if engine == "gudhi_collapse":
        st.collapse_edges(-1)
    st.expansion(maxdim + 1)
    st.compute_persistence(homology_coeff_field=2, persistence_dim_max=True)
    for k in range(1, maxdim + 1):
        d = np.asarray(st.persistence_intervals_in_dimension(k), dtype=np.float64).reshape(-1, 2)
        inf = ~np.isfinite(d[:, 1])
        finite.append(d[~inf])
        essential.append(d[inf, 0])
    return finite, essential


def _sorted_pairs(pairs: np.ndarray) -> np.ndarray:
    pairs = np.asarray(pairs, dtype=np.float64).reshape(-1, 2)
    pairs = pairs[pairs[:, 1] > pairs[:, 0]]
    return pairs[np.lexsort((pairs[:, 1], pairs[:, 0]))] if len(pairs) else np.zeros((0, 2))


def persistence_diagrams(points, maxdim: int = 1, *, engine: str = "auto", truncate: bool = True,
                         distances=None) -> Diagrams:
    """Vietoris–Rips diagrams :math:`H_0..H_{maxdim}` (maxdim <= 2) of the rows of ``points`` ``(N, D)``, N >= 2.

    ``truncate=False`` runs the engine up to the enclosing radius (ripser's default; the baseline of the
    benchmark and of the tests of the truncation). ``distances``: an ``(N, N)`` distance matrix computed elsewhere
    (the verification suite passes SciPy's, so that no property compares a bound with code that shares its
    distance computation); default :func:`theory.persistence.distance_matrix`. See the module docstring.
    """
    x = cloud("points", points, minimum=2)
    maxdim = positive_int("maxdim", maxdim, minimum=0)
    if maxdim > 2:
        raise InputError(f"maxdim: expected 0, 1 or 2, got {maxdim}")
    name = _engine(engine)
    if distances is None:
        dm = distance_matrix(x)
    else:
        dm = as_real_array("distances", distances, ndim=2)
        if dm.shape != (x.shape[0], x.shape[0]) or not np.allclose(dm, dm.T, rtol=0, atol=0) or (dm < 0).any():
            raise InputError(f"distances: expected a symmetric non-negative ({x.shape[0]}, {x.shape[0]}) matrix, "
                             f"got shape {dm.shape}")
    h0 = mst_edge_lengths(dm)
    finite = [_sorted_pairs(np.stack([np.zeros_like(h0), h0], axis=1))]
    essential = [np.zeros(1)]
    if maxdim == 0:
        return Diagrams(tuple(finite), tuple(essential), name, 0.0)
    enclosing = float(dm.max(axis=1).min())
    if not truncate or maxdim > 1:
        t = enclosing
    else:
        t = min(h1_birth_bound(dm), enclosing)
    lengths = None
    while True:
        fin, ess = _run_engine(name, dm, maxdim, float(np.nextafter(t, math.inf)))
        if t >= enclosing or all(len(e) == 0 for e in ess):
            break
        if lengths is None:
            lengths = np.sort(dm[np.triu_indices(dm.shape[0], 1)])
        kept = np.searchsorted(lengths, t, side="right")
        t = min(float(lengths[min(lengths.size - 1, max(int(1.3 * kept), kept + 1))]), enclosing)
    finite += [_sorted_pairs(f) for f in fin]
    essential += [np.sort(np.asarray(e, dtype=np.float64)) for e in ess]
    return Diagrams(tuple(finite), tuple(essential), name, float(t))


def finite_diagram(name: str, d) -> np.ndarray:
    """A diagram as an ``(m, 2)`` float64 array of finite (birth, death) pairs with death >= birth (m may be 0)."""
    arr = np.asarray(d, dtype=np.float64) if d is not None else None
    if arr is None or arr.ndim != 2 or arr.shape[1] != 2:
        if arr is not None and arr.size == 0:
            return np.zeros((0, 2))
        raise InputError(f"{name}: expected an (m, 2) array of (birth, death) pairs, got "
                              f"{None if arr is None else arr.shape}")
    if arr.size == 0:
        return np.zeros((0, 2))
    arr = as_real_array(name, arr, ndim=2)
    if np.any(arr[:, 1] < arr[:, 0]):
        raise InputError(f"{name}: expected death >= birth in every pair")
    return arr


def diagram_distance(d1, d2, p=2.0) -> float:
    r"""Distance between two finite diagrams: :math:`W_p` (p >= 1; exact assignment in float64 up to
    :data:`ASSIGNMENT_MAX_POINTS` points, POT's network simplex via gudhi beyond) or the bottleneck distance
    (``p="inf"``, gudhi exact), :math:`L_\infty` ground metric, diagonal with infinite multiplicity.
    """
    a, b = finite_diagram("d1", d1), finite_diagram("d2", d2)
    p = check_order(p)
    if len(a) == 0 and len(b) == 0:
        return 0.0
    if math.isinf(p):
        import gudhi

        return float(gudhi.bottleneck_distance(a, b, 0.0))
    scale = float(max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0)))
    if scale == 0.0:
        return 0.0
    a, b = a / scale, b / scale  # O(1) values: no overflow or underflow of |.|^p
    if len(a) + len(b) <= ASSIGNMENT_MAX_POINTS:
        return _wasserstein_assignment(a, b, p) * scale
    from gudhi.wasserstein import wasserstein_distance

    # POT's network simplex works to an absolute tolerance (~1e-9 of the largest cost): pairs whose costs are
    # below it may be matched arbitrarily, so large diagrams are exact only up to that tolerance
    return float(wasserstein_distance(a, b, order=p, internal_p=np.inf)) * scale


#: diagrams with up to this many points together are matched by an exact assignment (scipy, float64 at every
#: scale); larger ones by POT through gudhi (faster, exact to an absolute tolerance of the largest cost)
ASSIGNMENT_MAX_POINTS = 1000


def _wasserstein_assignment(a: np.ndarray, b: np.ndarray, p: float) -> float:
    r""":math:`W_p` with the :math:`L_\infty` ground metric as an assignment problem (Hungarian, float64):
    the cost matrix of size :math:`(n+m)^2` holds point-to-point costs, each point's cost to its own diagonal
    slot (:math:`((d-b)/2)^p`), and zero diagonal-to-diagonal costs. Unlike POT's tolerance, the comparisons of
    the assignment solver resolve costs of every magnitude (near-duplicate points with deaths ~1e-8 beside
    deaths ~1 are matched optimally)."""
    from scipy.optimize import linear_sum_assignment

    n, m = len(a), len(b)
    cost = np.zeros((n + m, m + n))  # rows: points of a, then diagonal slots of b; columns: points of b, then
    big = np.inf                     # diagonal slots of a
    pair = np.maximum(np.abs(a[:, None, 0] - b[None, :, 0]), np.abs(a[:, None, 1] - b[None, :, 1])) ** p  # (n, m)
    cost[:n, :m] = pair
    da = ((a[:, 1] - a[:, 0]) / 2.0) ** p  # (n,): a_i to the diagonal
    db = ((b[:, 1] - b[:, 0]) / 2.0) ** p  # (m,)
    cost[:n, m:] = big
    cost[np.arange(n), m + np.arange(n)] = da
    cost[n:, :m] = big
    cost[n + np.arange(m), np.arange(m)] = db
    rows, cols = linear_sum_assignment(cost)
    total = float(cost[rows, cols].sum())
    return total ** (1.0 / p)
