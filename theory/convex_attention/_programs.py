"""The registered programs: linear and gated-ReLU attention heads, two-layer heads, and m*."""

from __future__ import annotations

from ..registry import TightFamily, register
from ..validate import choice
from ._data import (
    LOSSES,
    _gates,
    as_tokens,
    attention_lifting,
    mlp_lifting,
    target_matrix,
)
from ._program import GAP_TOL, ConvexSolution, LiftedProblem, lifted_problem, solve


@register(
    "convex.m_star",
    norm="count",
    kind="upper",
    assumptions=("an optimal Z of the convex program exists", "P fixed gates (P = 1: linear)"),
    source="Sahiner et al., Unraveling Attention via Convex Duality, ICML 2022, Thm 3.1 (linear attention, "
    "as restated in Sahiner et al. ICLR 2024 eq. 10); gated and head cases derived here",
    confidence="derived",
    covers="number of heads (neurons) recovered from a convex solution",
    tight=TightFamily("one block of shape 1 x 1 (P = 1, d = c = 1 head): m* = 1, and one head is recovered "
                      "whenever the optimum Z* is non-zero", "derived here", ratio=1.0),
)
def m_star(problem: LiftedProblem) -> int:
    r"""The bound :math:`m^*` on the heads needed: :math:`\sum_g\mathrm{rank}Z_g\le P\min(p, qc)`.

    .. math:: m^*\le P\min(\text{rows},\text{cols})\text{ of a block: }P\min(d^2,dc)\ \text{(attention)},\ P\min(d,c)\ \text{(head)}
    """
    p, qc = problem.block_shape
    return problem.blocks * min(p, qc)


# --------------------------------------------------------------------------- registered programs
def _attention_problem(tokens, targets, beta, gates, loss, pool, classes, kind) -> LiftedProblem:
    x = as_tokens(tokens)
    d = x.shape[2]
    u = attention_lifting(x, gates)
    c = target_matrix(targets, choice("loss", loss, LOSSES), x.shape[0], x.shape[1], pool or loss == "cross_entropy",
                 classes)[1]
    return lifted_problem(u, targets, beta, block_shape=(d * d, d * c), loss=loss, kind=kind, pool=pool,
                          classes=classes)


@register(
    "convex.linear_attention",
    value=lambda sol: sol.lower,
    norm="none",
    kind="exact",
    assumptions=("linear self-attention, merged W1 = W_Q W_K^T and W2 = W_V W_O, no softmax",
                 "m >= m* = rank Z* heads", "F convex (squared loss or pooled cross-entropy)",
                 "exact beta/2 weight decay on W1 and W2"),
    source="Sahiner, Ergen, Ozturkler, Pauly, Mardani, Pilanci, Unraveling Attention via Convex Duality, ICML 2022, "
    "Thm 3.1 (as restated in Sahiner et al. ICLR 2024, eq. 10); layout and certificate derived here",
    confidence="derived",
    covers="one block of linear multi-head self-attention; returned as a certified [lower, upper] bracket of p*",
)
def linear_attention_program(tokens, targets, beta: float, *, loss: str = "squared", pool: bool = False,
                             classes: int | None = None, solver: str | None = None, gap_tol: float = GAP_TOL,
                             **solver_options) -> ConvexSolution:
    r"""Solve the convex program of linear self-attention (Theorem 3.1) and certify its optimum.

    .. math:: \min_{W}\sum_iF\Big(\sum_jX_iW_{1j}X_i^\top X_iW_{2j}\Big)+\tfrac\beta2\sum_j\|W_{1j}\|_F^2+\|W_{2j}\|_F^2=\min_{Z\in\mathbb R^{d^2\times dc}}\sum_iF\Big(\sum_{k,\ell}G_i[k,\ell]X_iZ^{(k,\ell)}\Big)+\beta\|Z\|_*

    with :math:`G_i=X_i^\top X_i`, equal to the non-convex optimum with :math:`m\ge m^*\le\min(d^2,dc)` heads (proof in the module docstring).
    ``tokens``: ``(n, s, d)``; ``targets``: ``(n, s, c)`` (``squared``), ``(n, c)`` with ``pool=True``, or ``(n,)``
    labels (``cross_entropy``, pooled). Returns a :class:`ConvexSolution` (``lower``/``upper`` bracket the optimum);
    :func:`recover_heads` gives the weights.
    """
    prob = _attention_problem(tokens, targets, beta, None, loss, pool, classes, "linear_attention")
    return solve(prob, solver=solver, gap_tol=gap_tol, **solver_options)


@register(
    "convex.gated_relu_attention",
    value=lambda sol: sol.lower,
    norm="none",
    kind="exact",
    assumptions=("gated-ReLU attention with P fixed gates H_g, masks 1{X H_g X^T >= 0}",
                 "heads grouped by gate, at least rank Z_g* heads on gate g", "F convex"),
    source="derived here (fixed gates, proof in theory/convex_attention.py); cf. Sahiner et al., ICML 2022, Sec. 3-4 "
    "(statement for non-linear attention not recoverable here)",
    confidence="derived",
    covers="one block of gated-ReLU multi-head self-attention with fixed gates",
    notes="The paper's own non-linear theorem and m* could not be read (docs/research/seed_papers.md C.4 [X]); the gates are a "
    "parameter and m* <= P min(d^2, dc) is the bound of the fixed-gate program.",
)
def gated_relu_attention_program(tokens, targets, beta: float, gates, *, loss: str = "squared", pool: bool = False,
                                 classes: int | None = None, solver: str | None = None, gap_tol: float = GAP_TOL,
                                 **solver_options) -> ConvexSolution:
    r"""Solve the convex program of gated-ReLU self-attention with fixed gates ``(P, d, d)`` and certify it.

    .. math:: \min_{W}\sum_iF\Big(\sum_j(M^{(i)}_{g(j)}\odot X_iW_{1j}X_i^\top)X_iW_{2j}\Big)+\tfrac\beta2\sum_j\|W_{1j}\|_F^2+\|W_{2j}\|_F^2=\min_{Z_g}\sum_iF\Big(\sum_g\mathcal A^{(i)}_g(Z_g)\Big)+\beta\sum_g\|Z_g\|_*

    with the masked Gram :math:`\tilde G^{(i)}_g[t;k,\ell]=\sum_{t'}\mathbb 1\{x_t^\top H_gx_{t'}\ge0\}x_{t'}[k]x_{t'}[\ell]`.
    *Derived* (the paper's non-linear statement was not readable): exact for fixed gates by the module's proof.
    """
    x = as_tokens(tokens)
    _gates("gates", gates, (x.shape[2], x.shape[2]))
    prob = _attention_problem(x, targets, beta, gates, loss, pool, classes, "gated_attention")
    return solve(prob, solver=solver, gap_tol=gap_tol, **solver_options)


@register(
    "convex.mlp_head",
    value=lambda sol: sol.lower,
    norm="none",
    kind="exact",
    assumptions=("two-layer head, linear (D = I) or gated ReLU with P fixed gates", "m >= sum_g rank Z_g*",
                 "F convex"),
    source="Sahiner et al., ICML 2022, eq. (8) (gated ReLU) and the linear case, as restated in Sahiner et al. "
    "ICLR 2024, eqs. 2 and 6; Mishkin, Sahiner, Pilanci, ICML 2022",
    confidence="derived",
    covers="two-layer linear or gated-ReLU head applied per token (optionally pooled)",
)
def mlp_head_program(tokens, targets, beta: float, gates=None, *, loss: str = "squared", pool: bool = False,
                     classes: int | None = None, solver: str | None = None, gap_tol: float = GAP_TOL,
                     **solver_options) -> ConvexSolution:
    r"""Solve the convex program of a two-layer (linear or gated-ReLU) head and certify it.

    .. math:: \min_{w}F\Big(\sum_jD_{g(j)}Xw_{1j}w_{2j}^\top\Big)+\tfrac\beta2\sum_j\|w_{1j}\|^2+\|w_{2j}\|^2=\min_{Z_g\in\mathbb R^{d\times c}}F\Big(\sum_gD_gXZ_g\Big)+\beta\sum_g\|Z_g\|_*

    with :math:`m^*\le P\min(d,c)`. ``gates``: ``(P, d)`` gate vectors, or ``None`` for the linear two-layer network (:math:`D=I`, :math:`P=1`).
    ``tokens`` may be ``(n, d)`` (one token per sample) or ``(n, s, d)`` (the head acts per token).
    """
    x = as_tokens(tokens)
    loss = choice("loss", loss, LOSSES)
    c = target_matrix(targets, loss, x.shape[0], x.shape[1], pool or loss == "cross_entropy", classes)[1]
    kind = "linear_mlp" if gates is None else "gated_mlp"
    prob = lifted_problem(mlp_lifting(x, gates), targets, beta, block_shape=(x.shape[2], c), loss=loss, kind=kind,
                          pool=pool, classes=classes)
    return solve(prob, solver=solver, gap_tol=gap_tol, **solver_options)

