r"""Convex duality of attention and two-layer heads (Sahiner et al. 2022), solved with cvxpy and certified.

The non-convex problems (weight decay :math:`\beta/2` on every factor, :math:`F` convex, :math:`m` heads):

.. math::
    p^*_{SA}=\min_{W_{1j}\in\mathbb R^{d\times d},W_{2j}\in\mathbb R^{d\times c}}
      \sum_i F\Big(\sum_{j=1}^m\big(M^{(i)}_{g(j)}\odot X_iW_{1j}X_i^\top\big)X_iW_{2j}\Big)
      +\frac\beta2\sum_j\|W_{1j}\|_F^2+\|W_{2j}\|_F^2

(linear self-attention: every mask :math:`M=\mathbf 1\mathbf 1^\top`; gated-ReLU self-attention: fixed gates
:math:`H_g`, :math:`M^{(i)}_g=\mathbb 1\{X_iH_gX_i^\top\ge0\}`, head j uses gate g(j)), and the two-layer head
:math:`\min F\big(\sum_j D_{g(j)}Xw_{1j}w_{2j}^\top\big)+\frac\beta2\sum_j\|w_{1j}\|^2+\|w_{2j}\|^2` (linear:
:math:`D=I`; gated ReLU: :math:`D_g=\mathrm{diag}(\mathbb 1\{Xh_g\ge0\})`). Their convex equivalents are

.. math::
    p^*_{cvx}=\min_{Z_1..Z_P}F\Big(\sum_{g=1}^P\mathcal A_g(Z_g)\Big)+\beta\sum_g\|Z_g\|_* ,

with :math:`\mathcal A_g(Z)=U_g\,\mathrm{reshape}(Z)` a *lifting* of the data (:func:`attention_lifting`,
:func:`mlp_lifting`). For attention :math:`Z_g\in\mathbb R^{d^2\times dc}` with block :math:`(k,\ell)` equal to
:math:`\sum_{j:g(j)=g}W_{1j}[:,k]W_{2j}[\ell,:]`, i.e. :math:`Z=\sum_j\mathrm{vec}_{col}(W_{1j})\mathrm{vec}_{row}(W_{2j})^\top`,
so that :math:`\big(M\odot XW_1X^\top\big)XW_2[t,b]=\sum_{k,a,\ell}X[t,a]\,\tilde G[t;k,\ell]\,Z[(k,a),(\ell,b)]` with the
token-wise masked Gram matrix :math:`\tilde G[t;k,\ell]=\sum_{t'}M[t,t']X[t',k]X[t',\ell]` (:math:`=X^\top X` without a mask).

Why the values agree (the proof used here, for every lifting). *Lower bound*: for any weights,
:math:`Z_g=\sum_{j:g(j)=g}a_jb_j^\top` reproduces the predictions and
:math:`\|Z_g\|_*\le\sum_j\|a_j\|\|b_j\|\le\frac12\sum_j\|a_j\|^2+\|b_j\|^2`, so :math:`p^*_{cvx}\le` the non-convex objective
at any weights. *Attainment*: from an optimal :math:`Z_g=\sum_k s_ku_kv_k^\top` (SVD) take one head per singular
triple, :math:`a=\sqrt{s_k}u_k`, :math:`b=\sqrt{s_k}v_k`: the predictions are unchanged and the penalty equals
:math:`\beta\sum_k s_k=\beta\|Z_g\|_*`. Hence :math:`p^*_{SA}=p^*_{cvx}` once :math:`m\ge m^*=\sum_g\mathrm{rank}Z_g^*`,
and :math:`m^*\le P\min(\text{rows},\text{cols})` of a block: :math:`\min(d^2,dc)` per gate for attention
(Sahiner et al. 2022, Thm 3.1, linear case), :math:`\min(d,c)` per gate for the two-layer head.

Certificates (cvxpy's ``SolverTestHelper`` spirit; nothing the solver reports is trusted): the objective is
recomputed in float64 at the solver's :math:`Z` (an upper bound on :math:`p^*`), and a dual feasible point is built
from the gradient, :math:`\Lambda=\alpha\nabla F(\mathcal A(Z))` with :math:`\alpha=\min(1,\beta/\max_g\|\mathcal A_g^*\nabla F\|_2)`;
weak duality gives :math:`p^*\ge-F^*(\Lambda)` because :math:`\min_Z\langle\mathcal A^*\Lambda,Z\rangle+\beta\|Z\|_*=0` when
:math:`\|\mathcal A_g^*\Lambda\|_2\le\beta`. A solve whose certified relative gap exceeds ``gap_tol`` raises
:class:`ConvexSolveError`; it never yields a number.

Losses (sums over samples, not means): ``squared`` :math:`F(\hat Y)=\frac12\|\hat Y-Y\|_F^2`,
:math:`F^*(\Lambda)=\frac12\|\Lambda\|^2+\langle\Lambda,Y\rangle`; ``cross_entropy`` on token-averaged logits (global
average pooling) :math:`F(L)=\sum_i\mathrm{lse}(L_i)-L_{i,y_i}`, :math:`F^*(\Lambda)=\sum_{i,c}q_{ic}\log q_{ic}` with
:math:`q=\Lambda+E` in the simplex (E one-hot).

Confidence: the linear case is Sahiner et al.'s Theorem 3.1 as restated (equation 10) in Sahiner et al.,
*Scaling Convex Neural Networks with Burer-Monteiro Factorization* (ICLR 2024); the block layout, the gated-ReLU
attention program (exact for *fixed* gates, by the proof above) and the certificates are derived here. The
paper's own statements for non-linear attention and their :math:`m^*` are not recoverable here
(``docs/research/seed_papers.md`` §C.4): the gates are a parameter.

References: Sahiner, Ergen, Ozturkler, Pauly, Mardani, Pilanci, *Unraveling Attention via Convex Duality:
Analysis and Interpretations of Vision Transformers*, ICML 2022 (arXiv 2205.08078); Pilanci & Ergen,
*Neural Networks are Convex Regularizers*, ICML 2020; Mishkin, Sahiner, Pilanci, *Fast Convex Optimization for
Two-Layer ReLU Networks*, ICML 2022 (gated ReLU).
"""

from ._data import (
                    LOSSES,
                    as_tokens,
                    attention_lifting,
                    attention_masks,
                    loss_gradient,
                    loss_value,
                    mlp_lifting,
                    mlp_masks,
                    target_matrix,
)
from ._heads import RANK_TOL, Heads, attention_objective, mlp_objective, recover_heads
from ._program import (
                    CLARABEL_OPTIONS,
                    DEFAULT_SOLVER,
                    GAP_TOL,
                    SOLVERS,
                    ConvexSolution,
                    ConvexSolveError,
                    LiftedProblem,
                    PolishResult,
                    certificate,
                    certify,
                    dual_lower_bound,
                    lifted_problem,
                    proximal_polish,
                    solve,
)
from ._programs import (
                    gated_relu_attention_program,
                    linear_attention_program,
                    m_star,
                    mlp_head_program,
)

__all__ = [
    "GAP_TOL",
    "RANK_TOL",
    "DEFAULT_SOLVER",
    "CLARABEL_OPTIONS",
    "LOSSES",
    "SOLVERS",
    "ConvexSolveError",
    "LiftedProblem",
    "ConvexSolution",
    "Heads",
    "as_tokens",
    "attention_masks",
    "mlp_masks",
    "attention_lifting",
    "mlp_lifting",
    "loss_value",
    "loss_gradient",
    "target_matrix",
    "lifted_problem",
    "certificate",
    "solve",
    "certify",
    "dual_lower_bound",
    "PolishResult",
    "proximal_polish",
    "recover_heads",
    "attention_objective",
    "mlp_objective",
    "m_star",
    "linear_attention_program",
    "gated_relu_attention_program",
    "mlp_head_program",
]
