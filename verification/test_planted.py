"""Teeth: planted false bounds (records ``planted.*`` with ``expect="falsified"``) that the suite must falsify, shrink,
save and replay.

Each property runs a fresh Hypothesis search (no example database, no corpus) with the same strategies and
estimators as the real properties, and passes only if (1) a :class:`BoundViolation` is raised, (2) the case
Hypothesis reports is no larger than the first violating case it met (it shrank), and (3) every counterexample
saved earlier for that planted bound still violates it (the corpus replay). The decorator routes them to the
expected-falsification helper because their records say ``expect="falsified"``.
"""

from __future__ import annotations

from boundlab.empirical.attention import dot_product_attention
from boundlab.empirical.lipschitz import conv_operator_norm, global_lipschitz_lower_bound
from boundlab.theory import planted as PL
from boundlab.theory.convolution import ConvLayer, circular_spectral_norm

from boundlab.verification.properties import bound_property
from boundlab.verification.strategies import attention_cases, attention_layer_of, conv_cases, conv_layer_of, weights_of
from boundlab.verification.strategies_lipsdp import mlp_cases, net_of

RTOL = 1e-9


def _mlp_search(case) -> float:
    from boundlab.empirical.mlp import feedforward_function

    f = feedforward_function(net_of(case))
    return global_lipschitz_lower_bound(lambda x: f(x.flatten(1)).unsqueeze(1), (1, case["widths"][0]),
                                        case["radius"], seed=case["seed"] % 2**31, restarts=4, steps=6).lower_bound


@bound_property(PL.lipsdp_shrunk, cases=mlp_cases(), rtol=RTOL)
def test_planted_lipsdp_shrunk(check, case):
    check.upper(_mlp_search(case), check.bound(net_of(case)))


@bound_property(PL.conv_no_k_factor, cases=conv_cases(paddings=("circular",), strides=(1,)), rtol=RTOL)
def test_planted_conv_no_k_factor(check, case):
    layer = conv_layer_of(case)
    check.upper(conv_operator_norm(layer), check.bound(layer))


@bound_property(PL.dp_global_lipschitz, cases=attention_cases(radius=(0.1, 100.0)), rtol=RTOL)
def test_planted_dp_global_lipschitz(check, case):
    w = weights_of(case)
    res = global_lipschitz_lower_bound(dot_product_attention(w), (case["n_tokens"], w.dim), case["radius"],
                                       seed=case["seed"], restarts=4, steps=8)
    check.upper(res.lower_bound, check.bound(attention_layer_of(case)))


@bound_property(PL.circular_exact_shrunk, cases=conv_cases(paddings=("circular",), strides=(1,)), rtol=RTOL)
def test_planted_circular_exact_shrunk(check, case):
    layer = conv_layer_of(case)
    check.upper(conv_operator_norm(layer), check.bound(layer))


def test_circular_exact_shrunk_sanity():
    """The planted 'exact x (1 - 1e-3)' differs from the real exact value (so its falsification means something)."""
    import numpy as np

    k = np.ones((1, 1, 2, 2))
    assert PL.circular_exact_shrunk(ConvLayer.create(k, 3)).value < circular_spectral_norm(k, 3)
