"""Floating-point soundness helpers: every upper bound leaves :mod:`theory` through :func:`round_up`.

An upper bound computed in float64 can come out a few ulps *below* the real number it stands for
(an SVD, an FFT or a product of norms each commit relative errors of order ``dim * eps``). Upper bounds are
therefore inflated by an explicit outward margin

.. math:: \\tilde u = \\mathrm{nextafter}\\big(u\\,(1 + \\rho),\\, +\\infty\\big), \\qquad \\rho = 10^{-10},

which dominates the backward error of the LAPACK/FFT routines used here for any problem with fewer than
``1e5`` rows per block (``1e5 * 2.2e-16 ~ 2e-11 < 1e-10``). Lower bounds go the other way through
:func:`round_down`. The margin is visible in every result (``margin`` field) so a reader can undo it.
"""

from __future__ import annotations

import math

import numpy as np

#: relative outward margin applied to every reported upper bound (see module docstring)
RELATIVE_MARGIN = 1e-10

#: the unit roundoff of IEEE float64, u = 2^-53: the constant of every rounding-error bound in boundlab
#: (|fl(a op b) - a op b| <= u |a op b|; dot products of length k: gamma_k = k u / (1 - k u), Higham Ch. 3)
UNIT_ROUNDOFF = 2.0**-53


def round_up(value: float, rel: float = RELATIVE_MARGIN) -> float:
    """Return a float64 that is >= ``value * (1 + rel)``: the outward-rounded version of an upper bound."""
    v = float(value)
    if math.isnan(v):
        raise ValueError("round_up: value is NaN")
    if v == math.inf:
        return v
    if v >= 0:
        return float(np.nextafter(v * (1.0 + rel), math.inf))
    return float(np.nextafter(v * (1.0 - rel), math.inf))


def round_down(value: float, rel: float = RELATIVE_MARGIN) -> float:
    """Return a float64 that is <= ``value * (1 - rel)`` (for value >= 0): an inward-rounded lower bound."""
    v = float(value)
    if math.isnan(v):
        raise ValueError("round_down: value is NaN")
    if v >= 0:
        return float(np.nextafter(v * (1.0 - rel), -math.inf))
    return float(np.nextafter(v * (1.0 + rel), -math.inf))


def spectral_norm(matrix: np.ndarray) -> float:
    """Largest singular value of a real or complex matrix (float64 LAPACK), not yet rounded outward."""
    m = np.asarray(matrix)
    if m.size == 0:
        return 0.0
    return float(np.linalg.svd(m, compute_uv=False)[..., 0].max())


def inf_norm(matrix: np.ndarray) -> float:
    """Induced :math:`\\ell_\\infty` operator norm: the largest absolute row sum."""
    m = np.abs(np.asarray(matrix, dtype=np.float64))
    return float(m.sum(axis=-1).max())


def lambert_w0(x: float) -> float:
    """Principal branch :math:`W_0(x)` for real ``x >= 0`` (scipy), the inverse of :math:`w e^w`."""
    from scipy.special import lambertw

    if x < 0:
        raise ValueError(f"lambert_w0: expected x >= 0, got {x}")
    return float(np.real(lambertw(x, 0)))
