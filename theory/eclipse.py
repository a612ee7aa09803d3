r"""ECLipsE and ECLipsE-Fast: LipSDP-feasible multipliers layer by layer, certified in the full LMI.

Xu and Sivaranjani, *ECLipsE: Efficient Compositional Lipschitz Constant Estimation for Deep Neural Networks*,
NeurIPS 2024 (arXiv 2404.04375); the definitions used here are read from the authors' public code
(``YuezhuXu/ECLipsE``: ``ECLipsE.m``, ``ECLipsE_Fast.m``; the general slopes :math:`\alpha_i\beta_i\ne0` from
``ECLipsE_Gen_Local/find_good_Lambdas``, Xu, Sivaranjani, arXiv 2510.05261). The paper's text was not read here.

Normalise the LipSDP LMI by :math:`\rho` (input block :math:`M_0=I`, :math:`\Lambda_k=2T_k/\rho`) and eliminate
the blocks in layer order: the Schur complements are

.. math:: X_{k-1}=M_{k-1}+W_{k-1}^\top D_{\alpha\beta}\Lambda_kW_{k-1},\qquad
    M_k=\Lambda_k-\tfrac14\Lambda_kD_{\alpha+\beta}W_{k-1}X_{k-1}^{-1}W_{k-1}^\top D_{\alpha+\beta}\Lambda_k,

and the LMI holds iff every :math:`M_k\succ0` and :math:`M_L\succeq\rho^{-1}W_L^\top W_L`, i.e.
:math:`\rho\ge\lambda_{\max}(W_LM_L^{-1}W_L^\top)`. ECLipsE chooses :math:`\Lambda_k` greedily, one layer at a time:

* **ECLipsE** (``ECLipsE.m``): :math:`\Lambda_k` diagonal maximising :math:`c` subject to
  :math:`M_k\succeq cW_k^\top W_k` (a small SDP of size :math:`2n_k`). This is the one-hidden-layer
  LipSDP-Neuron of :math:`(W_{k-1}M_{k-1}^{-1/2},W_k)` (congruence by :math:`\mathrm{diag}(M_{k-1}^{1/2},I)`),
  solved here by the structured method of :mod:`theory.lipsdp_chordal`. The reference code regularises
  :math:`K=W X^{-1}W^\top` by :math:`10^{-10}I` and uses SCS at :math:`10^{-6}`; here the sub-problem is solved to
  relative gap ``sub_tol`` (a parameter) and nothing is regularised (the final certificate does not depend on it).
  Where the per-layer optimum leaves :math:`M_k` singular to rounding (always at the last hidden layer of a net with
  a narrow output; the full LMI is then not certifiable in float64, measured on 8 x 64), :math:`\Lambda_k` is
  blended with the ECLipsE-Fast step until :math:`\lambda_{\min}(M_k)\ge\kappa\lambda_{\max}(M_k)`
  (``min_conditioning`` :math:`\kappa=10^{-7}` of :func:`theory.lipsdp_chordal.eclipse_recursion`; counted as
  ``blends``), the recovered counterpart of the reference code's regularisation.
* **ECLipsE-Fast** (``ECLipsE_Fast.m``): :math:`\Lambda_k=\lambda_kI`,
  :math:`\lambda_k=2/\lambda_{\max}(D_{\alpha+\beta}W_{k-1}M_{k-1}^{-1}W_{k-1}^\top D_{\alpha+\beta})`
  (for ReLU, :math:`1/(2m^2\lambda_{\max}(WM^{-1}W^\top))`, :math:`m=\tfrac12`), the maximiser of the smallest
  eigenvalue of :math:`M_k` when :math:`\alpha\beta=0`; then :math:`M_k\succeq\tfrac{\lambda_k}2I\succ0` whenever
  every :math:`\alpha_i\beta_i\ge0`. **Reconstructed extension** (not in the reference code, which refuses
  :math:`\alpha\beta<0`): for GELU/SiLU-type slopes :math:`\lambda_k` is halved until :math:`X_{k-1}` and
  :math:`M_k` are positive definite.

Soundness: the recursion only *proposes* :math:`(\rho,T=\rho\Lambda/2)`; the bound is
:func:`theory.lipsdp_chordal.certify_chain` on the full LMI of the original weights (re-assembled in float64,
shifted block Cholesky with a proven rounding allowance), so no closed-form step and no sub-SDP needs to be
exact. The proposal is a feasible point of LipSDP-Neuron (ECLipsE-Fast: of LipSDP-Layer), hence the orderings
:math:`\text{LipSDP-Neuron}\le\text{ECLipsE}` and :math:`\text{LipSDP-Layer}\le\text{ECLipsE-Fast}`; with one hidden
layer ECLipsE *is* LipSDP-Neuron; for slopes :math:`[0,\beta]` (ReLU, tanh, sigmoid) ECLipsE-Fast is at most the
product of norms: by induction :math:`M_k\succeq\frac{\lambda_k}2I` and
:math:`\lambda_{k+1}\ge\lambda_k/(\beta\|W_k\|)^2`, so :math:`\rho\le\prod_k(\beta\|W_k\|)^2` (with
:math:`\alpha>0` the same argument only gives :math:`(\alpha+\beta)^L\prod\|W_k\|`).
Measured: ECLipsE-Fast on a 32 x 256 ReLU net (``benchmarks/lipsdp_depth.py``) in 0.87 s with its certificate
(best of 5, 2 cores at load average 8; ``benchmarks/test_lipsdp.py::test_eclipse_fast_32x256``), of which 0.26 s is
the product-of-norms reference (33 SVDs) that every :class:`~theory.lipsdp.LipSDPResult` carries. Certifying the
smallest :math:`\rho` for ECLipsE-Fast's multipliers (:func:`~theory.lipsdp_chordal.certify_chain` without ``ray``)
instead of the paper's :math:`\rho` would give 2.12e6 instead of 2.73e6 on that net, at the cost of one more
certificate; the registered bound keeps the paper's definition.
"""

from __future__ import annotations

import math

import numpy as np

from .lipsdp import FeedForward, LipSDPResult, lipsdp
from .lipsdp_chordal import (BarrierResult, Chain, StructuredProblem, _normalise, _to_original,
                             certify_with_original, eclipse_recursion)
from .registry import Mutant, register
from .validate import InputError

__all__ = ["eclipse_bound", "eclipse_fast_bound", "solve_eclipse_piece", "eclipse_proposal"]


def eclipse_proposal(chain: Chain, form: str = "neuron", *, fast: bool = False, sub_tol: float = 1e-9) -> BarrierResult:
    """ECLipsE's (or ECLipsE-Fast's) proposal :math:`(\\rho,\\lambda)` in the units of ``chain`` (not certified)."""
    import time

    t0 = time.perf_counter()
    scales, nchain = _normalise(chain)
    rho_n, lam_big, info = eclipse_recursion(nchain, fast=fast, form=form, sub_tol=sub_tol)
    rho_o, lam_o = _to_original(scales, rho_n, rho_n * lam_big / 2.0, nchain.sizes)
    return BarrierResult(rho_o, lam_o, "optimal", info["newton_steps"], math.nan, time.perf_counter() - t0,
                         "none", {"fallbacks": info["fallbacks"], "blends": info.get("blends", 0)})


def solve_eclipse_piece(net: FeedForward, form: str, *, fast: bool, original: FeedForward | None = None,
                        sub_tol: float = 1e-9):
    """ECLipsE of a (reduced) network, certified on ``original`` when given (the one solve-and-certify step)."""
    from .certified_solve import solve_and_certify
    from .lipsdp import LipSDPError

    chain = Chain.from_net(net)
    orig = Chain.from_net(original) if original is not None else None
    if np.any(chain.alpha == chain.beta):
        chain = chain.relaxed()
        orig = orig.relaxed() if orig is not None else None
    name = "CLOSED-FORM" if fast else "STRUCTURED"
    prob = StructuredProblem(lambda: eclipse_proposal(chain, form, fast=fast, sub_tol=sub_tol), name)

    def certify(values):
        lam = np.asarray(values["lam"], dtype=np.float64).ravel()
        rc, lm, star, lam_c = certify_with_original(chain, orig, float(values["rho"]), lam, ray=True)
        res = prob.result
        return rc, {"lam": lam_c, "lambda_max": lm, "rho_solver": star, "eclipse_rho": res.rho,
                    "newton_steps": res.newton_steps, "fallbacks": res.info.get("fallbacks", 0),
                    "blends": res.info.get("blends", 0)}

    return solve_and_certify(prob, prob.variables, certify, solver=name, error=LipSDPError)


def _check(net):
    if not isinstance(net, FeedForward):
        raise InputError(f"net: expected FeedForward (use FeedForward.from_weights), got {type(net).__name__}")
    if net.residual:
        raise InputError("net: ECLipsE needs a feed-forward chain, got a residual block")
    return net


def _applies(net) -> bool:
    return isinstance(net, FeedForward) and not net.residual


def _final_state(net: FeedForward, fast: bool):
    """The last Schur complement M_L of the recursion on the (unnormalised) chain, for the formula mutants."""
    rho, _, info = eclipse_recursion(Chain.from_net(net).relaxed() if net.alpha == net.beta
                                     else Chain.from_net(net), fast=fast)
    return rho, info["m_last"], np.asarray(net.weights[-1])


def _mutant_no_sqrt(fast: bool):
    def evaluate(net, **kw):
        return float(_final_state(net, fast)[0])  # rho reported instead of sqrt(rho)

    return evaluate


def _mutant_largest_eig(fast: bool):
    def evaluate(net, **kw):
        _, m, wl = _final_state(net, fast)
        # ||W_L|| / sqrt(lambda_max(M_L)) in place of sqrt(lambda_max(W_L M_L^{-1} W_L^T))
        return float(np.linalg.norm(wl, 2) / math.sqrt(np.linalg.eigvalsh(m)[-1]))

    return evaluate


def _mutant_no_last_weight(fast: bool):
    def evaluate(net, **kw):
        _, m, _ = _final_state(net, fast)
        return float(1.0 / math.sqrt(np.linalg.eigvalsh(m)[0]))  # W_L dropped from the last step

    return evaluate


@register(
    "sdp.eclipse",
    kind="upper",
    norm="l2",
    assumptions=("activations slope-restricted on [alpha, beta]", "feed-forward chain (no residual block)",
                 "certified in float64 in the full LipSDP-Neuron LMI"),
    source="Xu, Sivaranjani, NeurIPS 2024 (ECLipsE), arXiv 2404.04375; definitions from YuezhuXu/ECLipsE",
    confidence="standard",
    covers="MLPs of any depth (per-layer SDPs of size 2 n_k)",
    input_type=FeedForward,
    applies=_applies,
    value=lambda res: res.certified,
    mutants=[Mutant("rho for sqrt(rho)", _mutant_no_sqrt(False), "known_false",
                    "any network whose certified constant is below 1 and tight (width-1 layers): rho < sqrt(rho)"),
             Mutant("||W_L|| / sqrt(lambda_max(M_L))", _mutant_largest_eig(False), "known_false",
                    "the largest eigenvalue of the last Schur complement in place of the generalised one: below "
                    "the true constant once M_L is not a multiple of I"),
             Mutant("W_L dropped", _mutant_no_last_weight(False), "unknown",
                    "1/sqrt(lambda_min(M_L)) without the output weight: false when ||W_L|| > 1")],
    notes="a feasible point of LipSDP-Neuron: never below sdp.lipsdp_neuron; equal to it with one hidden layer",
)
def eclipse_bound(net: FeedForward, *, blas_threads: int | None = 1) -> LipSDPResult:
    r"""ECLipsE: per-layer SDPs choose diagonal :math:`\Lambda_k`; the bound is certified in the full LMI.

    .. math:: \mathrm{Lip}_2(f)\le\sqrt{\lambda_{\max}(W_LM_L^{-1}W_L^\top)},\quad
        M_k=\Lambda_k-\tfrac14\Lambda_kD_{\alpha+\beta}W_{k-1}X_{k-1}^{-1}W_{k-1}^\top D_{\alpha+\beta}\Lambda_k\succ0,\
        \Lambda_k=\arg\max\{c:M_k\succeq cW_k^\top W_k\}

    The per-layer SDPs are solved to relative gap :math:`10^{-9}` (``sub_tol`` of :func:`eclipse_proposal`).
    Returns the :class:`LipSDPResult` of :func:`theory.lipsdp.lipsdp` with ``method="eclipse"``.
    """
    return lipsdp(_check(net), "neuron", method="eclipse", blas_threads=blas_threads)


@register(
    "sdp.eclipse_fast",
    kind="upper",
    norm="l2",
    assumptions=("activations slope-restricted on [alpha, beta]", "feed-forward chain (no residual block)",
                 "certified in float64 in the full LipSDP-Layer LMI"),
    source="Xu, Sivaranjani, NeurIPS 2024 (ECLipsE-Fast), arXiv 2404.04375; definitions from YuezhuXu/ECLipsE",
    confidence="standard",
    covers="MLPs of any depth and width (closed form, linear in depth)",
    input_type=FeedForward,
    applies=_applies,
    value=lambda res: res.certified,
    mutants=[Mutant("rho for sqrt(rho)", _mutant_no_sqrt(True), "known_false",
                    "any network whose certified constant is below 1 and tight: rho < sqrt(rho)"),
             Mutant("||W_L|| / sqrt(lambda_max(M_L))", _mutant_largest_eig(True), "known_false",
                    "the largest eigenvalue of the last Schur complement in place of the generalised one"),
             Mutant("W_L dropped", _mutant_no_last_weight(True), "unknown",
                    "1/sqrt(lambda_min(M_L)) without the output weight: false when ||W_L|| > 1")],
    notes="a feasible point of LipSDP-Layer: never below sdp.lipsdp_layer; at most the product of norms for "
          "slopes with alpha * beta >= 0",
)
def eclipse_fast_bound(net: FeedForward, *, blas_threads: int | None = 1) -> LipSDPResult:
    r"""ECLipsE-Fast: closed-form :math:`\Lambda_k=\lambda_kI` per layer; the bound is certified in the full LMI.

    .. math:: \mathrm{Lip}_2(f)\le\sqrt{\lambda_{\max}(W_LM_L^{-1}W_L^\top)},\quad
        \lambda_k=\frac{2}{\lambda_{\max}(D_{\alpha+\beta}W_{k-1}M_{k-1}^{-1}W_{k-1}^\top D_{\alpha+\beta})},\
        M_k=\lambda_kI-\tfrac{\lambda_k^2}4D_{\alpha+\beta}W_{k-1}X_{k-1}^{-1}W_{k-1}^\top D_{\alpha+\beta}

    Returns the :class:`LipSDPResult` of :func:`theory.lipsdp.lipsdp` with ``method="eclipse-fast"``.
    """
    return lipsdp(_check(net), "layer", method="eclipse-fast", blas_threads=blas_threads)
