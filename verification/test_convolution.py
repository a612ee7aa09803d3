"""Convolution bounds vs matrix-free ground truth (Lanczos on T^T T with the layer's real padding and stride).

Tolerances: the ground truth is an ARPACK Ritz value converged to 1e-12 (relative, on the eigenvalue), which
never exceeds the true sigma_max except by rounding (~1e-14 relative at these sizes); upper bounds are
already rounded outward by 1e-10. So ``truth <= bound * (1 + 1e-9)`` can only fail if the bound is wrong, and
exact values must agree with the truth to 1e-7 (the planted 1e-3 error is four orders larger).
"""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given

from empirical.lipschitz import conv_operator, conv_operator_norm, dense_jacobian
from theory import convolution as C

from .corpus import replay
from .strategies import conv_cases

RTOL_UPPER = 1e-9
RTOL_EXACT = 1e-7


def _truth(case) -> float:
    return conv_operator_norm(case["kernel"], case["input_size"], case["padding"], case["stride"])


@replay("conv.circular_exact")
@given(case=conv_cases(paddings=("circular",), strides=(1,)))
def test_circular_exact(ledger, case):
    exact = C.circular_spectral_norm(case["kernel"], case["input_size"])
    ledger.check_exact("conv.circular_exact", exact, _truth(case), case, rtol=RTOL_EXACT)


@replay("conv.circular_singular_values")
@given(case=conv_cases(paddings=("circular",), strides=(1,), max_n=5))
def test_circular_singular_values(ledger, case):
    op = conv_operator(case["kernel"], case["input_size"], "circular")
    c_in = case["kernel"].shape[1]
    h, w = case["input_size"]
    x = torch.zeros((1, c_in, h, w), dtype=torch.float64)
    dense = np.linalg.svd(dense_jacobian(op, x)[0], compute_uv=False)
    theory = C.circular_singular_values(case["kernel"], case["input_size"])
    ledger.check_exact("conv.circular_singular_values", theory, dense, case, rtol=RTOL_EXACT)


def _grid(case) -> tuple[int, int]:
    h, w = case["input_size"]
    if case["padding"] == "circular":
        return h, w
    kh, kw = case["kernel"].shape[2:]
    return h + kh // 2, w + kw // 2


UPPER = {
    "conv.kernel_matrix": (lambda c: C.kernel_matrix_bound(c["kernel"]), ("circular", "zeros")),
    "conv.singla_four_reshape": (lambda c: C.four_reshape_bound(c["kernel"]), ("circular", "zeros")),
    "conv.gram_iteration": (lambda c: C.gram_iteration_bound(c["kernel"], _grid(c), n_iter=3), ("circular", "zeros")),
    "conv.zero_padded_upper": (lambda c: C.zero_padded_upper_bound(c["kernel"], c["input_size"], "same"), ("zeros",)),
}


def _make_upper_test(name, fn, paddings):
    @replay(name)
    @given(case=conv_cases(paddings=paddings))
    def test(ledger, case):
        ledger.check_upper(name, _truth(case), fn(case), case, rtol=RTOL_UPPER)

    test.__name__ = f"test_upper_{name.replace('.', '_')}"
    return test


for _name, (_fn, _pads) in UPPER.items():
    globals()[f"test_upper_{_name.replace('.', '_')}"] = _make_upper_test(_name, _fn, _pads)
