"""Stability lemmas of Vietoris–Rips persistence (theory/persistence.py) against diagrams computed by the engine.

Each property draws a cloud X (Gaussian, clustered or with near-duplicates; N <= 12, D <= 5) and a paired
cloud Y (small noise, one outlier moved, or a rescaled copy), computes both diagrams with
:func:`empirical.topology.persistence_diagrams` (H0 exact from the MST, H1 from the engine) and the exact
diagram distance, and checks it against the lemma's right-hand side from the point clouds.

Tolerance ``RTOL = 1e-9``: both sides are float64 functions of the same pairwise distances (each a few ulps
from the real number, ~1e-15 relative), the upper sides are rounded outward by 1e-10, and the engine's values
are float64 distance-matrix entries (see empirical/topology.py). A violation therefore means a wrong lemma or a
wrong pipeline, never rounding.

The planted lemma ``d_B <= 2 W2(mu_X, mu_Y)`` (L2 without sqrt(N), false per docs/research/topolip.md section 5.2) must be
falsified: moving one point by D costs D/sqrt(N) in W2 but up to D in d_B.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from boundlab.empirical.topology import diagram_distance, persistence_diagrams
from boundlab.empirical.wasserstein import wasserstein_uniform
from boundlab.theory import persistence as P
from boundlab.theory import planted as PL

from boundlab.verification.cases import Case
from boundlab.verification.properties import bound_property
from boundlab.verification.strategies import log_uniform, seeds, with_config

RTOL = 1e-9


@st.composite
def cloud_pairs(draw, max_points: int = 12, max_dim: int = 5,
                moves=("noise", "outlier", "scale", "pair_apart", "same_diagonals")):
    n = draw(st.integers(3, max_points))
    d = draw(st.integers(1, max_dim))
    kind = draw(st.sampled_from(["gaussian", "clusters", "near_duplicates", "rectangle"]))
    if kind == "rectangle":
        n = max(n, 4)
    move = draw(st.sampled_from(moves))
    seed = draw(seeds)
    size = draw(log_uniform(1e-3, 3.0))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    if kind == "clusters":
        x = 0.1 * x + 4.0 * rng.standard_normal((2, d))[rng.integers(0, 2, n)]
    elif kind == "near_duplicates":
        x[1::2] = x[0::2][: len(x[1::2])] + 1e-7 * rng.standard_normal((len(x[1::2]), d))
    if kind == "rectangle":  # a square in the plane (the rest far away): its H1 class is born at the side length
        d = max(d, 2)
        x = np.zeros((n, d))
        x[:4, :2] = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
        x[4:, 0] = 10.0 + np.arange(n - 4) * 3.0
    if move == "pair_apart" or (move == "same_diagonals" and kind != "rectangle"):
        # the tight family of L1 (and of the distortion bound): the closest pair moved apart by eps each along its
        # line, eps small enough that no other point interferes: d_B(H0) = 2 eps = 2 max_i ||x_i - y_i||
        dm = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)) + np.eye(n) * 1e300
        i, j = np.unravel_index(int(np.argmin(dm)), dm.shape)
        gap = float(dm[i, j])
        u = (x[j] - x[i]) / max(gap, 1e-300)
        eps = min(size, 0.1 * gap)
        y = x.copy()
        y[i] -= eps * u
        y[j] += eps * u
    elif move == "same_diagonals":
        # the square becomes a rectangle with the same diagonals: every triangle of the four keeps its diameter, the
        # H1 birth (the longest side) moves; what a bound over triangles only cannot see
        a = 1.0 + min(size, 0.3)
        b = math.sqrt(2.0 - a * a)
        y = x.copy()
        y[:4, :2] = [[0.0, 0.0], [a, 0.0], [a, b], [0.0, b]]
    elif move == "noise":
        y = x + size * rng.standard_normal((n, d))
    elif move == "outlier":
        y = x.copy()
        y[int(rng.integers(n))] += size * 10 * rng.standard_normal(d)
    else:
        y = (1.0 + size) * x
    return Case({"seed": seed, "kind": kind, "move": move, "size": size}, {"x": x, "y": y})


def _scipy_distances(x) -> np.ndarray:
    """Pairwise distances by SciPy (an independent route: the bounds use theory.persistence.distance_matrix)."""
    from scipy.spatial.distance import pdist, squareform

    return squareform(pdist(np.asarray(x, dtype=np.float64)))


def _diagrams(case, maxdim=1):
    return tuple(persistence_diagrams(case[k], maxdim, distances=_scipy_distances(case[k])) for k in ("x", "y"))


@bound_property(P.bottleneck_pointwise_bound, cases=cloud_pairs(), rtol=RTOL)
def test_bottleneck_pointwise(check, case):
    # wrong code caught: a factor 1 instead of 2, half-distance (r/2) filtration values, a wrong H1 engine value
    dx, dy = _diagrams(case)
    upper = check.bound(case["x"], case["y"])
    for k in (0, 1):
        check.upper(diagram_distance(dx.finite[k], dy.finite[k], "inf"), upper, degree=k)


@bound_property(P.bottleneck_distortion_bound, cases=cloud_pairs(), rtol=RTOL)
def test_bottleneck_distortion(check, case):
    # wrong code caught: diagrams from a different filtration (e.g. float32 values off by more than rounding)
    dx, dy = _diagrams(case)
    upper = check.bound(case["x"], case["y"])
    for k in (0, 1):
        check.upper(diagram_distance(dx.finite[k], dy.finite[k], "inf"), upper, degree=k)


@bound_property(P.bottleneck_w2_bound, cases=cloud_pairs(), rtol=RTOL)
def test_bottleneck_w2(check, case):
    dx, dy = _diagrams(case)
    upper = check.bound(case["x"], case["y"])
    for k in (0, 1):
        check.upper(diagram_distance(dx.finite[k], dy.finite[k], "inf"), upper, degree=k)


@bound_property(P.cellular_wasserstein_bound, cases=with_config(cloud_pairs(max_points=9),
                                                                 p=st.sampled_from([1.0, 2.0, 3.0])), rtol=RTOL)
def test_cellular_wasserstein(check, case):
    # wrong code caught: a missing edge/triangle term, p-th root forgotten, L3 with triangles only for H1
    dx, dy = _diagrams(case)
    p = case["p"]
    for k in (0, 1):
        lower = diagram_distance(dx.finite[k], dy.finite[k], p)
        check.upper(lower, check.bound(case["x"], case["y"], p, k), degree=k, p=p)


@bound_property(PL.persistence_bottleneck_no_sqrt_n, cases=cloud_pairs(moves=("outlier",)), rtol=RTOL)
def test_planted_bottleneck_without_sqrt_n_is_falsified(check, case):
    """Expected falsification: Hypothesis must find a cloud pair violating the planted lemma and shrink it."""
    dx, dy = _diagrams(case, maxdim=0)
    check.upper(diagram_distance(dx.finite[0], dy.finite[0], "inf"), check.bound(case["x"], case["y"]))


def test_planted_sanity_sqrt_n_is_needed():
    """One point moved by D: W2 = D / sqrt(N) while d_B(H0) reaches D / 2 or more (deterministic witness)."""
    n = 16
    x = np.zeros((n, 1))
    x[:, 0] = np.arange(n)
    y = x.copy()
    y[-1, 0] += 100.0
    db = diagram_distance(persistence_diagrams(x, 0).finite[0], persistence_diagrams(y, 0).finite[0], "inf")
    assert db > PL.persistence_bottleneck_no_sqrt_n(x, y).value  # the planted form is false here
    assert db <= P.bottleneck_w2_bound(x, y).value  # the real L2 holds
    assert math.isclose(wasserstein_uniform(x, y), 100.0 / math.sqrt(n), rel_tol=1e-12)
