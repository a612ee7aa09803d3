r"""Non-convex attention and two-layer heads in torch, gradient training, and a first-order convex solver.

The objectives are exactly those of :mod:`theory.convex_attention` (same losses, sums over samples, weight decay
:math:`\beta/2` on every factor), written in torch so that they can be trained:

* :func:`predictions` / :func:`objective`: m heads, each ``(W_1, W_2, gate)``; attention heads compute
  :math:`(M_g\odot XW_1X^\top)XW_2`, two-layer heads :math:`D_g(Xw_1)w_2^\top`, summed over heads (and averaged
  over tokens when pooled).
* :func:`train_heads`: L-BFGS (strong Wolfe) from a seeded random start; returns :class:`theory.convex_attention.Heads`.
* :func:`factored_solve`: the Burer-Monteiro route of Sahiner et al. (ICLR 2024) for sizes cvxpy cannot handle:
  L-BFGS on :math:`Z_g=A_gB_g^\top` with full rank and penalty :math:`\frac\beta2(\|A_g\|_F^2+\|B_g\|_F^2)` (the
  non-convex problem written in lifted coordinates), then the FISTA polish of
  :func:`theory.convex_attention.proximal_polish` from that point, which reports the float64 certificate.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from boundlab.theory import convex_attention as CA
from boundlab.theory.validate import InputError, choice, positive_float, positive_int

from ._torch import DTYPE, generator, torch_threads

__all__ = ["HEAD_KINDS", "TrainResult", "predictions", "objective", "train_heads", "factored_solve", "torch_threads"]

HEAD_KINDS = ("attention", "mlp", "relu_mlp")
#: intra-op threads for the small problems solved here. Measured (2 shared cores, load ~10): training 6 attention
#: heads on 6 x 4 x 3 tokens for 100 L-BFGS steps took 6.1 s CPU / 44 s wall with torch's default 2 threads and
#: 0.18 s CPU / 1.7 s wall with 1 (the thread pool spins on tensors of a few hundred entries)
THREADS = 1


def _masks(kind: str, tokens: np.ndarray, gates) -> np.ndarray:
    """Per-gate masks: attention ``(P, n, s, s)``; two-layer head ``(P, n, s)`` (ones without gates; unused by
    ``relu_mlp``, whose patterns follow its own first layer)."""
    return CA.attention_masks(tokens, gates) if kind == "attention" else CA.mlp_masks(tokens, gates)


def predictions(kind: str, x: torch.Tensor, first: torch.Tensor, second: torch.Tensor, gate: torch.Tensor,
                masks: torch.Tensor) -> torch.Tensor:
    r"""Per-token outputs ``(n, s, c)`` of m heads (module docstring); ``masks`` from the gates (or ones).

    ``relu_mlp`` is the ordinary (ungated) ReLU head :math:`\sum_j\max(0,Xw_{1j})w_{2j}^\top`, a baseline with no
    exact convex program of this kind.
    """
    if kind == "relu_mlp":
        return torch.einsum("itj,jc->itc", torch.relu(torch.einsum("itd,jd->itj", x, first)), second)
    if kind == "attention":
        scores = torch.einsum("ita,jab,iub->jitu", x, first, x) * masks[gate]
        return torch.einsum("jitu,iub,jbc->itc", scores, x, second)
    return torch.einsum("jit,itd,jd,jc->itc", masks[gate], x, first, second)


def _loss(loss: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if loss == "squared":
        return 0.5 * ((out - y) ** 2).sum()
    return (torch.logsumexp(out, dim=1) - (out * y).sum(dim=1)).sum()


def objective(kind: str, x: torch.Tensor, y: torch.Tensor, first, second, gate, masks, beta: float, loss: str,
              pool: bool) -> torch.Tensor:
    r""":math:`F(\mathrm{pool}(\text{predictions}))+\frac\beta2\sum_j\|W_{1j}\|_F^2+\|W_{2j}\|_F^2` (``y``: ``(N, c)``)."""
    out = predictions(kind, x, first, second, gate, masks)
    out = out.mean(dim=1) if pool else out.reshape(-1, out.shape[-1])
    return _loss(loss, out, y) + 0.5 * beta * ((first**2).sum() + (second**2).sum())


@dataclass
class TrainResult:
    """Trained weights (numpy, float64), the final objective, the number of L-BFGS iterations and seconds."""

    heads: CA.Heads
    objective: float
    iterations: int
    seconds: float


def train_heads(kind: str, tokens, targets, beta: float, *, heads: int, gates=None, loss: str = "squared",
                pool: bool = False, classes: int | None = None, steps: int = 100, seed: int = 0,
                init_scale: float = 0.5, init: CA.Heads | None = None, threads: int | None = THREADS) -> TrainResult:
    """Train ``heads`` non-convex heads (``kind`` ``"attention"``, ``"mlp"`` or ``"relu_mlp"``) with L-BFGS from a
    seeded start.

    Head j uses gate ``j % P``. ``init`` overrides the random start (e.g. recovered convex weights). ``threads``:
    torch intra-op threads during training (:data:`THREADS`; ``None`` keeps torch's setting).
    """
    kind = choice("kind", kind, HEAD_KINDS)
    loss = choice("loss", loss, CA.LOSSES)
    beta = positive_float("beta", beta)
    m = positive_int("heads", heads)
    steps = positive_int("steps", steps)
    x_np = CA.as_tokens(tokens)
    n, s, d = x_np.shape
    pool = pool or loss == "cross_entropy"
    y_np, c = CA.target_matrix(targets, loss, n, s, pool, classes)
    masks_np = _masks(kind, x_np, gates)
    dev = torch.device("cpu")
    g = generator(seed, dev)
    shape1 = (m, d, d) if kind == "attention" else (m, d)
    shape2 = (m, d, c) if kind == "attention" else (m, c)
    if init is None:
        first = torch.randn(shape1, generator=g, dtype=DTYPE) * init_scale / math.sqrt(d)
        second = torch.randn(shape2, generator=g, dtype=DTYPE) * init_scale / math.sqrt(d)
        gate = torch.arange(m) % masks_np.shape[0]
    else:
        first, second = (torch.as_tensor(a, dtype=DTYPE).clone() for a in (init.first, init.second))
        gate = torch.as_tensor(init.gate, dtype=torch.long)
    first.requires_grad_(True)
    second.requires_grad_(True)
    x = torch.as_tensor(x_np, dtype=DTYPE)
    y = torch.as_tensor(y_np, dtype=DTYPE)
    masks = torch.as_tensor(masks_np, dtype=DTYPE)
    opt = torch.optim.LBFGS([first, second], max_iter=steps, line_search_fn="strong_wolfe", tolerance_grad=1e-12,
                            tolerance_change=1e-14, history_size=20)

    def closure():
        opt.zero_grad()
        val = objective(kind, x, y, first, second, gate, masks, beta, loss, pool)
        val.backward()
        return val

    start = time.perf_counter()
    with torch_threads(threads):
        opt.step(closure)
    seconds = time.perf_counter() - start
    with torch.no_grad():
        final = float(objective(kind, x, y, first, second, gate, masks, beta, loss, pool))
    iters = int(opt.state[opt._params[0]].get("n_iter", steps))  # noqa: SLF001 - torch keeps it there
    out = CA.Heads(first.detach().numpy().copy(), second.detach().numpy().copy(), gate.numpy().copy())
    return TrainResult(out, final, iters, seconds)


def factored_solve(problem: CA.LiftedProblem, *, steps: int = 500, seed: int = 0, polish: int = 2000,
                   gap_tol: float = 1e-6, rank: int | None = None, threads: int | None = THREADS) -> CA.PolishResult:
    r"""Burer-Monteiro then FISTA: L-BFGS on :math:`F(\sum_gU_g\,\mathrm{reshape}(A_gB_g^\top))+\frac\beta2\sum_g\|A_g\|^2+\|B_g\|^2`.

    With ``rank`` = min(block shape) (the default) the factorisation can represent every Z, and
    :math:`\min_{AB^\top=Z}\frac12(\|A\|^2+\|B\|^2)=\|Z\|_*`, so its global minima are those of the convex
    program; L-BFGS reaches a stationary point fast, and up to ``polish`` FISTA steps from :math:`AB^\top` close the
    gap. The returned gap is the float64 certificate of :func:`theory.convex_attention.certificate`.
    """
    if not isinstance(problem, CA.LiftedProblem):
        raise InputError(f"problem: expected a LiftedProblem, got {type(problem).__name__}")
    steps = positive_int("steps", steps)
    polish = positive_int("polish", polish, minimum=0)
    P, (p, qc) = problem.blocks, problem.block_shape
    r = min(p, qc) if rank is None else positive_int("rank", rank)
    c = problem.classes
    k = p * qc // c
    u = torch.as_tensor(problem.features, dtype=DTYPE)
    y = torch.as_tensor(problem.targets, dtype=DTYPE)
    g = generator(seed, torch.device("cpu"))
    a = (torch.randn((P, p, r), generator=g, dtype=DTYPE) * 1e-2).requires_grad_(True)
    b = (torch.randn((P, qc, r), generator=g, dtype=DTYPE) * 1e-2).requires_grad_(True)
    opt = torch.optim.LBFGS([a, b], max_iter=steps, line_search_fn="strong_wolfe", tolerance_grad=1e-12,
                            tolerance_change=1e-15, history_size=30)

    def closure():
        opt.zero_grad()
        z = (a @ b.transpose(1, 2)).reshape(P, k, c)
        val = _loss(problem.loss, torch.einsum("gnk,gkc->nc", u, z), y)
        val = val + 0.5 * problem.beta * ((a**2).sum() + (b**2).sum())
        val.backward()
        return val

    start = time.perf_counter()
    with torch_threads(threads):
        opt.step(closure)
    z0 = (a @ b.transpose(1, 2)).detach().numpy()
    bm_seconds = time.perf_counter() - start
    res = CA.proximal_polish(problem, z0, max_iter=polish, gap_tol=gap_tol)
    res.seconds += bm_seconds
    return res
