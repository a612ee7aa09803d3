r"""Compactness measures of a point cloud that TopoLip uses: activation variance and intrinsic dimension.

TopoLip (Chen, arXiv 2410.17628, v1 §3.4 as reconstructed in ``docs/research/topolip.md`` §4.6, §5.1) calls a layer's
output *compact* when its activation variance and its intrinsic dimension (estimated "with kNN") are low. Both kNN
estimators below are functions of *ratios* of neighbour distances, hence invariant under
:math:`X\mapsto cXQ+t` (c > 0, Q orthogonal): the registered claims, which the verification suite tests. The
variance is not (it scales with :math:`c^2`), which is why a Lipschitz constant can bound the one and not the other.

* Levina–Bickel MLE: :math:`\hat m_k(x)=\big[\frac1{k-1}\sum_{j=1}^{k-1}\ln\frac{T_k(x)}{T_j(x)}\big]^{-1}` (:math:`T_j` the
  distance to the j-th neighbour), averaged over points (``average="mean"``, the paper's choice) or as the inverse
  of the mean inverse (``"inverse"``, MacKay & Ghahramani's correction).
* TwoNN: :math:`\mu_i=r_2(x_i)/r_1(x_i)` is Pareto(d) distributed on a locally uniform d-dimensional set; the MLE is
  :math:`\hat d=N/\sum_i\ln\mu_i` (Facco et al. also fit the empirical CDF after discarding the largest 10%:
  ``discard``).

Duplicate points (a zero neighbour distance) make both undefined and raise :class:`InputError`.

References: Levina & Bickel, *Maximum Likelihood Estimation of Intrinsic Dimension*, NIPS 2004; Facco, d'Errico,
Rodriguez, Laio, *Estimating the intrinsic dimension of datasets by a minimal neighborhood information*, Sci. Rep.
2017; MacKay & Ghahramani, comment on Levina–Bickel (2005).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from .validate import InputError, as_real_array, choice, positive_float, positive_int
from .registry import register

__all__ = ["activation_variance", "neighbour_distances", "twonn_dimension", "levina_bickel_dimension"]


def _points(points, minimum: int) -> np.ndarray:
    x = as_real_array("points", points, ndim=2)
    if x.shape[0] < minimum:
        raise InputError(f"points: expected at least {minimum} points, got {x.shape[0]}")
    return x


def activation_variance(points, reduce: str = "mean") -> float:
    r"""Per-feature variance across samples, averaged (``"mean"``, :math:`\mathrm{tr}\,\Sigma/D`) or summed (``"total"``).

    ``points``: ``(N, D)`` activations (one flattened layer output per sample); biased (1/N) variance.
    """
    x = _points(points, 2)
    choice("reduce", reduce, ("mean", "total"))
    v = x.var(axis=0)
    return float(v.mean() if reduce == "mean" else v.sum())


#: up to this many points the neighbour distances come from the exact float64 distance matrix (memory N^2 doubles);
#: beyond it from a k-d tree (exact too, but a k-d tree degrades to worse than brute force in high dimension: 39 s
#: against 0.6 s for 14 clouds of 1000 points in 8192 dimensions, the TopoLip sensitivity grid's Conv layers)
DENSE_NEIGHBOURS_MAX = 4000


def neighbour_distances(points, k: int) -> np.ndarray:
    """Distances to the 1st..k-th nearest neighbours (excluding the point itself), ``(N, k)``; exact: the float64
    distance matrix of :func:`theory.persistence.distance_matrix` for N <= :data:`DENSE_NEIGHBOURS_MAX`, a k-d tree
    beyond."""
    x = _points(points, 2)
    k = positive_int("k", k)
    if k >= x.shape[0]:
        raise InputError(f"k: expected fewer neighbours than points ({x.shape[0]}), got {k}")
    if x.shape[0] <= DENSE_NEIGHBOURS_MAX:
        from .persistence import distance_matrix

        dm = distance_matrix(x)  # (N, N)
        np.fill_diagonal(dm, np.inf)  # a point is not its own neighbour (a duplicate still is, at distance 0)
        dist = np.sort(np.partition(dm, k - 1, axis=1)[:, :k], axis=1)  # (N, k)
    else:
        dist, _ = cKDTree(x).query(x, k=k + 1)
        dist = dist[:, 1:]
    if np.any(dist[:, 0] <= 0):
        raise InputError("points: duplicate points (zero neighbour distance); the estimators are undefined")
    return dist


@register(
    "compactness.twonn_scale_invariant",
    norm="none",
    kind="claim",
    assumptions=("c > 0, Q orthogonal, t a translation", "no duplicate points"),
    source="Facco, d'Errico, Rodriguez, Laio, Sci. Rep. 2017 (estimator); invariance standard (ratios of distances)",
    confidence="standard",
    covers="TwoNN intrinsic dimension (MLE form) of a finite point cloud",
)
def twonn_dimension(points, discard: float = 0.0) -> float:
    r"""TwoNN intrinsic dimension :math:`\hat d=N'/\sum_i\ln\mu_i`, :math:`\mu_i=r_2/r_1`, after dropping the
    ``discard`` fraction of largest :math:`\mu` (0 = the plain MLE).

    .. math:: \hat d_{\mathrm{TwoNN}}(cXQ+t)=\hat d_{\mathrm{TwoNN}}(X),\quad \hat d=N\Big/\sum_i\ln\frac{r_2(x_i)}{r_1(x_i)}
    """
    dist = neighbour_distances(points, 2)
    discard = positive_float("discard", discard, allow_zero=True)
    if discard >= 1:
        raise InputError(f"discard: expected a fraction in [0, 1), got {discard}")
    mu = np.sort(np.log(dist[:, 1] / dist[:, 0]))
    mu = mu[: max(1, int(round(len(mu) * (1.0 - discard))))]
    total = float(mu.sum())
    if total <= 0:
        raise InputError("points: every point has two equidistant nearest neighbours; TwoNN is undefined")
    return len(mu) / total


@register(
    "compactness.mle_scale_invariant",
    norm="none",
    kind="claim",
    assumptions=("c > 0, Q orthogonal, t a translation", "no duplicate points", "2 <= k < N"),
    source="Levina & Bickel, Maximum Likelihood Estimation of Intrinsic Dimension, NIPS 2004 (estimator); "
    "invariance standard",
    confidence="standard",
    covers="Levina-Bickel kNN MLE intrinsic dimension of a finite point cloud",
)
def levina_bickel_dimension(points, k: int = 10, average: str = "mean") -> float:
    r"""Levina–Bickel MLE with k neighbours, averaged over points (``"mean"``) or by mean inverse (``"inverse"``).

    .. math:: \hat m_k(cXQ+t)=\hat m_k(X),\quad\hat m_k(x)=\Big[\tfrac1{k-1}\sum_{j<k}\ln\tfrac{T_k(x)}{T_j(x)}\Big]^{-1}
    """
    k = positive_int("k", k, minimum=2)
    choice("average", average, ("mean", "inverse"))
    dist = neighbour_distances(points, k)
    inv = np.log(dist[:, -1:] / dist[:, :-1]).mean(axis=1)  # 1 / m_k(x)
    if np.any(inv <= 0):
        raise InputError("points: a point has k equidistant neighbours; the MLE is undefined there")
    return float(np.mean(1.0 / inv)) if average == "mean" else float(1.0 / np.mean(inv))
