"""Closed-form checks of the theory functions (values computed by hand, not by the code under test)."""

import math

import numpy as np
import pytest

from boundlab.theory import attention as A
from boundlab.theory import composition as CP
from boundlab.theory import convolution as C
from boundlab.theory.validate import InputError
from boundlab.theory.numerics import RELATIVE_MARGIN, lambert_w0, round_down, round_up


def test_rounding_is_outward():
    for v in (0.0, 1e-300, 1.0, 3.7e12):
        assert round_up(v) >= v * (1 + RELATIVE_MARGIN)
        assert round_down(v) <= v
    assert round_up(math.inf) == math.inf


def test_one_by_one_kernel_is_its_matrix():
    m = np.array([[3.0, 0.0], [4.0, 0.0]])  # norm 5
    k = m[:, :, None, None]
    assert C.circular_spectral_norm(k, 4) == pytest.approx(5.0, rel=1e-14)
    layer = C.ConvLayer.create(k, 4)
    assert C.kernel_matrix_bound(layer).value == pytest.approx(5.0, rel=1e-9)
    assert C.four_reshape_bound(layer).value == pytest.approx(5.0, rel=1e-9)


def test_all_ones_kernel_peaks_at_dc():
    # single channel all-ones 3x3: the DC frequency gives 9; W_mat = ones(1, 9) has norm 3, so k*3 = 9 as well
    k = np.ones((1, 1, 3, 3))
    assert C.circular_spectral_norm(k, 5) == pytest.approx(9.0, rel=1e-14)
    layer = C.ConvLayer.create(k, 5)
    assert C.kernel_matrix_bound(layer).value == pytest.approx(9.0, rel=1e-9)
    assert C.gram_iteration_bound(layer).value == pytest.approx(9.0, rel=1e-6)


def test_singular_values_count_and_parseval():
    rng = np.random.default_rng(3)
    k = rng.standard_normal((3, 2, 2, 3))
    sv = C.circular_singular_values(k, (4, 5))
    assert sv.size == 4 * 5 * 2
    # sum of squared singular values = ||T||_F^2 = (grid size) * ||W||_F^2
    assert np.sum(sv**2) == pytest.approx(20 * np.sum(k**2), rel=1e-12)


def test_gram_iteration_decreases_to_exact():
    rng = np.random.default_rng(4)
    k = rng.standard_normal((4, 4, 3, 3))
    exact = C.circular_spectral_norm(k, 6)
    vals = [C.gram_iteration_bound(C.ConvLayer.create(k, 6), n_iter=t).value for t in range(0, 8)]
    assert all(v >= exact for v in vals)
    assert all(a >= b * (1 - 1e-12) for a, b in zip(vals, vals[1:]))
    assert vals[-1] == pytest.approx(exact, rel=1e-6)


def test_four_reshape_never_worse_than_kernel_matrix():
    rng = np.random.default_rng(5)
    for _ in range(10):
        k = rng.standard_normal((3, 2, 3, 2))
        layer = C.ConvLayer.create(k, 4, "same")
        assert C.four_reshape_bound(layer).value <= C.kernel_matrix_bound(layer).value * (1 + 1e-12)


def test_zero_padded_bound_uses_larger_grid():
    # the crop grid is n + max(p_before, p_after) per axis: 5 + 1 for padding 1, 5 + 2 for padding 2 or (0, 2)
    k = np.random.default_rng(6).standard_normal((2, 2, 3, 3))
    for padding, grid in ((1, 6), (2, 7), ((0, 2, 0, 2), 7), ((2, 0, 1, 1), (7, 6))):
        layer = C.ConvLayer.create(k, 5, padding)
        assert C.zero_padded_upper(layer).value == pytest.approx(round_up(C.circular_spectral_norm(k, grid)))


def test_zero_padded_bound_is_sound_for_every_padding_amount():
    # the issue-12 case: K = [1,-1,1]^T [1,-1,1] on 2x2 with torch padding=2 has exact norm 5 (> 4, the value for
    # padding 1); every amount must get a bound above its own exact norm
    k = np.outer([1.0, -1.0, 1.0], [1.0, -1.0, 1.0])[None, None]
    for p in (1, 2, (2, 1, 0, 2), (0, 2, 1, 1)):  # (padding 0 leaves no output on a 2x2 input)
        layer = C.ConvLayer.create(k, 2, p)
        exact = float(np.linalg.svd(C.conv_matrix(layer), compute_uv=False)[0])
        assert exact <= C.zero_padded_upper(layer).value * (1 + 1e-12)
    layer2 = C.ConvLayer.create(k, 2, 2)
    assert float(np.linalg.svd(C.conv_matrix(layer2), compute_uv=False)[0]) == pytest.approx(5.0, rel=1e-12)


def test_lambert_inverse_of_kim_phi():
    for n in (2, 10, 1000):
        x = lambert_w0((n - 1) / math.e)
        assert x * math.exp(x + 1) == pytest.approx(n - 1, rel=1e-12)


def test_castin_form_dominates_derived_bound():
    rng = np.random.default_rng(7)
    for _ in range(20):
        w = A.AttentionWeights.from_arrays(*(rng.standard_normal((2, 3, 2)) for _ in range(3)))
        n, r = int(rng.integers(1, 50)), float(rng.uniform(0.01, 5))
        layer = A.AttentionLayer.create(w, n, r)
        assert A.bounded_dot_product_bound(layer).value <= A.castin_bounded_dot_product_bound(layer).value


def test_single_token_attention_bound_reduces_to_value_norm():
    # n = 1: SA(x) = x V O exactly, and the bound at R -> 0 tends to ||V O||
    rng = np.random.default_rng(8)
    q, k, v, o = (rng.standard_normal(s) for s in ((1, 3, 2), (1, 3, 2), (1, 3, 2), (1, 2, 3)))
    w = A.AttentionWeights.from_arrays(q, k, v, o)
    layer = A.AttentionLayer.create(w, 1, 1e-8)
    assert A.bounded_dot_product_bound(layer).value == pytest.approx(np.linalg.norm(v[0] @ o[0], 2), rel=1e-6)


def test_meanfield_overflow_is_infinite():
    w = A.AttentionWeights.from_arrays(np.ones((1, 2, 2)) * 10, np.ones((1, 2, 2)) * 10, np.ones((1, 2, 2)))
    assert A.meanfield_w2_bound(A.AttentionLayer.create(w, 2, 100.0)).value == math.inf


def test_layernorm_and_batchnorm_values():
    assert CP.layernorm_lipschitz(np.array([1.0, -3.0]), 1e-4).value == pytest.approx(300.0, rel=1e-9)
    assert CP.batchnorm_eval_lipschitz(np.array([2.0, 1.0]), np.array([3.0, 0.0]), 1.0).value == pytest.approx(
        1.0, rel=1e-9)


def test_network_bound_propagates_radius():
    layers = [CP.linear(np.eye(2) * 2), CP.relu(), CP.linear(np.eye(2) * 3, np.array([4.0, 0.0]))]
    bound, table = CP.network_bound(layers, input_radius=1.0).details
    assert bound == pytest.approx(6.0, rel=1e-9)
    assert table[-1]["radius_out"] == pytest.approx(3 * 2 * 1 + 4, rel=1e-9)
    res = CP.residual(CP.linear(np.eye(2) * 0.5))
    assert res.lipschitz(1.0) == pytest.approx(1.5, rel=1e-9)


# --------------------------------------------------------------------------- exact conv norm: certified pruning
def _dense_circular_norm(k, n):
    return float(np.linalg.svd(C.conv_matrix(k, n, "circular"), compute_uv=False)[0])


def _two_frequency_kernel(c, n, f_small_trace_big_norm, f_big_trace_small_norm, noise=0.0, seed=0):
    """A full-grid (k = n) kernel whose frequency blocks are (n^2/2) * 3 e1 e1^T at +-f1 and (n^2/2) * I at
    +-f2 (0 elsewhere, plus noise): f2 has the larger trace (c > 9) but f1 the larger norm."""
    a, b = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    def wave(f):
        return np.cos(2 * np.pi * (f[0] * a + f[1] * b) / n)
    e1 = np.zeros((c, c))
    e1[0, 0] = 3.0
    k = e1[:, :, None, None] * wave(f_small_trace_big_norm) + np.eye(c)[:, :, None, None] * wave(f_big_trace_small_norm)
    return k + noise * np.random.default_rng(seed).standard_normal(k.shape)


def test_pruned_norm_matches_dense_conv_matrix():
    # wrong code caught: a phase-sign or index mix-up between the Gram blocks and the exact blocks, a wrong
    # autocorrelation offset, or a certificate that skips the maximal block (all give a smaller maximum)
    rng = np.random.default_rng(11)
    for _ in range(25):
        co, ci, kh, kw = (int(x) for x in rng.integers(1, 5, size=4))
        h, w = int(rng.integers(kh, 7)), int(rng.integers(kw, 7))
        k = rng.standard_normal((co, ci, kh, kw)) * (rng.random((co, ci, kh, kw)) < 0.7)
        dense = float(np.linalg.svd(C.conv_matrix(k, (h, w), "circular"), compute_uv=False)[0])
        assert C.circular_spectral_norm(k, (h, w), method="pruned") == pytest.approx(dense, rel=1e-12, abs=1e-300)


def test_pruned_norm_equals_unpruned_on_random_larger_kernels():
    # wrong code caught: any pruning bug that drops the maximal frequency (the unpruned SVD sees every block);
    # both channel orders exercise the transpose to the smaller Gram side
    rng = np.random.default_rng(12)
    shapes = [(24, 16, 3, 3, 12, 10), (16, 24, 3, 2, 9, 16), (20, 20, 5, 5, 8, 8), (17, 32, 1, 3, 6, 7)]
    for co, ci, kh, kw, h, w in shapes:
        k = rng.standard_normal((co, ci, kh, kw)) * rng.uniform(0.01, 100)
        pruned, stats = C._circular_norm_pruned(k, h, w)
        assert pruned == pytest.approx(C.circular_spectral_norm(k, (h, w), method="svd"), rel=1e-13)
        assert stats["exact"] + stats["certified_by_cholesky"] + stats["pruned_by_trace"] == stats["blocks"]


def test_pruned_norm_isolated_frequency_and_misleading_trace_order():
    # blocks are visited by decreasing trace; here the largest-trace block (identity) is NOT the largest-norm one
    # (3 e1 e1^T), so the maximum is only found if the Cholesky certificate correctly refuses to skip it.
    # wrong code caught: a certificate with the wrong sign or threshold (result would be n^2/2 instead of 3n^2/2),
    # and a lost pruning (stats: the zero blocks must be skipped by the trace test)
    for c, n, f1, f2 in [(12, 4, (1, 0), (0, 1)), (10, 6, (2, 1), (0, 0)), (16, 5, (0, 2), (3, 3))]:
        k = _two_frequency_kernel(c, n, f1, f2)
        expected = 1.5 * n * n if f1 != (0, 0) else 3.0 * n * n
        pruned, stats = C._circular_norm_pruned(k, n, n)
        assert pruned == pytest.approx(expected, rel=1e-12)
        assert pruned == pytest.approx(_dense_circular_norm(k, n), rel=1e-12)
        assert stats["exact"] >= 2  # the misleading first block, then the true maximum
        assert stats["pruned_by_trace"] >= stats["blocks"] - 4  # only the blocks at +-f1, +-f2 are non-zero
        noisy = _two_frequency_kernel(c, n, f1, f2, noise=1e-3, seed=c)
        dense = _dense_circular_norm(noisy, n)
        assert C.circular_spectral_norm(noisy, n, method="pruned") == pytest.approx(dense, rel=1e-12)


def test_pruned_norm_ties_and_degenerate_kernels():
    # 1x1 kernel: every frequency block is W itself (exact ties, all must be evaluated or certified) -> ||W||_2
    rng = np.random.default_rng(13)
    m = rng.standard_normal((18, 20))
    assert C.circular_spectral_norm(m[:, :, None, None], (5, 3), method="pruned") == pytest.approx(
        np.linalg.svd(m, compute_uv=False)[0], rel=1e-13)
    assert C.circular_spectral_norm(np.zeros((16, 16, 3, 3)), 6, method="pruned") == 0.0
    # extreme scales fall back to the SVD route (no under/overflow in the Gram blocks)
    tiny = rng.standard_normal((16, 16, 3, 3)) * 1e-150
    unpruned = C.circular_spectral_norm(tiny, 6, method="svd")
    assert C.circular_spectral_norm(tiny, 6) == pytest.approx(unpruned, rel=1e-13)


def test_circular_norm_method_is_validated():
    with pytest.raises(InputError, match="method"):
        C.circular_spectral_norm(np.ones((1, 1, 2, 2)), 3, method="lanczos")


# --------------------------------------------------------------------------- Kim et al. L2 attention at n = 1
def _single_token_map(q, v, o):
    """With one token L2 attention is x -> x M, M = sum_h (Q_h Q_h^T / sqrt(d_k)) V_h O_h (computed by hand)."""
    dk = q.shape[2]
    return sum(q[h] @ q[h].T / math.sqrt(dk) @ v[h] @ o[h] for h in range(q.shape[0]))


def test_kim_l2_forms_at_one_token():
    # n = 1: phi^{-1}(0) = 0, so the 2-norm forms reduce to (1/sqrt(d_k)) sqrt(sum_h ||Q_h||^{2p} ||V_h||^2) ||W^O||
    # and the inf form to (1/sqrt(d_k)) ||W^O^T||_inf max_h ||Q_h||_inf ||Q_h^T||_inf max_h ||V_h^T||_inf; the
    # exact constants of the linear map are ||M||_2 and ||M^T||_inf (max abs column sum of M).
    # wrong code caught: the ||W^Q||^4 variant losing a query factor (it would fall below ||M||_2 for
    # ||W^Q|| > 1), the inf form dropping ||W^{Q T}||_inf, a wrong phi^{-1}(0).
    rng = np.random.default_rng(21)
    recalled_broken = 0
    for trial in range(40):
        heads, d, dk, dv, dout = (int(x) for x in rng.integers(1, 4, size=5))
        q = rng.standard_normal((heads, d, dk)) * rng.uniform(0.2, 3.0)
        v = rng.standard_normal((heads, d, dv))
        o = rng.standard_normal((heads, dv, dout))
        layer = A.AttentionLayer.create(A.AttentionWeights.from_arrays(q, q, v, o), 1, attention="l2")
        m = _single_token_map(q, v, o)
        assert np.linalg.norm(m, 2) <= A.l2_attention_bound_wq2(layer).value * (1 + 1e-12)
        assert np.abs(m).sum(axis=0).max() <= A.l2_attention_inf_bound(layer).value * (1 + 1e-12)
        recalled_broken += np.linalg.norm(m, 2) > A.l2_attention_bound(layer).value
    assert recalled_broken > 0  # the recalled form is falsified at n = 1 (the documented finding)
    # d = d_k = 1, one head: the variant is tight, the recalled form is low by the factor |W^Q|
    q, v, o = np.array([[[2.04]]]), np.array([[[-2.56]]]), np.array([[[0.42]]])
    layer = A.AttentionLayer.create(A.AttentionWeights.from_arrays(q, q, v, o), 1, attention="l2")
    assert A.l2_attention_bound_wq2(layer).value == pytest.approx(2.04**2 * 2.56 * 0.42, rel=1e-9)
    recalled = A.l2_attention_bound(layer)
    assert recalled.value == pytest.approx(2.04 * 2.56 * 0.42, rel=1e-9)
    assert recalled.kind == "falsified"  # a statement known false is never reported as an upper bound


def test_kim_bounds_need_l2_attention_with_tied_weights():
    w = A.AttentionWeights.from_arrays(*(np.ones((1, 2, 2)) for _ in range(3)))
    with pytest.raises(InputError, match="L2 attention"):
        A.l2_attention_bound(A.AttentionLayer.create(w, 3, 1.0))  # a dot-product layer
    untied = A.AttentionWeights.from_arrays(np.ones((1, 2, 2)), np.zeros((1, 2, 2)), np.ones((1, 2, 2)))
    with pytest.raises(InputError, match="tied"):
        A.AttentionLayer.create(untied, 3, attention="l2")
