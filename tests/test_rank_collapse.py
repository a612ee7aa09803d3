"""Rank collapse: closed forms (computed by hand), the composite-norm traps, path counts, models, bad input."""

import math

import numpy as np
import pytest
import torch

from boundlab.empirical import rank_collapse as ER
from boundlab.empirical.attention import dot_product_attention
from boundlab.empirical.certified import enclose
from boundlab.theory import InputError
from boundlab.theory import rank_collapse as R
from boundlab.theory.attention import AttentionWeights


def one_layer(q=1.0, k=1.0, v=2.0, o=1.0, heads=1):
    w = AttentionWeights.from_arrays(*(np.full((heads, 1, 1), s) for s in (q, k, v, o)))
    return [w]


# ---------------------------------------------------------------- composite norm
def test_composite_norm_has_the_square_root():
    a = np.array([[1.0, 1.0], [0.0, 0.0]])  # ||A||_1 = 1 (column sums), ||A||_inf = 2 (row sums)
    assert R.one_norm(a) == 1.0
    assert R.composite_norm(a) == pytest.approx(math.sqrt(2.0), rel=1e-15)
    # the authors' helper (functions.py::composite_norm) returns ||A||_1 ||A||_inf = 2: not what the paper uses
    assert R.composite_norm(a) != R.one_norm(a) * float(np.abs(a).sum(1).max())


def test_composite_norm_fails_the_triangle_inequality():
    a = np.array([[1.0, 1.0], [0.0, 0.0]])
    b = np.array([[1.0, 0.0], [1.0, 0.0]])
    assert R.composite_norm(a + b) == pytest.approx(3.0, rel=1e-15)  # A + B = [[2, 1], [1, 0]]
    assert R.composite_norm(a) + R.composite_norm(b) == pytest.approx(2 * math.sqrt(2), rel=1e-15)
    assert R.composite_norm(a + b) > R.composite_norm(a) + R.composite_norm(b)


def test_composite_is_submultiplicative_on_random_pairs():
    rng = np.random.default_rng(0)
    for _ in range(200):
        a, b = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
        assert R.composite_norm(a @ b) <= R.composite_product_bound(a, b).value


# ---------------------------------------------------------------- residuals
def test_two_token_residuals_in_closed_form():
    x = np.array([[0.0, 1.0, -2.0], [3.0, 1.0, 2.0]])
    b = R.optimal_residual_bounds(x).details
    # 1-norm: per column |a_j - b_j| (any x_j between them), max over columns = 4
    assert b.one_lower == pytest.approx(4.0, rel=1e-9) and b.one_upper == pytest.approx(4.0, rel=1e-9)
    # inf-norm: min_x max(||a - x||_1, ||b - x||_1) = ||a - b||_1 / 2 = 3.5 (at the midpoint)
    assert b.inf_lower == pytest.approx(3.5, rel=1e-9) and b.inf_upper == pytest.approx(3.5, rel=1e-9)
    assert b.inf_lower <= 3.5 <= b.inf_upper
    assert b.composite_lower <= math.sqrt(4.0 * 3.5) * (1 + 1e-9)


def test_residual_shifts_and_ratio():
    x = np.array([[0.0], [1.0], [5.0]])
    assert R.residual(x, "mean").ravel().tolist() == [-2.0, -1.0, 3.0]
    assert R.residual(x, "median").ravel().tolist() == [-1.0, 0.0, 4.0]
    assert R.residual(x, "midrange").ravel().tolist() == [-2.5, -1.5, 2.5]
    assert R.residual_ratio(np.ones((4, 3))) == 0.0
    assert R.residual_ratio(np.zeros((4, 3))) == 0.0


def test_box_residual_bounds_cover_every_member():
    rng = np.random.default_rng(1)
    lo = rng.standard_normal((4, 3))
    hi = lo + 0.01
    b = R.optimal_residual_bounds(lo, hi).details
    for _ in range(20):
        y = lo + rng.random(lo.shape) * 0.01
        p = R.optimal_residual_bounds(y).details
        assert b.composite_lower <= p.composite_upper and p.composite_lower <= b.composite_upper


# ---------------------------------------------------------------- paths
def test_path_counts_follow_the_binomial_law():
    assert R.path_counts(3, 2).details.tolist() == [1, 6, 12, 8]  # C(3,l) 2^l, total 27 = 3^3
    assert R.path_counts(3, 2, skip=False).details.tolist() == [0, 0, 0, 8]
    assert R.path_counts(12, 12).details.sum() == 13**12
    assert R.path_length_pmf(2, 1).tolist() == [0.25, 0.5, 0.25]


def test_path_decomposition_with_uniform_attention():
    x = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 1.0]])
    p = np.full((1, 3, 3), 1 / 3)
    w = np.array([[[2.0, 0.0], [0.0, 1.0]]])
    total, paths = R.path_decomposition(x, [p], [w]).details
    assert np.allclose(total, np.full((3, 1), 1.0) @ (x.mean(0, keepdims=True) @ w[0]), rtol=1e-15)
    assert len(paths) == 1 and paths[0].length == 1
    total_skip, paths_skip = R.path_decomposition(x, [p], [w], skip=True).details
    assert np.allclose(total_skip, x + total)
    assert sorted(q.length for q in paths_skip) == [0, 1]


# ---------------------------------------------------------------- collapse bounds in closed form
def test_thm22_closed_form():
    # beta = ||QK^T||_1 ||VO||_{1,inf} = 1 * 2; c = 4 beta / sqrt(1) = 8; X = [0; 1]: optimal composite
    # residual sqrt((|x| + |1 - x|) max(|x|, |1 - x|)) is minimal at x = 1/2: sqrt(1/2)
    layers = one_layer()
    x = np.array([[0.0], [1.0]])
    rho = math.sqrt(0.5)
    assert R.collapse_beta(layers) == pytest.approx(2.0, rel=1e-9)
    assert R.single_head_collapse_bound(layers, x).value == pytest.approx(8 * rho**3, rel=1e-9)
    # depth 2: the 1e-10 outward margins of c and rho are raised to the powers 4 and 9
    assert R.single_head_collapse_bound(layers * 2, x).value == pytest.approx(8**4 * rho**9, rel=1e-8)
    assert R.single_head_collapse_bound(layers, x, gamma=0.5).value == pytest.approx(4 * rho**3, rel=1e-9)
    assert R.single_head_collapse_bound(layers, x, shift="mean").value == pytest.approx(8 * rho**3, rel=1e-9)
    assert R.single_head_collapse_bound(layers, np.ones((3, 1))).value <= 1e-299  # rank-one input: (rounded) zero


def test_beta_value_matrix_forms():
    """W_V W_O = 0 while W_V, W_O != 0: the effective form gives beta = 0, the factored form
    sqrt(||V||_1 ||O||_1 ||V||_inf ||O||_inf) = sqrt(1 * 2 * 2 * 1) = 2 (a swapped or ignored ``value`` breaks it)."""
    w = [AttentionWeights.from_arrays(np.array([[[1.0, 0.0]]]), np.array([[[1.0, 0.0]]]), np.array([[[1.0, 1.0]]]),
                                      np.array([[[1.0], [-1.0]]]))]
    assert R.collapse_beta(w) < 1e-14  # 0 plus the certified float-product error term
    assert R.collapse_beta(w, "factored") == pytest.approx(2.0, rel=1e-9)
    x = np.array([[0.0], [1.0]])
    assert R.multi_head_collapse_bound(w, x).value < 1e-13
    # c = 4 beta H / sqrt(d_qk) = 8 / sqrt(2), rho = sqrt(1/2) (see test_thm22_closed_form): c rho^3 = 2
    assert R.multi_head_collapse_bound(w, x, value="factored").value == pytest.approx(2.0, rel=1e-9)


def test_cor32_lambda_and_spread():
    assert R.mlp_lipschitz(np.eye(2), np.eye(2)).value == pytest.approx(1.0, rel=1e-9)
    assert R.mlp_lipschitz(np.array([[1.0, 1.0]]), np.array([[1.0], [1.0]])).value == pytest.approx(2.0, rel=1e-9)
    layers = one_layer()
    x = np.array([[0.0], [1.0]])
    mlp = [(np.full((1, 1), 3.0), np.zeros(1), np.full((1, 1), 1.0), np.zeros(1))]
    assert R.mlp_collapse_bound(layers, mlp, x).value == pytest.approx(24 * math.sqrt(0.5) ** 3, rel=1e-9)
    # E_ij - E_ij' = (x_i - s)(x_j - x_j') with s in [0, 1]: at most 1 (for d = 1, A = 1)
    assert R.logit_spread(layers, [x]) == pytest.approx(1.0, rel=1e-8)
    assert R.spread_limited_collapse_bound(layers, x, [x]).value == R.multi_head_collapse_bound(layers, x).value
    with pytest.raises(InputError, match="logit spread"):
        R.spread_limited_collapse_bound(layers, 2 * x, [2 * x]).value


def test_local_exponent_and_slope():
    assert R.local_collapse_exponent(1).value == 3 and R.local_collapse_exponent(2).value == 9
    eps = np.array([1e-2, 1e-3, 1e-4])
    assert R.log_log_slope(eps, 5 * eps**3) == pytest.approx(3.0, rel=1e-12)


def test_layernorm_rewrite_exact_only_for_equal_stds():
    z = np.array([[1.0, -1.0, 0.0], [3.0, 1.0, 2.0], [0.0, 2.0, 1.0], [-1.0, 1.0, 0.0], [5.0, 3.0, 4.0]])
    g, b = np.array([1.0, 2.0, 0.5]), np.array([0.0, 1.0, -1.0])
    assert np.allclose(R.layernorm_equal_std_rewrite(z, g, b, 1e-5).details, R.layernorm_rows(z, g, b, 1e-5), rtol=1e-12)
    assert R.right_multiplication_misfit(z, R.layernorm_rows(z, g, b, 1e-5)).value < 1e-12
    z2 = z.copy()
    z2[0] *= 3.0  # row 0 now has three times the std of the others
    assert R.right_multiplication_misfit(z2, R.layernorm_rows(z2, g, b, 1e-5)).value > 1e-2
    assert R.skip_zero_value_identity(z).details.tolist() == z.tolist()


def test_empirical_claim_sides():
    assert R.collapse_order([1.0, 0.1], [1.0, 0.5]).details == (0.1, 0.5)
    lower, upper, layer = R.mlp_slowing(np.array([1.0, 0.5, 1e-12]), np.array([1.0, 0.01, 1.0])).details
    assert (lower, upper, layer) == (0.25, 0.01, 1)


# ---------------------------------------------------------------- models
def test_attention_matches_the_foundation_layer():
    net = ER.random_network("san", 1, 4, heads=2, head_dim=3, seed=3, qk_scale=2.0)
    x = np.random.default_rng(0).standard_normal((2, 5, 4))
    ours = ER.forward(net, x).outputs[-1]
    ref = dot_product_attention(net.layers[0])(torch.as_tensor(x))
    assert torch.allclose(ours, ref, rtol=1e-13, atol=1e-14)


def test_enclosure_contains_the_forward_pass():
    for variant in ("san", "san_skip", "san_mlp"):
        net = ER.random_network(variant, 3, 3, heads=2, head_dim=2, seed=4, qk_scale=2.0)
        x = np.random.default_rng(5).standard_normal((4, 3))
        for box, out in zip(enclose(net, x), ER.forward(net, x).outputs):
            o = out[0].numpy()
            assert np.all(box.lower <= o) and np.all(o <= box.upper)
            assert box.rad.max() < 1e-10


def test_variants_share_attention_weights_and_collapse_differently():
    a = ER.random_network("san", 4, 6, heads=2, seed=7)
    b = ER.random_network("san_skip", 4, 6, heads=2, seed=7)
    assert all(np.array_equal(u.query, v.query) for u, v in zip(a.layers, b.layers))
    x = np.random.default_rng(0).standard_normal((8, 6))
    assert ER.residual_ratios(a, x)[0, -1] < 1e-3 < ER.residual_ratios(b, x)[0, -1]


def test_patch_tokens():
    img = np.arange(16.0).reshape(1, 4, 4)
    t = ER.image_patch_tokens(img, 2)
    assert t.shape == (1, 4, 4) and t[0, 0].tolist() == [0.0, 1.0, 4.0, 5.0]
    d = ER.digits_patch_tokens([0, 5], patch=2)
    assert d.shape == (2, 16, 4) and 0.0 <= d.min() and d.max() <= 1.0


# ---------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: R.optimal_residual_bounds(np.ones((1, 3))).details, r"lower: expected at least 2 tokens"),
        (lambda: R.optimal_residual_bounds(np.array([[np.nan, 1.0], [0.0, 1.0]])).details, r"lower: expected finite"),
        (lambda: R.optimal_residual_bounds(np.ones((2, 2)), np.zeros((2, 2))).details, r"upper: expected upper >= lower"),
        (lambda: R.single_head_collapse_bound([], np.ones((2, 1))).value, r"layers: expected a non-empty list.*depth"),
        (lambda: R.single_head_collapse_bound(one_layer(), np.ones((1, 1))).value, r"x: expected at least 2 tokens"),
        (lambda: R.single_head_collapse_bound(one_layer(heads=2), np.ones((2, 1))).value, r"layers: Thm 2.2 is for a single"),
        (lambda: R.multi_head_collapse_bound(one_layer(), np.ones((2, 3))).value, r"x: expected 1 columns"),
        (lambda: R.multi_head_collapse_bound(one_layer(), np.ones((2, 1)), gamma=-1.0).value, r"gamma: expected a number > 0"),
        (lambda: R.multi_head_collapse_bound(one_layer(), np.ones((2, 1)), shift="max").value, r"shift: expected one of"),
        (lambda: R.multi_head_collapse_bound(one_layer(), np.ones((2, 1)), value="v").value, r"value: expected one of"),
        (lambda: R.multi_head_collapse_bound(["w"], np.ones((2, 1))).value, r"layers\[0\]: expected AttentionWeights"),
        (lambda: R.multi_head_collapse_bound([AttentionWeights.from_arrays(np.ones((2, 1)), np.ones((2, 1)),
                                                                           np.ones((2, 1)))], np.ones((2, 2))).value,
         r"layers\[0\]: output width 1 != token width 2"),
        (lambda: R.mlp_collapse_bound(one_layer(), [], np.ones((2, 1))).value, r"mlps: expected a list of 1"),
        (lambda: R.path_counts(0, 2).details, r"depth: expected an integer >= 1"),
        (lambda: R.path_decomposition(np.ones((2, 1)), [], []).details, r"attention: expected a non-empty list"),
        (lambda: R.path_decomposition(np.ones((2, 1)), [np.ones((1, 2, 3))], [np.ones((1, 1, 1))]).details,
         r"attention\[0\]: expected shape"),
        (lambda: R.path_decomposition(np.ones((2, 1)), [np.ones((1, 2, 2))], [np.ones((1, 2, 2))]).details,
         r"values\[0\]: expected shape"),
        (lambda: R.composite_product_bound(np.ones((2, 3)), np.ones((2, 3))).value, r"b: expected 3 rows"),
        (lambda: R.log_log_slope([1.0, 0.1], [1.0, 0.0]), r"values: expected positive"),
        (lambda: R.layernorm_rows(np.ones((2, 3)), np.ones(2), np.ones(2), 1e-5), r"gamma: expected shape"),
        (lambda: R.right_multiplication_misfit(np.ones((3, 2)), np.ones((2, 2))).value, r"ln_out: expected the shape"),
        (lambda: R.mlp_slowing([1e-12, 1e-13], [1.0, 1.0]).details, r"san: every ratio is below the float floor"),
        (lambda: ER.random_network("resnet", 2, 3), r"variant: expected one of"),
        (lambda: ER.random_network("san", 0, 3), r"depth: expected an integer >= 1"),
        (lambda: ER.forward(ER.random_network("san", 1, 3), np.ones((2, 4))), r"x: expected shape"),
        (lambda: ER.image_patch_tokens(np.ones((1, 5, 4)), 2), r"patch: 2 does not divide"),
        (lambda: ER.digits_patch_tokens([5000]), r"indices: expected indices in"),
        (lambda: enclose(ER.random_network("transformer", 1, 3), np.ones((2, 3))), r"net: enclosures cover"),
        (lambda: ER.collapse_inputs("text", 2), r"kind: expected one of"),
        (lambda: ER.collapse_inputs("digits", 2000), r"samples: the digits data set has 1797"),
        (lambda: ER.collapse_curves(np.ones((2, 3)), 2), r"x: expected an array with ndim"),
        (lambda: ER.collapse_curves(np.ones((1, 2, 3)), 0), r"depth: expected an integer >= 1"),
        (lambda: ER.collapse_curves(np.ones((1, 2, 3)), 1, variants=("cnn",)), r"variants: expected one of"),
    ],
)
def test_bad_input_names_argument(call, match):
    with pytest.raises(InputError, match=match):
        call()


# ---------------------------------------------------------------- enclosure soundness against exact arithmetic
def _mp_forward(net, x, dps: int = 60):
    """The network in 60-digit arithmetic (mpmath), weights and input read as exact reals: the number that
    :func:`empirical.certified.enclose` must contain."""
    import mpmath

    mp = mpmath.mp.clone()
    mp.dps = dps

    def mat(a):
        return mp.matrix([[mp.mpf(float(v)) for v in row] for row in np.atleast_2d(np.asarray(a, dtype=np.float64))])

    h = mat(x)
    outs = [h]
    for b in net.blocks:
        w = b.attention
        z = mp.zeros(h.rows, h.cols)
        for q, k, v, o in zip(w.query, w.key, w.value, w.output):
            logits = h * mat(q) * mat(k).T * h.T / mp.sqrt(w.head_dim)
            p = mp.zeros(h.rows, h.rows)
            for i in range(h.rows):
                e = [mp.exp(logits[i, j]) for j in range(h.rows)]
                s = mp.fsum(e)
                for j in range(h.rows):
                    p[i, j] = e[j] / s
            z += p * h * mat(v) * mat(o)
        if net.variant == "san":
            h = z
        elif net.variant == "san_skip":
            h = h + z
        else:
            a_mat, a0, b_mat, b0 = b.mlp
            u = z * mat(a_mat) + mp.ones(h.rows, 1) * mat(a0)
            u = mp.matrix([[max(u[i, j], mp.mpf(0)) for j in range(u.cols)] for i in range(u.rows)])
            h = u * mat(b_mat) + mp.ones(h.rows, 1) * mat(b0)
        outs.append(h)
    return outs


@pytest.mark.parametrize("variant, qk_scale, seed", [("san", 1.0, 0), ("san", 6.0, 1), ("san_skip", 3.0, 2),
                                                     ("san_mlp", 2.0, 3)])
def test_enclosure_contains_the_exact_real_value(variant, qk_scale, seed):
    """The enclosure must contain the network's value in exact arithmetic (60-digit mpmath), not merely the float
    forward pass: the certified left sides of the collapse properties rest on it. Near-rank-one inputs make the
    residual as small as the rounding errors. Wrong code caught: a dropped Higham term in Box.__matmul__, a
    softmax enclosure without the exp error, a radius not inflated for its own rounding."""
    net = ER.random_network(variant, 2, 3, heads=2, head_dim=2, seed=seed, qk_scale=qk_scale)
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, 3)) * 3 + 1e-6 * rng.standard_normal((4, 3))
    for box, exact in zip(enclose(net, x), _mp_forward(net, x)):
        for i in range(exact.rows):
            for j in range(exact.cols):
                lo, hi = (exact.ctx.mpf(float(v[i, j])) for v in (box.lower, box.upper))  # exact conversions
                assert lo <= exact[i, j] <= hi, (variant, i, j)


def _exact_matmul(a, b):
    from fractions import Fraction

    return [[sum((Fraction(float(a[i, k])) * Fraction(float(b[k, j])) for k in range(a.shape[1])), Fraction(0))
             for j in range(b.shape[1])] for i in range(a.shape[0])]


def _inside(box, exact):
    from fractions import Fraction

    return all(Fraction(float(box.lower[i, j])) <= exact[i][j] <= Fraction(float(box.upper[i, j]))
               for i in range(len(exact)) for j in range(len(exact[0])))


def test_box_arithmetic_survives_cancellation():
    """Products whose float value loses everything to cancellation (1 + 1e-17 - 1 = 0 in float64): the enclosure
    must still contain the exact rational value. Wrong code caught: dropping Higham's gamma_k |A||B| term (the
    box would collapse to [0, 1e-300] around a true 1e-17), or dropping the propagated radii."""
    from boundlab.empirical.certified import Box

    a = np.array([[1.0, 1e-17, -1.0], [3.0, -3.0, 2.0**-60]])
    b = np.ones((3, 2))
    prod = Box.point(a) @ Box.point(b)
    assert prod.mid[0, 0] == 0.0  # the float product lost the 1e-17
    assert _inside(prod, _exact_matmul(a, b))
    rng = np.random.default_rng(0)
    for _ in range(50):  # interval operands on either side: every member's product lies in the product box
        m, r = rng.standard_normal((3, 4)), rng.random((3, 4)) * 1e-3
        c = rng.standard_normal((4, 2))
        member = m + r * rng.choice([-1.0, 1.0], size=m.shape)
        assert _inside(Box(m, r) @ Box.point(c), _exact_matmul(member, c))
        assert _inside(Box.point(c.T) @ Box(m.T, r.T), _exact_matmul(c.T, member.T))


# ---------------------------------------------------------------- empirical curves (Sec. 5.1 / Fig. 2) and the CLI
def test_collapse_curves_share_the_input_and_order_the_variants():
    """Column 0 is the input's ratio, identical for every variant (same inputs); over 2 networks x 6 digit inputs
    pure attention ends far more collapsed than SAN+skip (the paper's headline; wrong wiring, e.g. a skip that
    is not added or variants that do not share attention weights, breaks the ordering or the shared column)."""
    x = ER.collapse_inputs("digits", 6, seed=1)
    curves = ER.collapse_curves(x, 4, heads=2, networks=2)
    assert set(curves) == set(ER.VARIANTS)
    first = curves["san"].ratios[:, 0]
    for c in curves.values():
        assert c.ratios.shape == (12, 5) and np.array_equal(c.ratios[:, 0], first)
        assert np.all(c.std >= 0) and np.all((c.ratios >= 0) & (c.ratios <= 2))
    assert curves["san"].mean[-1] < 1e-3 < curves["san_skip"].mean[-1]
    g = ER.collapse_inputs("gaussian", 5, patch=4, seed=0)
    assert g.shape == (5, 4, 16) and np.array_equal(g, ER.collapse_inputs("gaussian", 5, patch=4, seed=0))


def test_cli_rank_collapse_writes_curves(tmp_path, capsys):
    import json

    from boundlab.cli import main

    out = tmp_path / "rc.json"
    assert main(["rank-collapse", "--samples", "3", "--depth", "2", "--networks", "1", "--heads", "1",
                 "--json", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert {"created", "commit", "versions", "config", "seed"} <= set(doc) and doc["config"]["depth"] == 2
    for kind in ("gaussian", "digits"):
        curves = doc["results"][kind]["curves"]
        assert set(curves) == set(ER.VARIANTS) and all(len(c["mean"]) == 3 for c in curves.values())
    assert main(["rank-collapse", "--patch", "3", "--json", str(out)]) == 2  # bad input: one line, exit 2
    captured = capsys.readouterr()
    assert "patch: expected a divisor" in captured.err
