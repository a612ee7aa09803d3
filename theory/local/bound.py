r"""The registered local bounds: the certified local Lipschitz constant of a network on a region, and its planted twin.

``local.lipschitz_l2`` evaluates :func:`theory.local.propagate.certify` on a :class:`theory.local.LocalProblem`
(a validated network and region); its value bounds :math:`\sup_{x\in R}\|\partial f(x)\|_2`, hence the Lipschitz
constant of f on the convex region R in the Euclidean norms of the flattened input and output. The record's
mutants are the slips a bound-propagation implementation plausibly makes; ``planted.local_drop_unstable`` is the
first of them as a record of its own, which the verification suite must falsify (shrink, save, replay).
"""

from __future__ import annotations

from .network import LocalProblem
from .propagate import LocalCertificate, Options, certify
from ..registry import Mutant, TightFamily, register

__all__ = ["local_lipschitz_l2", "local_drop_unstable"]

_ASSUMPTIONS = (
    "network: a chain of theory.local layers (dense, zero-padded conv with stride, per-channel affine incl. eval "
    "BatchNorm, patchify, per-token dense, constant add, mean, ReLU, LayerNorm, dot-product attention, residual)",
    "region: l_inf box or l2 ball of radius eps around the centre, intersected with the pixel box",
    "parameters and centre read as exact reals (the real-valued function the float weights define)",
)


def _value(cert: LocalCertificate) -> float:
    return cert.value


def _mutant(**flags):
    def evaluate(problem: LocalProblem) -> float:
        return certify(problem, Options(**flags)).value

    return evaluate


@register(
    "local.lipschitz_l2",
    kind="upper",
    norm="l2",
    assumptions=_ASSUMPTIONS,
    source="bound propagation: zonotopes (DeepZ, Singh et al. NeurIPS 2018) intersected with back-substitution "
    "(DeepPoly/CROWN, Singh et al. POPL 2019, Zhang et al. NeurIPS 2018) forward, interval/affine Clarke "
    "Jacobians backward (as in Shi et al. NeurIPS 2022, local Lipschitz by bound propagation) and the telescoped "
    "midpoint expansion of the Clarke product set (derived here, theory/local/graph.py); the smaller of the two",
    confidence="derived",
    input_type=LocalProblem,
    value=_value,
    covers="the studied models on an input region (boundlab certify; the TopoLip brackets)",
    tight=TightFamily("networks whose ReLUs are all stable on the region and without smooth layers (an affine "
                      "chain, or any ReLU net on a region small enough): the certificate is ||J||_2 up to the "
                      "outward rounding (tests/test_certify.py checks the eps -> 0 limit on every studied model)",
                      citation="derived here", ratio=1.0),
    mutants=[
        Mutant("drop_unstable", _mutant(mutant_drop_unstable=True), "known_false",
               "a ReLU network whose pre-activation changes sign in the region: where the neuron is active the "
               "Jacobian has its term, which the mutant drops (verification/test_local.py, the planted twin)"),
        Mutant("smooth_at_centre", _mutant(mutant_smooth_at_centre=True), "unknown",
               "attention/LayerNorm Jacobians at the centre only: wrong once the region is wide enough for the "
               "softmax to move; caught only when the search finds such a point"),
        Mutant("layernorm_at_centre", _mutant(mutant_layernorm_at_centre=True), "unknown",
               "LayerNorm's region constant replaced by its value at the centre"),
    ],
)
def local_lipschitz_l2(problem: LocalProblem) -> LocalCertificate:
    r"""Certified local Lipschitz constant on the region by bound propagation (zonotopes forward, interval Jacobian
    backward).

    .. math:: \mathrm{Lip}_2(f|_R)\le\sup_{x\in R}\|\partial f(x)\|_2\le\|J_{mid}\|_2+\min(\|\bar A\|_2\|B\|_2,
       \|\bar A^\top|B|\|_2)+\|\bar E\|_2

    :math:`J_{mid}` is the midpoint product of the layer Jacobians (ReLU derivative 1 on neurons active on the whole
    region, 0 on inactive ones, 1/2 on unstable ones), :math:`\bar A^\top B` collects the uncertain factors
    (unstable ReLUs, the spread of smooth layers' Jacobians over the region) as generators propagated exactly, and
    :math:`\bar E` the entrywise remainder (float rounding, folded generators). On networks of linear layers,
    ReLUs and residual sums the telescoped bound of :func:`theory.local.graph.telescoped_bound` is also computed
    and the smaller of the two is the value (``LocalCertificate.backward`` says which).
    """
    if not isinstance(problem, LocalProblem):
        from ..validate import InputError

        raise InputError(f"problem: expected a theory.local LocalProblem, got {type(problem).__name__}")
    return certify(problem)


@register(
    "planted.local_drop_unstable",
    kind="upper",
    norm="l2",
    assumptions=_ASSUMPTIONS,
    source="planted: local.lipschitz_l2 with the unstable neurons' derivative [0, 1] replaced by 0",
    confidence="planted",
    expect="falsified",
    refutation="a ReLU network with a hidden neuron whose pre-activation changes sign in the region: at points "
    "where it is active the Jacobian includes its path, which the planted bound leaves out",
    input_type=LocalProblem,
    value=_value,
)
def local_drop_unstable(problem: LocalProblem) -> LocalCertificate:
    r"""The planted local bound: unstable ReLUs treated as inactive on the whole region.

    .. math:: \mathrm{Lip}_2(f|_R)\le\|J_{mid}\|_2+\|\bar A\|_2\|B\|_2+\|\bar E\|_2\ \text{with}\ D_u=0\ \text{on unstable}\ u
    """
    return certify(problem, Options(mutant_drop_unstable=True))
