r"""Sound midpoint-radius interval arithmetic in float64: the one interval type of boundlab's local certificates.

A :class:`Box` :math:`\langle m,r\rangle=\{y:|y-m|\le r\}` (entrywise, any shape, numpy broadcasting) encloses a real
array. Every operation returns a box that contains the *exact real* result for every real operand in the operand
boxes; the float64 rounding of the operation itself is folded into the radius (the approach of
:mod:`boundlab.empirical.certified`, generalised to broadcasting, products, reciprocals, square roots and softmax):

* :math:`\mathrm{fl}(a\circ b)=(a\circ b)(1+\delta)`, :math:`|\delta|\le u=2^{-53}` for :math:`+,-,\times,/,\sqrt{}`;
  a sum of k products in any order (BLAS, pairwise summation) errs by at most
  :math:`\gamma_k\sum|a_ib_i|`, :math:`\gamma_k=ku/(1-ku)` (Higham, *Accuracy and Stability of Numerical
  Algorithms*, Thm 3.5), bounded here by :func:`gamma` :math:`=1.01(k+2)u`;
* a radius is a sum of products of non-negative floats computed with at most p roundings on any path, so its exact
  value is at most the computed one times :math:`(1-u)^{-p}\le1+2pu`; :func:`up` multiplies by
  :math:`1+4(p+4)u` and adds :math:`10^{-300}` for underflow;
* monotone maps (``exp``, ``sqrt``, reciprocal, ReLU) act on endpoints moved outward by one ulp, and ``exp`` is
  trusted to 16 ulp (NumPy's exp is within a few ulp).

Nothing here is specific to a network: :mod:`theory.local.propagate` builds the zonotopes and interval Jacobians of
the local Lipschitz certificate from these operations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..numerics import UNIT_ROUNDOFF as U

__all__ = ["Box", "gamma", "up", "TINY"]

TINY = 1e-300


def gamma(k: int) -> float:
    """An upper bound of :math:`\\gamma_k=ku/(1-ku)` for sums of k products (k < 1e12)."""
    return 1.01 * (int(k) + 2) * U


def up(r, p: int):
    """Inflate a computed non-negative quantity with at most ``p`` roundings per path so it bounds the exact one."""
    return np.asarray(r) * (1.0 + 4.0 * (int(p) + 4) * U) + TINY


def _down(a):
    return np.nextafter(a, -np.inf)


def _upx(a):
    return np.nextafter(a, np.inf)


@dataclass(frozen=True)
class Box:
    """Entrywise enclosure ``mid +- rad`` of a real array (``rad >= 0``, same shape as ``mid``)."""

    mid: np.ndarray
    rad: np.ndarray

    # ------------------------------------------------------------------ construction
    @classmethod
    def point(cls, a) -> "Box":
        """An exactly known array (its float64 value read as an exact real)."""
        a = np.asarray(a, dtype=np.float64)
        return cls(a, np.zeros_like(a))

    @classmethod
    def from_bounds(cls, lo, hi) -> "Box":
        """The smallest float box containing ``[lo, hi]`` (``lo <= hi`` entrywise)."""
        lo, hi = np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)
        mid = 0.5 * lo + 0.5 * hi
        rad = np.maximum(hi - mid, mid - lo)
        return cls(mid, up(rad, 1) + 2 * U * np.abs(mid))

    @property
    def lower(self) -> np.ndarray:
        return _down(self.mid - self.rad)

    @property
    def upper(self) -> np.ndarray:
        return _upx(self.mid + self.rad)

    @property
    def mag(self) -> np.ndarray:
        """An upper bound of :math:`|y|` over the box (computed, rounded up)."""
        return _upx(np.abs(self.mid) + self.rad)

    @property
    def shape(self) -> tuple:
        return self.mid.shape

    def finite(self) -> bool:
        return bool(np.isfinite(self.mid).all() and np.isfinite(self.rad).all())

    # ------------------------------------------------------------------ shape
    def __getitem__(self, idx) -> "Box":
        return Box(self.mid[idx], self.rad[idx])

    def reshape(self, *shape) -> "Box":
        return Box(self.mid.reshape(*shape), self.rad.reshape(*shape))

    def transpose(self, *axes) -> "Box":
        return Box(self.mid.transpose(*axes), self.rad.transpose(*axes))

    def swap(self) -> "Box":
        """Swap the last two axes (a batch of matrices transposed)."""
        return Box(np.swapaxes(self.mid, -1, -2), np.swapaxes(self.rad, -1, -2))

    # ------------------------------------------------------------------ arithmetic
    @staticmethod
    def _box(x) -> "Box":
        return x if isinstance(x, Box) else Box.point(x)

    def __add__(self, other) -> "Box":
        o = Box._box(other)
        m = self.mid + o.mid
        return Box(m, up(self.rad + o.rad + U * np.abs(m), 2))

    __radd__ = __add__

    def __neg__(self) -> "Box":
        return Box(-self.mid, self.rad)

    def __sub__(self, other) -> "Box":
        return self + (-Box._box(other))

    def __rsub__(self, other) -> "Box":
        return Box._box(other) + (-self)

    def __mul__(self, other) -> "Box":
        """Entrywise product (broadcasting)."""
        o = Box._box(other)
        m = self.mid * o.mid
        r = np.abs(self.mid) * o.rad + self.rad * (np.abs(o.mid) + o.rad) + U * np.abs(m)
        return Box(m, up(r, 4))

    __rmul__ = __mul__

    def __matmul__(self, other) -> "Box":
        """Matrix product (numpy ``@`` broadcasting over leading axes)."""
        o = Box._box(other)
        am, bm = np.abs(self.mid), np.abs(o.mid)
        k = self.mid.shape[-1]
        r = am @ o.rad + self.rad @ (bm + o.rad) + gamma(k) * (am @ bm)
        return Box(self.mid @ o.mid, up(r, 2 * k + 6))

    def __rmatmul__(self, other) -> "Box":
        return Box._box(other) @ self

    def sum(self, axis) -> "Box":
        k = self.mid.shape[axis] if isinstance(axis, int) else int(np.prod([self.mid.shape[a] for a in axis]))
        m = self.mid.sum(axis=axis)
        r = self.rad.sum(axis=axis) + gamma(k) * np.abs(self.mid).sum(axis=axis)
        return Box(m, up(r, k + 4))

    def scale(self, c: float, c_rel_err: float = 0.0) -> "Box":
        """Multiply by a real known to lie in ``c * (1 +- c_rel_err)`` (``c`` a float)."""
        m = self.mid * c
        r = abs(c) * self.rad * (1 + c_rel_err) + np.abs(m) * (c_rel_err + 2 * U)
        return Box(m, up(r, 4))

    # ------------------------------------------------------------------ monotone maps
    def relu(self) -> "Box":
        return Box.from_bounds(np.maximum(self.lower, 0.0), np.maximum(self.upper, 0.0))

    def exp(self) -> "Box":
        with np.errstate(over="ignore"):
            lo = np.exp(_down(self.lower)) * (1 - 16 * U)
            hi = np.exp(_upx(self.upper)) * (1 + 16 * U)
        return Box.from_bounds(np.maximum(lo, 0.0), hi)

    def sqrt(self) -> "Box":
        """Square root of a box of non-negative reals (a lower end below 0 is clipped at 0: the caller's box holds
        only non-negative reals)."""
        lo = np.sqrt(np.maximum(self.lower, 0.0)) * (1 - 2 * U)
        hi = np.sqrt(np.maximum(self.upper, 0.0)) * (1 + 2 * U)
        return Box.from_bounds(_down(lo), _upx(hi))

    def square(self) -> "Box":
        lo, hi = self.lower, self.upper
        a, b = np.minimum(np.abs(lo), np.abs(hi)), np.maximum(np.abs(lo), np.abs(hi))
        a = np.where((lo <= 0) & (hi >= 0), 0.0, a)
        return Box.from_bounds(_down(a * a * (1 - 2 * U)), _upx(b * b * (1 + 2 * U)))

    def reciprocal(self) -> "Box":
        """:math:`1/y` for a box of positive reals (a box reaching 0 or below gives ``inf`` radii)."""
        lo, hi = self.lower, self.upper
        with np.errstate(divide="ignore"):
            r_lo = np.where(hi > 0, 1.0 / hi * (1 - 2 * U), 0.0)
            r_hi = np.where(lo > 0, 1.0 / np.where(lo > 0, lo, 1.0) * (1 + 2 * U), np.inf)
        return Box.from_bounds(_down(r_lo), _upx(r_hi))

    def softmax(self) -> "Box":
        r""":math:`p_{\dots j}=1/\sum_ke^{z_{\dots k}-z_{\dots j}}` over the last axis, monotone in each difference."""
        n = self.mid.shape[-1]
        dm = self.mid[..., None, :] - self.mid[..., :, None]  # [..., j, k] = z_k - z_j
        dr = up(self.rad[..., None, :] + self.rad[..., :, None] + U * np.abs(dm), 2)
        eye = np.eye(n, dtype=bool)
        lo = np.where(eye, 0.0, _down(dm - dr))
        hi = np.where(eye, 0.0, _upx(dm + dr))
        with np.errstate(over="ignore"):  # an infinite sum only widens the enclosure (p_lo = 0)
            s_lo = (np.exp(lo) * (1 - 16 * U)).sum(-1) * (1 - 2 * (n + 2) * U)
            s_hi = (np.exp(hi) * (1 + 16 * U)).sum(-1) * (1 + 2 * (n + 2) * U)
        with np.errstate(divide="ignore"):
            p_lo = np.maximum(0.0, 1.0 / s_hi * (1 - 4 * U))
            p_hi = np.minimum(1.0, 1.0 / s_lo * (1 + 4 * U) + TINY)
        return Box.from_bounds(p_lo, p_hi)
