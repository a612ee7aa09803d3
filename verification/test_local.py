"""The certified local Lipschitz bound against dense Jacobians searched inside the region, on tiny random networks.

``local.lipschitz_l2`` must dominate ``||J_f(x)||_2`` at every searched point x of every drawn region (the centre,
seeded uniform points and vertices, projected ascent on sigma_max): a missed unstable neuron, a residual path
left out, a wrong padding/stride, a LayerNorm or softmax enclosure that does not hold over the region, or an
interval product that is not an enclosure shows up as an empirical value above the certificate.
``planted.local_drop_unstable`` (unstable ReLUs treated as inactive) must be falsified: the search has to find
a point of the region where such a neuron is active and the Jacobian exceeds the planted bound.
"""

from __future__ import annotations

from boundlab.empirical.certify.ascent import region_lower_bound
from boundlab.empirical.certify.torch_net import torch_function
from boundlab.theory.local import bound as LB

from boundlab.verification.properties import bound_property
from boundlab.verification.strategies_local import local_cases, problem_of

RTOL = 1e-9


def _search(case, problem) -> float:
    r = problem.region
    f = torch_function(problem.network)
    res = region_lower_bound(f, r.center, r.eps, norm=r.norm, lower=r.lower, upper=r.upper, samples=16,
                             restarts=2, steps=3, seed=case["seed"] % 2**31)
    return res.lower_bound


@bound_property(LB.local_lipschitz_l2, cases=local_cases(), rtol=RTOL)
def test_local_bound_dominates_region_search(check, case):
    problem = problem_of(case)
    check.upper(_search(case, problem), check.bound(problem))


@bound_property(LB.local_drop_unstable, cases=local_cases(families=("mlp",)), rtol=RTOL)
def test_planted_local_drop_unstable(check, case):
    problem = problem_of(case)
    check.upper(_search(case, problem), check.bound(problem))
