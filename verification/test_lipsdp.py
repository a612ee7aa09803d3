"""LipSDP (certified) and the attention SDP vs empirical lower bounds, and the ordering of the SDP forms.

Empirical side: projected gradient ascent on the exact local Jacobian norm (a lower bound on the global constant).
Upper side: certified values rounded outward by 1e-10, so ``lower <= upper * (1 + 1e-9)`` fails only if a bound is
wrong. The orderings Neuron <= Layer <= product are between two certified values whose solver-side optimality
is only approximate (interior-point tolerance ~1e-7 relative), and the LMI margin moves rho by ~1e-9 of its scale, hence rtol 1e-5 there.
"""

from __future__ import annotations

import math

from boundlab.empirical.attention import dot_product_attention
from boundlab.empirical.lipschitz import global_lipschitz_lower_bound
from boundlab.empirical.mlp import feedforward_function
from boundlab.theory import attention as A
from boundlab.theory import lipsdp as L
from boundlab.theory.attention_sdp import attention_sdp_bound

from boundlab.verification.cases import Case
from boundlab.verification.properties import bound_property
from boundlab.verification.strategies import attention_cases, attention_layer_of
from boundlab.verification.strategies_lipsdp import mlp_cases, net_of

RTOL = 1e-9
ORDER_RTOL = 1e-5


def _mlp_lower(case: Case, net) -> float:
    f = feedforward_function(net)
    return global_lipschitz_lower_bound(lambda x: f(x.flatten(1)).unsqueeze(1), (1, case["widths"][0]),
                                        case["radius"], seed=case["seed"] % 2**31, restarts=4, steps=6).lower_bound


@bound_property(L.lipsdp_neuron, cases=mlp_cases(), rtol=RTOL)
def test_lipsdp_neuron(check, case):
    # wrong code caught: a sign error in the LMI (bound below the empirical constant), a certificate that keeps
    # the solver's rho when the LMI is violated (certified < solver value), Neuron looser than Layer
    net = net_of(case)
    neuron = check.bound(net)
    assert neuron.value >= neuron.details.solver_value
    assert neuron.details.lambda_max <= 0
    check.upper(_mlp_lower(case, net), neuron)
    check.order(neuron, L.lipsdp_layer(net), rtol=ORDER_RTOL, what="neuron <= layer")


@bound_property(L.lipsdp_layer, cases=mlp_cases(), rtol=RTOL)
def test_lipsdp_layer(check, case):
    # wrong code caught: Layer multipliers not shared per layer (would make it tighter than sound for nothing,
    # but a wrong T block would break lower <= bound), a bound above the product of norms
    net = net_of(case)
    layer = check.bound(net)
    assert layer.value >= layer.details.solver_value
    check.upper(_mlp_lower(case, net), layer)
    check.order(layer, L.spectral_product_bound(net), rtol=ORDER_RTOL, what="layer <= product")


@bound_property(L.spectral_product_bound, cases=mlp_cases(), rtol=RTOL)
def test_spectral_product(check, case):
    # wrong code caught: a missing activation factor max(|alpha|, |beta|)^l, a dropped layer norm
    net = net_of(case)
    check.upper(_mlp_lower(case, net), check.bound(net))


@bound_property(attention_sdp_bound, cases=attention_cases(max_tokens=3, max_dim=3), rtol=RTOL)
def test_attention_sdp(check, case):
    # wrong code caught: a wrong variance cap (phi), the S-procedure value taken from an uncertified solver t,
    # a missing sqrt(n); and the SDP bound must never exceed the analytic bound it refines
    layer = attention_layer_of(case)
    w, n, r = layer.weights, layer.n_tokens, layer.radius
    res = check.bound(layer)
    lower = global_lipschitz_lower_bound(dot_product_attention(w), (n, w.dim), r, seed=case["seed"] % 2**31,
                                         restarts=3, steps=6).lower_bound
    check.upper(lower, res)
    check.order(res, A.bounded_dot_product_bound(layer), rtol=1e-9, what="sdp <= analytic")
    assert math.isfinite(res.value)
