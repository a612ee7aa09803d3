"""Heads recovered from a convex solution (one per singular triple) and the non-convex objectives."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..validate import InputError, choice, positive_float
from ._data import (
    LOSSES,
    as_tokens,
    attention_masks,
    loss_value,
    mlp_lifting,
    target_matrix,
)
from ._program import ConvexSolution

#: singular values below RANK_TOL * (largest singular value over all blocks) are not recovered as heads
RANK_TOL = 1e-6


@dataclass(frozen=True)
class Heads:
    """Non-convex weights: ``first`` ``(m, d, d)`` (attention :math:`W_1`) or ``(m, d)`` (head :math:`w_1`),
    ``second`` ``(m, d, c)`` or ``(m, c)``, ``gate`` ``(m,)`` the gate index of each head."""

    first: np.ndarray
    second: np.ndarray
    gate: np.ndarray

    def __len__(self) -> int:
        return int(self.gate.shape[0])

    def penalty(self) -> float:
        r""":math:`\frac12\sum_j\|W_{1j}\|_F^2+\|W_{2j}\|_F^2` (times :math:`\beta` in the objective)."""
        return 0.5 * float(np.sum(self.first**2) + np.sum(self.second**2))


def recover_heads(solution: ConvexSolution, rank_tol: float = RANK_TOL) -> Heads:
    r"""One head per retained singular triple :math:`(s,u,v)` of each block: :math:`a=\sqrt s\,u`, :math:`b=\sqrt s\,v`.

    Attention: :math:`W_1=\mathrm{mat}_{col}(a)` (``a.reshape(d, d).T``), :math:`W_2=\mathrm{mat}_{row}(b)`
    (``b.reshape(d, c)``). Singular values :math:`\le` ``rank_tol`` times the largest one are dropped.
    """
    rank_tol = positive_float("rank_tol", rank_tol, allow_zero=True)
    prob = solution.problem
    c = prob.classes
    svds = [np.linalg.svd(b, full_matrices=False) for b in solution.z]
    top = max((float(s[0]) for _, s, _ in svds), default=0.0)
    first, second, gate = [], [], []
    for g, (u, s, vt) in enumerate(svds):
        for k in np.flatnonzero(s > rank_tol * top) if top > 0 else []:
            a, b = math.sqrt(s[k]) * u[:, k], math.sqrt(s[k]) * vt[k]
            if prob.kind.endswith("attention"):
                d = int(round(math.sqrt(a.size)))
                first.append(a.reshape(d, d).T)
                second.append(b.reshape(d, c))
            else:
                first.append(a)
                second.append(b)
            gate.append(g)
    p, qc = prob.block_shape
    if prob.kind.endswith("attention"):
        d = int(round(math.sqrt(p)))
        empty1, empty2 = (0, d, d), (0, d, c)
    else:
        empty1, empty2 = (0, p), (0, c)
    return Heads(np.array(first) if first else np.zeros(empty1), np.array(second) if second else np.zeros(empty2),
                 np.array(gate, dtype=int))


def _nonconvex_value(pred: np.ndarray, targets, loss: str, pool: bool, classes: int | None, heads: Heads,
                     beta: float) -> float:
    n, s, c = pred.shape
    pool = pool or loss == "cross_entropy"
    y, _ = target_matrix(targets, loss, n, s, pool, classes if classes is not None else c)
    out = pred.mean(axis=1) if pool else pred.reshape(n * s, c)
    return loss_value(loss, out, y) + beta * heads.penalty()


def attention_objective(tokens, targets, heads: Heads, beta: float, *, loss: str = "squared", gates=None,
                        pool: bool = False, classes: int | None = None) -> float:
    r"""The non-convex objective of m self-attention heads, in float64, from the defining formula
    :math:`\sum_j(M_{g(j)}\odot XW_{1j}X^\top)XW_{2j}` (not from the lifting: an independent re-check)."""
    x = as_tokens(tokens)
    loss = choice("loss", loss, LOSSES)
    beta = positive_float("beta", beta)
    masks = attention_masks(x, gates)
    if len(heads) and heads.gate.max() >= masks.shape[0]:
        raise InputError(f"heads: gate index {heads.gate.max()} out of range for {masks.shape[0]} gates")
    c = heads.second.shape[-1]
    pred = np.zeros((x.shape[0], x.shape[1], c))
    for w1, w2, g in zip(heads.first, heads.second, heads.gate):
        scores = masks[g] * np.einsum("ita,ab,iub->itu", x, w1, x)
        pred += np.einsum("itu,iub,bc->itc", scores, x, w2)
    return _nonconvex_value(pred, targets, loss, pool, classes, heads, beta)


def mlp_objective(tokens, targets, heads: Heads, beta: float, *, loss: str = "squared", gates=None,
                  pool: bool = False, classes: int | None = None) -> float:
    r"""The non-convex objective of the two-layer head :math:`\sum_jD_{g(j)}(Xw_{1j})w_{2j}^\top` (float64)."""
    x = as_tokens(tokens)
    loss = choice("loss", loss, LOSSES)
    beta = positive_float("beta", beta)
    lift = mlp_lifting(x, gates)  # (P, n, s, d): D_g X
    c = heads.second.shape[-1]
    pred = np.zeros((x.shape[0], x.shape[1], c))
    for w1, w2, g in zip(heads.first, heads.second, heads.gate):
        pred += np.einsum("itd,d,c->itc", lift[g], w1, w2)
    return _nonconvex_value(pred, targets, loss, pool, classes, heads, beta)


