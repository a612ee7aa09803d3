"""Convolution bounds vs matrix-free ground truth (Lanczos on T^T T with the layer's real padding and stride).

Tolerances: the ground truth is an ARPACK Ritz value converged to 1e-12 (relative, on the eigenvalue), which
never exceeds the true sigma_max except by rounding (~1e-14 relative at these sizes); upper bounds are
already rounded outward by 1e-10. So ``truth <= bound * (1 + 1e-9)`` can only fail if the bound is wrong, and
exact values must agree with the truth to 1e-7 (the planted 1e-3 error is four orders larger). The exact norm
is checked through both of its routes (batched SVD and certified pruning), also on kernels whose maximum sits in
one isolated frequency.
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import strategies as st

from boundlab.empirical.lipschitz import conv_operator, conv_operator_norm, dense_jacobian
from boundlab.theory import convolution as C

from boundlab.verification.properties import bound_property
from boundlab.verification.cases import Case
from boundlab.verification.strategies import conv_cases, conv_layer_of, log_uniform, seeds

RTOL_UPPER = 1e-9
RTOL_EXACT = 1e-7


def _truth(case) -> float:
    return conv_operator_norm(conv_layer_of(case))


@st.composite
def isolated_frequency_cases(draw):
    """A full-grid kernel (k = grid) concentrated on two frequency pairs +-f1, +-f2, plus small noise.

    ``W_u = A cos(2 pi <f1, u>/n) + r u v^T cos(2 pi <f2, u>/n) + noise`` with A a random matrix with all singular
    values 1 (orthonormal rows or columns) and u v^T a unit rank-one matrix, r in [1.01, 1.4]: the frequency
    blocks are (n^2/2) A at +-f1, (n^2/2) r u v^T at +-f2 and noise elsewhere. The maximum sits in one isolated
    frequency (f2), while the block with the larger trace is f1 (min(c_in, c_out) >= 2 > r^2), so the trace order
    of the pruned route visits the wrong block first: a pruning bug (wrong index or phase, a certificate that
    skips a larger block) gives a smaller maximum.
    """
    co, ci = draw(st.integers(2, 5)), draw(st.integers(2, 5))
    h, w = draw(st.integers(1, 6)), draw(st.integers(2, 6))
    f1 = (draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1)))
    f2 = (draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1)))
    ratio = draw(log_uniform(1.01, 1.4))
    seed = draw(seeds)
    noise = draw(log_uniform(1e-8, 1e-2))
    rng = np.random.default_rng(seed)
    a, b = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")

    def wave(f):
        return np.cos(2 * np.pi * (f[0] * a / h + f[1] * b / w))

    q_l, _ = np.linalg.qr(rng.standard_normal((co, co)))
    q_r, _ = np.linalg.qr(rng.standard_normal((ci, ci)))
    flat = q_l @ np.eye(co, ci) @ q_r  # all singular values 1
    u, v = rng.standard_normal(co), rng.standard_normal(ci)
    rank_one = np.outer(u / np.linalg.norm(u), v / np.linalg.norm(v)) * ratio
    k = flat[:, :, None, None] * wave(f1) + rank_one[:, :, None, None] * wave(f2)
    k = k + noise * rng.standard_normal((co, ci, h, w))
    return Case({"kind": "two_frequencies", "seed": seed, "f1": list(f1), "f2": list(f2), "ratio": ratio,
                 "noise": noise, "input_size": [h, w], "padding": "circular", "stride": 1}, {"kernel": k})


def _check_circular_exact(check, case):
    layer = conv_layer_of(case)
    truth = _truth(case)
    check.exact(check.bound(layer), truth)
    # the certified-pruning route (forced; "auto" uses it only from 16 channels) must give the same maximum
    check.exact(check.bound(layer, method="pruned"), truth, route="pruned")


@bound_property(C.circular_exact, cases=conv_cases(paddings=("circular",), strides=(1,)), rtol=RTOL_EXACT)
def test_circular_exact(check, case):
    _check_circular_exact(check, case)


@bound_property(C.circular_exact, cases=isolated_frequency_cases(), rtol=RTOL_EXACT)
def test_circular_exact_isolated_frequency(check, case):
    """conv.circular_exact on kernels whose maximum sits at one frequency pair (pruning must not skip it)."""
    # wrong code caught: a Cholesky certificate that passes blocks above the current maximum, a block-index
    # mix-up between the Gram blocks and the exact SVDs (both return a smaller maximum)
    _check_circular_exact(check, case)


@bound_property(C.circular_spectrum, cases=conv_cases(paddings=("circular",), strides=(1,), max_n=5),
                rtol=RTOL_EXACT)
def test_circular_singular_values(check, case):
    layer = conv_layer_of(case)
    op = conv_operator(layer)
    c_in = case["kernel"].shape[1]
    h, w = case["input_size"]
    x = torch.zeros((1, c_in, h, w), dtype=torch.float64)
    dense = np.linalg.svd(dense_jacobian(op, x)[0], compute_uv=False)
    check.exact(check.bound(layer), dense)


def _upper(evaluator, paddings, **kw):
    """An upper-bound property of a conv bound on layers with the given paddings (every amount, both strides)."""

    def test(check, case):
        check.upper(_truth(case), check.bound(conv_layer_of(case), **kw))

    test.__name__ = f"test_upper_{evaluator.bound.name.replace('.', '_')}"
    test.__qualname__ = test.__name__
    return bound_property(evaluator, cases=conv_cases(paddings=paddings), rtol=RTOL_UPPER)(test)


test_upper_conv_kernel_matrix = _upper(C.kernel_matrix_bound, ("circular", "zeros"))
test_upper_conv_singla_four_reshape = _upper(C.four_reshape_bound, ("circular", "zeros"))
test_upper_conv_gram_iteration = _upper(C.gram_iteration_bound, ("circular", "zeros"), n_iter=3)
test_upper_conv_zero_padded_upper = _upper(C.zero_padded_upper, ("zeros",))


@st.composite
def full_padding_cases(draw):
    """The regime where the padding amount matters most: an alternating (Nyquist) kernel ``K = s a b^T`` per
    channel pair, ``a_i = (-1)^i`` of length k_h, ``b_j = (-1)^j`` of length k_w, on a small input (n <= k) with
    zero padding up to ``k - 1`` per side (at least one side full). The padded output sees the whole alternating
    kernel, so the exact norm exceeds every circular value on a grid that ignores the padding amounts (the
    issue-12 case: [1,-1,1]^T [1,-1,1] on 2x2 with padding 2: exact 5, the k//2 grid gives 4)."""
    kh, kw = draw(st.integers(2, 4)), draw(st.integers(2, 4))
    co, ci = draw(st.integers(1, 2)), draw(st.integers(1, 2))
    s = draw(log_uniform(0.1, 10.0))
    seed = draw(seeds)
    rng = np.random.default_rng(seed)
    a = (-1.0) ** np.arange(kh)
    b = (-1.0) ** np.arange(kw)
    signs = rng.choice([-1.0, 1.0], size=(co, ci, 1, 1))
    k = s * signs * np.outer(a, b)[None, None]  # (co, ci, kh, kw)
    h, w = draw(st.integers(1, kh)), draw(st.integers(1, kw))
    full = draw(st.booleans())
    pads = [kh - 1, kh - 1, kw - 1, kw - 1] if full else [
        kh - 1, draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1)), kw - 1]
    return Case({"kind": "alternating_full_padding", "seed": seed, "scale": s, "input_size": [h, w],
                 "padding": pads, "stride": 1}, {"kernel": k})


@bound_property(C.zero_padded_upper, cases=full_padding_cases(), rtol=RTOL_UPPER)
def test_zero_padded_upper_full_padding(check, case):
    """conv.zero_padded_upper where the padding amounts decide the value (the tight regime of small inputs)."""
    # wrong code caught: the padding assumed k//2 instead of the given amounts, a grid without the padding margin
    check.upper(_truth(case), check.bound(conv_layer_of(case)))
