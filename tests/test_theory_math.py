"""Closed-form checks of the theory functions (values computed by hand, not by the code under test)."""

import math

import numpy as np
import pytest

from theory import attention as A
from theory import composition as CP
from theory import convolution as C
from theory.numerics import RELATIVE_MARGIN, lambert_w0, round_down, round_up


def test_rounding_is_outward():
    for v in (0.0, 1e-300, 1.0, 3.7e12):
        assert round_up(v) >= v * (1 + RELATIVE_MARGIN)
        assert round_down(v) <= v
    assert round_up(math.inf) == math.inf


def test_one_by_one_kernel_is_its_matrix():
    m = np.array([[3.0, 0.0], [4.0, 0.0]])  # norm 5
    k = m[:, :, None, None]
    assert C.circular_spectral_norm(k, 4) == pytest.approx(5.0, rel=1e-14)
    assert C.kernel_matrix_bound(k) == pytest.approx(5.0, rel=1e-9)
    assert C.four_reshape_bound(k) == pytest.approx(5.0, rel=1e-9)


def test_all_ones_kernel_peaks_at_dc():
    # single channel all-ones 3x3: the DC frequency gives 9; W_mat = ones(1, 9) has norm 3, so k*3 = 9 as well
    k = np.ones((1, 1, 3, 3))
    assert C.circular_spectral_norm(k, 5) == pytest.approx(9.0, rel=1e-14)
    assert C.kernel_matrix_bound(k) == pytest.approx(9.0, rel=1e-9)
    assert C.gram_iteration_bound(k, 5) == pytest.approx(9.0, rel=1e-6)


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
    vals = [C.gram_iteration_bound(k, 6, n_iter=t) for t in range(0, 8)]
    assert all(v >= exact for v in vals)
    assert all(a >= b * (1 - 1e-12) for a, b in zip(vals, vals[1:]))
    assert vals[-1] == pytest.approx(exact, rel=1e-6)


def test_four_reshape_never_worse_than_kernel_matrix():
    rng = np.random.default_rng(5)
    for _ in range(10):
        k = rng.standard_normal((3, 2, 3, 2))
        assert C.four_reshape_bound(k) <= C.kernel_matrix_bound(k) * (1 + 1e-12)


def test_zero_padded_bound_uses_larger_grid():
    k = np.random.default_rng(6).standard_normal((2, 2, 3, 3))
    assert C.zero_padded_upper_bound(k, 5, "same") == pytest.approx(round_up(C.circular_spectral_norm(k, 6)))


def test_lambert_inverse_of_kim_phi():
    for n in (2, 10, 1000):
        x = lambert_w0((n - 1) / math.e)
        assert x * math.exp(x + 1) == pytest.approx(n - 1, rel=1e-12)


def test_castin_form_dominates_derived_bound():
    rng = np.random.default_rng(7)
    for _ in range(20):
        w = A.AttentionWeights.from_arrays(*(rng.standard_normal((2, 3, 2)) for _ in range(3)))
        n, r = int(rng.integers(1, 50)), float(rng.uniform(0.01, 5))
        assert A.bounded_dot_product_bound(w, n, r) <= A.castin_bounded_dot_product_bound(w, n, r)


def test_single_token_attention_bound_reduces_to_value_norm():
    # n = 1: SA(x) = x V O exactly, and the bound at R -> 0 tends to ||V O||
    rng = np.random.default_rng(8)
    q, k, v, o = (rng.standard_normal(s) for s in ((1, 3, 2), (1, 3, 2), (1, 3, 2), (1, 2, 3)))
    w = A.AttentionWeights.from_arrays(q, k, v, o)
    assert A.bounded_dot_product_bound(w, 1, 1e-8) == pytest.approx(np.linalg.norm(v[0] @ o[0], 2), rel=1e-6)


def test_meanfield_overflow_is_infinite():
    w = A.AttentionWeights.from_arrays(np.ones((1, 2, 2)) * 10, np.ones((1, 2, 2)) * 10, np.ones((1, 2, 2)))
    assert A.meanfield_w2_bound(w, 100.0) == math.inf


def test_layernorm_and_batchnorm_values():
    assert CP.layernorm_lipschitz(np.array([1.0, -3.0]), 1e-4) == pytest.approx(300.0, rel=1e-9)
    assert CP.batchnorm_eval_lipschitz(np.array([2.0, 1.0]), np.array([3.0, 0.0]), 1.0) == pytest.approx(1.0, rel=1e-9)


def test_network_bound_propagates_radius():
    layers = [CP.linear(np.eye(2) * 2), CP.relu(), CP.linear(np.eye(2) * 3, np.array([4.0, 0.0]))]
    bound, table = CP.network_bound(layers, input_radius=1.0)
    assert bound == pytest.approx(6.0, rel=1e-9)
    assert table[-1]["radius_out"] == pytest.approx(3 * 2 * 1 + 4, rel=1e-9)
    res = CP.residual(CP.linear(np.eye(2) * 0.5))
    assert res.lipschitz(1.0) == pytest.approx(1.5, rel=1e-9)
