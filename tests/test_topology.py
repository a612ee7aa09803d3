"""Persistence pipeline (empirical/topology.py), TopoLip measurements (empirical/topolip.py), lemma helpers.

Metamorphic tests in the giotto-ph style: diagrams are invariant under point permutations and rigid motions and
scale linearly under uniform scaling; engines agree with each other and with the untruncated filtration; H0
deaths are the MST edge lengths. Each test names the wrong code it would catch.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.sparse.csgraph import minimum_spanning_tree
from scipy.spatial.distance import pdist, squareform

from boundlab.empirical.topolip import TopoConfig, layer_measurements
from boundlab.empirical.topology import (ENGINES, available_engines, diagram_distance, h1_birth_bound,
                                persistence_diagrams)
from boundlab.theory import InputError
from boundlab.theory import persistence as P


def _cloud(seed=0, n=40, d=3, kind="gaussian"):
    rng = np.random.default_rng(seed)
    if kind == "circle":
        t = rng.uniform(0, 2 * np.pi, n)
        return np.c_[np.cos(t), np.sin(t), 0.05 * rng.standard_normal((n, d - 2))]
    if kind == "clusters":
        return 0.2 * rng.standard_normal((n, d)) + 3 * rng.standard_normal((3, d))[rng.integers(0, 3, n)]
    return rng.standard_normal((n, d))


def _same(d1, d2, tol=0.0):
    for k in range(len(d1.finite)):
        assert d1.finite[k].shape == d2.finite[k].shape, k
        assert diagram_distance(d1.finite[k], d2.finite[k], "inf") <= tol * max(1.0, np.abs(d1.finite[k]).max(
            initial=0.0)), k


@pytest.mark.parametrize("kind", ["gaussian", "circle", "clusters"])
def test_engines_agree_with_untruncated_filtration(kind):
    # wrong code caught: a truncation threshold below some H1 birth or death (missing/essential pairs), an engine
    # returning float32 values that are not snapped, a wrong degree index
    x = _cloud(1, 45, 6, kind)
    ref = persistence_diagrams(x, engine="gudhi", truncate=False)
    assert len(ref.finite[1]) > 0
    for engine in available_engines():
        for truncate in (True, False):
            _same(persistence_diagrams(x, engine=engine, truncate=truncate), ref)


def test_h0_deaths_are_mst_edges_and_match_gudhi():
    # wrong code caught: an MST that drops zero-length edges or a wrong Prim update
    x = _cloud(2, 60, 4)
    x[5] = x[7]  # a duplicate: a zero-length MST edge, no finite H0 pair for it
    mst = minimum_spanning_tree(squareform(pdist(x)) + 1.0).toarray()  # +1: scipy treats 0 as "no edge"
    expected = np.sort(mst[mst > 0] - 1.0)
    d = persistence_diagrams(x, 0)
    assert np.allclose(d.finite[0][:, 1], expected[expected > 1e-12], rtol=1e-12, atol=0)
    assert np.all(d.finite[0][:, 0] == 0) and d.essential[0].tolist() == [0.0]
    assert np.allclose(P.mst_edge_lengths(P.distance_matrix(x)), expected, rtol=1e-12, atol=1e-12)


def test_metamorphic_permutation_rigid_motion_scaling():
    # wrong code caught: diagrams depending on point order, on absolute position (e.g. a Gram route without
    # centring that cancels), or not scaling linearly (L5)
    rng = np.random.default_rng(3)
    x = _cloud(3, 40, 5)
    base = persistence_diagrams(x)
    q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    moved = persistence_diagrams(x[rng.permutation(40)] @ q + 1e3 * rng.standard_normal(5))
    _same(base, moved, tol=1e-9)
    c = 7.5
    scaled = persistence_diagrams(c * x)
    for k in (0, 1):
        assert np.allclose(scaled.finite[k], c * base.finite[k], rtol=1e-12)


def test_gram_route_refines_near_duplicates():
    # wrong code caught: the |a|^2 + |b|^2 - 2ab expansion where it cancels (relative error ~1 for close points)
    rng = np.random.default_rng(4)
    x = 100.0 + rng.standard_normal((30, 64))
    x[1] = x[0] + 1e-9 * rng.standard_normal(64)
    diff = P.distance_matrix(x, "differences")
    gram = P.distance_matrix(x, "gram")
    assert np.allclose(gram, diff, rtol=1e-10, atol=0)
    assert np.array_equal(gram, gram.T) and np.all(np.diag(gram) == 0)


def test_h1_birth_bound_is_an_upper_bound_on_births():
    # wrong code caught: a witness test with <= instead of <, or a candidate pass that discards uncertified edges
    for kind in ("gaussian", "circle", "clusters"):
        x = _cloud(5, 50, 4, kind)
        dm = P.distance_matrix(x)
        births = persistence_diagrams(x, engine="gudhi", truncate=False).finite[1][:, 0]
        assert births.max() <= h1_birth_bound(dm)
        # exactness of the scan: the bound is the longest edge without a strict witness
        iu, ju = np.triu_indices(50, 1)
        no_wit = [dm[i, j] for i, j in zip(iu, ju) if not np.any(np.maximum(dm[i], dm[j]) < dm[i, j])]
        assert h1_birth_bound(dm) == max(no_wit)


def test_diagram_distance_closed_forms():
    # wrong code caught: L2 ground metric instead of L_inf, a wrong diagonal cost, p ignored
    a = np.array([[0.0, 2.0]])
    empty = np.zeros((0, 2))
    assert diagram_distance(a, empty, "inf") == pytest.approx(1.0)  # to the diagonal: (d - b) / 2
    assert diagram_distance(a, empty, 1) == pytest.approx(1.0)
    b = np.array([[0.5, 2.5]])
    assert diagram_distance(a, b, "inf") == pytest.approx(0.5)  # L_inf: max(0.5, 0.5), not 0.5*sqrt(2)
    two = np.array([[0.0, 2.0], [0.0, 4.0]])
    assert diagram_distance(two, empty, 2) == pytest.approx(math.sqrt(1 + 4))
    assert diagram_distance(two, empty, 1) == pytest.approx(3.0)


@pytest.mark.parametrize("bad,match", [
    (np.zeros((0, 3)), "points"), (np.zeros((1, 3)), "points: expected at least 2"),
    (np.array([[0.0, np.nan], [1.0, 2.0]]), "points: expected finite"), (np.zeros(5), "points: expected an array"),
])
def test_persistence_bad_input(bad, match):
    with pytest.raises(InputError, match=match):
        persistence_diagrams(bad)


def test_bad_arguments_name_the_argument():
    x = _cloud(0, 10, 2)
    with pytest.raises(InputError, match="engine"):
        persistence_diagrams(x, engine="nope")
    with pytest.raises(InputError, match="maxdim"):
        persistence_diagrams(x, maxdim=3)
    for p in (0.5, "two", -1, float("nan")):
        with pytest.raises(InputError, match="p:"):
            diagram_distance(np.zeros((0, 2)), np.zeros((0, 2)), p)
    with pytest.raises(InputError, match="d1"):
        diagram_distance(np.zeros((3, 3)), np.zeros((0, 2)))
    with pytest.raises(InputError, match="y: expected 10 points"):
        P.bottleneck_pointwise_bound(x, x[:5])
    with pytest.raises(InputError, match="p:"):
        P.cellular_wasserstein_bound(x, x, "inf")
    with pytest.raises(InputError, match="degree"):
        P.cellular_wasserstein_bound(x, x, 2, 2)
    assert set(ENGINES) >= set(available_engines()) and "gudhi" in available_engines()


def _net(x, w1, w2):
    h1 = np.maximum(x @ w1, 0)
    return [x, h1, h1 @ w2]


def test_layer_measurements_keys_and_self_test():
    # wrong code caught: missing or renamed result keys, a lemma self-test that fails on a correct pipeline,
    # variant C without the stability constant, normalised variants not scale invariant
    rng = np.random.default_rng(6)
    x = rng.standard_normal((40, 8))
    w1, w2 = rng.standard_normal((8, 12)) / 3, rng.standard_normal((12, 5)) / 3
    clean, pert = _net(x, w1, w2), _net(x + 0.05 * rng.standard_normal(x.shape), w1, w2)
    shifted = _net(1.3 * x + 0.2, w1, w2)
    lips = [None, np.linalg.norm(w1, 2), np.linalg.norm(w2, 2)]
    rows = layer_measurements(clean, pert, config=TopoConfig(), shifted=shifted, lipschitz=lips)
    assert [r["index"] for r in rows] == [1, 2]
    keys = {"layer", "index", "dim", "variance", "id_twonn", "id_mle", "diagram_distance_to_previous", "topolip",
            "stability"}
    for r in rows:
        assert set(r) == keys
        assert set(r["topolip"]) == {"A", "B", "C", "D", "A_normalised", "B_normalised"}
        assert set(r["stability"]) == {"L1_holds", "L1_ratio", "L3_holds", "L3_ratio"}
        assert r["stability"]["L1_holds"] and r["stability"]["L3_holds"]
        assert set(r["diagram_distance_to_previous"]) == {"H0", "H1"}
        assert set(r["diagram_distance_to_previous"]["H0"]) == {"1", "2", "inf"}
    assert rows[0]["topolip"]["C"] == pytest.approx(2 * lips[1], rel=1e-9)
    # variant C bounds the measured change per unit input displacement (the lipschitz values are certified)
    num = diagram_distance(persistence_diagrams(pert[2], 0).finite[0], persistence_diagrams(clean[2], 0).finite[0],
                           "inf")
    assert num <= rows[1]["topolip"]["C"] * P.max_displacement(pert[1], clean[1]) * (1 + 1e-9)
    # normalised variants are invariant under scaling a layer's outputs, the plain ones are not
    c = 10.0
    scaled = layer_measurements([clean[0], clean[1], c * clean[2]], [pert[0], pert[1], c * pert[2]],
                                config=TopoConfig())
    assert scaled[1]["topolip"]["A"] == pytest.approx(c * rows[1]["topolip"]["A"], rel=1e-9)
    assert scaled[1]["topolip"]["A_normalised"] == pytest.approx(rows[1]["topolip"]["A_normalised"], rel=1e-9)
    assert scaled[1]["topolip"]["C"] is None and scaled[1]["topolip"]["D"] is None


def test_l4_ratio_pitfall_orthogonal_map():
    """L4 (documented): variant A is not bounded by any Lipschitz constant. Perturb the input by a tiny rotation:
    the input diagrams barely change (exactly not at all for an exact rotation: A is null), while a coordinatewise
    ReLU (1-Lipschitz, not rotation-equivariant) changes its output diagrams at first order."""
    # wrong code caught: a ratio reported as a number when its denominator is 0, or a variant A that is
    # secretly bounded (e.g. a denominator that is not a diagram distance)
    rng = np.random.default_rng(7)
    x = rng.standard_normal((30, 4))
    relu = lambda a: np.maximum(a, 0)  # noqa: E731
    q, _ = np.linalg.qr(rng.standard_normal((4, 4)))
    rows = layer_measurements([x, relu(x)], [x @ q, relu(x @ q)], config=TopoConfig())
    # input diagrams identical up to rounding of x @ q: A is null (denominator exactly 0) or astronomically large
    a0 = rows[0]["topolip"]["A"]
    assert a0 is None or a0 > 1e6, a0
    th = 1e-3
    rot = np.eye(4)
    rot[:2, :2] = [[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]]
    y = x @ rot + 1e-9 * rng.standard_normal(x.shape)  # a rotation plus float-level noise: tiny diagram change
    a = layer_measurements([x, relu(x)], [y, relu(y)], config=TopoConfig())[0]["topolip"]["A"]
    assert a > 100.0, a  # while Lip(ReLU) = 1 and the stability constant for p = inf is 2


def test_layer_measurements_bad_input():
    x = _cloud(0, 10, 2)
    with pytest.raises(InputError, match="clean"):
        layer_measurements([x], [x], config=TopoConfig())
    with pytest.raises(InputError, match=r"perturbed\[1\]"):
        layer_measurements([x, x], [x, x[:, :1]], config=TopoConfig())
    with pytest.raises(InputError, match="config.normalise"):
        layer_measurements([x, x], [x, x], config=TopoConfig(normalise="max"))
    with pytest.raises(InputError, match="config.engine"):
        layer_measurements([x, x], [x, x], config=TopoConfig(engine="nope"))
    with pytest.raises(InputError, match="config.topolip_order"):
        layer_measurements([x, x], [x, x], config=TopoConfig(topolip_order=0.5))
    with pytest.raises(InputError, match="lipschitz"):
        layer_measurements([x, x], [x, x], config=TopoConfig(), lipschitz=[1.0])


def test_diagram_distance_resolves_tiny_costs_beside_large_ones():
    """Deaths ~1e-7 beside deaths ~1 (near-duplicate points): POT's absolute tolerance matched the tiny points to
    the diagonal (W2 1.3e-7, found by the cellular property in a demo run); the assignment route finds the
    optimal matching, here the sorted one."""
    from boundlab.empirical.topology import diagram_distance

    a = np.array([[0, 1.69723146e-07], [0, 1.86009028e-07], [0, 3.23350542e-07], [0, 2.13065066], [0, 3.33710883]])
    b = np.array([[0, 1.86009028e-07], [0, 2.03667776e-07], [0, 3.23350542e-07], [0, 2.13065066], [0, 3.33710882]])
    sorted_match = float(np.sqrt(((np.sort(a[:, 1]) - np.sort(b[:, 1])) ** 2).sum()))
    assert diagram_distance(a, b, 2.0) == pytest.approx(sorted_match, rel=1e-9)
    assert diagram_distance(a, b, 2.0) < 3e-8
