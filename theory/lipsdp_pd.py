r"""A primal-dual interior-point method for the chordal LipSDP (solver ``"STRUCTURED"``, its default algorithm).

The LipSDP of a chain (:mod:`theory.lipsdp_chordal`) is the dual-form SDP

.. math:: \max_y\ -\rho\quad\text{s.t.}\quad Z=A(\rho,\lambda)=C_0+\rho E_0+\sum_i\lambda_iF_i\succeq0,\
    \ z=\lambda\ge0,

with :math:`C_0=-E_L^\top W_L^\top W_LE_L`, :math:`E_0` the identity on the input block and
:math:`F_i=e_if_i^\top+f_ie_i^\top` (rank 2). Its conic dual is
:math:`\min\langle C_0,X\rangle` s.t. :math:`\mathrm{tr}X_{00}=1`, :math:`\mathrm{tr}(F_iX)+x_i=0`,
:math:`X\succeq0`, :math:`x\ge0`.

The method is the infeasible primal-dual path-following method with the HKM direction and Mehrotra's
predictor-corrector (Helmberg, Rendl, Vanderbei, Wolkowicz 1996; Kojima, Shindoh, Hara 1997; Monteiro 1997; as in
SDPT3, Toh, Todd, Tütüncü 1999), kept *dual feasible*: :math:`Z` is always re-assembled from :math:`y`, so every
iterate is a strictly feasible LipSDP point (a proposal the certificate can use) and only the primal is
infeasible. The Schur complement :math:`M_{ij}=\mathrm{tr}(F_iXF_jZ^{-1})` costs a few :math:`N\times N`
Hadamard products of Gram matrices, exactly as the barrier's Hessian
(:meth:`theory.lipsdp_chordal.StructuredBarrier.grams`):

.. math:: M_{\lambda\lambda}=G^X_{ef}\circ(G^W_{ef})^\top+(G^X_{ef})^\top\circ G^W_{ef}+G^X_{ee}\circ G^W_{ff}
    +G^X_{ff}\circ G^W_{ee},\qquad W=Z^{-1},

plus :math:`\mathrm{diag}(x/z)` for the sign constraints. :math:`X` and :math:`W` are dense (:math:`n\times n`),
so a step costs :math:`O(n^3)` like one barrier Newton step, but the method needs tens of steps where the primal
barrier needs hundreds on deep chains (measured: ``benchmarks/lipsdp_depth.py``), because it does not have to
re-center after each update of the barrier parameter.

Step lengths: the largest :math:`\alpha` with :math:`X+\alpha\Delta X\succeq0` from the smallest eigenvalue of
:math:`L^{-1}\Delta XL^{-\top}` (Lanczos, a proposal), times 0.95, then checked by a Cholesky factorization and
halved until it passes (the same for :math:`Z`, whose check is the block factorization of
:math:`A(y+\alpha\Delta y)`). Nothing here is trusted: the result is a proposal certified by
:func:`theory.lipsdp_chordal.certify_with_original`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
from scipy.linalg import cho_factor, lapack

from .lipsdp_chordal import (
    BarrierResult,
    Chain,
    StructuredBarrier,
    _potrf,
    chain_blocks,
)

__all__ = ["StructuredPrimalDual"]

#: iterations without progress in rho (with the gap closed, the primal still infeasible) that end a solve
STALL = 10


def _offsets(D) -> np.ndarray:
    """Block offsets (L+2,) of the diagonal blocks ``D``."""
    return np.concatenate([[0], np.cumsum([d.shape[0] for d in D])]).astype(int)


def _dense(D, B) -> np.ndarray:
    """The dense symmetric matrix ``tridiag(B^T, D, B)`` (blocks as returned by ``chain_blocks``)."""
    off = _offsets(D)
    out = np.zeros((off[-1], off[-1]))
    for k, d in enumerate(D):
        out[off[k]:off[k + 1], off[k]:off[k + 1]] = d
    for k, b in enumerate(B):
        out[off[k]:off[k + 1], off[k + 1]:off[k + 2]] = b
        out[off[k + 1]:off[k + 2], off[k]:off[k + 1]] = b.T
    return out


def _tri_mul(D, B, Y: np.ndarray) -> np.ndarray:
    """``tridiag(B^T, D, B) @ Y`` for a dense ``Y`` (n, m), block by block."""
    off = _offsets(D)
    out = np.empty_like(Y)
    for k, d in enumerate(D):
        rows = slice(off[k], off[k + 1])
        acc = d @ Y[rows]
        if k > 0:
            acc += B[k - 1].T @ Y[off[k - 1]:off[k]]
        if k < len(B):
            acc += B[k] @ Y[off[k + 1]:off[k + 2]]
        out[rows] = acc
    return out


def _tri_inner(D, B, X: np.ndarray) -> float:
    """:math:`\\langle X, \\mathrm{tridiag}(B^\\top,D,B)\\rangle` for a dense symmetric ``X``."""
    off = _offsets(D)
    tot = 0.0
    for k, d in enumerate(D):
        tot += float(np.sum(X[off[k]:off[k + 1], off[k]:off[k + 1]] * d))
    for k, b in enumerate(B):
        tot += 2.0 * float(np.sum(X[off[k]:off[k + 1], off[k + 1]:off[k + 2]] * b))
    return tot


def _min_eig_congruent(fac: np.ndarray, d: np.ndarray) -> float:
    r"""Smallest eigenvalue of :math:`L^{-1}DL^{-\top}` (``fac`` = L, lower), by Lanczos (dense for small n)."""
    n = d.shape[0]
    if n <= 200:
        y, _ = lapack.dtrtrs(fac, d, lower=1)
        y, _ = lapack.dtrtrs(fac, np.ascontiguousarray(y.T), lower=1)
        return float(np.linalg.eigvalsh((y + y.T) / 2)[0])
    from scipy.sparse.linalg import ArpackNoConvergence, LinearOperator, eigsh

    def mv(v):
        u, _ = lapack.dtrtrs(fac, v.reshape(-1, 1), lower=1, trans=1)
        u, _ = lapack.dtrtrs(fac, d @ u, lower=1)
        return u.ravel()

    op = LinearOperator((n, n), matvec=mv, dtype=np.float64)
    try:
        return float(eigsh(op, k=1, which="SA", tol=1e-3, v0=np.ones(n), ncv=min(n, 40), maxiter=400,
                           return_eigenvectors=False)[0])
    except ArpackNoConvergence as exc:
        vals = getattr(exc, "eigenvalues", None)
        return float(np.min(vals)) if vals is not None and len(vals) else -math.inf


def _step_to_boundary(lmin: float) -> float:
    return math.inf if lmin >= 0 else -1.0 / lmin


@dataclass
class _Iterate:
    """One iterate: primal ``X`` (n, n) and ``xl`` (m-1,), the inverse ``W`` of the dual slack, the dual sign slacks
    ``z`` (m-1,), and what the iteration caches (Cholesky factors of X and Z, the Schur factor, A(W))."""

    X: np.ndarray
    W: np.ndarray
    xl: np.ndarray
    z: np.ndarray
    facX: np.ndarray | None = None
    facZ: np.ndarray | None = None
    fm: tuple | None = None
    aw: np.ndarray | None = None


class StructuredPrimalDual(StructuredBarrier):
    r"""HKM primal-dual path following on a (normalised) chain (module docstring); ``form`` as
    :class:`~theory.lipsdp_chordal.StructuredBarrier`. :meth:`solve` takes a strictly feasible start ``y0``
    and returns a :class:`~theory.lipsdp_chordal.BarrierResult` (``gap``: the final complementarity
    :math:`\langle X,Z\rangle+x^\top z`, ``info``: iterations, primal infeasibility, step lengths)."""

    def __init__(self, chain: Chain, form: str = "neuron"):
        super().__init__(chain, form)
        n0 = self.sizes[0]
        self.n0 = n0
        self.starts = self.noff[:-1]

    # the operator A and its adjoint in the coordinates y = (rho, multipliers)
    def _agg(self, v: np.ndarray) -> np.ndarray:
        return v if self.form == "neuron" else np.add.reduceat(v, self.starts)

    def _adjoint(self, K: np.ndarray, grams=None) -> np.ndarray:
        r""":math:`(\mathrm{tr}K_{00},\ \mathrm{tr}(F_iK))` for a symmetric ``K`` (layer form: summed per layer)."""
        g = self.grams(K) if grams is None else grams
        return np.concatenate([[float(np.trace(K[:self.n0, :self.n0]))], self._agg(2.0 * np.diagonal(g[1]))])

    def _linear(self, dy: np.ndarray):
        """Blocks of :math:`\\Delta Z=\\Delta\\rho E_0+\\sum\\Delta\\lambda_iF_i` (no constant term)."""
        return chain_blocks(self.chain, float(dy[0]), self.lam(dy), output=False)

    def _schur(self, GX, GW, X, W, xl, z) -> np.ndarray:
        gee_x, gef_x, gff_x, v0e_x, v0f_x = GX
        gee_w, gef_w, gff_w, v0e_w, v0f_w = GW
        H = gef_x * gef_w.T + gef_x.T * gef_w + gee_x * gff_w + gff_x * gee_w
        hr = np.sum(v0e_w * v0f_x + v0f_w * v0e_x, axis=0)
        if self.form == "layer":
            H = np.add.reduceat(np.add.reduceat(H, self.starts, axis=0), self.starts, axis=1)
            hr = np.add.reduceat(hr, self.starts)
        m = self.m
        M = np.empty((m, m))
        n0 = self.n0
        M[0, 0] = float(np.sum(X[:n0, :n0] * W[:n0, :n0]))
        M[0, 1:] = hr
        M[1:, 0] = hr
        M[1:, 1:] = (H + H.T) / 2
        M[1:, 1:][np.diag_indices(m - 1)] += xl / z
        return M

    def _direction(self, it: "_Iterate", sig_mu: float, corr=None):
        """The HKM direction ``(dy, dD, dB, dZ W, dX, dx)`` for the target ``sig_mu`` (``corr``: Mehrotra's
        second-order terms ``(rhs part, sym(dX_a dZ_a W), dx_a dz_a / z)``)."""
        rhs = -np.eye(self.m)[0]  # b = (-1, 0, ..., 0): maximise -rho
        rhs[0] += sig_mu * it.aw[0]
        rhs[1:] += sig_mu * (it.aw[1:] + 1.0 / it.z)
        if corr is not None:
            rhs += corr[0]
        dy = self._solve_h(it.fm, rhs)
        dD, dB = self._linear(dy)
        dzw = _tri_mul(dD, dB, it.W)  # dZ W (n, n)
        t = it.X @ dzw
        dX = sig_mu * it.W - it.X - (t + t.T) / 2
        dxl = sig_mu / it.z - it.xl - it.xl * dy[1:] / it.z
        if corr is not None:
            dX -= corr[1]
            dxl -= corr[2]
        return dy, dD, dB, dzw, dX, dxl

    def _lengths(self, it: "_Iterate", dy, dD, dB, dX, dxl) -> tuple[float, float]:
        """Largest primal and dual steps in [0, 1] that keep the iterate in the cones (proposals, module docstring)."""
        ap = _step_to_boundary(_min_eig_congruent(it.facX, dX))
        neg = dxl < 0
        if np.any(neg):
            ap = min(ap, float(np.min(-it.xl[neg] / dxl[neg])))
        ad = _step_to_boundary(_min_eig_congruent(it.facZ, _dense(dD, dB))) if it.facZ is not None else 0.0
        dz = dy[1:]
        neg = dz < 0
        if np.any(neg):
            ad = min(ad, float(np.min(-it.z[neg] / dz[neg])))
        return min(1.0, ap), min(1.0, ad)

    def solve(self, y0: np.ndarray, *, tol: float = 1e-9, max_iter: int = 120, tau: float = 0.95) -> BarrierResult:
        r"""Path following from the strictly feasible ``y0 = (rho, multipliers)`` until the relative gap
        :math:`(\langle X,Z\rangle+x^\top z)/\rho` and the relative primal infeasibility are at most ``tol``
        (status ``optimal``) or ``max_iter`` iterations (``optimal_inaccurate``); ``tau``: fraction of the step to the
        boundary. Returns the dual-feasible iterate of smallest :math:`\rho`."""
        start = time.perf_counter()
        y = np.asarray(y0, dtype=np.float64).copy()
        fac = self.factor(y)
        if fac is None:
            from .lipsdp_chordal import _error

            raise _error()("primal-dual solver: the start is not strictly feasible")
        nu = float(self.n + self.m - 1)
        W = self.inverse(fac)
        z = y[1:].copy()
        # a perfectly centred start: X = mu W (XZ = mu I), x = mu / z, with mu making tr X_00 = 1
        mu = 1.0 / max(float(np.trace(W[:self.n0, :self.n0])), 1e-300)
        it = _Iterate(X=mu * W, W=W, xl=mu / z, z=z)
        D, B = chain_blocks(self.chain, y[0], self.lam(y))
        best = (y[0], y.copy())
        status, k, gap, pinf = "optimal_inaccurate", 0, math.inf, math.inf
        steps_p, steps_d, rhos = [], [], []
        for k in range(1, max_iter + 1):
            GX, GW = self.grams(it.X), self.grams(it.W)
            ax = self._adjoint(it.X, GX)
            rp = ax - np.eye(self.m)[0]  # b - A(X) - A_lp(x), A(X) = -(tr X_00, tr F_i X), A_lp(x) = (0, -x)
            rp[1:] += it.xl
            gap = _tri_inner(D, B, it.X) + float(it.xl @ it.z)
            mu = gap / nu
            pinf = float(np.linalg.norm(rp)) / (1.0 + float(np.linalg.norm(ax)))
            if gap <= tol * y[0] and pinf <= max(tol, 1e-9):  # y[0] = rho > 0 (strictly feasible)
                status = "optimal"
                break
            M = self._schur(GX, GW, it.X, it.W, it.xl, it.z)
            try:
                it.fm = ("chol", cho_factor(M, lower=True, check_finite=False))
            except np.linalg.LinAlgError:
                it.fm = self._factor_h(M)
            it.aw = self._adjoint(it.W, GW)
            it.facX = _potrf(it.X) if it.facX is None else it.facX
            if it.facX is None:
                break
            it.facZ = _potrf(_dense(D, B))
            # predictor (sigma = 0), Mehrotra's sigma = (mu_aff / mu)^3
            dy_a, dD_a, dB_a, dzw_a, dX_a, dxl_a = self._direction(it, 0.0)
            ap, ad = self._lengths(it, dy_a, dD_a, dB_a, dX_a, dxl_a)
            Dn = [d + ad * e for d, e in zip(D, dD_a)]
            Bn = [c + ad * e for c, e in zip(B, dB_a)]
            gap_a = _tri_inner(Dn, Bn, it.X + ap * dX_a) + float((it.xl + ap * dxl_a) @ (it.z + ad * dy_a[1:]))
            sigma = min(1.0, max(0.0, gap_a / gap)) ** 3
            # corrector: the second-order terms dX_a dZ_a W and dx_a dz_a / z
            k2 = dX_a @ dzw_a
            k2s = (k2 + k2.T) / 2
            lp2 = dxl_a * dy_a[1:] / it.z
            corr_y = -self._adjoint(k2s)
            corr_y[1:] -= lp2
            dy, dD, dB, _dzw, dX, dxl = self._direction(it, sigma * mu, (corr_y, k2s, lp2))
            ap, ad = self._lengths(it, dy, dD, dB, dX, dxl)
            ap, ad = min(1.0, tau * ap), min(1.0, tau * ad)
            # dual step: the block factorization of A(y + ad dy) must succeed; primal step: that of X + ap dX
            for _ in range(30):
                yn = y + ad * dy
                facn = self.factor(yn)
                if facn is not None:
                    break
                ad *= 0.5
            else:
                break
            for _ in range(30):
                Xn = it.X + ap * dX
                facXn = _potrf(Xn)
                if facXn is not None and np.all(it.xl + ap * dxl > 0):
                    break
                ap *= 0.5
            else:
                break
            y = yn
            it = _Iterate(X=Xn, W=self.inverse(facn), xl=it.xl + ap * dxl, z=y[1:].copy(), facX=facXn)
            D, B = chain_blocks(self.chain, y[0], self.lam(y))
            steps_p.append(ap)
            steps_d.append(ad)
            if y[0] < best[0]:
                best = (y[0], y.copy())
            rhos.append(y[0])
            if max(ap, ad) < 1e-10 or (len(rhos) > STALL and rhos[-STALL - 1] - rhos[-1] <= 1e-12 * rhos[-1]
                                       and gap <= tol * y[0]):
                break  # stalled: no step, or no progress in rho over STALL iterations with the gap closed
        yb = best[1] if best[0] < y[0] else y
        return BarrierResult(float(yb[0]), self.lam(yb).copy(), status, k, float(gap), time.perf_counter() - start,
                             info={"iterations": k, "primal_infeasibility": pinf, "steps_primal": steps_p,
                                   "steps_dual": steps_d, "evaluations": self.evals})
