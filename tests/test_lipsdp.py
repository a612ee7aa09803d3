"""LipSDP (theory/lipsdp.py), its torch models (empirical/mlp.py), the attention SDP and the ``lipsdp`` command.

Published reference values are the LipSDP README's (tests/data/lipsdp/README.md); the MNIST values (issue 16's
anchors, measured here, not published) are consistent with the README's MNIST Network-dec-vars 24.365, a richer
multiplier class than Neuron.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from boundlab.cli import main
from boundlab.empirical.attention import dot_product_attention
from boundlab.empirical.lipschitz import global_lipschitz_lower_bound
from boundlab.empirical.mlp import conv_net, feedforward_function, load_torch_mlp, mlp_from_weights, weights_from_sequential
from boundlab.theory import lipsdp as L
from boundlab.theory.validate import InputError
from boundlab.theory.attention import AttentionWeights
from boundlab.theory.attention import AttentionLayer
from boundlab.theory.attention_sdp import attention_sdp_bound, bilinear_sup_bound, psi_max, variance_cap

DATA = Path(__file__).resolve().parent / "data" / "lipsdp"
PUBLISHED = {"layer": 39.839, "neuron": 36.482, "neuron_split2": 37.668}
MNIST = {"neuron": 24.366, "layer": 26.256}


@pytest.fixture(scope="module")
def random_net():
    return L.FeedForward.from_weights(L.load_mat(DATA / "random_weights.mat"), "relu")


def _lower(net, radius=3.0, seed=0) -> float:
    f = feedforward_function(net)
    n0 = net.weights[0].shape[1]
    return global_lipschitz_lower_bound(lambda x: f(x.flatten(1)).unsqueeze(1), (1, n0), radius, seed=seed,
                                        restarts=6, steps=15).lower_bound


def test_reference_values(random_net):
    # wrong code caught: any change to the LMI blocks, the split product or the Layer multiplier structure
    assert [w.shape for w in random_net.weights] == [(10, 2), (30, 10), (20, 30), (2, 20)]
    for key, res in (("neuron", L.lipsdp(random_net, "neuron")), ("layer", L.lipsdp(random_net, "layer")),
                     ("neuron_split2", L.lipsdp(random_net, "neuron", split_size=2))):
        assert abs(res.certified / PUBLISHED[key] - 1) < 1e-3, (key, res.certified)
        assert res.certified >= res.solver_value
        assert res.lambda_max <= 0


def test_mnist_both_forms_and_ordering():
    # wrong code caught: the SVD reduction changing the bound, Neuron looser than Layer, or above the product
    net = L.FeedForward.from_weights(L.load_mat(DATA / "mnist_weights.mat"), "relu")
    assert net.hidden == [50]  # one hidden layer (the reference implementation crashes here)
    neuron, layer = L.lipsdp(net, "neuron"), L.lipsdp(net, "layer")
    assert neuron.lmi_size == 100  # 784 inputs reduced to the 50 x 50 factor
    assert neuron.certified <= layer.certified * (1 + 1e-6) <= neuron.naive_bound * (1 + 2e-6)
    for form, res in (("neuron", neuron), ("layer", layer), ("neuron", L.lipsdp(net, "neuron", method="chordal"))):
        assert abs(res.certified - MNIST[form]) <= 5e-4, (form, res.method, res.certified)  # 3 decimals
    x = torch.randn(784, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    assert neuron.certified >= float(torch.linalg.matrix_norm(torch.func.jacrev(feedforward_function(net))(x), 2))


def test_reduction_is_exact():
    # wrong code caught: reducing W_0 by U only (dropping Sigma) or the last layer by Q instead of R
    rng = np.random.default_rng(3)
    net = L.FeedForward.from_weights([rng.standard_normal((3, 9)), rng.standard_normal((4, 3)),
                                      rng.standard_normal((7, 4))], "tanh")
    red, full = L.lipsdp(net, reduce=True), L.lipsdp(net, reduce=False)
    assert L.reduce_network(net).weights[0].shape == (3, 3) and L.reduce_network(net).weights[-1].shape == (4, 4)
    assert abs(red.certified / full.certified - 1) < 1e-6


def _seeded_net(seed: int, widths, activation: str, scale: float = 1.0, negative_slope: float = 0.01):
    rng = np.random.default_rng(seed)
    ws = [rng.standard_normal((widths[i + 1], widths[i])) * scale / math.sqrt(widths[i]) for i in range(len(widths) - 1)]
    return L.FeedForward.from_weights(ws, activation, negative_slope=negative_slope)


def test_chordal_equals_monolithic(random_net):
    # the issue-16 contract: the chordal method reaches the monolithic optimum to 1e-6 relative (measured: <= 1.1e-7
    # on 120 seeded nets). wrong code caught: a Newton system that stops short, a certificate that inflates rho, a
    # monolithic solve left at CVXOPT's default feasibility tolerance (up to 4e-5 above after certification) or
    # without the slope normalisation (2% above on sigmoid nets)
    nets = [random_net, _seeded_net(3, [2, 5, 4, 6, 1], "relu"), _seeded_net(4, [3, 6, 2, 5, 2], "sigmoid", 2.0),
            _seeded_net(5, [2, 4, 5, 3], "leaky_relu", 1.5, negative_slope=-0.5), _seeded_net(6, [2, 6, 4, 6, 1], "gelu")]
    for net in nets:
        for form in ("neuron", "layer"):
            chordal = L.lipsdp(net, form, method="chordal")
            mono = L.lipsdp(net, form, method="monolithic")
            assert (chordal.method, chordal.solver, mono.method, mono.solver) == ("chordal", "STRUCTURED",
                                                                                  "monolithic", "CVXOPT")
            assert abs(chordal.certified / mono.certified - 1) <= 1e-6, (net.describe(), form, chordal.certified,
                                                                         mono.certified)
            assert chordal.certified >= chordal.solver_value and chordal.lambda_max < 0


def test_primal_dual_and_barrier_reach_the_same_optimum():
    # the two structured algorithms solve the same SDP from the same start: their proposals agree to the solvers'
    # tolerance (measured: <= 2.4e-8 relative on 200 random nets, relu/leaky/tanh/sigmoid, local slopes, both forms),
    # and the chordal method's default is the primal-dual one. wrong code caught: a corrector with the wrong sign
    # (stalls primal infeasible), the start returned instead of the best dual-feasible iterate (the Schur
    # complement's algebra: test_primal_dual_schur_complement_is_the_dense_one)
    from boundlab.theory.lipsdp_chordal import Chain, certify_chain, solve_structured

    nets = [_seeded_net(3, [2, 5, 4, 6, 1], "relu"), _seeded_net(4, [3, 6, 2, 5, 2], "sigmoid", 2.0),
            _seeded_net(5, [2, 4, 5, 3], "leaky_relu", 1.5, negative_slope=-0.5), _seeded_net(7, [3, 5, 5, 5, 5, 1], "tanh")]
    for net in nets:
        chain = Chain.from_net(net)
        for form in ("neuron", "layer"):
            pd = solve_structured(chain, form, algorithm="pd")
            bar = solve_structured(chain, form, algorithm="barrier")
            assert pd.status == "optimal" and pd.info["algorithm"] == "primal-dual", pd.info
            assert abs(pd.rho / bar.rho - 1) <= 1e-7, (net.describe(), form, pd.rho, bar.rho)
            lam = pd.lam
            rc, lm, star = certify_chain(chain, pd.rho, lam)
            assert lm < 0 and rc >= star and abs(rc / pd.rho - 1) <= 1e-6
            auto = solve_structured(chain, form)
            assert auto.info["algorithm"] == "primal-dual" and "fallback" not in auto.info
    res = L.lipsdp(nets[0], "neuron", method="chordal")
    assert res.pieces[0]["algorithm"] == "primal-dual"


def test_primal_dual_schur_complement_is_the_dense_one():
    # the HKM Schur complement M_ij = tr(A_i X A_j Z^-1) + [i = j] x_i / z_i from the Gram products equals the dense
    # sum over the explicit coefficient matrices (both forms, nonzero alpha). wrong code caught: G^X_ef o G^W_ef
    # without the transpose, G_ee paired with G_ee, the sign-constraint term dropped, a scaled layer aggregation
    # (slips the iteration count alone does not show: the method still converges with an inexact Newton matrix)
    from boundlab.theory.lipsdp_chordal import Chain, chain_blocks
    from boundlab.theory.lipsdp_pd import StructuredPrimalDual, _dense

    rng = np.random.default_rng(0)
    net = _seeded_net(5, [2, 4, 3, 3], "leaky_relu", 1.5, negative_slope=-0.5)
    base = Chain.from_net(net)
    chain = Chain(base.weights, rng.uniform(-0.5, 0.2, base.n_hidden), rng.uniform(0.5, 1.0, base.n_hidden))
    n = chain.lmi_size
    gx, gw = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    X, W = gx @ gx.T + np.eye(n), gw @ gw.T + np.eye(n)
    for form in ("neuron", "layer"):
        pd = StructuredPrimalDual(chain, form)
        m = pd.m
        xl, z = rng.uniform(0.5, 2, m - 1), rng.uniform(0.5, 2, m - 1)
        got = pd._schur(pd.grams(X), pd.grams(W), X, W, xl, z)
        mats = [_dense(*chain_blocks(chain, 1.0, np.zeros(chain.n_hidden), output=False))]
        for j in range(m - 1):
            y = np.zeros(m)
            y[1 + j] = 1.0
            mats.append(_dense(*chain_blocks(chain, 0.0, pd.lam(y), output=False)))
        want = np.array([[np.trace(a @ X @ b @ W) for b in mats] for a in mats])
        want[1:, 1:] += np.diag(xl / z)
        assert np.allclose(got, want, rtol=1e-10, atol=1e-9 * np.abs(want).max()), (form, np.abs(got - want).max())
        adj = pd._adjoint(X)
        assert np.allclose(adj, [np.trace(a @ X) for a in mats], rtol=1e-10)


def test_primal_dual_failure_falls_back_to_the_barrier(monkeypatch):
    # auto: a primal-dual failure (or a stop short of the tolerance) runs the barrier from the same start and says
    # so; algorithm="pd" raises instead. wrong code caught: a silent fallback, a missing bound, a fallback that keeps
    # the worse of the two proposals
    from boundlab.theory import lipsdp_pd
    from boundlab.theory.lipsdp_chordal import Chain, solve_structured

    net = _seeded_net(3, [2, 5, 4, 6, 1], "relu")
    chain = Chain.from_net(net)
    ref = solve_structured(chain, "neuron", algorithm="barrier").rho
    real = lipsdp_pd.StructuredPrimalDual.solve

    def fails(self, *a, **kw):
        raise np.linalg.LinAlgError("simulated breakdown")

    monkeypatch.setattr(lipsdp_pd.StructuredPrimalDual, "solve", fails)
    res = solve_structured(chain, "neuron")
    assert res.info["algorithm"] == "barrier" and "simulated breakdown" in res.info["fallback"] and res.rho == ref
    with pytest.raises(L.LipSDPError, match="simulated breakdown"):
        solve_structured(chain, "neuron", algorithm="pd")
    piece = L.lipsdp(net, "neuron", method="chordal").pieces[0]
    assert piece["algorithm"] == "barrier" and "simulated breakdown" in piece["algorithm_fallback"]

    def short(self, y0, **kw):
        return real(self, y0, **{**kw, "max_iter": 3})

    monkeypatch.setattr(lipsdp_pd.StructuredPrimalDual, "solve", short)
    res = solve_structured(chain, "neuron")
    assert "after 3 iterations" in res.info["fallback"] and res.rho == min(ref, res.rho)
    assert abs(res.rho / ref - 1) <= 1e-9
    with pytest.raises(InputError, match="algorithm"):
        solve_structured(chain, "neuron", algorithm="newton")


def test_chordal_cvxopt_retries_then_falls_back(monkeypatch):
    # the clique LMIs through CVXOPT: a Cholesky KKT failure is retried with kktsolver="robust"; if that fails too the
    # piece is solved by STRUCTURED, recorded. wrong code caught: a None row (the issue-16 CLI bug), a fallback that
    # is not recorded, or a result that claims CVXOPT when another solver produced it
    import cvxpy as cp

    net = _seeded_net(3, [2, 5, 4, 6, 1], "relu")
    ref = L.lipsdp(net, "layer", method="chordal", solver="STRUCTURED").certified
    real = cp.Problem.solve

    def chol_fails(self, *a, **kw):
        if kw.get("solver") == "CVXOPT" and kw.get("kktsolver") != "robust":
            raise cp.error.SolverError("simulated singular KKT matrix")
        return real(self, *a, **kw)

    monkeypatch.setattr(cp.Problem, "solve", chol_fails)
    res = L.lipsdp(net, "layer", method="chordal", solver="CVXOPT")
    assert res.solver == "CVXOPT" and "robust" in res.pieces[0]["solver_fallback"]
    assert abs(res.certified / ref - 1) <= 1e-6

    def always_fails(self, *a, **kw):
        raise cp.error.SolverError("simulated failure")

    monkeypatch.setattr(cp.Problem, "solve", always_fails)
    res = L.lipsdp(net, "layer", method="chordal", solver="CVXOPT")
    assert res.solver == "STRUCTURED" and res.method == "chordal"
    assert res.pieces[0]["requested_solver"] == "CVXOPT" and "STRUCTURED" in res.pieces[0]["solver_fallback"]
    assert res.certified == ref


def test_certification_raises_rho_until_the_lmi_holds(random_net):
    # wrong code caught: a certificate that trusts the solver's rho, or a bisection returning an infeasible rho
    net = L.reduce_network(random_net)
    res = L._solve_piece(net, "neuron", "CVXOPT", 0.0)
    rho, lam = res.value, res.checks["lam"]
    low = rho * (1 - 1e-3)
    assert np.linalg.eigvalsh(L.lmi_matrix(net, low, lam))[-1] > 0  # the lowered rho violates the LMI
    rc, top = L._certify(net, low, lam)
    assert rc > low and top <= 0
    assert np.linalg.eigvalsh(L.lmi_matrix(net, rc, lam))[-1] <= 0
    assert rc <= rho * (1 + 1e-6)  # and the bisection does not overshoot


def test_scs_only_through_the_certificate():
    # wrong code caught: returning SCS's value unchecked (it violates the LMI at default tolerances)
    rng = np.random.default_rng(0)
    net = L.FeedForward.from_weights([rng.standard_normal((4, 2)), rng.standard_normal((3, 4)),
                                      rng.standard_normal((1, 3))], "relu")
    res = L.lipsdp(net, "neuron", solver="SCS")
    ref = L.lipsdp(net, "neuron")
    assert res.certified >= res.solver_value and res.lambda_max <= 0
    assert res.certified >= ref.solver_value * (1 - 1e-6)


def test_width_one_network_is_exact():
    # f(x) = w1 * relu(w0 . x): Lip = |w1| ||w0|| (attained); LipSDP must be >= it and tight.
    # wrong code caught: an LMI that is too optimistic (below) or a certification that inflates a lot (above)
    w0, w1 = np.array([[0.6, -0.8, 2.0]]), np.array([[-1.5]])
    truth = 1.5 * float(np.linalg.norm(w0))
    res = L.lipsdp(L.FeedForward.from_weights([w0, w1], "relu"))
    assert truth <= res.certified <= truth * (1 + 1e-5)


@pytest.mark.parametrize("act", ["gelu", "silu", "leaky_relu", "sigmoid"])
def test_other_activations_are_upper_bounds(act):
    # wrong code caught: wrong sign of the -2 alpha beta T block for alpha < 0 (GELU/SiLU), a wrong sigmoid slope
    rng = np.random.default_rng(7)
    net = L.FeedForward.from_weights([rng.standard_normal((5, 3)) * 2, rng.standard_normal((2, 5)) * 2], act,
                                     negative_slope=-0.3)
    res = L.lipsdp(net)
    assert _lower(net) <= res.certified <= res.naive_bound * (1 + 1e-5)


def test_slopes():
    # numerical extrema of the derivatives (wrong code caught: slopes rounded inward)
    x = np.linspace(-8, 8, 400001)
    from scipy.stats import norm

    gelu = norm.cdf(x) + x * norm.pdf(x)
    s = 1 / (1 + np.exp(-x))
    silu = s * (1 + x * (1 - s))
    for name, d in (("gelu", gelu), ("silu", silu), ("tanh", 1 - np.tanh(x) ** 2), ("sigmoid", s * (1 - s))):
        a, b = L.slope_bounds(name)
        assert a <= d.min() and d.max() <= b
    assert L.slope_bounds("leaky_relu", -0.5) == (-0.5, 1.0)


@pytest.mark.parametrize("bad, match", [
    (lambda: L.FeedForward.from_weights([np.ones((2, 2)), np.full((1, 2), np.nan)]), "weights\\[1\\]"),
    (lambda: L.FeedForward.from_weights([np.ones((2, 3)), np.ones((1, 3))]), "weights\\[1\\]"),
    (lambda: L.FeedForward.from_weights([np.ones((2, 2)), np.ones((1, 2))], alpha=1.0, beta=0.0), "alpha"),
    (lambda: L.FeedForward.from_weights([np.ones((2, 2)), np.ones((1, 2))], "softplus"), "activation"),
    (lambda: L.FeedForward.from_weights([np.ones((2, 2))]), "weights"),
    (lambda: L.lipsdp(L.FeedForward.from_weights([np.ones((2, 2)), np.ones((1, 2))]), "network"), "form"),
    (lambda: L.lipsdp(L.FeedForward.from_weights([np.ones((2, 2)), np.ones((1, 2))]), solver="MOSEK"), "solver"),
    (lambda: L.lipsdp(L.FeedForward.from_weights([np.ones((2, 2)), np.ones((1, 2))]), split_size=1), "split_size"),
    (lambda: L.lipsdp([np.ones((2, 2))]), "net"),
    (lambda: L.load_mat(DATA / "README.md"), "path"),
])
def test_bad_input(bad, match):
    # wrong code caught: silent acceptance, or an error that does not name the argument
    with pytest.raises(InputError, match=match):
        bad()


def test_failed_solve_never_yields_a_number(monkeypatch):
    # wrong code caught: returning rho.value after a solver error or a non-optimal status
    import cvxpy as cp

    net = L.FeedForward.from_weights([np.ones((2, 2)), np.ones((1, 2))])

    def boom(self, *a, **k):
        raise cp.error.SolverError("simulated failure")

    monkeypatch.setattr(cp.Problem, "solve", boom)
    with pytest.raises(L.LipSDPError, match="failed"):
        L.lipsdp(net)

    def infeasible(self, *a, **k):
        self._status = "infeasible"
        return math.inf

    monkeypatch.setattr(cp.Problem, "solve", infeasible)
    monkeypatch.setattr(cp.Problem, "status", property(lambda self: "infeasible"))
    with pytest.raises(L.LipSDPError, match="infeasible"):
        L.lipsdp(net)


def test_torch_round_trip(tmp_path):
    # wrong code caught: transposed weights, a dropped layer, or the wrong activation read back
    rng = np.random.default_rng(1)
    ws = [rng.standard_normal((4, 3)), rng.standard_normal((5, 4)), rng.standard_normal((2, 5))]
    model = mlp_from_weights(ws, "tanh", biases=[np.zeros(4), np.zeros(5), np.zeros(2)])
    back, act, _ = weights_from_sequential(model)
    assert act == "tanh" and all(np.array_equal(a, b) for a, b in zip(ws, back))
    x = torch.randn(6, 3, dtype=torch.float64)
    f = feedforward_function(L.FeedForward.from_weights(ws, "tanh"))
    assert torch.allclose(model(x), f(x), atol=1e-12)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    got, act2, _ = load_torch_mlp(tmp_path / "m.pt", activation="tanh")
    assert act2 == "tanh" and all(np.array_equal(a, b) for a, b in zip(ws, got))
    torch.save(model, tmp_path / "full.pt")
    with pytest.raises(InputError, match="allow_pickle"):
        load_torch_mlp(tmp_path / "full.pt")
    assert load_torch_mlp(tmp_path / "full.pt", allow_pickle=True).activation == "tanh"


@pytest.mark.parametrize("padding", ["circular", "same", 1])
def test_unrolled_conv_matches_the_conv_net(padding):
    # 8x8 input, 4 channels. wrong code caught: a channel/pixel flattening mismatch or wrong padding side
    rng = np.random.default_rng(2)
    ks = [rng.standard_normal((4, 4, 3, 3)), rng.standard_normal((4, 4, 2, 2))]
    net = L.conv_feedforward(ks, 8, padding, "relu")
    x = torch.randn(5, 4, 8, 8, dtype=torch.float64)
    torch_out = conv_net(ks, 8, padding, "relu")(x).flatten(1)
    assert torch_out.shape[1] == net.weights[-1].shape[0]
    assert torch.allclose(torch_out, feedforward_function(net)(x.flatten(1)), rtol=0, atol=1e-12)
    for i, k in enumerate(ks[:1]):  # the first unrolled matrix equals the first conv layer itself
        lin = torch.as_tensor(net.weights[0]) @ x.flatten(1).T
        conv = torch.nn.functional.conv2d(torch.nn.functional.pad(x, (1, 1, 1, 1), mode="circular" if padding ==
                                                                   "circular" else "constant"), torch.as_tensor(k))
        assert torch.allclose(lin.T, conv.flatten(1), rtol=0, atol=1e-12)


def test_conv_net_and_residual_block_bounds():
    # conv -> relu -> conv and x + conv(relu(conv x)) on 4x4, 2 channels (LMI 64/64: fast); with biases
    # wrong code caught: the skip term missing from C (bound below 1 - ... the empirical constant)
    rng = np.random.default_rng(4)
    ks = [rng.standard_normal((2, 2, 3, 3)) / 3, rng.standard_normal((2, 2, 3, 3)) / 3]
    biases = [rng.standard_normal(2), rng.standard_normal(2)]
    for residual in (False, True):
        net = L.conv_feedforward(ks, 4, "circular", "relu", residual=residual)
        res = L.lipsdp(net)
        f = conv_net(ks, 4, "circular", "relu", residual=residual, biases=biases)
        lower = global_lipschitz_lower_bound(f, (2, 4, 4), 3.0, seed=0, restarts=4, steps=10).lower_bound
        assert lower <= res.certified <= res.naive_bound * (1 + 1e-5)


def test_variance_cap_lemma():
    # random distributions on the unit ball with an atom of mass q: variance <= phi(q)
    # wrong code caught: a cap that is too small (e.g. q(1-q) instead of 4q(1-q))
    rng = np.random.default_rng(0)
    for _ in range(3000):
        k = rng.integers(2, 6)
        pts = rng.standard_normal((k, 3))
        pts /= np.maximum(np.linalg.norm(pts, axis=1, keepdims=True), 1) if rng.random() < 0.5 else \
            np.linalg.norm(pts, axis=1, keepdims=True)
        p = rng.dirichlet(np.ones(k) * rng.choice([0.2, 1.0, 5.0]))
        var = float(p @ (pts**2).sum(1) - np.sum((p @ pts) ** 2))
        assert var <= max(variance_cap(q) for q in p) * (1 + 1e-12) + 1e-15
        assert var <= min(variance_cap(q) for q in p) + 1e-12


def test_psi_and_bilinear_pieces():
    # wrong code caught: psi_max below the true max, kappa below a sampled value or above the product bound
    q = np.linspace(0, 1, 200001)
    for rho in (0.0, 0.3, 2.0, 50.0):
        psi = q * (1 + rho * np.sqrt(np.where(q <= 0.5, 1.0, 4 * q * (1 - q)))) ** 2
        assert psi.max() <= psi_max(rho) <= psi.max() * (1 + 1e-3) + 1e-12
    rng = np.random.default_rng(5)
    m, a = rng.standard_normal((4, 3)), rng.standard_normal((4, 4))
    kappa, _ = bilinear_sup_bound(m, a)
    v = rng.standard_normal((20000, 4))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    sampled = np.max(np.linalg.norm(v @ m, axis=1) * np.linalg.norm(v @ a.T, axis=1))
    assert sampled <= kappa <= np.linalg.norm(m, 2) * np.linalg.norm(a, 2) * (1 + 1e-9)
    assert kappa <= sampled * 1.05  # exact for d >= 3 (Brickman + Sion): the sampled sup is close


def test_attention_sdp_vs_analytic_and_empirical():
    # wrong code caught: an SDP bound below the empirical constant, or above the analytic bound it refines
    rng = np.random.default_rng(1)
    w = AttentionWeights.from_arrays(rng.standard_normal((1, 3, 2)), rng.standard_normal((1, 3, 2)),
                                     rng.standard_normal((1, 3, 2)))
    res = attention_sdp_bound(AttentionLayer.create(w, 3, 1.0)).details
    lower = global_lipschitz_lower_bound(dot_product_attention(w), (3, 3), 1.0, seed=0, restarts=6,
                                         steps=15).lower_bound
    assert lower <= res.bound < res.analytic
    with pytest.raises(InputError, match="radius"):
        AttentionLayer.create(w, 3, -1.0)


def test_cli_mat_and_torch(tmp_path, capsys):
    # wrong code caught: the CLI printing the solver value as the bound, or not writing the metadata block
    out = tmp_path / "r.json"
    assert main(["lipsdp", str(DATA / "random_weights.mat"), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert {"created", "commit", "versions", "config", "seed"} <= set(doc)
    assert doc["config"]["path"]["sha256"].startswith("sha256:")
    rows = {r["name"]: r for r in doc["results"]}
    for form in ("layer", "neuron"):  # every SDP row is the certified value, never the solver's
        row = rows[f"sdp.lipsdp_{form}"]
        assert row["kind"] == "upper" and abs(row["value"] / PUBLISHED[form] - 1) < 1e-3
        assert row["value"] == row["details"]["certified"] >= row["details"]["solver_value"]
        # the default method resolves to chordal for these 4 weight matrices, with its own default solver
        assert doc["resolved"][f"sdp.lipsdp_{form}"]["method"] == "chordal"
        assert doc["resolved"][f"sdp.lipsdp_{form}"]["solver"] == row["details"]["solver"] == "STRUCTURED"
    assert doc["config"]["method"] == "auto" and doc["config"]["solver"] is None
    lower = [r for r in doc["results"] if r["kind"] == "lower"]
    assert lower and all(lo["value"] <= r["value"] * (1 + 1e-9) for lo in lower for r in doc["results"]
                         if r["kind"] == "upper")
    model = mlp_from_weights([np.eye(2) * 2, np.ones((1, 2))], "relu")
    torch.save(model.state_dict(), tmp_path / "m.pt")
    assert main(["lipsdp", str(tmp_path / "m.pt"), "--split-size", "2"]) == 0
    assert main(["lipsdp", str(tmp_path / "missing.mat")]) == 2
    assert main(["lipsdp", str(tmp_path / "m.pt"), "--activation", "softplus"]) == 2
    assert "activation" in capsys.readouterr().err


def test_lipsdp_is_scale_invariant_and_ordered_at_tiny_weights():
    # the issue-12 case: W0 = 1e-4 N(5x3), W1 = 1e-3 N(2x5). Unnormalised, Neuron (8.76e-5) came out above Layer
    # (7.93e-5), both ~200x above the exact 4.13e-7. Lip scales exactly with the weights, so the bound of the
    # tiny net must be 1e-7 times the bound of the same net scaled by (1e4, 1e3), and Neuron <= Layer <= product.
    rng = np.random.default_rng(5)
    w0, w1 = 1e-4 * rng.standard_normal((5, 3)), 1e-3 * rng.standard_normal((2, 5))
    tiny = L.FeedForward.from_weights([w0, w1])
    unit = L.FeedForward.from_weights([w0 * 1e4, w1 * 1e3])
    neuron, layer = L.lipsdp_neuron(tiny).value, L.lipsdp_layer(tiny).value
    assert neuron <= layer * (1 + 1e-6) <= L.spectral_product_bound(tiny).value * (1 + 2e-6)
    assert neuron == pytest.approx(L.lipsdp_neuron(unit).value * 1e-7, rel=1e-6)
    # the exact constant of a one-hidden-layer ReLU net is at most max over activation patterns of ||W1 D W0||
    patterns = max(np.linalg.norm(w1 @ np.diag(d) @ w0, 2) for d in np.ndindex(*(2,) * 5))
    assert patterns <= neuron <= patterns * 1.05


def _bn_model(position: str):
    torch.manual_seed(0)
    lin1, lin2 = torch.nn.Linear(3, 6), torch.nn.Linear(6, 2)
    bn = torch.nn.BatchNorm1d(6)
    layers = [lin1, bn, torch.nn.ReLU(), lin2] if position == "before" else [lin1, torch.nn.ReLU(), bn, lin2]
    model = torch.nn.Sequential(*layers).double()
    with torch.no_grad():
        bn.running_var.fill_(0.01)
        bn.running_mean.normal_()
        bn.weight.uniform_(0.5, 2.0)
    return model.eval()


def _max_jacobian(model, n=4000) -> float:
    xs = torch.randn(n, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 3
    best = 0.0
    for x in xs:
        best = max(best, float(torch.linalg.matrix_norm(torch.autograd.functional.jacobian(
            lambda z: model(z[None])[0], x), 2)))
    return best


@pytest.mark.parametrize("position", ["before", "after"])
def test_batchnorm_is_folded_exactly_not_dropped(tmp_path, position):
    # the issue-12 case: BatchNorm with running_var 0.01 scales the Jacobian by ~10; dropping it certified 0.44
    # for a model whose Jacobian norm reaches 3.5. Folded (before or after the activation) the bound holds.
    from boundlab.empirical.mlp import load_torch_mlp

    model = _bn_model(position)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    loaded = load_torch_mlp(tmp_path / "m.pt")
    assert len(loaded.weights) == 2 and loaded.folded and loaded.bn_eps == 1e-5
    certified = L.lipsdp_neuron(L.FeedForward.from_weights(loaded.weights)).value
    assert _max_jacobian(model) <= certified * (1 + 1e-9)
    torch.save(model, tmp_path / "full.pt")  # the pickled module: the same folding, with its own eps
    full = load_torch_mlp(tmp_path / "full.pt", allow_pickle=True)
    assert all(np.allclose(a, b) for a, b in zip(full.weights, loaded.weights))
    # the folded weights and biases (BatchNorm shift included) are the model's function, not only its Jacobian:
    # a dropped shift, the shift without the scale, or a bias paired with the wrong layer changes the outputs
    xs = torch.randn(64, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2)) * 3
    with torch.no_grad():
        ref = model(xs)
        for m in (loaded, full):
            assert torch.allclose(mlp_from_weights(m.weights, "relu", biases=m.biases)(xs), ref, rtol=0, atol=1e-10)


def test_region_bound_of_a_batchnorm_model(tmp_path):
    # --region on a model with BatchNorm (refused before issue 16's follow-up): the local bound is the one of the
    # folded network with its shifted biases, at least the Jacobian found inside the region
    from boundlab.theory import lipsdp_local as LL
    from boundlab.empirical.mlp import load_torch_mlp

    model = _bn_model("after")
    torch.save(model.state_dict(), tmp_path / "m.pt")
    loaded = load_torch_mlp(tmp_path / "m.pt")
    center = np.array([0.4, -1.0, 0.7])
    np.save(tmp_path / "c.npy", center)
    out = tmp_path / "r.json"
    assert main(["lipsdp", str(tmp_path / "m.pt"), "--region", "linf:0.2", "--center", str(tmp_path / "c.npy"),
                 "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    got = {r["name"]: r["value"] for r in doc["local"]["results"]}
    expect = LL.lipsdp_local(LL.LocalNetwork.create(L.FeedForward.from_weights(loaded.weights, "relu"),
                                                    LL.Region.create("linf", center, 0.2), loaded.biases)).value
    assert got["sdp.lipsdp_neuron_local"] == pytest.approx(expect, rel=1e-6)
    xs = torch.as_tensor(center) + 0.2 * (2 * torch.rand(300, 3, dtype=torch.float64,
                                                         generator=torch.Generator().manual_seed(3)) - 1)
    found = max(float(torch.linalg.matrix_norm(torch.autograd.functional.jacobian(
        lambda z: model(z[None])[0], x), 2)) for x in xs)
    assert found <= got["sdp.lipsdp_neuron_local"] * (1 + 1e-9)


def test_torch_files_with_unknown_tensors_are_refused(tmp_path):
    from boundlab.empirical.mlp import load_torch_mlp

    model = _bn_model("before")
    state = model.state_dict()
    torch.save({**state, "3.extra": torch.ones(2)}, tmp_path / "x.pt")
    with pytest.raises(InputError, match="neither a Linear"):
        load_torch_mlp(tmp_path / "x.pt")
    named = {"fc1.weight": state["0.weight"], "bn.running_var": state["1.running_var"],
             "bn.running_mean": state["1.running_mean"], "fc2.weight": state["3.weight"]}
    torch.save(named, tmp_path / "n.pt")
    with pytest.raises(InputError, match="does not say whether it acts before or after"):
        load_torch_mlp(tmp_path / "n.pt")
    conv = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Conv2d(2, 1, 3))
    torch.save(conv.state_dict(), tmp_path / "c.pt")
    with pytest.raises(InputError, match="only Linear"):
        load_torch_mlp(tmp_path / "c.pt")


def test_cli_method_solver_and_region(tmp_path, capsys):
    # wrong code caught: --solver passed to a method that cannot use it (the issue-16 None row), the method/solver
    # not recorded, a local row above the global one or below the Jacobian found inside the region, torch biases
    # dropped from the local bound, and options that are not validated before the work (errors must name the flag)
    from boundlab.theory import lipsdp_local as LL

    mat = str(DATA / "random_weights.mat")
    np.save(tmp_path / "c.npy", np.array([0.3, -0.2]))
    out = tmp_path / "r.json"
    assert main(["lipsdp", mat, "--method", "monolithic", "--solver", "cvxopt", "--region", "linf:0.1", "--center",
                 str(tmp_path / "c.npy"), "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    rows = {r["name"]: r for r in doc["results"]}
    for form in ("neuron", "layer"):
        assert abs(rows[f"sdp.lipsdp_{form}"]["value"] / PUBLISHED[form] - 1) < 1e-3
        assert doc["resolved"][f"sdp.lipsdp_{form}"] == {"method": "monolithic", "solver": "CVXOPT",
                                                         "pieces": [{"method": "monolithic", "solver": "CVXOPT"}]}
    assert doc["resolved"]["sdp.eclipse_fast"]["solver"] == "CLOSED-FORM"
    local = {r["name"]: r for r in doc["local"]["results"]}
    lower = doc["local"]["lower_bounds"]["l2"]["value"]
    assert doc["local"]["region"]["kind"] == "linf" and doc["config"]["region"]["radius"] == 0.1
    assert lower <= local["sdp.lipsdp_neuron_local"]["value"] * (1 + 1e-9)
    assert local["sdp.lipsdp_neuron_local"]["value"] < rows["sdp.lipsdp_neuron"]["value"]
    assert lower <= local["sdp.eclipse_fast_local"]["value"] * (1 + 1e-9)
    # a torch MLP with biases: the local bound must be the one of the biased network
    rng = np.random.default_rng(0)
    ws, bs = [rng.standard_normal((6, 2)), rng.standard_normal((4, 6)), rng.standard_normal((1, 4))], \
        [rng.standard_normal(6), rng.standard_normal(4), rng.standard_normal(1)]
    torch.save(mlp_from_weights(ws, "relu", biases=bs).state_dict(), tmp_path / "m.pt")
    assert main(["lipsdp", str(tmp_path / "m.pt"), "--region", "l2:0.5", "--center", str(tmp_path / "c.npy"),
                 "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    expect = LL.lipsdp_local(LL.LocalNetwork.create(L.FeedForward.from_weights(ws, "relu"),
                                                    LL.Region.create("l2", np.array([0.3, -0.2]), 0.5), bs)).value
    got = {r["name"]: r["value"] for r in doc["local"]["results"]}["sdp.lipsdp_neuron_local"]
    assert got == pytest.approx(expect, rel=1e-6)
    capsys.readouterr()
    for argv, flag in ((["--solver", "CLOSED-FORM"], "--solver"), (["--method", "eclipse", "--solver", "CVXOPT"],
                                                                   "--solver"),
                       (["--region", "linf:0.1"], "--center"), (["--center", str(tmp_path / "c.npy")], "--center"),
                       (["--region", "l2:1", "--center", str(tmp_path / "r.json")], "--center")):
        assert main(["lipsdp", mat, *argv]) == 2, argv
        assert flag in capsys.readouterr().err, argv
    np.save(tmp_path / "c3.npy", np.zeros(3))
    assert main(["lipsdp", mat, "--region", "linf:1", "--center", str(tmp_path / "c3.npy")]) == 2
    assert "expected 2 coordinates" in capsys.readouterr().err
    for bad in ("box:1", "linf:-1", "linf"):
        with pytest.raises(SystemExit):
            main(["lipsdp", mat, "--region", bad])
        assert "--region" in capsys.readouterr().err
