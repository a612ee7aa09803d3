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
(``shared/research/seed_papers.md`` §C.4): the gates are a parameter.

References: Sahiner, Ergen, Ozturkler, Pauly, Mardani, Pilanci, *Unraveling Attention via Convex Duality:
Analysis and Interpretations of Vision Transformers*, ICML 2022 (arXiv 2205.08078); Pilanci & Ergen,
*Neural Networks are Convex Regularizers*, ICML 2020; Mishkin, Sahiner, Pilanci, *Fast Convex Optimization for
Two-Layer ReLU Networks*, ICML 2022 (gated ReLU).
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass

import numpy as np

from .validate import InputError, as_real_array, choice, positive_float, positive_int
from ..io.errors import SolveError
from .numerics import round_down, round_up
from .registry import register

__all__ = [
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

LOSSES = ("squared", "cross_entropy")
SOLVERS = ("CLARABEL", "SCS", "CVXOPT")
DEFAULT_SOLVER = "CLARABEL"
#: relative duality gap a solve must certify (the verification suite asks 1e-6 of the recovered weights)
GAP_TOL = 1e-7
#: Clarabel's defaults (1e-8) leave exponential-cone (cross-entropy) solves with certified gaps near 1e-5;
#: these tighter tolerances reach ~1e-10 at the sizes used here (measured), at about twice the time
CLARABEL_OPTIONS = {"tol_gap_abs": 1e-12, "tol_gap_rel": 1e-12, "tol_feas": 1e-12, "tol_ktratio": 1e-10}
#: singular values below RANK_TOL * (largest singular value over all blocks) are not recovered as heads
RANK_TOL = 1e-6


class ConvexSolveError(SolveError):
    """The convex program could not be solved or certified (status, or duality gap above tolerance)."""


# --------------------------------------------------------------------------- validation
def as_tokens(tokens) -> np.ndarray:
    """``(n, s, d)`` token arrays; ``(n, d)`` is read as one token per sample."""
    x = as_real_array("tokens", tokens, ndim=(2, 3))
    return x[:, None, :] if x.ndim == 2 else x


def target_matrix(targets, loss: str, n: int, s: int, pool: bool, classes: int | None) -> tuple[np.ndarray, int]:
    """Targets as a float matrix ``(N, c)``: squared-loss values, or one-hot labels for cross-entropy.

    Squared loss: ``(n, c)`` (or ``(n,)``) when pooled or with one token per sample, else ``(n, s, c)``.
    Cross-entropy: ``(n,)`` integer labels in ``[0, classes)``.
    """
    if loss == "cross_entropy":
        y = as_real_array("targets", targets, ndim=1)
        if y.shape[0] != n:
            raise InputError(f"targets: expected {n} labels (one per sample), got shape {y.shape}")
        if not np.all(y == np.round(y)) or y.min() < 0:
            raise InputError("targets: cross-entropy labels must be non-negative integers")
        c = int(y.max()) + 1 if classes is None else positive_int("classes", classes)
        if y.max() >= c:
            raise InputError(f"targets: label {int(y.max())} is out of range for classes={c}")
        return np.eye(c)[y.astype(int)], c
    y = as_real_array("targets", targets, ndim=(1, 2, 3))
    if pool or s == 1:
        y = y[:, None] if y.ndim == 1 else y
        if y.ndim != 2 or y.shape[0] != n:
            raise InputError(f"targets: expected shape (n, c) with n={n}, got {y.shape}")
        return y, y.shape[1]
    if y.shape[:2] != (n, s) or y.ndim != 3:
        raise InputError(f"targets: expected shape (n, s, c) with n={n}, s={s}, got {y.shape}")
    return y.reshape(n * s, y.shape[2]), y.shape[2]


def _gates(name: str, gates, shape_tail: tuple[int, ...]) -> np.ndarray:
    g = as_real_array(name, gates, ndim=len(shape_tail) + 1)
    if g.shape[1:] != shape_tail:
        raise InputError(f"{name}: expected shape (P, {', '.join(map(str, shape_tail))}), got {g.shape}")
    return g


# --------------------------------------------------------------------------- liftings
def attention_masks(tokens, gates=None) -> np.ndarray:
    r"""Masks :math:`M^{(i)}_g=\mathbb 1\{X_iH_gX_i^\top\ge0\}`, shape ``(P, n, s, s)``; all ones without gates."""
    x = as_tokens(tokens)
    n, s, d = x.shape
    if gates is None:
        return np.ones((1, n, s, s))
    h = _gates("gates", gates, (d, d))
    return (np.einsum("ita,gab,iub->gitu", x, h, x) >= 0).astype(np.float64)


def attention_lifting(tokens, gates=None) -> np.ndarray:
    r"""Lifted features :math:`U_g[(i,t),(k,a,\ell)]=X_i[t,a]\,\tilde G^{(i)}_g[t;k,\ell]`, shape ``(P, n, s, d^3)``.

    :math:`\tilde G^{(i)}_g[t;k,\ell]=\sum_{t'}M^{(i)}_g[t,t']X_i[t',k]X_i[t',\ell]` (the Gram matrix
    :math:`X_i^\top X_i` for every t when unmasked). The column order :math:`(k,a,\ell)` matches the C-order reshape
    of :math:`Z\in\mathbb R^{d^2\times dc}` to :math:`\mathbb R^{d^3\times c}` (row :math:`(k,a)`, column :math:`(\ell,b)`).
    """
    x = as_tokens(tokens)
    n, s, d = x.shape
    if gates is None:
        gram = np.einsum("iuk,iul->ikl", x, x)[None, :, None]  # (1, n, 1, d, d), the same for every t
        gram = np.broadcast_to(gram, (1, n, s, d, d))
    else:
        gram = np.einsum("gitu,iuk,iul->gitkl", attention_masks(x, gates), x, x)
    return np.einsum("ita,gitkl->gitkal", x, gram).reshape(gram.shape[0], n, s, d**3)


def mlp_masks(tokens, gates=None) -> np.ndarray:
    r"""Gate patterns :math:`\mathbb 1\{x_t^\top h_g\ge0\}` of the two-layer head, shape ``(P, n, s)``; ones without gates."""
    x = as_tokens(tokens)
    if gates is None:
        return np.ones((1, *x.shape[:2]))
    h = _gates("gates", gates, (x.shape[2],))
    return (np.einsum("itd,gd->git", x, h) >= 0).astype(np.float64)


def mlp_lifting(tokens, gates=None) -> np.ndarray:
    r"""Lifted features of the two-layer head: :math:`D_gX` per token, shape ``(P, n, s, d)``.

    ``gates``: ``(P, d)`` gate vectors :math:`h_g` (:math:`D_g=\mathrm{diag}(\mathbb 1\{Xh_g\ge0\})`), or ``None``
    for the linear two-layer network (:math:`P=1`, :math:`D=I`).
    """
    x = as_tokens(tokens)
    return mlp_masks(x, gates)[..., None] * x[None]


# --------------------------------------------------------------------------- losses
def loss_value(loss: str, pred: np.ndarray, targets: np.ndarray) -> float:
    """:math:`F`: ``squared`` :math:`\\frac12\\|\\hat Y-Y\\|_F^2`; ``cross_entropy`` :math:`\\sum_i\\mathrm{lse}(L_i)-L_{i,y_i}` (one-hot Y)."""
    if loss == "squared":
        return 0.5 * float(np.sum((pred - targets) ** 2))
    top = pred.max(axis=1, keepdims=True)
    lse = np.log(np.exp(pred - top).sum(axis=1)) + top[:, 0]
    return float(np.sum(lse - np.sum(pred * targets, axis=1)))


def loss_gradient(loss: str, pred: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """:math:`\\nabla F`: the residual, or softmax minus one-hot."""
    if loss == "squared":
        return pred - targets
    e = np.exp(pred - pred.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True) - targets


# --------------------------------------------------------------------------- the program
@dataclass(frozen=True)
class LiftedProblem:
    r""":math:`\min_Z F\big(\sum_g U_g\,\mathrm{reshape}(Z_g,(pq,c))\big)+\beta\sum_g\|Z_g\|_*`, all in float64.

    ``features``: ``(P, N, p*q)``; ``block_shape``: ``(p, q*c)``; ``targets``: ``(N, c)`` (one-hot for
    cross-entropy); ``kind`` names the lifting (used for :math:`m^*` and weight recovery).
    """

    features: np.ndarray
    block_shape: tuple[int, int]
    targets: np.ndarray
    loss: str
    beta: float
    kind: str

    @property
    def blocks(self) -> int:
        return self.features.shape[0]

    @property
    def classes(self) -> int:
        return self.targets.shape[1]

    def predictions(self, z: np.ndarray) -> np.ndarray:
        """:math:`\\sum_g U_g\\,\\mathrm{reshape}(Z_g)`, shape ``(N, c)``."""
        p, qc = self.block_shape
        flat = np.asarray(z, dtype=np.float64).reshape(self.blocks, p * qc // self.classes, self.classes)
        return np.einsum("gnk,gkc->nc", self.features, flat)

    def adjoint(self, residual: np.ndarray) -> np.ndarray:
        """:math:`\\mathcal A_g^*(R)=\\mathrm{reshape}(U_g^\\top R)`, shape ``(P, p, q c)``."""
        return np.einsum("gnk,nc->gkc", self.features, residual).reshape(self.blocks, *self.block_shape)

    def loss_value(self, pred: np.ndarray) -> float:
        return loss_value(self.loss, pred, self.targets)

    def loss_gradient(self, pred: np.ndarray) -> np.ndarray:
        return loss_gradient(self.loss, pred, self.targets)

    def conjugate_lower(self, lam: np.ndarray) -> float:
        """:math:`-F^*(\\Lambda)` for a dual point of the form :math:`\\alpha\\nabla F` (so the domain is respected)."""
        if self.loss == "squared":
            return -0.5 * float(np.sum(lam**2)) - float(np.sum(lam * self.targets))
        q = np.clip(lam + self.targets, 0.0, 1.0)
        return -float(np.sum(np.where(q > 0, q * np.log(np.where(q > 0, q, 1.0)), 0.0)))

    def objective(self, z: np.ndarray) -> float:
        """The convex objective at ``z`` (float64; nuclear norms by LAPACK SVD)."""
        z = np.asarray(z, dtype=np.float64).reshape(self.blocks, *self.block_shape)
        nuc = sum(float(np.linalg.svd(b, compute_uv=False).sum()) for b in z)
        return self.loss_value(self.predictions(z)) + self.beta * nuc


def lifted_problem(features, targets, beta: float, *, block_shape: tuple[int, int], loss: str = "squared",
                   kind: str = "custom", pool: bool = False, classes: int | None = None) -> LiftedProblem:
    """Assemble a :class:`LiftedProblem` from liftings ``(P, n, s, K)`` and per-sample or per-token targets.

    ``pool``: average the lifted features over tokens (global average pooling before the loss); cross-entropy
    always pools (one label per sample).
    """
    loss = choice("loss", loss, LOSSES)
    beta = positive_float("beta", beta)
    u = as_real_array("features", features, ndim=4)
    P, n, s, k = u.shape
    pool = pool or loss == "cross_entropy"
    y, c = target_matrix(targets, loss, n, s, pool, classes)
    p, qc = block_shape
    if p * qc != k * c:
        raise InputError(f"block_shape: {block_shape} does not hold {k} lifted features x {c} outputs")
    u = u.mean(axis=2) if pool else u.reshape(P, n * s, k)
    return LiftedProblem(np.ascontiguousarray(u), (int(p), int(qc)), y, loss, beta, kind)


@dataclass(frozen=True)
class ConvexSolution:
    """A certified solve: ``lower <= p* <= upper`` (rounded outward); ``z`` holds the solver's blocks."""

    problem: LiftedProblem
    z: np.ndarray
    upper: float
    lower: float
    gap: float
    solver: str
    status: str
    seconds: float

    @property
    def value(self) -> float:
        """The certified lower bound on the optimum (what the properties compare against)."""
        return self.lower

    def as_dict(self) -> dict:
        return {"upper": self.upper, "lower": self.lower, "gap": self.gap, "solver": self.solver,
                "status": self.status, "seconds": self.seconds, "kind": self.problem.kind,
                "heads": len(recover_heads(self).gate), "m_star": m_star(self.problem)}


def certificate(problem: LiftedProblem, z) -> tuple[float, float]:
    """``(primal, dual)``: the float64 objective at ``z`` and a dual lower bound on :math:`p^*` (module docstring).

    Not rounded and never raising on a large gap (for progress reports); :func:`certify` is the checked version.
    """
    z = as_real_array("z", z, ndim=3)
    if z.shape != (problem.blocks, *problem.block_shape):
        raise InputError(f"z: expected shape {(problem.blocks, *problem.block_shape)}, got {z.shape}")
    grad = problem.loss_gradient(problem.predictions(z))
    dual_norm = max(float(np.linalg.svd(b, compute_uv=False)[0]) for b in problem.adjoint(grad))
    dual_norm *= 1.0 + 1e-12  # guard the SVD's relative error so that Lambda stays dual feasible
    alpha = 1.0 if dual_norm <= problem.beta else problem.beta / dual_norm
    return problem.objective(z), problem.conjugate_lower(alpha * grad)


def certify(problem: LiftedProblem, z, *, solver: str = "given", status: str = "given", seconds: float = 0.0,
            gap_tol: float = GAP_TOL) -> ConvexSolution:
    """Certify blocks ``z`` of ``problem``: float64 primal value and a dual lower bound (module docstring).

    Raises :class:`ConvexSolveError` if the relative gap exceeds ``gap_tol``.
    """
    gap_tol = positive_float("gap_tol", gap_tol)
    primal, dual = certificate(problem, z)
    upper, lower = round_up(primal), round_down(dual)
    gap = (upper - lower) / max(abs(upper), 1e-300)
    if not (upper - lower <= gap_tol * abs(upper) + 1e-12):
        raise ConvexSolveError(f"solver: {solver} ({status}) certified only a relative gap of {gap:.3g} "
                               f"(primal {primal:.12g}, dual {dual:.12g}) > gap_tol={gap_tol:g}; no value returned")
    return ConvexSolution(problem, np.asarray(z, dtype=np.float64), upper, lower, max(gap, 0.0), solver, status,
                          seconds)


@dataclass
class PolishResult:
    """Blocks ``z`` after :func:`proximal_polish`, their float64 primal/dual values, relative gap, steps, seconds."""

    z: np.ndarray
    primal: float
    dual: float
    gap: float
    iterations: int
    seconds: float


def _svt(z: np.ndarray, tau: float) -> np.ndarray:
    """Singular value thresholding per block: the prox of :math:`\\tau\\|\\cdot\\|_*`."""
    u, s, vt = np.linalg.svd(z, full_matrices=False)
    return (u * np.maximum(s - tau, 0.0)[:, None, :]) @ vt


def proximal_polish(problem: LiftedProblem, z0=None, *, max_iter: int = 2000, gap_tol: float = GAP_TOL,
                    check_every: int = 25) -> PolishResult:
    r"""FISTA with gradient-based restart on :math:`F(\mathcal A(Z))+\beta\sum_g\|Z_g\|_*`, from ``z0`` (default 0).

    Step :math:`1/L`, :math:`L=\ell_F\|[U_1\cdots U_P]\|_2^2` (:math:`\ell_F=1` squared loss, :math:`1/2` cross-entropy:
    the softmax Hessian has norm at most 1/2); the prox of the nuclear norm is singular value thresholding. Stops
    when the certificate (:func:`certificate`) reaches ``gap_tol`` or after ``max_iter`` steps; never raises on
    the gap (the caller decides). Used to polish interior-point solutions and Burer-Monteiro starts.
    """
    max_iter = positive_int("max_iter", max_iter, minimum=0)
    gap_tol = positive_float("gap_tol", gap_tol)
    check_every = positive_int("check_every", check_every)
    shape = (problem.blocks, *problem.block_shape)
    z = np.zeros(shape) if z0 is None else as_real_array("z0", z0, ndim=3).copy()
    if z.shape != shape:
        raise InputError(f"z0: expected shape {shape}, got {z.shape}")
    wide = problem.features.transpose(1, 0, 2).reshape(problem.features.shape[1], -1)
    lip = (1.0 if problem.loss == "squared" else 0.5) * float(np.linalg.norm(wide, 2)) ** 2
    step = 1.0 / max(lip, 1e-300)
    start = time.perf_counter()
    primal, dual = certificate(problem, z)
    w, t, it = z.copy(), 1.0, 0
    while it < max_iter and primal - dual > gap_tol * abs(primal):
        it += 1
        grad = problem.adjoint(problem.loss_gradient(problem.predictions(w)))
        z_new = _svt(w - step * grad, step * problem.beta)
        if float(np.sum((w - z_new) * (z_new - z))) > 0:  # momentum points uphill: restart
            t = 1.0
        t_new = 0.5 * (1.0 + math.sqrt(1.0 + 4.0 * t * t))
        w = z_new + ((t - 1.0) / t_new) * (z_new - z)
        z, t = z_new, t_new
        if it % check_every == 0 or it == max_iter:
            primal, dual = certificate(problem, z)
    return PolishResult(z, primal, dual, (primal - dual) / max(abs(primal), 1e-300), it, time.perf_counter() - start)


def solve(problem: LiftedProblem, *, solver: str | None = None, gap_tol: float = GAP_TOL, polish: int = 5000,
          **solver_options) -> ConvexSolution:
    """Solve ``problem`` with cvxpy, polish with up to ``polish`` FISTA steps if the certified gap is above
    ``gap_tol``, and :func:`certify` the result (a failure raises :class:`ConvexSolveError`)."""
    import cvxpy as cp

    solver = choice("solver", (solver or DEFAULT_SOLVER).upper(), SOLVERS)
    p, qc = problem.block_shape
    c = problem.classes
    zs = [cp.Variable((p, qc)) for _ in range(problem.blocks)]
    pred = sum(problem.features[g] @ cp.reshape(zs[g], (p * qc // c, c), order="C") for g in range(problem.blocks))
    if problem.loss == "squared":
        loss = 0.5 * cp.sum_squares(pred - problem.targets)
    else:
        loss = cp.sum(cp.log_sum_exp(pred, axis=1)) - cp.sum(cp.multiply(problem.targets, pred))
    prob = cp.Problem(cp.Minimize(loss + problem.beta * sum(cp.normNuc(z) for z in zs)))
    options = {**(CLARABEL_OPTIONS if solver == "CLARABEL" else {}), **solver_options}
    start = time.perf_counter()
    try:
        with warnings.catch_warnings():  # "solution may be inaccurate": the certificate below decides
            warnings.simplefilter("ignore", UserWarning)
            prob.solve(solver=solver, **options)
    except cp.SolverError as exc:
        raise ConvexSolveError(f"solver: {solver} failed: {exc}") from exc
    seconds = time.perf_counter() - start
    if prob.status not in ("optimal", "optimal_inaccurate") or any(z.value is None for z in zs):
        raise ConvexSolveError(f"solver: {solver} returned status {prob.status!r}; no value returned")
    z = np.stack([z.value for z in zs])
    status = prob.status
    primal, dual = certificate(problem, z)
    if primal - dual > gap_tol * abs(primal):  # interior-point accuracy short of the target: polish (FISTA)
        res = proximal_polish(problem, z, max_iter=polish, gap_tol=gap_tol)
        z, status, seconds = res.z, f"{status}+polished({res.iterations})", seconds + res.seconds
    return certify(problem, z, solver=solver, status=status, seconds=seconds, gap_tol=gap_tol)


# --------------------------------------------------------------------------- weights
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


@register(
    "convex.m_star",
    kind="upper",
    latex=r"m^*\le P\min(\text{rows},\text{cols})\text{ of a block: }P\min(d^2,dc)\ \text{(attention)},\ P\min(d,c)\ \text{(head)}",
    assumptions=("an optimal Z of the convex program exists", "P fixed gates (P = 1: linear)"),
    source="Sahiner et al., Unraveling Attention via Convex Duality, ICML 2022, Thm 3.1 (linear attention, "
    "as restated in Sahiner et al. ICLR 2024 eq. 10); gated and head cases derived here",
    confidence="derived",
    covers="number of heads (neurons) recovered from a convex solution",
)
def m_star(problem: LiftedProblem) -> int:
    r"""The bound :math:`m^*` on the heads needed: :math:`\sum_g\mathrm{rank}Z_g\le P\min(p, qc)`."""
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
    kind="exact",
    latex=r"\min_{W}\sum_iF\Big(\sum_jX_iW_{1j}X_i^\top X_iW_{2j}\Big)+\tfrac\beta2\sum_j\|W_{1j}\|_F^2+\|W_{2j}\|_F^2"
    r"=\min_{Z\in\mathbb R^{d^2\times dc}}\sum_iF\Big(\sum_{k,\ell}G_i[k,\ell]X_iZ^{(k,\ell)}\Big)+\beta\|Z\|_*",
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

    .. math:: p^*=\min_{Z\in\mathbb R^{d^2\times dc}}\sum_iF\Big(\sum_{k,\ell}G_i[k,\ell]\,X_iZ^{(k,\ell)}\Big)+\beta\|Z\|_*,
              \qquad G_i=X_i^\top X_i,

    equal to the non-convex optimum with :math:`m\ge m^*\le\min(d^2,dc)` heads (proof in the module docstring).
    ``tokens``: ``(n, s, d)``; ``targets``: ``(n, s, c)`` (``squared``), ``(n, c)`` with ``pool=True``, or ``(n,)``
    labels (``cross_entropy``, pooled). Returns a :class:`ConvexSolution` (``lower``/``upper`` bracket the optimum);
    :func:`recover_heads` gives the weights.
    """
    prob = _attention_problem(tokens, targets, beta, None, loss, pool, classes, "linear_attention")
    return solve(prob, solver=solver, gap_tol=gap_tol, **solver_options)


@register(
    "convex.gated_relu_attention",
    kind="exact",
    latex=r"\min_{W}\sum_iF\Big(\sum_j(M^{(i)}_{g(j)}\odot X_iW_{1j}X_i^\top)X_iW_{2j}\Big)+\tfrac\beta2\sum_j\|W_{1j}\|_F^2+\|W_{2j}\|_F^2"
    r"=\min_{Z_g}\sum_iF\Big(\sum_g\mathcal A^{(i)}_g(Z_g)\Big)+\beta\sum_g\|Z_g\|_*",
    assumptions=("gated-ReLU attention with P fixed gates H_g, masks 1{X H_g X^T >= 0}",
                 "heads grouped by gate, at least rank Z_g* heads on gate g", "F convex"),
    source="derived here (fixed gates, proof in theory/convex_attention.py); cf. Sahiner et al., ICML 2022, Sec. 3-4 "
    "(statement for non-linear attention not recoverable here)",
    confidence="derived",
    covers="one block of gated-ReLU multi-head self-attention with fixed gates",
    notes="The paper's own non-linear theorem and m* could not be read (seed_papers.md C.4 [X]); the gates are a "
    "parameter and m* <= P min(d^2, dc) is the bound of the fixed-gate program.",
)
def gated_relu_attention_program(tokens, targets, beta: float, gates, *, loss: str = "squared", pool: bool = False,
                                 classes: int | None = None, solver: str | None = None, gap_tol: float = GAP_TOL,
                                 **solver_options) -> ConvexSolution:
    r"""Solve the convex program of gated-ReLU self-attention with fixed gates ``(P, d, d)`` and certify it.

    .. math:: p^*=\min_{Z_g\in\mathbb R^{d^2\times dc}}\sum_iF\Big(\sum_g\sum_{k,a,\ell}X_i[t,a]\,\tilde G^{(i)}_g[t;k,\ell]\,
              Z_g[(k,a),(\ell,\cdot)]\Big)+\beta\sum_g\|Z_g\|_*

    with the masked Gram :math:`\tilde G^{(i)}_g[t;k,\ell]=\sum_{t'}\mathbb 1\{x_t^\top H_gx_{t'}\ge0\}x_{t'}[k]x_{t'}[\ell]`.
    *Derived* (the paper's non-linear statement was not readable): exact for fixed gates by the module's proof.
    """
    x = as_tokens(tokens)
    _gates("gates", gates, (x.shape[2], x.shape[2]))
    prob = _attention_problem(x, targets, beta, gates, loss, pool, classes, "gated_attention")
    return solve(prob, solver=solver, gap_tol=gap_tol, **solver_options)


@register(
    "convex.mlp_head",
    kind="exact",
    latex=r"\min_{w}F\Big(\sum_jD_{g(j)}Xw_{1j}w_{2j}^\top\Big)+\tfrac\beta2\sum_j\|w_{1j}\|^2+\|w_{2j}\|^2"
    r"=\min_{Z_g\in\mathbb R^{d\times c}}F\Big(\sum_gD_gXZ_g\Big)+\beta\sum_g\|Z_g\|_*",
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

    .. math:: p^*=\min_{Z_g\in\mathbb R^{d\times c}}F\Big(\sum_{g=1}^PD_gXZ_g\Big)+\beta\sum_g\|Z_g\|_*,
              \qquad m^*\le P\min(d,c)

    ``gates``: ``(P, d)`` gate vectors, or ``None`` for the linear two-layer network (:math:`D=I`, :math:`P=1`).
    ``tokens`` may be ``(n, d)`` (one token per sample) or ``(n, s, d)`` (the head acts per token).
    """
    x = as_tokens(tokens)
    loss = choice("loss", loss, LOSSES)
    c = target_matrix(targets, loss, x.shape[0], x.shape[1], pool or loss == "cross_entropy", classes)[1]
    kind = "linear_mlp" if gates is None else "gated_mlp"
    prob = lifted_problem(mlp_lifting(x, gates), targets, beta, block_shape=(x.shape[2], c), loss=loss, kind=kind,
                          pool=pool, classes=classes)
    return solve(prob, solver=solver, gap_tol=gap_tol, **solver_options)
