r"""Certified forward passes: interval enclosures of small attention networks in float64 (numpy).

A float64 forward pass of a collapsing network is dominated by rounding noise once the residual falls below
~1e-16 of the output scale, so a bound whose right side is :math:`\rho^{3^L}` cannot be tested on it soundly.
:func:`enclose` instead returns, for every output entry, an interval that contains the value of the network
*in exact real arithmetic* (weights and input read as exact reals), so residual lower bounds computed from it
(:func:`theory.rank_collapse.optimal_residual_bounds` on the box) are certified.

Midpoint-radius arithmetic :math:`\langle m,r\rangle=\{y:|y-m|\le r\}`, with rounding errors folded into r:

* products: :math:`|AB-m_Am_B|\le|m_A|r_B+r_A(|m_B|+r_B)` plus :math:`\gamma_k|m_A||m_B|` for the float product
  (Higham, Accuracy and Stability of Numerical Algorithms, Thm 3.5, :math:`\gamma_k=ku/(1-ku)`);
* radii are sums of non-negative terms, inflated by :math:`1+4(k+4)u` to cover their own rounding, plus
  :math:`10^{-300}` for underflow;
* monotone maps (exp, relu, softmax written as :math:`p_{ij}=1/\sum_k e^{z_{ik}-z_{ij}}`) act on endpoints that
  are first moved outward by one ulp, and ``exp`` is trusted to 16 ulp (libm/NumPy exp are within a few ulp).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..theory.numerics import UNIT_ROUNDOFF
from ..theory.validate import InputError, as_real_array

from .rank_collapse import TokenNetwork

__all__ = ["Box", "enclose"]

_TINY = 1e-300


def _inflate(r: np.ndarray, k: int) -> np.ndarray:
    return r * (1.0 + 4.0 * (k + 4) * UNIT_ROUNDOFF) + _TINY


@dataclass(frozen=True)
class Box:
    """Entrywise enclosure ``mid +- rad`` of a real matrix."""

    mid: np.ndarray
    rad: np.ndarray

    @classmethod
    def point(cls, a) -> "Box":
        a = np.asarray(a, dtype=np.float64)
        return cls(a, np.zeros_like(a))

    @classmethod
    def from_bounds(cls, lo: np.ndarray, hi: np.ndarray) -> "Box":
        mid = 0.5 * lo + 0.5 * hi
        rad = np.maximum(hi - mid, mid - lo)
        return cls(mid, _inflate(rad, 1) + 2 * UNIT_ROUNDOFF * np.abs(mid))

    @property
    def lower(self) -> np.ndarray:
        return np.nextafter(self.mid - self.rad, -np.inf)

    @property
    def upper(self) -> np.ndarray:
        return np.nextafter(self.mid + self.rad, np.inf)

    def __add__(self, other: "Box") -> "Box":
        m = self.mid + other.mid
        return Box(m, _inflate(self.rad + other.rad + UNIT_ROUNDOFF * np.abs(m), 2))

    def __matmul__(self, other: "Box") -> "Box":
        am, bm = np.abs(self.mid), np.abs(other.mid)
        k = self.mid.shape[-1]
        gamma = (k + 2) * UNIT_ROUNDOFF * 1.01
        r = am @ other.rad + self.rad @ (bm + other.rad) + gamma * (am @ bm)
        return Box(self.mid @ other.mid, _inflate(r, 3 * k))

    def scale(self, c: float, c_rel_err: float = 0.0) -> "Box":
        """Multiply by a real known to lie in ``c * (1 +- c_rel_err)``."""
        m = self.mid * c
        r = abs(c) * self.rad * (1 + c_rel_err) + np.abs(m) * (c_rel_err + 2 * UNIT_ROUNDOFF)
        return Box(m, _inflate(r, 2))

    def add_row(self, b) -> "Box":
        """Add an exact row vector ``b`` to every row."""
        return self + Box.point(np.broadcast_to(np.asarray(b, dtype=np.float64), self.mid.shape))

    def transpose(self) -> "Box":
        return Box(self.mid.T, self.rad.T)

    def relu(self) -> "Box":
        return Box.from_bounds(np.maximum(self.lower, 0.0), np.maximum(self.upper, 0.0))

    def softmax_rows(self) -> "Box":
        r""":math:`p_{ij}=1/\sum_ke^{z_{ik}-z_{ij}}`, monotone in each difference, which is enclosed exactly."""
        n = self.mid.shape[-1]
        dm = self.mid[:, None, :] - self.mid[:, :, None]  # [i, j, k] = z_ik - z_ij
        dr = self.rad[:, None, :] + self.rad[:, :, None] + UNIT_ROUNDOFF * np.abs(dm)
        dr = _inflate(dr, 2)
        eye = np.eye(n, dtype=bool)[None]
        lo = np.where(eye, 0.0, np.nextafter(dm - dr, -np.inf))
        hi = np.where(eye, 0.0, np.nextafter(dm + dr, np.inf))
        with np.errstate(over="ignore"):  # an infinite sum only makes the enclosure wider (p_lo = 0)
            e_lo = np.exp(lo) * (1 - 16 * UNIT_ROUNDOFF)
            e_hi = np.exp(hi) * (1 + 16 * UNIT_ROUNDOFF)
            s_lo = e_lo.sum(-1) * (1 - 2 * (n + 2) * UNIT_ROUNDOFF)
            s_hi = e_hi.sum(-1) * (1 + 2 * (n + 2) * UNIT_ROUNDOFF)
        with np.errstate(divide="ignore"):
            p_lo = np.maximum(0.0, 1.0 / s_hi * (1 - 4 * UNIT_ROUNDOFF))
            p_hi = np.minimum(1.0, 1.0 / s_lo * (1 + 4 * UNIT_ROUNDOFF) + _TINY)
        return Box.from_bounds(p_lo, p_hi)


def _attention_box(x: Box, w) -> Box:
    c = 1.0 / math.sqrt(w.head_dim)
    out = None
    for q, k, v, o in zip(w.query, w.key, w.value, w.output):
        a = (Box.point(q) @ Box.point(k.T)).scale(c, 3 * UNIT_ROUNDOFF)
        p = ((x @ a) @ x.transpose()).softmax_rows()
        term = p @ (x @ (Box.point(v) @ Box.point(o)))
        out = term if out is None else out + term
    return out


def enclose(net: TokenNetwork, x) -> list[Box]:
    """Interval enclosures of every layer output of ``net`` at ``x`` (``(n, d)``); element 0 is ``x`` itself.

    Supports the variants without LayerNorm (``san``, ``san_skip``, ``san_mlp``), which are what the collapse
    bounds cover.
    """
    if not isinstance(net, TokenNetwork):
        raise InputError(f"net: expected TokenNetwork, got {type(net).__name__}")
    if net.variant == "transformer":
        raise InputError("net: enclosures cover 'san', 'san_skip' and 'san_mlp' (no LayerNorm)")
    a = as_real_array("x", x, ndim=2)
    if a.shape[1] != net.dim:
        raise InputError(f"x: expected {net.dim} columns, got shape {a.shape}")
    h = Box.point(a)
    outs = [h]
    for b in net.blocks:
        z = _attention_box(h, b.attention)
        if net.variant == "san":
            h = z
        elif net.variant == "san_skip":
            h = h + z
        else:
            a_mat, a0, b_mat, b0 = b.mlp
            h = ((z @ Box.point(a_mat)).add_row(a0).relu() @ Box.point(b_mat)).add_row(b0)
        outs.append(h)
    return outs
