r"""Empirical covering numbers of finite point sets (layer outputs), and the Lipschitz-image check on activations.

For a finite set S and a scale :math:`\varepsilon`:

* :func:`greedy_net`: scan the points, keep a point as a centre when it is farther than :math:`\varepsilon` from every
  centre kept so far. The centres cover S at scale :math:`\varepsilon` (an internal cover: an **upper** bound on
  :math:`\mathcal N(\varepsilon,S)`) and are pairwise more than :math:`\varepsilon` apart (a maximal packing).
* :func:`covering_bracket`: ``lower <= N(eps, S) <= upper`` with ``upper`` = the greedy :math:`\varepsilon`-net and
  ``lower`` = a greedy :math:`2\varepsilon`-packing (points pairwise more than :math:`2\varepsilon` apart: no closed
  :math:`\varepsilon`-ball contains two of them, whatever the centres).

Metrics: ``"euclidean"`` or ``"chebyshev"`` (:math:`\ell_\infty`, for Edelman et al.'s :math:`\mathcal N_\infty`).
Distances are computed in float64 with differences (not the :math:`|a|^2+|b|^2-2ab` expansion).

The compactness measures TopoLip uses (activation variance, TwoNN and Levina-Bickel intrinsic dimension) live in
:mod:`theory.compactness` (numpy/scipy only) and are re-exported here with the same names and signatures, so that
experiments can take every compactness measure of a layer's outputs from this one module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from boundlab.theory.validate import InputError, as_real_array, choice, positive_float
from boundlab.theory.compactness import activation_variance, levina_bickel_dimension, twonn_dimension

__all__ = ["METRICS", "BRACKET_MARGIN", "greedy_net", "covering_radius", "CoveringBracket", "covering_bracket",
           "activation_variance", "twonn_dimension", "levina_bickel_dimension"]

METRICS = ("euclidean", "chebyshev")


def _dist_to(points: np.ndarray, centre: np.ndarray, metric: str) -> np.ndarray:
    diff = points - centre
    return np.sqrt((diff * diff).sum(axis=1)) if metric == "euclidean" else np.abs(diff).max(axis=1)


def _points(points, name: str = "points") -> np.ndarray:
    x = as_real_array(name, points, ndim=(1, 2))
    return x[:, None] if x.ndim == 1 else x


def greedy_net(points, eps: float, metric: str = "euclidean") -> np.ndarray:
    """Indices of a greedy ``eps``-net of the rows of ``points`` (in scan order); see the module docstring."""
    x = _points(points)
    eps = positive_float("eps", eps, allow_zero=True)
    choice("metric", metric, METRICS)
    nearest = np.full(x.shape[0], np.inf)
    centres = []
    while True:
        todo = np.flatnonzero(nearest > eps)
        if todo.size == 0:
            return np.array(centres, dtype=int)
        i = int(todo[0])
        centres.append(i)
        nearest = np.minimum(nearest, _dist_to(x, x[i], metric))


def covering_radius(points, centres, metric: str = "euclidean") -> float:
    r""":math:`\max_{x\in S}\min_{c}\|x-c\|`: the smallest scale at which ``centres`` (rows) cover ``points``."""
    x = _points(points)
    c = _points(centres, "centres")
    if c.shape[1] != x.shape[1]:
        raise InputError(f"centres: expected rows of dimension {x.shape[1]}, got {c.shape[1]}")
    choice("metric", metric, METRICS)
    nearest = np.full(x.shape[0], np.inf)
    for row in c:
        nearest = np.minimum(nearest, _dist_to(x, row, metric))
    return float(nearest.max())


@dataclass(frozen=True)
class CoveringBracket:
    """``lower <= N(eps, S) <= upper`` for the finite set S; ``net`` are the indices of the upper cover."""

    eps: float
    lower: int
    upper: int
    net: np.ndarray


#: relative margin against rounding in the points themselves (layer or class outputs are computed in float64): the
#: packing keeps points more than 2 eps (1 + margin) apart and the net covers at eps (1 - margin), so both stay
#: bounds for the exact outputs when a distance sits at the threshold. Found by the thorough campaign: the outputs
#: of x -> s x and x -> -s x, exactly 2 eps apart in exact arithmetic, came out a few ulps further apart and counted
#: as a 2-point packing of a set whose covering number is 1.
BRACKET_MARGIN = 1e-9


def covering_bracket(points, eps: float, metric: str = "euclidean") -> CoveringBracket:
    """Lower (greedy 2 eps-packing) and upper (greedy eps-net) bounds on the covering number of a finite set,
    each with the outward margin :data:`BRACKET_MARGIN`."""
    eps = positive_float("eps", eps)
    net = greedy_net(points, eps * (1.0 - BRACKET_MARGIN), metric)
    packing = greedy_net(points, 2.0 * eps * (1.0 + BRACKET_MARGIN), metric)
    return CoveringBracket(eps, int(packing.size), int(net.size), net)
