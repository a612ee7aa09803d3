r"""LipSDP at depth: the chordal (block-tridiagonal) structure of the LipSDP LMI, used three ways.

The LMI of :mod:`theory.lipsdp`, written as :math:`A(\rho,T)=-M(\rho,T)\succeq0` with :math:`z=(x_0,\dots,x_L)`, is
block tridiagonal: block :math:`(k-1,k)` couples consecutive layers and nothing else. Its sparsity graph is
chordal with cliques :math:`C_k=\{k-1,k\}` (a chain), so

* **clique decomposition** (Agler, Helton, McCullough, Rodman 1988; Grone, Johnson, Sá, Wolkowicz 1984; used for
  LipSDP by Xue, Lindemann, Robey, Hassani, Pappas, Alur, *Chordal sparsity for Lipschitz constant estimation of
  deep neural networks*, CDC 2022, arXiv 2204.00846): :math:`A\succeq0` iff there are symmetric
  :math:`Y_1,\dots,Y_{L-1}` with every clique matrix :math:`G_k+\mathrm{diag}(Y_{k-1},-Y_k)\succeq0`, where
  :math:`A=\sum_kE_k^\top G_kE_k` is the layer-by-layer split of the LMI. Same optimum, LMIs of size
  :math:`n_{k-1}+n_k` (:func:`clique_problem`, solved through cvxpy).
* **no fill-in**: the layer order is a perfect elimination order, so the Cholesky factor of :math:`A` is block
  bidiagonal and :math:`\log\det A`, feasibility and the certificate cost :math:`O(\sum_kn_k^3)`
  (:func:`block_cholesky`, :func:`certify_chain`). The factorization *is* the clique decomposition:
  :math:`A=\sum_kE_k^\top Z_kE_k` with :math:`Z_k\succeq0` built from the k-th block column of the factor.
* **the structured interior-point method** (:class:`StructuredBarrier`, solver ``"STRUCTURED"``): a primal
  log-barrier path-following method on :math:`(\rho,\lambda)` whose Newton systems use the structure twice:
  the barrier and every line-search trial use the block Cholesky factor, and the Hessian
  :math:`H_{ij}=\mathrm{tr}(SF_iSF_j)` (:math:`S=A^{-1}`) is assembled from the rank-2 form of each multiplier's
  coefficient :math:`F_i=e_if_i^\top+f_ie_i^\top`, :math:`e_i=b_i-\alpha_ia_i`, :math:`f_i=b_i-\beta_ia_i`
  (:math:`a_i` the neuron's weight row in block :math:`k-1`, :math:`b_i` its unit vector in block :math:`k`):
  :math:`H=2(G_{ee}\circ G_{ff}+G_{ef}\circ G_{ef}^\top)` with :math:`G_{xy}=X^\top SY`, which costs a few
  :math:`N\times N` products instead of one :math:`n^3` product per multiplier. It is warm-started from ECLipsE
  (:func:`eclipse_recursion`), whose sequential Schur complements are those of the same block factorization.
* **the structured primal-dual method** (:class:`theory.lipsdp_pd.StructuredPrimalDual`, the default of
  :func:`solve_structured`): HKM directions with Mehrotra's corrector on the same Gram products, with a dense
  primal :math:`X`; it reaches the optimum in 15-51 iterations where the barrier needs up to hundreds of Newton
  steps and, on 32 x 32 ReLU chains, stops 3.7% short at its step cap (module docstring of
  :mod:`theory.lipsdp_pd`). The barrier remains the fallback and ECLipsE's per-layer solver.

Measured here (2 shared cores, one BLAS thread, cvxpy 1.9 / CVXOPT 1.3): the clique decomposition through cvxpy
is *slower* than the monolithic LMI with the available solvers (8 x 32 ReLU net: Clarabel 64 s vs CVXOPT
monolithic 18 s; its overlap variables :math:`Y_k` give a Schur complement of :math:`\sum n_k^2/2` unknowns),
so it is offered for cross-checks, and the structured method is the default solver of ``method="chordal"``;
``benchmarks/lipsdp_depth.py`` has the table.

Certification (:func:`certify_chain`), for every method of this module and of :mod:`theory.eclipse`: the full LMI
is re-assembled in float64 from :math:`(\rho,\lambda)` alone (the clique matrices, Schur complements and
barrier iterates are never trusted), and a floating-point block Cholesky factorization of
:math:`\hat A-cI` must succeed, with the shift

.. math:: c = 2\Big[\big(\tfrac{\gamma_{n+1}}{1-\gamma_{n+1}}+u\big)\,\overline{\mathrm{tr}}(\hat A)+e_{\rm asm}\Big],
    \qquad \gamma_k=\frac{ku}{1-ku},\ u=2^{-53},

where :math:`e_{\rm asm}\ge\|\hat A-A\|_2` bounds the assembly error (Frobenius-norm bound per block, summed) and
:math:`\overline{\mathrm{tr}}` is an upper bound on the computed trace. Proof: if the factorization of
:math:`\hat B=\mathrm{fl}(\hat A-cI)` succeeds, Demmel's bound (Higham, *Accuracy and Stability of Numerical
Algorithms*, 2002, Thm 10.3; it holds for any order of the inner products, hence for the blocked algorithm with
conventional matrix products, and zero blocks stay exactly zero) gives :math:`R^\top R=\hat B+\Delta`,
:math:`|\Delta|\le\gamma_{n+1}|R^\top||R|`, so :math:`\|\Delta\|_2\le\gamma_{n+1}\|R\|_F^2\le
\frac{\gamma_{n+1}}{1-\gamma_{n+1}}\mathrm{tr}\hat B` and
:math:`\lambda_{\min}(A)\ge c-u\max_i|\hat A_{ii}-c|-\frac{\gamma_{n+1}}{1-\gamma_{n+1}}\mathrm{tr}\hat B-e_{\rm asm}>0`
(the argument of Rump, *Verification of positive definiteness*, BIT 46, 2006). Gradual underflow is not
modelled (no subnormal appears at the scales used: weights are normalised per layer). :math:`\rho` only enters the
input block, so the factorization runs in reverse block order and the smallest certifiable :math:`\rho` is read
off the last pivot; it is then re-checked by a complete factorization. A failure raises
:class:`~theory.lipsdp.LipSDPError`.

Fixed slopes: a neuron whose slope interval is a point :math:`\alpha_i=\beta_i=s` (a stable neuron of a local
analysis, the identity activation) makes :math:`-F_i\succeq0`, so the barrier would push :math:`\lambda_i\to\infty`;
its interval is widened to :math:`[s-\kappa|s|,s]` (``fixed_slope_width`` :math:`\kappa`, default
:math:`10^{-3}`), which contains the true slope, so every certificate stays valid. A neuron with slope exactly 0
is constant and is removed (exact).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
from scipy.linalg import cho_factor, cho_solve, lapack, solve_triangular

from .numerics import UNIT_ROUNDOFF
from .validate import InputError, choice

__all__ = ["Chain", "chain_blocks", "block_cholesky", "certify_chain", "min_rho", "StructuredBarrier",
           "BarrierResult", "eclipse_recursion", "solve_structured", "clique_problem", "FIXED_SLOPE_WIDTH",
           "STRUCTURED", "certify_with_original", "balance_chain"]

#: relative widening of a point slope interval (see the module docstring)
FIXED_SLOPE_WIDTH = 1e-3
#: the name of the structured interior-point solver
STRUCTURED = "STRUCTURED"

_U = UNIT_ROUNDOFF


def _gamma(k: int) -> float:
    return k * _U / (1.0 - k * _U)


def _error():
    from .lipsdp import LipSDPError

    return LipSDPError


# --------------------------------------------------------------------------------------------------------------
# the chain: weights and per-neuron slopes
# --------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Chain:
    r"""A feed-forward chain :math:`W_L\phi(\cdots\phi(W_0x))` with per-neuron slope intervals.

    ``weights``: ``W_0..W_L``, each ``(out, in)``; ``alpha``, ``beta``: shape ``(N,)``, ``N`` the number of hidden
    neurons in layer order, :math:`\alpha_i\le(\phi_i(a)-\phi_i(b))/(a-b)\le\beta_i`. Built by :meth:`from_net`
    (global slopes) or by :mod:`theory.lipsdp_local` (slopes from interval bounds).
    """

    weights: tuple
    alpha: np.ndarray
    beta: np.ndarray

    @classmethod
    def from_net(cls, net, alpha=None, beta=None) -> "Chain":
        """The chain of a non-residual :class:`~theory.lipsdp.FeedForward` (slopes: the net's, or per neuron)."""
        if getattr(net, "residual", False):
            raise InputError("method: the chordal and ECLipsE methods need a feed-forward chain; a residual block "
                             "is solved monolithically (method='monolithic')")
        ws = tuple(np.asarray(w, dtype=np.float64) for w in net.weights)
        n_hidden = sum(w.shape[0] for w in ws[:-1])
        a = np.full(n_hidden, float(net.alpha)) if alpha is None else np.asarray(alpha, dtype=np.float64)
        b = np.full(n_hidden, float(net.beta)) if beta is None else np.asarray(beta, dtype=np.float64)
        if a.shape != (n_hidden,) or b.shape != (n_hidden,):
            raise InputError(f"alpha: expected per-neuron slopes of shape ({n_hidden},), got {a.shape}, {b.shape}")
        if np.any(a > b) or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
            raise InputError("alpha: expected finite per-neuron slopes with alpha <= beta")
        return cls(ws, a, b)

    @property
    def sizes(self) -> list[int]:
        return [self.weights[0].shape[1], *[w.shape[0] for w in self.weights[:-1]]]

    @property
    def depth(self) -> int:
        """Number of hidden layers L."""
        return len(self.weights) - 1

    @property
    def n_hidden(self) -> int:
        return int(sum(w.shape[0] for w in self.weights[:-1]))

    @property
    def lmi_size(self) -> int:
        return int(sum(self.sizes))

    def layer_slices(self) -> list[slice]:
        """Slices of ``alpha``/``beta``/multipliers per hidden layer."""
        off = np.concatenate([[0], np.cumsum(self.sizes[1:])]).astype(int)
        return [slice(int(off[k]), int(off[k + 1])) for k in range(self.depth)]

    def relaxed(self, width: float = FIXED_SLOPE_WIDTH) -> "Chain":
        r"""Point intervals :math:`\alpha_i=\beta_i=s\ne0` widened to :math:`[s-\kappa|s|,s]` (module docstring)."""
        a, b = self.alpha.copy(), self.beta.copy()
        fixed = a == b
        if np.any(fixed & (a == 0)):
            raise InputError("alpha: a neuron with slope interval [0, 0] is constant; drop it first (Chain.pruned)")
        a[fixed] = a[fixed] - width * np.abs(a[fixed])
        return Chain(self.weights, a, b)

    def pruned(self) -> "Chain | None":
        """The chain without its constant neurons (slope interval [0, 0]); ``None`` if a whole layer is constant."""
        keep_all = ~((self.alpha == 0) & (self.beta == 0))
        if keep_all.all():
            return self
        ws = list(self.weights)
        sl = self.layer_slices()
        alphas, betas = [], []
        for k, s in enumerate(sl):
            keep = keep_all[s]
            if not keep.any():
                return None
            ws[k] = ws[k][keep]
            ws[k + 1] = ws[k + 1][:, keep]
            alphas.append(self.alpha[s][keep])
            betas.append(self.beta[s][keep])
        return Chain(tuple(ws), np.concatenate(alphas), np.concatenate(betas))

    def scaled(self, scales) -> "Chain":
        """The chain with ``W_k / scales[k]`` (slopes unchanged)."""
        return Chain(tuple(w / s for w, s in zip(self.weights, scales)), self.alpha, self.beta)

    def reduced(self) -> "Chain":
        r"""The exact reductions of :func:`theory.lipsdp.reduce_network` on the chain (slopes unchanged): a first
        weight with fewer rows than columns replaced by :math:`U\Sigma` of its SVD, a last weight with more rows
        than columns by its :math:`R` factor; ``self`` when neither applies. The LMI of the reduced chain has the
        same feasible :math:`(\rho,\lambda)` in exact arithmetic; its float64 factors are not trusted (every
        certificate is re-checked on the original chain: :func:`certify_with_original`)."""
        ws = list(self.weights)
        changed = False
        if ws[0].shape[0] < ws[0].shape[1]:
            u, sv, _ = np.linalg.svd(ws[0], full_matrices=False)
            ws[0] = u * sv
            changed = True
        if len(ws) > 1 and ws[-1].shape[0] > ws[-1].shape[1]:
            ws[-1] = np.linalg.qr(ws[-1], mode="r")
            changed = True
        return Chain(tuple(ws), self.alpha, self.beta) if changed else self


# --------------------------------------------------------------------------------------------------------------
# assembly, block Cholesky, minimal rho, certificate
# --------------------------------------------------------------------------------------------------------------

def chain_blocks(chain: Chain, rho: float, lam: np.ndarray, *, output: bool = True):
    r"""Blocks of :math:`A=-M(\rho,\mathrm{diag}\lambda)`: diagonal blocks ``D[0..L]`` and ``B[k-1]`` = block
    :math:`(k-1,k)`, so that :math:`A=\mathrm{tridiag}(B^\top,D,B)`; ``output=False`` leaves out
    :math:`-W_L^\top W_L`.

    With :math:`c_1=-2\alpha\beta`, :math:`c_2=\alpha+\beta` per neuron, :math:`T_k=\mathrm{diag}(\lambda_k)`:
    :math:`D_0=\rho I-W_0^\top c_1T_1W_0`, :math:`D_k=2T_k-W_k^\top c_1T_{k+1}W_k`, :math:`D_L=2T_L-W_L^\top W_L`,
    :math:`B_k=-W_{k-1}^\top c_2T_k`.
    """
    ws = chain.weights
    lam = np.asarray(lam, dtype=np.float64)
    D = [float(rho) * np.eye(ws[0].shape[1])]
    B = []
    c1 = -2.0 * chain.alpha * chain.beta
    c2 = chain.alpha + chain.beta
    for k, s in enumerate(chain.layer_slices(), start=1):
        w = ws[k - 1]
        lk = lam[s]
        v1 = c1[s] * lk
        if np.any(v1):
            D[k - 1] = D[k - 1] - w.T @ (v1[:, None] * w)
        dk = np.zeros((lk.size, lk.size))
        dk.flat[::lk.size + 1] = 2.0 * lk
        D.append(dk)
        B.append(-(w.T * (c2[s] * lk)))
    if output:
        wl = ws[-1]
        D[-1] = D[-1] - wl.T @ wl
    return D, B


def _potrf(m: np.ndarray):
    c, info = lapack.dpotrf(m, lower=1, clean=1, overwrite_a=0)
    return c if info == 0 else None


def _trsm(lower_factor: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """``L^{-1} rhs`` for a lower-triangular ``L`` (LAPACK dtrtrs, no wrapper overhead)."""
    x, info = lapack.dtrtrs(lower_factor, rhs, lower=1)
    if info != 0:
        raise np.linalg.LinAlgError("singular triangular factor")
    return x


def block_cholesky(D, B):
    r"""Block Cholesky factor of the block-tridiagonal :math:`\mathrm{tridiag}(B^\top,D,B)` in layer order.

    Returns ``(Ls, Cs)`` with ``Ls[k]`` the lower-triangular diagonal block and ``Cs[k-1]`` the block
    :math:`(k,k-1)` of the factor (no fill-in), or ``None`` if a pivot block is not positive definite.
    """
    Ls, Cs = [], []
    for k in range(len(D)):
        m = D[k]
        if k > 0:
            c = _trsm(Ls[k - 1], B[k - 1]).T
            m = m - c @ c.T
            Cs.append(c)
        lk = _potrf(m)
        if lk is None:
            return None
        Ls.append(lk)
    return Ls, Cs


def min_rho(chain: Chain, lam: np.ndarray) -> float:
    r"""The smallest :math:`\rho` with :math:`A(\rho,\lambda)\succ0` (float64, not certified), ``inf`` if none.

    :math:`\rho` enters only block 0, so the backward Schur complements :math:`S_L,\dots,S_1` do not depend on it
    and :math:`\rho^\star=\lambda_{\max}(B_1S_1^{-1}B_1^\top-D_0|_{\rho=0})`; computed on the block-equilibrated
    matrix (power-of-two scales of the hidden blocks, exact).
    """
    D, B = chain_blocks(chain, 0.0, lam)
    d = _equilibration(D)
    d[0] = 1.0
    L = len(D) - 1
    s = (d[L] * d[L]) * D[L]
    for k in range(L, 0, -1):
        fac = _potrf(s)
        if fac is None:
            return math.inf
        y = _trsm(fac, np.ascontiguousarray((d[k - 1] * d[k]) * B[k - 1].T))
        s = (d[k - 1] * d[k - 1]) * D[k - 1] - y.T @ y
    return _lambda_max(-(s + s.T) / 2)


def _assembly_errors(chain: Chain, rho: float, lam: np.ndarray) -> tuple[list[float], list[float]]:
    r"""Upper bounds on :math:`\|\hat D_k-D_k\|_2` and :math:`\|\hat B_k-B_k\|_2` (float64 assembly vs exact):
    :math:`\gamma_{w+4}` times a Frobenius-norm bound of the block's terms in absolute value
    (:math:`\||W|^\top|V||W|\|_2\le\max|V|\,\|W\|_F^2`), plus the rounding of the sums into the block."""
    ws = chain.weights
    lam = np.abs(np.asarray(lam, dtype=np.float64))
    c1 = np.abs(2.0 * chain.alpha * chain.beta)
    c2 = np.abs(chain.alpha + chain.beta)
    g = _gamma(max(max(w.shape) for w in ws) + 4)
    L = chain.depth
    diag = [0.0] * (L + 1)
    off = [0.0] * L
    diag[0] = _U * abs(rho)
    for k, s in enumerate(chain.layer_slices(), start=1):
        w = ws[k - 1]
        fro2 = float(np.sum(w * w))
        lk = lam[s]
        diag[k - 1] += g * float(np.max(c1[s] * lk)) * fro2 * 1.01
        diag[k] += _U * 2.0 * float(np.max(lk)) * 1.01
        off[k - 1] = g * float(np.max(c2[s] * lk)) * math.sqrt(fro2) * 1.01
    diag[L] += g * float(np.sum(ws[-1] * ws[-1])) * 1.01
    return diag, off


def _equilibration(D) -> np.ndarray:
    """Power-of-two block scales d_k with d_k^2 max(diag D_k) in [1, 4): D A D is exact in float64."""
    out = []
    for d in D:
        top = float(np.max(np.abs(np.diagonal(d)))) if d.size else 1.0
        e = -math.floor(math.log2(top) / 2) if top > 0 and math.isfinite(top) else 0
        out.append(math.ldexp(1.0, int(e)))
    return np.array(out)


def _shift(chain: Chain, rho_max: float, lam: np.ndarray, d: np.ndarray) -> tuple[float, float]:
    """``(shift c, slack)`` for the block-scaled matrix D A D (any rho <= rho_max): a successful factorization of
    fl(D A D - c I) proves lambda_min(D A D) >= c - slack > 0 (module docstring)."""
    D, _ = chain_blocks(chain, rho_max, lam)
    n = chain.lmi_size
    trace = sum(float(dk * dk) * float(np.trace(blk)) for dk, blk in zip(d, D))
    trace_up = abs(trace) * (1.0 + (n + 4) * _U) + 1e-300
    ed, eb = _assembly_errors(chain, rho_max, lam)
    e_asm = sum(float(dk * dk) * e for dk, e in zip(d, ed)) + sum(float(d[k] * d[k + 1]) * e for k, e in enumerate(eb))
    g = _gamma(n + 1)
    slack = (g / (1.0 - g) + _U) * trace_up + e_asm
    return 2.0 * slack + n * 1e-290, slack


def _scaled_factor(chain: Chain, rho: float, lam: np.ndarray, shift: float, d: np.ndarray) -> bool:
    """One floating-point block Cholesky of fl(D A D - shift I) in layer order; True if every pivot block is
    positive definite. (Layer order: the pivots are ECLipsE's Schur complements, all improved by a larger rho.)"""
    D, B = chain_blocks(chain, rho, lam)
    prev = None
    for k in range(len(D)):
        m = (d[k] * d[k]) * D[k] - shift * np.eye(D[k].shape[0])
        if k > 0:
            c = _trsm(prev, np.ascontiguousarray((d[k - 1] * d[k]) * B[k - 1])).T
            m = m - c @ c.T
        prev = _potrf(m)
        if prev is None:
            return False
    return True


def certify_chain(chain: Chain, rho: float, lam, *, ray: bool = False, max_steps: int = 80
                  ) -> tuple[float, float, float] | tuple[float, float, float, np.ndarray]:
    r"""Certified :math:`(\rho_c,\ \overline{\lambda}_{\max},\ \rho^\star)`: :math:`A(\rho_c,\lambda)\succ0`
    proved in float64 (module docstring, applied to :math:`DAD` with power-of-two block scales :math:`D` that
    equilibrate the diagonal blocks, an exact congruence); :math:`\rho^\star` is the float64 minimal :math:`\rho`
    of these multipliers (:func:`min_rho`, not certified, :math:`\rho_c>\rho^\star`), :math:`\rho_c` the first
    value of :math:`\rho^\star+c/d_0^2,\ \rho^\star+2c/d_0^2,\ \rho^\star+4c/d_0^2,\dots` that passes the
    factorization (then bisected towards the last failure), and
    :math:`\overline{\lambda}_{\max}<0` an upper bound on :math:`\lambda_{\max}(DM(\rho_c,\lambda)D)` (negative
    exactly when :math:`M` is negative definite).

    ``lam``: shape ``(N,)``, clipped at 0 (the multipliers must be admissible exactly); ``rho`` (the proposal)
    only sets the range of the search. ``ray=True`` (for ECLipsE, whose proposal lies on the boundary with all but
    the last Schur complement well inside): the candidates are :math:`s(\rho,\lambda)` for
    :math:`s=1+\delta,1+2\delta,1+4\delta,\dots` (:math:`\delta` the relative rounding allowance), usually one
    factorization; the fourth value returned is then the certified multiplier vector :math:`s\lambda`.
    Raises :class:`~theory.lipsdp.LipSDPError` when no :math:`\rho` certifies.
    """
    err = _error()
    if ray:
        return _certify_ray(chain, float(rho), np.maximum(np.asarray(lam, dtype=np.float64), 0.0), max_steps)
    lam = np.maximum(np.asarray(lam, dtype=np.float64), 0.0)
    if lam.shape != (chain.n_hidden,) or not np.all(np.isfinite(lam)) or not math.isfinite(float(rho)):
        raise err("certification failed: non-finite or mis-shaped multipliers or rho")
    star = min_rho(chain, lam)
    if not math.isfinite(star):
        raise err("certification failed: the multipliers leave a hidden-layer block of the LMI indefinite, "
                  "whatever rho")
    rho_max = max(2.0 * max(float(rho), star, 0.0), 1e-300)
    for _attempt in range(6):
        d = _equilibration(chain_blocks(chain, max(star, 1e-300) * 1.5, lam)[0])
        shift, slack = _shift(chain, rho_max, lam, d)
        unit = shift / float(d[0] * d[0])
        cand = max(star, 0.0) + unit
        step = max(unit, 1e-14 * cand, 1e-300)
        lo = None
        for _ in range(max_steps):
            if cand > rho_max:
                break
            if _scaled_factor(chain, cand, lam, shift, d):
                for _bisect in range(10 if lo is not None else 0):  # shrink towards the last failure
                    if cand - lo <= 1e-12 * cand:
                        break
                    mid = 0.5 * (lo + cand)
                    if _scaled_factor(chain, mid, lam, shift, d):
                        cand = mid
                    else:
                        lo = mid
                return float(cand), -float(shift - slack), float(star)
            lo = cand
            cand += step
            step *= 2.0
        rho_max *= 16.0
    raise err("certification failed: no rho makes the re-assembled LMI certifiably positive definite")


def _certify_ray(chain: Chain, rho: float, lam: np.ndarray, max_steps: int):
    err = _error()
    if lam.shape != (chain.n_hidden,) or not np.all(np.isfinite(lam)) or not (math.isfinite(rho) and rho > 0):
        raise err("certification failed: non-finite or mis-shaped multipliers or rho")
    d = _equilibration(chain_blocks(chain, rho, lam)[0])
    shift, slack = _shift(chain, 4.0 * rho, 4.0 * lam, d)
    delta = max(shift / float(d[0] * d[0]) / rho, 1e-15)
    s = 1.0 + delta
    for _ in range(max_steps):
        if s > 4.0:
            break
        if _scaled_factor(chain, rho * s, lam * s, shift, d):
            return float(rho * s), -float(shift - slack), float(rho), lam * s
        delta *= 2.0
        s = 1.0 + delta
    raise err("certification failed: the ECLipsE multipliers do not certify within 4 times their rho")


# --------------------------------------------------------------------------------------------------------------
# ECLipsE recursions (also the warm start of the structured method)
# --------------------------------------------------------------------------------------------------------------

def _chol_upper_solve(m: np.ndarray, rhs: np.ndarray):
    """(L^{-1} rhs, L) with m = L L^T, or (None, None) if m is not positive definite."""
    fac = _potrf(m)
    if fac is None:
        return None, None
    return _trsm(fac, rhs), fac


def _lambda_max(k: np.ndarray) -> float:
    """Largest eigenvalue of a symmetric matrix: LAPACK for n <= 128, else ARPACK Lanczos (deterministic start,
    tolerance 1e-12; only ever a proposal: every use is followed by a Cholesky check or the certificate)."""
    n = k.shape[0]
    if n == 0:
        return 0.0
    if n <= 128:
        return float(np.linalg.eigvalsh(k)[-1])
    from scipy.sparse.linalg import ArpackNoConvergence, eigsh

    try:
        return float(eigsh(k, k=1, which="LA", tol=1e-12, v0=np.ones(n), return_eigenvectors=False)[0])
    except ArpackNoConvergence:
        return float(np.linalg.eigvalsh(k)[-1])


def _fast_step(m: np.ndarray, w: np.ndarray, a: np.ndarray, b: np.ndarray, max_halvings: int = 60):
    r"""ECLipsE-Fast's closed-form step: :math:`\Lambda=\lambda I`, :math:`\lambda=2/\lambda_{\max}(D_sWM^{-1}W^\top
    D_s)`, halved while :math:`X=M+\lambda W^\top D_pW` or :math:`M'=\lambda I-\tfrac{\lambda^2}{4}D_sWX^{-1}W^\top
    D_s` is not positive definite (only possible when some :math:`\alpha_i\beta_i<0`). Returns
    ``(lambda, M')`` or ``(None, None)``."""
    s = a + b
    p = a * b
    ws_ = w.T * s  # W^T D_s
    y, _ = _chol_upper_solve(m, ws_)
    if y is None:
        return None, None
    k0 = y.T @ y
    kap = _lambda_max(k0) if y.size else 0.0
    lam = 2.0 / kap if kap > 1e-300 else 1.0
    wp = w.T @ (p[:, None] * w) if np.any(p) else None
    n = w.shape[0]
    for _ in range(max_halvings):
        if wp is None:
            kk = k0
        else:
            y, _f = _chol_upper_solve(m + lam * wp, ws_)
            kk = None if y is None else y.T @ y
        if kk is not None:
            mk = -(lam * lam / 4.0) * kk
            mk.flat[::n + 1] += lam
            mk = (mk + mk.T) / 2
            if _potrf(mk) is not None:
                return lam, mk
        lam /= 2.0
    return None, None


def _next_m(m: np.ndarray, w: np.ndarray, a: np.ndarray, b: np.ndarray, lam_vec: np.ndarray):
    r""":math:`M'=\Lambda-\tfrac14\Lambda D_sWX^{-1}W^\top D_s\Lambda`, :math:`X=M+W^\top D_p\Lambda W`, or ``None``."""
    s = a + b
    p = a * b
    x = m + w.T @ ((p * lam_vec)[:, None] * w) if np.any(p) else m
    y, _ = _chol_upper_solve(x, w.T * (s * lam_vec))
    if y is None:
        return None
    mk = np.diag(lam_vec) - 0.25 * (y.T @ y)
    mk = (mk + mk.T) / 2
    return mk if _potrf(mk) is not None else None


#: ECLipsE's per-layer Schur complements are kept at relative conditioning at least this (see eclipse_recursion)
MIN_CONDITIONING = 1e-7
#: blend weights of the ECLipsE-Fast multipliers tried, smallest first, to restore MIN_CONDITIONING
BLEND_WEIGHTS = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 0.5)


def _conditioning(m: np.ndarray) -> float:
    ev = np.linalg.eigvalsh(m)
    return float(ev[0] / ev[-1]) if ev[-1] > 0 else 0.0


def eclipse_recursion(chain: Chain, *, fast: bool = True, form: str = "neuron", sub_tol: float = 1e-9,
                      sub_max_steps: int = 400, min_conditioning: float = MIN_CONDITIONING):
    r"""ECLipsE's sequential choice of multipliers; returns ``(rho, lams, info)`` with ``lams`` of shape ``(N,)``.

    Normalisation of Xu and Sivaranjani (NeurIPS 2024): input block :math:`M_0=I`, multipliers
    :math:`\Lambda_k=2T_k/\rho`; for each hidden layer, :math:`X_{k-1}=M_{k-1}+W_{k-1}^\top D_p\Lambda_kW_{k-1}`
    and :math:`M_k=\Lambda_k-\tfrac14\Lambda_kD_sW_{k-1}X_{k-1}^{-1}W_{k-1}^\top D_s\Lambda_k` (the forward Schur
    complements of the LMI), and finally :math:`\rho=\lambda_{\max}(W_LM_L^{-1}W_L^\top)`. ``fast=True``:
    :math:`\Lambda_k=\lambda_kI` in closed form (:func:`_fast_step`); ``fast=False``: :math:`\Lambda_k` from the
    one-hidden-layer LipSDP of :math:`(W_{k-1}M_{k-1}^{-1/2},W_k)` (``form``: Neuron, diagonal
    :math:`\Lambda_k` as in the paper; Layer, :math:`\Lambda_k=\lambda_kI`), which is ECLipsE's per-layer SDP
    (maximise :math:`c` with :math:`M_k\succeq cW_k^\top W_k`) up to the congruence
    :math:`\mathrm{diag}(M_{k-1}^{1/2},I)`, solved to relative gap ``sub_tol`` by :class:`StructuredBarrier`; a
    layer whose sub-solution leaves :math:`M_k` numerically indefinite falls back to the closed-form step (recorded
    in ``info["fallbacks"]``). The returned :math:`(\rho,\ \rho\Lambda/2)` is a feasible point of the LipSDP-Neuron
    LMI of ``chain`` (a proposal: :func:`certify_chain` decides).

    Conditioning (``min_conditioning`` :math:`\kappa`; a detail the reference code handles by regularising
    :math:`K` with :math:`10^{-10}I`): where :math:`W_k` has fewer rows than columns (always at the last hidden layer
    of a net with a narrow output), the per-layer SDP only needs :math:`M_k` positive on the row space of
    :math:`W_k`, and its optimum leaves :math:`M_k` singular, to rounding, on the complement (measured: 8 x 64
    ReLU net, :math:`\lambda_{\min}/\lambda_{\max}(M_8)=8\cdot10^{-12}`); the full LMI is then singular in a
    direction that the final :math:`\rho` does not move, and no float64 certificate exists. When
    :math:`\lambda_{\min}(M_k)<\kappa\lambda_{\max}(M_k)` the multipliers are blended with the ECLipsE-Fast
    step of the same layer, :math:`(1-\theta)\Lambda_k+\theta\lambda_kI` for the first :math:`\theta` in
    :data:`BLEND_WEIGHTS` that restores it: :math:`M_k` is the Schur complement of a matrix affine in
    :math:`\Lambda_k`, hence concave in it, so the blend has :math:`M_k\succeq\theta\lambda_kI/2` (ReLU-type
    slopes). Counted in ``info["blends"]``.
    """
    err = _error()
    ws = chain.weights
    m = np.eye(ws[0].shape[1])
    lams, fallbacks, steps, blends = [], 0, 0, 0
    for k, sl in enumerate(chain.layer_slices(), start=1):
        w, a, b = ws[k - 1], chain.alpha[sl], chain.beta[sl]
        mk = None
        if not fast:
            fac = _potrf(m)
            if fac is None:
                raise err("ECLipsE: the Schur complement M_k became indefinite")
            wr = solve_triangular(fac, w.T, lower=True, check_finite=False).T  # W L^{-T}, M = L L^T
            sub = Chain((wr, ws[k]), a, b)
            try:
                res = solve_structured(sub, form, tol=sub_tol, max_steps=sub_max_steps, warm="fast",
                                       algorithm="barrier")
                steps += res.newton_steps
                lam_vec = 2.0 * res.lam / res.rho
                mk = _next_m(m, w, a, b, lam_vec)
                if mk is not None and _conditioning(mk) < min_conditioning:
                    lam_f, _mf = _fast_step(m, w, a, b)
                    mk = None
                    for theta in BLEND_WEIGHTS if lam_f is not None else ():
                        mix = (1.0 - theta) * lam_vec + theta * lam_f
                        mb = _next_m(m, w, a, b, mix)
                        if mb is not None and _conditioning(mb) >= min_conditioning:
                            lam_vec, mk = mix, mb
                            blends += 1
                            break
            except (ArithmeticError, np.linalg.LinAlgError, err):
                mk = None
            if mk is None:
                fallbacks += 1
        if mk is None:
            lam, mk = _fast_step(m, w, a, b)
            if lam is None:
                raise err("ECLipsE-Fast: no positive multiplier keeps the Schur complement positive definite")
            lam_vec = np.full(w.shape[0], lam)
        lams.append(lam_vec)
        m = mk
    wl = ws[-1]
    y, _ = _chol_upper_solve(m, wl.T)
    if y is None:
        raise err("ECLipsE: the last Schur complement is not positive definite")
    rho = float(np.linalg.eigvalsh(y.T @ y)[-1])
    lam_all = np.concatenate(lams) if lams else np.zeros(0)
    return rho, lam_all, {"fallbacks": fallbacks, "newton_steps": steps, "m_last": m, "blends": blends}


# --------------------------------------------------------------------------------------------------------------
# the structured barrier method
# --------------------------------------------------------------------------------------------------------------

@dataclass
class BarrierResult:
    """A proposal of the structured method, in the units of the chain it was given (not certified)."""

    rho: float
    lam: np.ndarray
    status: str
    newton_steps: int
    gap: float
    seconds: float
    warm_start: str = ""
    info: dict = field(default_factory=dict)


class StructuredBarrier:
    r"""Primal log-barrier path following for LipSDP on a (normalised) chain:
    :math:`\min_x\ t\rho-\log\det A(\rho,\lambda)-\sum_j\log\lambda_j` for increasing :math:`t`.

    ``form="neuron"``: one :math:`\lambda` per neuron; ``"layer"``: one per layer (the Newton system is the neuron
    one summed over each layer). Newton steps with Armijo backtracking, a 1-D search along :math:`x\mapsto e^ux`
    (the near-homogeneity of the LMI makes the overall scale of the multipliers the slowest direction otherwise),
    a tangent predictor between centerings, and an adaptive :math:`\mu=t_{+}/t`. The barrier parameter is
    :math:`\nu=n+\#\lambda`; on the central path the gap to the optimum is at most :math:`\nu/t`.
    """

    def __init__(self, chain: Chain, form: str = "neuron"):
        self.chain = chain
        self.form = choice("form", form, ("neuron", "layer"))
        self.ws = chain.weights
        self.sizes = chain.sizes
        self.L = chain.depth
        self.N = chain.n_hidden
        self.n = chain.lmi_size
        self.off = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int)
        self.noff = np.concatenate([[0], np.cumsum(self.sizes[1:])]).astype(int)
        self.alpha, self.beta = chain.alpha, chain.beta
        self.zero_alpha = not np.any(self.alpha)
        self.layer_of = np.concatenate([np.full(self.sizes[k], k - 1) for k in range(1, self.L + 1)])
        self.m = 1 + (self.N if self.form == "neuron" else self.L)
        self.nu = float(self.n + self.m - 1)
        self.evals = 0

    def lam(self, x: np.ndarray) -> np.ndarray:
        return x[1:] if self.form == "neuron" else x[1:][self.layer_of]

    def factor(self, x: np.ndarray):
        if not (x[0] > 0) or np.any(~(x[1:] > 0)):
            return None
        self.evals += 1
        return block_cholesky(*chain_blocks(self.chain, x[0], self.lam(x)))

    def f(self, x: np.ndarray, t: float, fac=None) -> float:
        fac = self.factor(x) if fac is None else fac
        if fac is None:
            return math.inf
        logdet = 2.0 * sum(float(np.sum(np.log(np.diag(lk)))) for lk in fac[0])
        return t * x[0] - logdet - float(np.sum(np.log(x[1:])))

    def inverse(self, fac) -> np.ndarray:
        """Dense :math:`S=A^{-1}=X^\\top X` with :math:`X=L^{-1}` built block by block (block lower triangular)."""
        Ls, Cs = fac
        n, off = self.n, self.off
        X = np.zeros((n, n))
        prev = None
        for k in range(self.L + 1):
            inv_kk, info = lapack.dtrtri(Ls[k], lower=1)
            if info != 0:
                raise np.linalg.LinAlgError("singular pivot block")
            inv_kk = np.tril(inv_kk)
            rows = slice(off[k], off[k + 1])
            X[rows, off[k]:off[k + 1]] = inv_kk
            if k > 0:
                X[rows, :off[k]] = -inv_kk @ (Cs[k - 1] @ prev)
            prev = X[rows, :off[k + 1]]
        S, info = lapack.dlauum(X, lower=1)
        if info != 0:
            raise np.linalg.LinAlgError("dlauum failed")
        S = np.tril(S)
        return S + np.tril(S, -1).T

    def grams(self, S: np.ndarray):
        r"""The Gram matrices of a symmetric ``S`` (n, n) in the rank-2 coordinates of the multipliers:
        ``(gee, gef, gff, v0e, v0f)`` with :math:`G_{xy}=X^\top SY` (N, N) for :math:`X,Y\in\{E,F\}`,
        :math:`E=[e_i]`, :math:`F=[f_i]` (n, N), and ``v0e``, ``v0f`` the input-block rows (n_0, N) of
        :math:`SE`, :math:`SF`; by the layer structure this costs :math:`O(n\sum_kn_{k-1}n_k)`, not
        :math:`O(n^2N)`."""
        N, n, L, off, noff = self.N, self.n, self.L, self.off, self.noff
        n0 = self.sizes[0]
        SA = np.empty((n, N))  # S A, A = [a_i] (n, N): the weight rows placed in their block
        for k in range(1, L + 1):
            SA[:, noff[k - 1]:noff[k]] = S[:, off[k - 1]:off[k]] @ self.ws[k - 1].T
        SB = S[:, n0:]  # S B, B = [b_i] (n, N): unit vectors of the hidden blocks
        P = np.empty((N, N))  # A^T S A
        Q = np.empty((N, N))  # A^T S B
        for k in range(1, L + 1):
            w = self.ws[k - 1]
            blk = slice(off[k - 1], off[k])
            P[noff[k - 1]:noff[k]] = w @ SA[blk]
            Q[noff[k - 1]:noff[k]] = w @ SB[blk]
        R = SB[n0:]  # B^T S B
        al, be = self.alpha, self.beta
        bq = be[:, None] * Q
        if self.zero_alpha:
            gee = R
            gef = R - bq.T
            gff = R - bq - bq.T + be[:, None] * P * be[None, :]
            v0e = SB[:n0]
        else:
            aq = al[:, None] * Q
            gee = R - aq - aq.T + al[:, None] * P * al[None, :]
            gff = R - bq - bq.T + be[:, None] * P * be[None, :]
            gef = R - aq - bq.T + al[:, None] * P * be[None, :]
            v0e = SB[:n0] - SA[:n0] * al
        v0f = SB[:n0] - SA[:n0] * be
        return gee, gef, gff, v0e, v0f

    def newton(self, x: np.ndarray, t: float, fac):
        """Hessian and gradient of the barrier objective at ``x`` (``fac``: its block Cholesky factor)."""
        S = self.inverse(fac)
        noff = self.noff
        n0 = self.sizes[0]
        gee, gef, gff, v0e, v0f = self.grams(S)
        H = 2.0 * (gee * gff + gef * gef.T)
        gl = -2.0 * np.diagonal(gef).copy()
        hr = 2.0 * np.sum(v0e * v0f, axis=0)
        S00 = S[:n0, :n0]
        if self.form == "layer":
            starts = noff[:-1]
            H = np.add.reduceat(np.add.reduceat(H, starts, axis=0), starts, axis=1)
            gl = np.add.reduceat(gl, starts)
            hr = np.add.reduceat(hr, starts)
        m = self.m
        HH = np.empty((m, m))
        HH[0, 0] = float(np.sum(S00 * S00))
        HH[0, 1:] = hr
        HH[1:, 0] = hr
        HH[1:, 1:] = H
        HH[1:, 1:][np.diag_indices(m - 1)] += 1.0 / x[1:] ** 2
        g = np.concatenate([[t - float(np.trace(S00))], gl - 1.0 / x[1:]])
        return HH, g

    @staticmethod
    def _factor_h(HH):
        try:
            return ("chol", cho_factor(HH, lower=True, check_finite=False))
        except np.linalg.LinAlgError:
            d = np.sqrt(np.abs(np.diag(HH))) + 1e-300
            ev, V = np.linalg.eigh(HH / d[:, None] / d[None, :])
            ev = np.maximum(ev, max(ev[-1], 1e-300) * 1e-13)
            return ("eig", (V, ev, d))

    @staticmethod
    def _solve_h(fh, b):
        kind, data = fh
        if kind == "chol":
            return cho_solve(data, b, check_finite=False)
        V, ev, d = data
        return (V @ ((V.T @ (b / d)) / ev)) / d

    @staticmethod
    def _max_step(x, dx) -> float:
        neg = dx < 0
        if not np.any(neg):
            return 1.0
        return min(1.0, 0.99 * float(np.min(-x[neg] / dx[neg])))

    def _scale_search(self, x, t, f0, iters: int = 12):
        r"""Golden-section search of :math:`u\mapsto f(e^ux)` on [-0.7, 0.7], kept only if it lowers f."""
        lo, hi = -0.7, 0.7
        gr = (math.sqrt(5) - 1) / 2
        a, b = hi - gr * (hi - lo), lo + gr * (hi - lo)
        fa, fb = self.f(x * math.exp(a), t), self.f(x * math.exp(b), t)
        for _ in range(iters):
            if fa < fb:
                hi, b, fb = b, a, fa
                a = hi - gr * (hi - lo)
                fa = self.f(x * math.exp(a), t)
            else:
                lo, a, fa = a, b, fb
                b = lo + gr * (hi - lo)
                fb = self.f(x * math.exp(b), t)
        u, fu = (a, fa) if fa < fb else (b, fb)
        if math.isfinite(fu) and fu < f0 - 1e-13 * abs(f0):
            return x * math.exp(u), fu
        return x, f0

    def center(self, x, t, tol, max_steps):
        steps, fh, dec = 0, None, math.inf
        fac = self.factor(x)
        f0 = self.f(x, t, fac)
        while steps < max_steps:
            HH, g = self.newton(x, t, fac)
            fh = self._factor_h(HH)
            dx = -self._solve_h(fh, g)
            dec = float(-(g @ dx))
            steps += 1
            if not math.isfinite(dec):
                raise np.linalg.LinAlgError("non-finite Newton decrement")
            if dec / 2 <= tol:
                break
            st = self._max_step(x, dx)
            slope = float(g @ dx)
            while True:
                xn = x + st * dx
                facn = self.factor(xn)
                f1 = self.f(xn, t, facn) if facn is not None else math.inf
                if f1 <= f0 + 0.1 * st * slope:
                    break
                st *= 0.5
                if st < 1e-12:
                    break
            if st < 1e-12 or not (f1 < f0):
                break  # no progress possible in float64
            x, f0, fac = xn, f1, facn
            if dec > 1.0:
                xs, fs = self._scale_search(x, t, f0)
                if xs is not x:
                    x, f0, fac = xs, fs, self.factor(xs)
        return x, steps, fh, dec

    def solve(self, x0: np.ndarray, *, tol: float = 1e-9, max_steps: int = 600, mu0: float = 4.0,
              mu_max: float = 200.0, center_tol: float = 0.1, t0_factor: float = 2.0) -> BarrierResult:
        start = time.perf_counter()
        x = np.asarray(x0, dtype=np.float64).copy()
        if self.factor(x) is None:
            raise _error()("structured solver: the warm start is not strictly feasible")
        c = np.zeros(self.m)
        c[0] = 1.0
        t = t0_factor * self.nu / x[0]
        total, mu, phases, status = 0, mu0, [], "optimal"
        dec = math.inf
        while True:
            final = self.nu / t <= tol * x[0]
            budget = max_steps - total
            if budget <= 0:
                status = "optimal_inaccurate"
                break
            x, st, fh, dec = self.center(x, t, 1e-10 if final else center_tol, min(budget, 80))
            total += st
            phases.append(st)
            if final:
                if dec / 2 > 1e-2:
                    status = "optimal_inaccurate"
                break
            tn = t * mu
            d = -self._solve_h(fh, c)
            dx = (tn - t) * d
            s = min(1.0, self._max_step(x, dx))
            fx = self.f(x, tn)
            while s > 1e-3:
                if self.f(x + s * dx, tn) < fx:
                    x = x + s * dx
                    break
                s *= 0.5
            t = tn
            if st <= 4:
                mu = min(mu * 2.0, mu_max)
            elif st >= 12:
                mu = max(mu / 2.0, 2.0)
        gap = self.nu / t
        return BarrierResult(float(x[0]), self.lam(x).copy(), status, total, gap, time.perf_counter() - start,
                             info={"phases": phases, "final_decrement": dec, "evaluations": self.evals})


def _norm_estimate(w: np.ndarray, iters: int = 30) -> float:
    """A spectral-norm estimate by power iteration (deterministic start; a scale, not a bound), 1 for zero."""
    v = np.ones(w.shape[1]) / math.sqrt(w.shape[1])
    est = 0.0
    for _ in range(iters):
        u = w @ v
        nu = float(np.linalg.norm(u))
        if nu == 0.0:
            break
        v = w.T @ (u / nu)
        est = float(np.linalg.norm(v))
        if est == 0.0:
            break
        v /= est
    if est == 0.0:
        est = float(np.linalg.norm(w)) / math.sqrt(min(w.shape))
    return est if est > 0 else 1.0


def _normalise(chain: Chain):
    """Power-of-two per-layer scales s_k close to ||W_k||_2 (so W_k / s_k is exact) and the normalised chain."""
    s = np.array([math.ldexp(1.0, round(math.log2(_norm_estimate(w)))) for w in chain.weights])
    return s, chain.scaled(s)


def _to_original(scales: np.ndarray, rho_n: float, lam_n: np.ndarray, sizes: list[int]):
    r"""Map :math:`(\tilde\rho,\tilde T)` of the chain with weights :math:`W_k/s_k` back to the original weights:
    :math:`\rho=\tilde\rho C^2`, :math:`T_k=\tilde T_kC^2/c_k^2` (:func:`theory.lipsdp._solve_piece`)."""
    total = float(np.prod(scales)) ** 2
    prefix = np.cumprod(np.concatenate([[1.0], scales[:-1]]))
    per = np.concatenate([np.full(h, total / prefix[k + 1] ** 2) for k, h in enumerate(sizes[1:])])
    return rho_n * total, lam_n * per


def _run_algorithm(run_chain: Chain, form: str, x0: np.ndarray, algorithm: str, tol: float, max_steps: int
                   ) -> BarrierResult:
    """One run of the structured solver(s) from the strictly feasible ``x0`` (:func:`solve_structured`)."""
    if algorithm == "barrier":
        res = StructuredBarrier(run_chain, form).solve(x0, tol=tol, max_steps=max_steps)
        res.info["algorithm"] = "barrier"
        return res
    from .lipsdp_pd import StructuredPrimalDual

    res, why = None, None
    try:
        res = StructuredPrimalDual(run_chain, form).solve(x0, tol=tol)
        res.info["algorithm"] = "primal-dual"
        if res.status != "optimal":
            why = f"primal-dual stopped at {res.status} after {res.newton_steps} iterations"
    except (np.linalg.LinAlgError, ArithmeticError, ValueError) as exc:
        why = f"primal-dual failed: {exc}"
    if why is None or algorithm == "pd":
        if res is None:
            raise _error()(f"structured solver: {why}")
        return res
    bar = StructuredBarrier(run_chain, form).solve(x0, tol=tol, max_steps=max_steps)
    bar.info["algorithm"] = "barrier"
    chosen = res if res is not None and res.rho <= bar.rho else bar
    chosen.info["fallback_barrier_rho"] = bar.rho
    chosen.newton_steps = (res.newton_steps if res is not None else 0) + bar.newton_steps
    chosen.info["fallback"] = why
    return chosen


def solve_structured(chain: Chain, form: str = "neuron", *, tol: float = 1e-9, max_steps: int = 600,
                     warm: str = "auto", mix: float = 0.9, algorithm: str = "auto") -> BarrierResult:
    r"""The structured method on ``chain`` (normalised per layer inside), proposal in the chain's own units.

    ``warm``: ``"fast"`` starts from ECLipsE-Fast, ``"eclipse"`` from ``mix`` times the ECLipsE point (sub-problems
    solved loosely) plus ``1 - mix`` times the ECLipsE-Fast point (a convex combination of two feasible points, so
    feasible; the Fast part keeps every multiplier away from 0), ``"auto"``: ``"fast"`` (on the depth benchmark
    the ECLipsE start cost more sub-problem Newton steps than it saved). ``info["interior"]``: the start in the
    chain's units, a strictly feasible point deep inside (used by the certificate's back-off).

    ``algorithm``: ``"pd"`` the primal-dual method (:class:`theory.lipsdp_pd.StructuredPrimalDual`),
    ``"barrier"`` the primal barrier (:class:`StructuredBarrier`), ``"auto"`` the primal-dual method and, if it
    fails or stops short of its tolerance, the barrier from the same start, keeping the lower :math:`\rho` of the
    two (both are strictly feasible proposals); ``info["algorithm"]`` and ``info["fallback"]`` record what ran.
    Measured (``benchmarks/lipsdp_depth.py``): the primal-dual method reaches the optimum in 17-51 iterations on
    2 x 8 .. 32 x 32 ReLU chains, where the barrier needs 38-600 Newton steps and stops 3.7% short on 32 x 32.
    """
    choice("warm", warm, ("auto", "fast", "eclipse"))
    choice("algorithm", algorithm, ("auto", "barrier", "pd"))
    err = _error()
    scales, nchain = _normalise(chain)
    rf, lf, _ = eclipse_recursion(nchain, fast=True)
    if not (rf > 0 and math.isfinite(rf)):
        raise err("structured solver: ECLipsE-Fast gave no usable start (the network may be constant)")
    if warm == "auto":  # measured: the ECLipsE start costs more sub-problem steps than it saves (lipsdp_depth.py)
        warm = "fast"
    start = "ECLipsE-Fast"
    extra_steps = 0
    lam0 = lf
    rho_ref = rf
    if warm == "eclipse":
        try:
            ra, la, inf = eclipse_recursion(nchain, fast=False, sub_tol=1e-1, sub_max_steps=120)
            extra_steps = inf["newton_steps"]
            if ra > 0 and math.isfinite(ra):
                # feasible points (rho, rho * Lambda / 2) in units where the output is scaled so that ra -> 1
                rho_ref = ra
                lam0 = None
                pa, pf = 1.0, rf / ra
                rho_mix = mix * pa + (1 - mix) * pf
                lam_mix = mix * pa * la / 2 + (1 - mix) * pf * lf / 2
                start = f"{mix:g} ECLipsE + {1 - mix:g} ECLipsE-Fast"
        except err:
            lam0 = lf
            rho_ref = rf
    sig = math.sqrt(rho_ref)
    run_scales = scales.copy()
    run_scales[-1] *= sig
    run_chain = chain.scaled(run_scales)
    if lam0 is not None:  # ECLipsE-Fast point, output scaled so that its rho is 1
        rho0 = 1.02
        lam_start = rho0 * lam0 / 2
    else:
        rho0 = 1.02 * rho_mix
        lam_start = 1.02 * lam_mix
    bar = StructuredBarrier(run_chain, form)
    if form == "layer":
        sl = run_chain.layer_slices()
        lam_start = np.array([float(np.min(lam_start[s])) for s in sl])
        if warm == "eclipse":  # a per-layer minimum of an ECLipsE point is not feasible in general: use Fast
            lam_start = np.array([rho0 * float(lf[s][0]) / 2 for s in sl])
    x0 = np.concatenate([[rho0], lam_start])
    if bar.factor(x0) is None:  # rounding at the boundary: move into the interior along rho
        for grow in (1.1, 1.5, 3.0, 10.0):
            x0[0] = rho0 * grow
            if bar.factor(x0) is not None:
                break
        else:
            raise err("structured solver: the ECLipsE warm start is not strictly feasible")
    res = _run_algorithm(run_chain, form, x0, algorithm, tol, max_steps)
    res.info["interior"] = _to_original(run_scales, float(x0[0]), bar.lam(x0), run_chain.sizes)
    rho_o, lam_o = _to_original(run_scales, res.rho, res.lam, run_chain.sizes)
    res.rho, res.lam = rho_o, lam_o
    res.warm_start = start
    res.newton_steps += extra_steps
    res.gap = res.gap * float(np.prod(run_scales)) ** 2
    res.info["warm_start_newton_steps"] = extra_steps
    return res


# --------------------------------------------------------------------------------------------------------------
# Chordal-LipSDP's clique formulation (cvxpy)
# --------------------------------------------------------------------------------------------------------------

def clique_problem(chain: Chain, form: str = "neuron", margin: float = 0.0):
    r"""The clique-decomposed LipSDP as a cvxpy problem: ``(problem, variables)``.

    :math:`A=\sum_kE_k^\top G_kE_k` with :math:`G_k` the terms of layer :math:`k` on clique :math:`\{k-1,k\}`
    (:math:`\rho I` in :math:`G_1`, :math:`-W_L^\top W_L` in :math:`G_L`); the LMIs are
    :math:`G_k+\mathrm{diag}(Y_{k-1},-Y_k)\succeq\mathrm{margin}\cdot\mathrm{diag}([k=1]I,I)` with free symmetric
    :math:`Y_1..Y_{L-1}` (:math:`Y_0=Y_L=0`). Summed, the :math:`Y` cancel and the margins add up to
    :math:`\mathrm{margin}\cdot I`, so the optimum equals the monolithic one (Agler et al.; chain cliques).
    Variables: ``rho``, ``lam0..`` (one per layer, a vector in the Neuron form), ``Y1..``.
    """
    import cvxpy as cp

    choice("form", form, ("neuron", "layer"))
    ws = chain.weights
    L = chain.depth
    rho = cp.Variable(nonneg=True)
    sl = chain.layer_slices()
    lams = [cp.Variable(s.stop - s.start, nonneg=True) if form == "neuron" else cp.Variable(nonneg=True)
            for s in sl]
    ys = [cp.Variable((w.shape[0], w.shape[0]), symmetric=True) for w in ws[:-2]]
    c1 = -2.0 * chain.alpha * chain.beta
    c2 = chain.alpha + chain.beta
    cons = []
    for k in range(1, L + 1):
        w = ws[k - 1]
        s = sl[k - 1]
        nk, nprev = w.shape
        lv = lams[k - 1] if form == "neuron" else lams[k - 1] * np.ones(nk)
        top = (rho * np.eye(nprev)) if k == 1 else ys[k - 2]
        if np.any(c1[s]):
            top = top - w.T @ cp.diag(cp.multiply(c1[s], lv)) @ w
        off = -(w.T @ cp.diag(cp.multiply(c2[s], lv)))
        bottom = 2 * cp.diag(lv) - (ys[k - 1] if k < L else ws[-1].T @ ws[-1])
        mat = cp.bmat([[top, off], [off.T, bottom]])
        eps = np.concatenate([np.full(nprev, margin if k == 1 else 0.0), np.full(nk, margin)])
        cons.append(mat - np.diag(eps) >> 0)
    prob = cp.Problem(cp.Minimize(rho), cons)
    variables = {"rho": rho, **{f"lam{k}": v for k, v in enumerate(lams)}, **{f"Y{k + 1}": y for k, y in enumerate(ys)}}
    return prob, variables


# --------------------------------------------------------------------------------------------------------------
# one solve-and-certify step for the chordal method (theory.certified_solve)
# --------------------------------------------------------------------------------------------------------------

class _Value:
    """A variable holder with cvxpy's ``.value`` interface."""

    def __init__(self):
        self.value = None


class StructuredProblem:
    """The structured method behind cvxpy's problem interface, so that :func:`theory.certified_solve.solve_and_certify`
    (status check, float64 extraction, the caller's certificate) is the one path of every proposal.

    ``solve(solver="STRUCTURED")`` runs ``run()`` (returning a :class:`BarrierResult`); a numerical failure raises
    ``cvxpy.error.SolverError``. ``variables``: ``{"rho", "lam"}``.
    """

    def __init__(self, run, name: str = STRUCTURED):
        self._run = run
        self.name = name
        self.status = "not solved"
        self.value = None
        self.result: BarrierResult | None = None
        self.variables = {"rho": _Value(), "lam": _Value()}

    def solve(self, solver: str = STRUCTURED, **options):
        import cvxpy as cp

        if solver != self.name:
            raise cp.error.SolverError(f"this problem solves only with {self.name}, got {solver!r}")
        try:
            res = self._run(**options)
        except (np.linalg.LinAlgError, ArithmeticError, ValueError) as exc:
            raise cp.error.SolverError(f"structured interior-point method failed: {exc}") from exc
        self.result = res
        self.status = res.status
        self.value = res.rho
        self.variables["rho"].value = res.rho
        self.variables["lam"].value = res.lam
        return res.rho


#: back-off weights of the certificate (module docstring of :func:`certify_backoff`)
BACKOFF = (0.0, 1e-12, 1e-11, 1e-10, 1e-9, 1e-8, 1e-7, 1e-6)


def certify_backoff(chain: Chain, rho: float, lam: np.ndarray, interior=None) -> tuple[float, float, float, np.ndarray]:
    r""":func:`certify_chain` of the proposal and, if the rounding allowance forced :math:`\rho` up by more than
    :math:`10^{-9}` relative, of the blends :math:`(1-\epsilon)(\rho,\lambda)+\epsilon(\rho_i,\lambda_i)` with a
    strictly feasible interior point (:data:`BACKOFF`): a convex combination of feasible points is feasible and
    its smallest eigenvalue is at least :math:`\epsilon\lambda_{\min}(A(\rho_i,\lambda_i))`, so a proposal that
    an interior-point method leaves within rounding of the boundary becomes certifiable at a cost of about
    :math:`\epsilon\rho_i`. The weights are tried in increasing order until the certified value stops decreasing.
    Returns the smallest certified ``(rho_c, lambda_max bound, rho_star, lam)``."""
    err = _error()
    best, failure = None, None
    base = None
    for eps in BACKOFF if interior is not None else (0.0,):
        if eps:
            r_e = (1 - eps) * rho + eps * interior[0]
            l_e = (1 - eps) * lam + eps * interior[1]
        else:
            r_e, l_e = rho, lam
        try:
            rc, lm, star = certify_chain(chain, r_e, l_e)
        except err as exc:
            failure = exc
            continue
        base = star if base is None else base
        if best is not None and rc >= best[0]:
            break  # a larger blend weight only adds its cost (about eps rho_i) from here on
        # rho_star: the proposal's float64 minimal rho, or the blend's when that is lower (so rho_c >= rho_star)
        best = (rc, lm, min(base, star), np.maximum(l_e, 0.0))
        if rc <= base * (1 + 1e-9):
            break
    if best is None:
        raise failure
    return best


def certify_with_original(chain: Chain, original: Chain | None, rho: float, lam: np.ndarray, interior=None, *,
                          ray: bool = False) -> tuple[float, float, float, np.ndarray]:
    r"""Certify ``(rho, lam)`` on ``chain`` (:func:`certify_backoff`, or the ray search of :func:`certify_chain`
    with ``ray=True``) and, when ``chain`` is a reduction of ``original``, once more on the original weights:
    :func:`certify_chain` of the certified multipliers on ``original`` (one search, usually a few factorizations;
    with ``ray=True`` the ray search from the certified point, so that ECLipsE keeps its own :math:`\rho`),
    whose :math:`\rho` is the one returned. The reduced solve only makes the proposal cheap (an input block of
    :math:`n_1` instead of :math:`n_0` rows); the number returned is always certified on ``original``. If the
    original's certificate fails with these multipliers, the whole back-off is run on the original."""
    err = _error()
    if ray:
        rc, lm, star, lam_c = certify_chain(chain, rho, lam, ray=True)
    else:
        rc, lm, star, lam_c = certify_backoff(chain, rho, lam, interior)
    if original is None or original is chain or (len(original.weights) == len(chain.weights) and all(
            a is b for a, b in zip(original.weights, chain.weights))):
        return rc, lm, star, lam_c
    try:
        if ray:  # the same point on the original weights (scaled along its ray only by the rounding allowance)
            return certify_chain(original, rc, lam_c, ray=True)
        rc_o, lm_o, star_o = certify_chain(original, rc, lam_c)
        return rc_o, lm_o, star_o, lam_c
    except err:
        if ray:
            return certify_chain(original, rho, lam, ray=True)
        return certify_backoff(original, rho, lam, interior)


def _certifier(chain: Chain, original: Chain | None, extra: dict, interior=None):
    """The certificate callback: the full LMI of the original weights re-assembled from (rho, lambda) only."""

    def certify(values):
        lam = np.asarray(values["lam"], dtype=np.float64).ravel()
        rc, lm, star, lam_c = certify_with_original(chain, original, float(values["rho"]), lam, interior)
        return rc, {"lam": lam_c, "lambda_max": lm, "rho_solver": star, **extra}

    return certify


def balance_chain(chain: Chain):
    r"""The chain rescaled so that ECLipsE-Fast's feasible point :math:`(\rho_f,\lambda_f)` becomes
    :math:`\tilde\rho=1`, :math:`\tilde\lambda\approx1` (layer means), for the cvxpy solvers, whose absolute
    tolerances otherwise stop them early on deep nets (measured: monolithic CVXOPT 16% above the optimum on a
    24 x 8 ReLU net with norm scaling only). With :math:`x_k=a_k\tilde x_k`, :math:`a_0=1`,
    :math:`a_k^2=\rho_f/\bar\lambda_{f,k}`, :math:`C^2=\rho_f` and :math:`L` the largest slope magnitude: weights
    :math:`L\,W_{k-1}a_{k-1}/a_k` and :math:`W_La_L/C`, slopes divided by :math:`L`, and back
    :math:`\rho=C^2\tilde\rho`, :math:`\lambda_k=C^2\tilde\lambda_k/a_k^2` (an exact congruence of the LMI; the
    derivation is in :func:`theory.lipsdp._solve_piece`). Returns ``(balanced chain, to_original)`` or ``None``
    when ECLipsE-Fast fails; the mapping back is not trusted (every proposal is certified on the original)."""
    try:
        scales, nchain = _normalise(chain)
        rho_n, lam_big, _ = eclipse_recursion(nchain, fast=True)
        rho_f, lam_f = _to_original(scales, rho_n, rho_n * lam_big / 2.0, nchain.sizes)
    except (ArithmeticError, np.linalg.LinAlgError, _error()):
        return None
    t_bar = np.array([float(np.mean(lam_f[s])) for s in chain.layer_slices()])
    if not (math.isfinite(rho_f) and rho_f > 0 and np.all(np.isfinite(t_bar)) and np.all(t_bar > 0)):
        return None
    a = np.concatenate([[1.0], np.sqrt(rho_f / t_bar)])
    c_out = math.sqrt(rho_f)
    top = float(max(np.max(np.abs(chain.alpha)), np.max(np.abs(chain.beta))))
    slope = top if top > 0 else 1.0
    ws = [slope * w * (a[k] / a[k + 1]) for k, w in enumerate(chain.weights[:-1])]
    ws.append(chain.weights[-1] * (a[-1] / c_out))
    per = np.concatenate([np.full(s.stop - s.start, c_out ** 2 / a[k + 1] ** 2)
                          for k, s in enumerate(chain.layer_slices())])

    def to_original(rho_b, lam_b):
        return rho_b * c_out ** 2, np.asarray(lam_b, dtype=np.float64) * per

    return Chain(tuple(ws), chain.alpha / slope, chain.beta / slope), to_original


def solve_chordal_piece(net, form: str, solver: str, margin: float, original=None):
    r"""LipSDP of a (reduced) :class:`~theory.lipsdp.FeedForward` by the chordal method, certified on
    ``original`` (the unreduced weights) when given. Returns a :class:`~theory.certified_solve.Certified` whose
    ``value`` is the certified :math:`\rho` and whose checks hold ``rho_solver`` (the float64 minimal
    :math:`\rho` of the proposed multipliers), ``lambda_max`` (an upper bound, negative), ``lam`` and the solver's
    diagnostics. ``solver``: ``"STRUCTURED"`` (:func:`solve_structured`) or a cvxpy solver for
    :func:`clique_problem`.

    CVXOPT on the clique LMIs: its default Cholesky-based KKT solver can stop with "Terminated (singular KKT
    matrix)" close to the optimum, after which cvxpy reports a failure and keeps no values (measured: the
    2-10-30-20-2 reference net, Layer form, at iteration 12 with gap 1e-7; the free overlap variables :math:`Y_k`
    and the one multiplier per layer make the reduced KKT system nearly singular there). The solve is then retried
    with ``kktsolver="robust"`` (LDL; 4x slower on that net, same optimum to 1e-9). If that fails too, or a
    proposal does not certify, the piece is solved by ``"STRUCTURED"``: the result's ``solver`` says so and
    ``checks["solver_fallback"]`` records why; a failure never becomes a missing bound.
    """
    from .certified_solve import solve_and_certify

    err = _error()
    chain = Chain.from_net(net)
    orig = Chain.from_net(original) if original is not None else None
    if np.any(chain.alpha == chain.beta):
        chain = chain.relaxed()
        orig = orig.relaxed() if orig is not None else None
    cliques = [a + b for a, b in zip(chain.sizes[:-1], chain.sizes[1:])]
    if solver == STRUCTURED:
        prob = StructuredProblem(lambda: solve_structured(chain, form))
        holder = {}

        def certify(values):
            res = prob.result
            rc, checks = _certifier(chain, orig, {"clique_sizes": str(cliques)}, res.info.get("interior"))(values)
            checks.update(newton_steps=res.newton_steps, gap=res.gap, warm_start=res.warm_start,
                          structured_rho=res.rho, algorithm=res.info.get("algorithm"))
            if res.info.get("fallback"):
                checks["algorithm_fallback"] = res.info["fallback"]
            holder.update(checks)
            return rc, checks

        return solve_and_certify(prob, prob.variables, certify, solver=STRUCTURED, error=err)
    balanced = balance_chain(chain)
    if balanced is None:
        scales, nchain = _normalise(chain)

        def to_original(rho_n, lam_n):
            return _to_original(scales, rho_n, lam_n, nchain.sizes)
    else:
        nchain, to_original = balanced
    prob, variables = clique_problem(nchain, form, margin)
    sl = nchain.layer_slices()

    def certify_clique(values):
        lam_n = np.concatenate([np.atleast_1d(values[f"lam{k}"]).ravel() * np.ones(s.stop - s.start)
                                for k, s in enumerate(sl)])
        rho_o, lam_o = to_original(float(values["rho"]), lam_n)
        return _certifier(chain, orig, {"clique_sizes": str(cliques)})({"rho": rho_o, "lam": lam_o})

    attempts = [{"eps": 1e-9, "max_iters": 200_000} if solver == "SCS" else {}]
    if solver == "CVXOPT":
        attempts.append({"kktsolver": "robust"})  # LDL instead of Cholesky of the KKT system (see below)
    notes = []
    for opts in attempts:
        try:
            res = solve_and_certify(prob, variables, certify_clique, solver=solver, options=opts, error=err)
        except err as exc:
            notes.append(f"{solver}{' ' + str(opts) if opts else ''}: {exc}")
            continue
        if notes:
            res = replace(res, checks={**res.checks, "solver_fallback": f"retried with {opts}: " + "; ".join(notes)})
        return res
    # the clique LMIs could not be solved (or their proposal not certified): the structured method on the same
    # piece, recorded (the certificate is the same, so the bound is as sound; only the requested solver changed)
    res = solve_chordal_piece(net, form, STRUCTURED, margin, original)
    return replace(res, checks={**res.checks, "solver_fallback": f"{solver} clique LMIs failed ({'; '.join(notes)}); "
                                                                 f"solved by {STRUCTURED} instead",
                                "requested_solver": solver})
