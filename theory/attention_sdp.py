r"""A convex-optimisation (SDP) upper bound on the Lipschitz constant of dot-product attention on :math:`B_R^n`.

No published SDP for attention exists (``docs/research/anchors.md`` section 3); this one is **derived here**.
Conventions of :mod:`theory.attention`: one head :math:`f(X)=\mathrm{softmax}(XAX^\top)XM`, rows
:math:`x_i\in\mathbb R^d`, :math:`A=QK^\top/\sqrt{d_k}`, :math:`M=VO`, domain
:math:`B_R^n=\{X:\|x_i\|\le R\}` (convex, so :math:`\mathrm{Lip}=\sup_{X\in B_R^n}\|J(X)\|_2`), Frobenius norms.

**Derivation** (one head; heads add by the triangle inequality). With :math:`p=P_{i\cdot}` (a point of the
simplex), :math:`\bar x_i=\sum_jp_jx_j`, :math:`u_j=x_j-\bar x_i`, :math:`a_i=A^\top x_i`,
:math:`C_i=\sum_jp_ju_ju_j^\top` and a perturbation H with rows :math:`h_j`, the i-th output row moves by
:math:`M^\top g_i`,

.. math:: g_i=\underbrace{\textstyle\sum_jp_j(I+u_ja_i^\top)h_j}_{T_{1}+T_{3}}+\underbrace{C_iA^\top h_i}_{T_2}.

1. *Relaxation of* :math:`T_1+T_3`: :math:`\|I+ua^\top\|\le1+\|u\|\|a\|` and Cauchy-Schwarz give
   :math:`\|T_1+T_3\|\le(1+\|A\|R\,\sigma_i)\,s_i` with :math:`s_i^2=\sum_jp_j\|h_j\|^2`,
   :math:`\sigma_i^2=\mathrm{tr}\,C_i`.
2. *Concentration vs spread* (lemma, proved below): if a distribution on the R-ball puts mass q on one point, its
   variance is at most :math:`R^2\varphi(q)`, :math:`\varphi(q)=1` for :math:`q\le\frac12`, :math:`4q(1-q)` for
   :math:`q\ge\frac12`. Hence for every j, :math:`p_j(1+\|A\|R\sigma_i)^2\le\psi(p_j)` with
   :math:`\psi(q)=q\,(1+\rho\sqrt{\varphi(q)})^2`, :math:`\rho=\|A\|R^2`, and summing over rows,
   :math:`\sum_i(1+\|A\|R\sigma_i)^2s_i^2=\sum_j\|h_j\|^2\sum_ip_{ij}(\cdots)^2\le n\Psi\|H\|^2`,
   :math:`\Psi=\max_{q\in[0,1]}\psi(q)` (evaluated soundly on intervals, :func:`psi_max`).
3. *Relaxation of* :math:`T_2`: :math:`C_i\in\mathcal C=\{C\succeq0,\ \mathrm{tr}\,C\le R^2\}` (since
   :math:`\mathrm{tr}\,C_i=\sum_jp_j\|x_j\|^2-\|\bar x_i\|^2\le R^2`). :math:`C\mapsto\|M^\top CA^\top\|` is convex,
   so its sup over :math:`\mathcal C` is at an extreme point :math:`R^2vv^\top`:
   :math:`\kappa=\sup_{\|v\|=1}\|M^\top v\|\,\|Av\|`.
4. *S-procedure / SDP for the bilinear sup*: for every :math:`t>0`,
   :math:`\|M^\top v\|\|Av\|\le\frac12(t\|M^\top v\|^2+\|Av\|^2/t)`, so
   :math:`\kappa\le\min_{t>0}\frac12\lambda_{\max}(tMM^\top+A^\top A/t)`, i.e. the SDP
   :math:`\min s` s.t. :math:`\begin{bmatrix}2sI-tMM^\top&A^\top\\A&tI\end{bmatrix}\succeq0` (Schur complement).
   (By Brickman's convexity of the joint numerical range and Sion's minimax theorem it is exact for
   :math:`d\ge3`.) Any t is valid: the solver's t is re-evaluated in float64 and rounded up, so the solve
   need not be accurate to be sound.
5. *Assembly* (Minkowski over rows): :math:`\|JH\|\le\big(\sum_i(\|M\|(1+\|A\|R\sigma_i)s_i+R^2\kappa\|h_i\|)^2\big)^{1/2}
   \le(\|M\|\sqrt{n\Psi}+R^2\kappa)\|H\|`.

.. math:: \mathrm{Lip}_2(\mathrm{MHA}|_{B_R^n})\le\sum_h\Big(\|M_h\|_2\sqrt{n\,\Psi(\|A_h\|_2R^2)}+R^2\kappa_h\Big)

Since :math:`\Psi(\rho)\le(1+\rho)^2` and :math:`\kappa\le\|M\|\|A\|`, this is never larger than
:func:`theory.attention.bounded_dot_product_bound`; for large :math:`\rho` the leading term shrinks by about
:math:`1/\sqrt2`.

*Proof of the lemma.* Write the distribution as mass q at :math:`x` and mass :math:`1-q` with mean m' and
variance :math:`V'\le R^2-\|m'\|^2`. Then :math:`\mathrm{Var}=q(1-q)\|x-m'\|^2+(1-q)V'\le(1-q)[q(R+t)^2+R^2-t^2]`
with :math:`t=\|m'\|\in[0,R]`. The bracket is maximised at :math:`t^*=qR/(1-q)`, giving :math:`R^2` when
:math:`t^*\le R` (q <= 1/2), else at t = R, giving :math:`4q(1-q)R^2`. (Also :math:`\mathrm{Var}\le R^2` always.)
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

from .validate import InputError, positive_float, positive_int
from .attention import AttentionLayer, _bounded_dp
from .numerics import round_up, spectral_norm
from .certified_solve import solve_and_certify
from .registry import Mutant, TightFamily, register

__all__ = ["variance_cap", "psi_max", "bilinear_sup_bound", "AttentionSDPResult", "attention_sdp_bound",
           "AttentionLayer"]


def variance_cap(q: float) -> float:
    r""":math:`\varphi(q)`: the largest variance / R^2 of a distribution on the R-ball with an atom of mass q."""
    return 1.0 if q <= 0.5 else 4.0 * q * (1.0 - q)


def psi_max(rho: float, intervals: int = 4096) -> float:
    r"""An upper bound on :math:`\Psi(\rho)=\max_{q\in[0,1]}q(1+\rho\sqrt{\varphi(q)})^2` (rounded up).

    On [0, 1/2] :math:`\psi` is increasing, so its max is :math:`(1+\rho)^2/2`. On [1/2, 1] cut into intervals
    :math:`[q_a,q_b]`: q is increasing and :math:`q(1-q)` decreasing, so :math:`\psi\le q_b(1+2\rho\sqrt{q_a(1-q_a)})^2`
    on each; the largest of these is the bound (an over-estimate by at most the interval width times the slope).
    """
    rho = positive_float("rho", rho, allow_zero=True)
    edges = np.linspace(0.5, 1.0, positive_int("intervals", intervals) + 1)
    qa, qb = edges[:-1], edges[1:]
    upper = qb * (1.0 + 2.0 * rho * np.sqrt(qa * (1.0 - qa))) ** 2
    return round_up(max(0.5 * (1.0 + rho) ** 2, float(upper.max()), 1.0))


def _half_lmax(mmt: np.ndarray, ata: np.ndarray, t: float) -> float:
    """:math:`\\frac12\\lambda_{\\max}(tMM^\\top+A^\\top A/t)` in float64, plus an allowance for rounding."""
    g = t * mmt + ata / t
    g = (g + g.T) / 2
    lam = float(np.linalg.eigvalsh(g)[-1])
    slack = 10 * g.shape[0] * np.finfo(float).eps * float(np.linalg.norm(np.abs(t * mmt) + np.abs(ata / t)))
    return 0.5 * (lam + slack)


def bilinear_sup_bound(m: np.ndarray, a: np.ndarray, solver: str = "CVXOPT") -> tuple[float, float]:
    r"""Certified upper bound on :math:`\kappa=\sup_{\|v\|=1}\|M^\top v\|\,\|Av\|` via the SDP of step 4.

    Returns ``(bound, t)``. The solver only proposes t; the bound is :math:`\frac12\lambda_{\max}(tMM^\top+A^\top A/t)`
    recomputed in float64 (valid for every t > 0), rounded up. If the solve fails, t comes from a scalar search.
    """
    import cvxpy as cp

    mmt = m @ m.T
    ata = a.T @ a
    nm, na = spectral_norm(m), spectral_norm(a)
    if nm == 0.0 or na == 0.0:
        return 0.0, 1.0
    d = m.shape[0]
    s, t = cp.Variable(), cp.Variable(nonneg=True)
    lmi = cp.bmat([[2 * s * np.eye(d) - t * mmt, a.T], [a, t * np.eye(d)]])
    prob = cp.Problem(cp.Minimize(s), [(lmi + lmi.T) / 2 >> 0])
    balanced = na / nm  # the balancing t of the product bound ||M|| ||A||

    def certify(values):
        t_val = float(values["t"])
        t_val = t_val if math.isfinite(t_val) and t_val > 0 else balanced
        # a few golden-section steps in log t from the proposal (any t is sound; this only tightens)
        best_t, best = t_val, _half_lmax(mmt, ata, t_val)
        lo, hi = math.log(t_val) - 0.5, math.log(t_val) + 0.5
        for _ in range(30):
            m1, m2 = lo + 0.382 * (hi - lo), lo + 0.618 * (hi - lo)
            f1, f2 = _half_lmax(mmt, ata, math.exp(m1)), _half_lmax(mmt, ata, math.exp(m2))
            for tt, ff in ((math.exp(m1), f1), (math.exp(m2), f2)):
                if ff < best:
                    best_t, best = tt, ff
            if f1 < f2:
                hi = m2
            else:
                lo = m1
        return round_up(min(best, nm * na)), {"t": best_t}

    cert = solve_and_certify(prob, {"s": s, "t": t}, certify, solver=solver,
                             fallback=lambda: {"s": np.array(math.nan), "t": np.array(balanced)})
    return cert.value, cert.checks["t"]


@dataclass
class AttentionSDPResult:
    """Per-head pieces of :func:`attention_sdp_bound` (``bound`` is the certified upper bound)."""

    bound: float
    analytic: float
    heads: list

    def as_dict(self) -> dict:
        return asdict(self)


def _sdp_no_sqrt_n(layer: AttentionLayer, solver: str) -> float:
    res = attention_sdp_bound.raw(layer, solver)
    r2 = layer.radius ** 2
    return float(sum(round_up(h["norm_M"] * math.sqrt(h["psi"])) + round_up(r2 * h["kappa"]) for h in res.heads))


@register(
    "attention.sdp_bounded_dp",
    norm="l2",
    kind="upper",
    assumptions=("every token in the ball of radius R", "finite n", "no mask"),
    source="derived in boundlab (theory/attention_sdp.py): covariance/concentration relaxation + S-procedure SDP",
    confidence="derived",
    covers="dot-product multi-head attention on B_R^n, Frobenius norm",
    notes="Never above attention.bounded_dp; SDP multiplier t re-evaluated in float64, so any solver output is sound.",
    input_type=AttentionLayer,
    applies=lambda layer: layer.attention == "dot_product" and layer.bounded,
    value=lambda res: res.bound,
    tight=TightFamily("the hard-attention family of attention.bounded_dp (n >= 64, ||A|| R^2 = 4..8)",
                      "derived here", ratio=0.4),
    mutants=[Mutant("no sqrt(n)", lambda layer, solver="CVXOPT": _sdp_no_sqrt_n(layer, solver), "known_false",
                    "the hard-attention family at n = 256: local constant ~ sqrt(n) ||M|| above the mutant")],
)
def attention_sdp_bound(layer: AttentionLayer, solver: str = "CVXOPT") -> AttentionSDPResult:
    r"""Certified convex-optimisation upper bound on :math:`\mathrm{Lip}_2` of dot-product attention on :math:`B_R^n`
    (the derivation is in the module docstring); ``details`` hold the per-head terms and the analytic bound.

    .. math:: \mathrm{Lip}_2(\mathrm{MHA}|_{B_R^n})\le\sum_h\|M_h\|_2\sqrt{n\Psi(\|A_h\|_2R^2)}+R^2\min_{t>0}\tfrac12\lambda_{\max}(tM_hM_h^\top+A_h^\top A_h/t)
    """
    if not isinstance(layer, AttentionLayer) or not (layer.attention == "dot_product" and layer.bounded):
        raise InputError("layer: attention.sdp_bounded_dp needs an AttentionLayer of dot-product attention on a "
                         f"bounded domain, got {getattr(layer, 'describe', lambda: type(layer).__name__)()}")
    weights, n, r = layer.weights, layer.n_tokens, layer.radius
    heads, total = [], 0.0
    for a, m in zip(weights.logit_matrices(), weights.value_output_matrices()):
        na, nm = spectral_norm(a), spectral_norm(m)
        rho = na * r * r
        psi = psi_max(rho)
        kappa, t = bilinear_sup_bound(m, a, solver)
        term = round_up(round_up(nm) * math.sqrt(n * psi)) + round_up(r * r * kappa)
        heads.append({"norm_A": na, "norm_M": nm, "rho": rho, "psi": psi, "kappa": kappa, "t": t,
                      "kappa_over_product": kappa / (na * nm) if na * nm > 0 else 0.0, "bound": term})
        total += term
    return AttentionSDPResult(round_up(total), _bounded_dp(weights, n, r), heads)
