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
def cloud_pairs(draw, max_points: int = 12, max_dim: int = 5, moves=("noise", "outlier", "scale")):
    n = draw(st.integers(3, max_points))
    d = draw(st.integers(1, max_dim))
    kind = draw(st.sampled_from(["gaussian", "clusters", "near_duplicates"]))
    move = draw(st.sampled_from(moves))
    seed = draw(seeds)
    size = draw(log_uniform(1e-3, 3.0))
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, d))
    if kind == "clusters":
        x = 0.1 * x + 4.0 * rng.standard_normal((2, d))[rng.integers(0, 2, n)]
    elif kind == "near_duplicates":
        x[1::2] = x[0::2][: len(x[1::2])] + 1e-7 * rng.standard_normal((len(x[1::2]), d))
    if move == "noise":
        y = x + size * rng.standard_normal((n, d))
    elif move == "outlier":
        y = x.copy()
        y[int(rng.integers(n))] += size * 10 * rng.standard_normal(d)
    else:
        y = (1.0 + size) * x
    return Case({"seed": seed, "kind": kind, "move": move, "size": size}, {"x": x, "y": y})


def _diagrams(case, maxdim=1):
    return persistence_diagrams(case["x"], maxdim), persistence_diagrams(case["y"], maxdim)


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
    dx, dy = persistence_diagrams(case["x"], 0), persistence_diagrams(case["y"], 0)
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
