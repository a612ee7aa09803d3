"""Teeth: planted false bounds that the suite must falsify, shrink, save and replay.

Each test runs a fresh Hypothesis search (no example database, no corpus) with the same strategies and
estimators as the real properties, and passes only if (1) a :class:`BoundViolation` is raised, (2) the case
Hypothesis reports is no larger than the first violating case it met (it shrank), and (3) every counterexample
saved earlier for that planted bound still violates it (the corpus replay).
"""

from __future__ import annotations

import pytest

from boundlab.empirical.attention import dot_product_attention
from boundlab.empirical.lipschitz import conv_operator_norm, global_lipschitz_lower_bound
from boundlab.theory.convolution import circular_spectral_norm

from boundlab.verification.falsify import must_falsify
from boundlab.verification.planted import PLANTED, circular_exact_shrunk, conv_no_k_factor, dp_global_lipschitz, lipsdp_shrunk
from boundlab.verification.strategies import attention_cases, conv_cases, weights_of
from boundlab.verification.strategies_lipsdp import mlp_cases, net_of


def _conv_truth(case) -> float:
    return conv_operator_norm(case["kernel"], case["input_size"], case["padding"], case["stride"])


def _dp_search(case) -> float:
    w = weights_of(case)
    res = global_lipschitz_lower_bound(dot_product_attention(w), (case["n_tokens"], w.dim), case["radius"],
                                       seed=case["seed"], restarts=4, steps=8)
    return res.lower_bound


def _mlp_search(case) -> float:
    from boundlab.empirical.mlp import feedforward_function

    f = feedforward_function(net_of(case))
    return global_lipschitz_lower_bound(lambda x: f(x.flatten(1)).unsqueeze(1), (1, case["widths"][0]),
                                        case["radius"], seed=case["seed"] % 2**31, restarts=4, steps=6).lower_bound


CHECKS = {
    "planted.lipsdp_shrunk": (
        mlp_cases(),
        lambda c: (_mlp_search(c), lipsdp_shrunk(net_of(c))),
    ),
    "planted.conv_no_k_factor": (
        conv_cases(paddings=("circular",), strides=(1,)),
        lambda c: (_conv_truth(c), conv_no_k_factor(c["kernel"])),
    ),
    "planted.dp_global_lipschitz": (
        attention_cases(radius=(0.1, 100.0)),
        lambda c: (_dp_search(c), dp_global_lipschitz(weights_of(c))),
    ),
    "planted.circular_exact_shrunk": (
        conv_cases(paddings=("circular",), strides=(1,)),
        lambda c: (_conv_truth(c), circular_exact_shrunk(c["kernel"], c["input_size"])),
    ),
}


@pytest.mark.parametrize("name", sorted(CHECKS))
def test_planted_bound_is_falsified(ledger, name):
    strategy, evaluate = CHECKS[name]
    assert name in PLANTED

    def check(case):
        lower, upper = evaluate(case)
        ledger.check_upper(name, lower, upper, case, rtol=1e-9, expect="falsified")

    must_falsify(ledger, name, strategy, check)


def test_circular_exact_shrunk_sanity():
    """The planted 'exact x (1 - 1e-3)' differs from the real exact value (so its falsification means something)."""
    import numpy as np

    k = np.ones((1, 1, 2, 2))
    assert circular_exact_shrunk(k, 3) < circular_spectral_norm(k, 3)
