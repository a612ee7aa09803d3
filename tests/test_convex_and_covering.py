"""Convex attention programs, covering bounds and compactness measures: closed forms, solvers, bad input, CLI."""

import json
import math

import numpy as np
import pytest

from boundlab.cli import main
from boundlab.empirical import compactness as E
from boundlab.empirical.convex_heads import factored_solve, train_heads
from boundlab.io.errors import InputError, SolveError
from boundlab.theory import compactness as K
from boundlab.theory import convex_attention as CA
from boundlab.theory import covering as CV

rng = np.random.default_rng(0)
X = rng.standard_normal((6, 4, 3))
Y = rng.standard_normal((6, 4, 2))


def test_linear_attention_reproduces_the_recorded_optimum():
    """docs/research/seed_papers.md C.3: n=6, s=4, d=3, c=2, beta=0.5 on this draw gave 10.586657 (SCS) with rank 5 <= 6."""
    sol = CA.linear_attention_program(X, Y, 0.5).details
    assert sol.lower <= sol.upper and sol.gap < 1e-7
    assert sol.lower == pytest.approx(10.586657, abs=1e-6)
    heads = CA.recover_heads(sol)
    assert len(heads) == 5 and CA.m_star(sol.problem).value == 6
    assert CA.attention_objective(X, Y, heads, 0.5) == pytest.approx(sol.lower, rel=1e-8)


def test_polish_and_burer_monteiro_reach_the_cvxpy_optimum():
    # catches: a wrong prox (SVT threshold), step size or restart in proximal_polish (no convergence to 1e-8), a
    # Burer-Monteiro objective that is not the lifted one (a different optimum), a certificate that is not a bound
    sol = CA.linear_attention_program(X, Y, 0.5).details
    fista = CA.proximal_polish(sol.problem, max_iter=20000, gap_tol=1e-8)
    assert fista.dual <= sol.upper * (1 + 1e-12) and fista.primal >= sol.lower * (1 - 1e-12)
    assert fista.gap < 1e-8
    bm = factored_solve(sol.problem, steps=200, polish=5000, gap_tol=1e-8)
    assert bm.gap < 1e-8 and bm.primal == pytest.approx(sol.lower, rel=1e-8)


def test_trained_heads_stay_above_the_convex_optimum():
    # catches: a torch objective that differs from the numpy defining formula (missing beta/2, a transposed W1),
    # a convex program whose optimum is above what gradient training reaches (a wrong lifting)
    sol = CA.linear_attention_program(X, Y, 0.5).details
    for seed in range(2):
        res = train_heads("attention", X, Y, 0.5, heads=6, steps=60, seed=seed)
        assert res.objective >= sol.lower
        assert CA.attention_objective(X, Y, res.heads, 0.5) == pytest.approx(res.objective, rel=1e-12)


def test_torch_threads_restores_the_setting():
    # catches: training that leaves torch single-threaded for the rest of the process
    import torch

    from boundlab.empirical.convex_heads import torch_threads

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(InputError, match="threads"):
        with torch_threads(0):
            pass


def test_cross_entropy_and_gated_programs_certify():
    labels = rng.integers(0, 3, 6)
    gates = rng.standard_normal((2, 3, 3))
    sol = CA.gated_relu_attention_program(X, labels, 0.1, gates, loss="cross_entropy", classes=3).details
    heads = CA.recover_heads(sol)
    assert CA.attention_objective(X, labels, heads, 0.1, gates=gates, loss="cross_entropy",
                                  classes=3) == pytest.approx(sol.lower, rel=1e-6)
    mlp = CA.mlp_head_program(X[:, 0], Y[:, 0], 0.2, rng.standard_normal((4, 3))).details
    assert CA.m_star(mlp.problem).value == 4 * 2


def test_covering_closed_forms():
    assert CV.ball_log_covering(1.0, 0.5, 2).value == pytest.approx(2 * math.log(5.0), rel=1e-9)
    img = CV.lipschitz_image(3.0, 0.1, 2.0).details
    assert img.log_n == 3.0 and img.scale >= 0.2
    x = np.ones((1, 1))
    # segment [-a, a]: ceil(a^2/eps^2) ln 2 (at exact integers the outward rounding may add one: sound, not tight)
    assert CV.bartlett17_matrix(x, 2.0, 0.9, 1).value == pytest.approx(5 * math.log(2.0), rel=1e-9)
    assert CV.bartlett17_matrix(np.zeros((2, 2)), 1.0, 0.1, 2).value <= 1e-300  # a single point (0 rounded up)
    k = np.zeros((2, 3, 3, 3))
    k[0, :, 0, 0] = [3.0, 4.0, 0.0]
    assert CV.conv_l21_norm(k) == pytest.approx(5.0)
    closed = CV.bartlett17_network(x, [1.0, 2.0], [1.0, 2.0], 0.5, width=3).value
    assert CV.bartlett17_network(x, [1.0, 2.0], [1.0, 2.0], 0.5, width=3, ceil=True).value >= closed
    head = CV.edelman22_attention(np.ones((2, 3, 2)) / 2, 0.5, b_w=1, b_v=1, b_v21=1, b_qk21=1).value
    assert head > 0 and CV.edelman22_attention(np.ones((2, 3, 2)) / 2, 0.5, b_w=1, b_v=1, b_v21=1, b_qk21=1,
                                               constant=2.0).value == pytest.approx(2 * head, rel=1e-9)


def test_greedy_net_and_packing_bracket_the_covering_number():
    pts = np.linspace(0.0, 1.0, 101)[:, None]  # N(eps) of [0, 1] sampled finely is ceil(1/(2 eps)) (+1 at most)
    b = E.covering_bracket(pts, 0.1)
    assert b.lower <= 5 <= b.upper
    assert E.covering_radius(pts, pts[b.net]) <= 0.1
    assert E.greedy_net(pts, 0.0).size == 101
    # catches a packing without the rounding margin: 0.4 - 0.1 rounds to 0.30000000000000004 > 2 * 0.15
    assert E.covering_bracket(np.array([[0.1], [0.4]]), 0.15).lower == 1


def test_variance_is_rotation_invariant_but_not_scale_invariant():
    # catches: a variance normalised by the data scale (it would then be as blind to Lipschitz rescaling as the ID
    # estimators), or one taken along samples instead of features (not rotation invariant)
    r = np.random.default_rng(4)
    x = r.standard_normal((50, 5)) * np.arange(1, 6)
    q, _ = np.linalg.qr(r.standard_normal((5, 5)))
    v = K.activation_variance(x)
    assert K.activation_variance(3.0 * x @ q + 7.0) == pytest.approx(9.0 * v, rel=1e-12)
    assert K.activation_variance(x, "total") == pytest.approx(5 * v, rel=1e-12)


def test_empirical_compactness_reexports_the_estimators():
    # catches: the TopoLip experiment's import path (empirical.compactness) drifting from boundlab.theory.compactness
    assert E.twonn_dimension is K.twonn_dimension and E.levina_bickel_dimension is K.levina_bickel_dimension
    assert E.activation_variance is K.activation_variance


def test_neighbour_distances_dense_and_tree_paths_agree_with_brute_force(monkeypatch):
    # catches: the dense path counting a point as its own neighbour (diagonal not excluded), an off-by-one in the
    # partition (k-1 vs k), unsorted columns, a duplicate no longer reported, and the tree path drifting from it
    r = np.random.default_rng(7)
    x = r.standard_normal((120, 40))
    d = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))  # (N, N) brute force
    np.fill_diagonal(d, np.inf)
    ref = np.sort(d, axis=1)[:, :5]
    for limit in (K.DENSE_NEIGHBOURS_MAX, 10):  # dense path, then the k-d tree path
        monkeypatch.setattr(K, "DENSE_NEIGHBOURS_MAX", limit)
        got = K.neighbour_distances(x, 5)
        assert got.shape == (120, 5)
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=0)
        with pytest.raises(InputError, match="duplicate points"):
            K.neighbour_distances(np.concatenate([x, x[:1]]), 3)


def test_intrinsic_dimension_on_known_sets():
    r = np.random.default_rng(1)
    plane = r.random((800, 2)) @ r.standard_normal((2, 6))
    assert 1.6 < K.twonn_dimension(plane).value < 2.4
    assert 1.6 < K.levina_bickel_dimension(plane, 10).value < 2.4
    assert K.activation_variance(np.array([[0.0, 1.0], [2.0, 1.0]])) == pytest.approx(0.5)


@pytest.mark.parametrize("call, match", [
    (lambda: CA.linear_attention_program(X, Y, 0.0).details, r"beta: expected a number > 0"),
    (lambda: CA.linear_attention_program(X, Y[:, :2], 0.5).details, r"targets: expected shape \(n, s, c\)"),
    (lambda: CA.linear_attention_program(np.full((2, 2, 2), np.nan), Y, 0.5).details, r"tokens: expected finite"),
    (lambda: CA.linear_attention_program(X, Y, 0.5, loss="hinge").details, r"loss: expected one of"),
    (lambda: CA.linear_attention_program(X, Y, 0.5, solver="MOSEK").details, r"solver: expected one of"),
    (lambda: CA.linear_attention_program(X, [0, 1, 2, 7, 0, 1], 0.5, loss="cross_entropy", classes=3).details,
     r"targets: label 7 is out of range"),
    (lambda: CA.gated_relu_attention_program(X, Y, 0.5, np.ones((2, 2, 2))).details, r"gates: expected shape"),
    (lambda: CA.linear_attention_program(np.zeros((0, 2, 2)), Y, 0.5).details, r"tokens: expected a non-empty"),
    (lambda: train_heads("conv", X, Y, 0.5, heads=2), r"kind: expected one of"),
    (lambda: CV.ball_log_covering(1.0, 0.0, 2).value, r"eps: expected a number > 0"),
    (lambda: CV.ball_log_covering(1.0, -1.0, 2).value, r"eps: expected a number > 0"),
    (lambda: CV.lipschitz_image(1.0, math.nan, 1.0).details, r"eps: expected a finite number"),
    (lambda: CV.bartlett17_matrix(np.ones((2, 2)), 1.0, 0.1, 1, p=3.0).value, r"p: expected 1 <= p <= 2"),
    (lambda: CV.bartlett17_network(np.ones((2, 2)), [1.0], [1.0, 2.0], 0.1, width=2).value, r"l21: expected one value"),
    (lambda: CV.graf22_conv(np.ones((1, 2, 3, 3)), 1.0, 0.1, (1, 3, 2, 2)).value, r"kernel_shape: expected"),
    (lambda: E.greedy_net(np.ones((0, 2)), 0.1), r"points: expected a non-empty"),
    (lambda: E.covering_bracket(np.ones((3, 2)), 0.0), r"eps: expected a number > 0"),
    (lambda: E.greedy_net(np.ones((3, 2)), 0.1, metric="cosine"), r"metric: expected one of"),
    (lambda: K.twonn_dimension(np.ones((5, 2))).value, r"points: duplicate points"),
    (lambda: K.levina_bickel_dimension(np.random.default_rng(0).random((5, 2)), 5).value, r"k: expected fewer"),
    (lambda: K.twonn_dimension(np.full((4, 2), np.nan)).value, r"points: expected finite"),
    (lambda: K.twonn_dimension(np.ones((0, 2))).value, r"points: expected a non-empty"),
    (lambda: K.activation_variance(np.array([[np.nan, 1.0], [0.0, 1.0]])), r"points: expected finite"),
    (lambda: K.activation_variance(np.ones((1, 3))), r"points: expected at least 2 points"),
    (lambda: CV.lipschitz_image(1.0, 0.1, -1.0).details, r"lipschitz: expected a number >= 0"),
    (lambda: CV.edelman22_attention(np.ones((2, 3, 2)), 0.0, b_w=1, b_v=1, b_v21=1, b_qk21=1).value, r"eps: expected"),
    (lambda: CV.graf22_conv(np.ones((1, 1, 3, 3)), 1.0, -0.1, (1, 1, 2, 2)).value, r"eps: expected a number > 0"),
    (lambda: CV.bartlett17_network(np.ones((2, 2)), [1.0], [1.0], math.nan, width=2).value, r"eps: expected a finite"),
    (lambda: CV.bartlett17_matrix(np.ones((0, 2)), 1.0, 0.1, 1).value, r"data: expected a non-empty"),
    (lambda: E.covering_radius(np.ones((3, 2)), np.ones((0, 2))), r"centres: expected a non-empty"),
    (lambda: E.covering_radius(np.ones((3, 2)), np.ones((1, 3))), r"centres: expected rows of dimension 2"),
    (lambda: E.greedy_net(np.ones((3, 2)), -0.1), r"eps: expected a number >= 0"),
])
def test_bad_input_names_argument(call, match):
    with pytest.raises(InputError, match=match):
        call()


def test_failed_certificate_is_a_solve_error_not_bad_input():
    problem = CA.linear_attention_program(X, Y, 0.5).details.problem
    with pytest.raises(SolveError, match=r"solver: given .* certified only a relative gap") as info:
        CA.certify(problem, np.ones((1, 9, 6)), gap_tol=1e-9)
    assert not isinstance(info.value, InputError)


def test_cli_convex_heads_tiny(tmp_path):
    out = tmp_path / "heads.json"
    assert main(["convex-heads", "--n-train", "40", "--n-test", "30", "--dim", "2", "--steps", "15",
                 "--polish", "100", "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert {"versions", "commit", "config", "seed", "rows", "data"} <= set(doc)
    heads = {r["head"]: r for r in doc["rows"]}
    assert {"linear", "relu_mlp", "convex_gated_mlp", "attention", "convex_linear_attention",
            "convex_gated_attention"} <= set(heads)
    assert doc["data"]["n_train"] == 40 and doc["data"]["n_test"] == 30 and doc["config"]["dim"] == 2
    assert doc["config"]["polish"] == 100
    for r in doc["rows"]:
        assert 0.0 <= r["test_acc"] <= 1.0
        if r["gap"] is not None:  # convex rows: certified bracket and heads within m*
            assert r["certified_lower"] <= r["objective"] and r["heads"] <= r["m_star"]
    assert heads["attention"]["objective"] >= heads["convex_linear_attention"]["certified_lower"]


def test_cli_convex_heads_external_features_and_bad_input(tmp_path, capsys):
    r = np.random.default_rng(2)
    np.savez(tmp_path / "f.npz", tokens=r.standard_normal((40, 3, 2)), labels=r.integers(0, 2, 40))
    out = tmp_path / "ext.json"
    assert main(["convex-heads", "--features", str(tmp_path / "f.npz"), "--n-train", "30", "--steps", "10",
                 "--polish", "50", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["data"]["source"] == "external frozen features"
    assert main(["convex-heads", "--features", str(tmp_path / "missing.npz")]) == 2
    assert "FEATURES: file not found" in capsys.readouterr().err
    np.savez(tmp_path / "bad.npz", tokens=np.ones((4, 2, 2)))
    assert main(["convex-heads", "--features", str(tmp_path / "bad.npz")]) == 2
    assert main(["convex-heads", "--features", str(tmp_path / "f.npz"), "--n-train", "40"]) == 2
