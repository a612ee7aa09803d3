"""QK spectrum: conventions and their trap, Gaussian moments, localization measures, trend predicates, bad input."""

import math

import numpy as np
import pytest

from boundlab.empirical.qk_spectrum import entropy_curve, gaussian_expectation
from boundlab.theory import InputError
from boundlab.theory import qk_spectrum as Q


def test_conventions_agree_on_symmetric_and_differ_on_a_rotation():
    w = Q.qk_matrix(Q.spectrum_with_moments(1.5, 0.25, [0.0, 1.0, 2.0]), np.eye(3))
    for conv in Q.CONVENTIONS:
        s = Q.spectral_stats(w, conv).details
        assert s.mean == pytest.approx(1.5, rel=1e-12) and s.variance == pytest.approx(0.25, rel=1e-12)
    rot = np.array([[0.0, -1.0], [1.0, 0.0]])  # eigenvalues +-i
    assert Q.spectral_stats(rot, "symmetric").details.variance == pytest.approx(0.0, abs=1e-15)  # symmetric part is 0
    assert Q.spectral_stats(rot, "complex").details.variance == pytest.approx(1.0, rel=1e-12)  # mean |+-i|^2
    assert Q.spectral_stats(rot, "algebraic").details.variance == pytest.approx(-1.0, rel=1e-12)  # tr(W^2)/d < 0: the trap


def test_gaussian_moments_of_the_identity():
    m = Q.gaussian_logit_moments(np.eye(4)).details  # scaled by 1/sqrt(4)
    assert m.self_mean == pytest.approx(2.0) and m.self_variance == pytest.approx(2.0)
    assert m.cross_second_moment == pytest.approx(1.0)
    m1 = Q.gaussian_logit_moments(np.eye(4), scale="none").details
    assert (m1.self_mean, m1.self_variance, m1.cross_second_moment) == pytest.approx((4.0, 8.0, 4.0))


def test_quadrature_is_exact_for_low_degree():
    assert gaussian_expectation(lambda x: x[:, 0] ** 2 * x[:, 1] ** 2, 2, nodes=2) == pytest.approx(1.0, rel=1e-14)
    assert gaussian_expectation(lambda x: x[:, 0] ** 4, 1, nodes=3) == pytest.approx(3.0, rel=1e-14)


def test_measures_in_closed_form():
    assert Q.attention_entropy(np.full(4, 0.25)) == pytest.approx(math.log(4))
    assert Q.effective_support(np.full(4, 0.25)) == pytest.approx(4.0)
    assert Q.attention_entropy(np.array([1.0, 0.0])) == 0.0
    assert Q.sparsemax(np.array([1.0, 0.0])).details.tolist() == [1.0, 0.0]
    assert Q.sparsemax(np.array([0.5, 0.0])).details == pytest.approx([0.75, 0.25])
    assert Q.sparsemax_support(np.array([0.5, 0.0, -3.0])) == 2
    assert Q.sparsemax_support(np.array([[0.0, 0.0], [5.0, 0.0]])).tolist() == [2, 1]


def test_trend_predicates_on_hand_curves():
    s2 = np.array([0.1, 1.0, 10.0])
    zero = np.zeros(3)
    up, down = np.array([0.5, 1.0, 2.0]), np.array([2.0, 1.0, 0.5])
    p1 = Q.trend_p1(s2, up, zero).details
    assert p1.lower <= p1.upper
    p1 = Q.trend_p1(s2, down, zero).details
    assert (p1.lower, p1.upper, p1.pair) == (2.0, 0.5, (0, 2))
    assert Q.trend_p2(s2, down, zero).details.lower <= Q.trend_p2(s2, down, zero).details.upper
    t = 8
    good = np.array([0.95, 0.5, 0.05]) * math.log(t)
    p3 = Q.trend_p3(s2, good, zero, t).details
    assert p3.lower <= p3.upper
    bad = np.array([0.05, 0.5, 0.05]) * math.log(t)  # small variance already one-hot
    p3 = Q.trend_p3(s2, bad, zero, t).details
    assert p3.lower > p3.upper and p3.pair == (0,)


def test_entropy_curve_records_its_regime_and_is_reproducible():
    a = entropy_curve(0.0, [0.01, 1.0], 4, 6, trials=16, seed=2, self_token=False)
    b = entropy_curve(0.0, [0.01, 1.0], 4, 6, trials=16, seed=2, self_token=False)
    assert np.array_equal(a.entropy, b.entropy)
    assert a.regime == {"mean": 0.0, "dim": 4, "n_tokens": 6, "trials": 16, "self_token": False,
                        "scale": "sqrt_d", "T_over_d": 1.5}
    assert a.paired_se.shape == (2, 2) and np.all(a.paired_se >= 0)
    assert np.all(a.entropy <= math.log(6) + 1e-12)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: Q.spectral_stats(np.ones((2, 3))).details, r"w: expected a square matrix"),
        (lambda: Q.spectral_stats(np.array([[np.nan]])).details, r"w: expected finite"),
        (lambda: Q.spectral_stats(np.eye(2), "abs").details, r"convention: expected one of"),
        (lambda: Q.gaussian_logit_moments(np.ones((3, 2))).details, r"w: expected a square matrix"),
        (lambda: Q.spectrum_with_moments(0.0, -1.0, [1.0, 2.0]), r"variance: expected a number >= 0"),
        (lambda: Q.spectrum_with_moments(0.0, 1.0, [1.0, 1.0]), r"base: expected at least two distinct"),
        (lambda: Q.spectrum_with_moments(math.nan, 1.0, [1.0, 2.0]), r"mean: expected a finite number"),
        (lambda: Q.qk_matrix([1.0, 2.0], np.eye(3)), r"basis: expected shape"),
        (lambda: Q.attention_entropy([0.5, 0.6]), r"p: expected probability vectors"),
        (lambda: Q.sparsemax([[np.inf, 0.0]]).details, r"z: expected finite"),
        (lambda: Q.trend_p1([1.0, 0.5], [1.0, 1.0], [0.0, 0.0]).details, r"sigma2: expected a strictly increasing"),
        (lambda: Q.trend_p1([0.5, 1.0], [1.0], [0.0]).details, r"entropy: expected the shape"),
        (lambda: Q.trend_p3([0.5, 1.0], [1.0, 1.0], [0.0, 0.0], 1).details, r"n_tokens: expected an integer >= 2"),
        (lambda: Q.trend_p3([0.5, 1.0], [1.0, 1.0], [0.0, 0.0], 4, delta=0.7).details, r"delta: expected a number in"),
        (lambda: entropy_curve(0.0, [1.0], 1, 4), r"dim: expected an integer >= 2"),
        (lambda: entropy_curve(0.0, [1.0], 4, 1), r"n_tokens: expected an integer >= 2"),
        (lambda: entropy_curve(0.0, [1.0], 4, 4, scale="d"), r"scale: expected one of"),
        (lambda: gaussian_expectation(lambda x: x[:, 0], 30, nodes=3), r"dim: a 3\^30 quadrature grid"),
    ],
)
def test_bad_input_names_argument(call, match):
    with pytest.raises(InputError, match=match):
        call()
