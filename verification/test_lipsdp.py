"""LipSDP (certified) and the attention SDP vs empirical lower bounds, and the ordering of the SDP forms.

Empirical side: projected gradient ascent on the exact local Jacobian norm (a lower bound on the global constant).
Upper side: certified values rounded outward by 1e-10, so ``lower <= upper * (1 + 1e-9)`` fails only if a bound is
wrong. The orderings Neuron <= Layer <= product are between two certified values whose solver-side optimality
is only approximate (interior-point tolerance ~1e-7 relative), and the LMI margin moves rho by ~1e-9 of its scale, hence rtol 1e-5 there.
"""

from __future__ import annotations

import math

from hypothesis import given

from boundlab.empirical.attention import dot_product_attention
from boundlab.empirical.lipschitz import global_lipschitz_lower_bound
from boundlab.empirical.mlp import feedforward_function
from boundlab.theory import attention as A
from boundlab.theory.attention_sdp import attention_sdp_details
from boundlab.theory.lipsdp import lipsdp

from boundlab.verification.cases import Case
from boundlab.verification.corpus import replay
from boundlab.verification.strategies import attention_cases, weights_of
from boundlab.verification.strategies_lipsdp import mlp_cases, net_of

RTOL = 1e-9
ORDER_RTOL = 1e-5


def _mlp_lower(case: Case, net) -> float:
    f = feedforward_function(net)
    return global_lipschitz_lower_bound(lambda x: f(x.flatten(1)).unsqueeze(1), (1, case["widths"][0]),
                                        case["radius"], seed=case["seed"] % 2**31, restarts=4, steps=6).lower_bound


@replay("sdp.lipsdp_neuron")
@given(case=mlp_cases())
def test_lipsdp_neuron(ledger, case):
    # wrong code caught: a sign error in the LMI (bound below the empirical constant), a certificate that keeps
    # the solver's rho when the LMI is violated (certified < solver value), Neuron looser than Layer
    net = net_of(case)
    neuron = lipsdp(net, "neuron")
    assert neuron.certified >= neuron.solver_value
    assert neuron.lambda_max <= 0
    ledger.check_upper("sdp.lipsdp_neuron", _mlp_lower(case, net), neuron.certified, case, rtol=RTOL)
    layer = lipsdp(net, "layer")
    ledger.check_upper("sdp.lipsdp_neuron", neuron.certified, layer.certified, case, rtol=ORDER_RTOL,
                       comparison="neuron <= layer")


@replay("sdp.lipsdp_layer")
@given(case=mlp_cases())
def test_lipsdp_layer(ledger, case):
    # wrong code caught: Layer multipliers not shared per layer (would make it tighter than sound for nothing,
    # but a wrong T block would break lower <= bound), a bound above the product of norms
    net = net_of(case)
    layer = lipsdp(net, "layer")
    assert layer.certified >= layer.solver_value
    ledger.check_upper("sdp.lipsdp_layer", _mlp_lower(case, net), layer.certified, case, rtol=RTOL)
    ledger.check_upper("sdp.lipsdp_layer", layer.certified, layer.naive_bound, case, rtol=ORDER_RTOL,
                       comparison="layer <= product")


@replay("attention.sdp_bounded_dp")
@given(case=attention_cases(max_tokens=3, max_dim=3))
def test_attention_sdp(ledger, case):
    # wrong code caught: a wrong variance cap (phi), the S-procedure value taken from an uncertified solver t,
    # a missing sqrt(n); and the SDP bound must never exceed the analytic bound it refines
    w = weights_of(case)
    n, r = case["n_tokens"], case["radius"]
    res = attention_sdp_details(w, n, r)
    lower = global_lipschitz_lower_bound(dot_product_attention(w), (n, w.dim), r, seed=case["seed"] % 2**31,
                                         restarts=3, steps=6).lower_bound
    ledger.check_upper("attention.sdp_bounded_dp", lower, res.bound, case, rtol=RTOL)
    assert res.bound <= A.bounded_dot_product_bound(w, n, r) * (1 + 1e-9)
    assert math.isfinite(res.bound)
