r"""Measurements for the QK-eigenspectrum statements (:mod:`theory.qk_spectrum`).

* :func:`entropy_curve`: Monte Carlo attention localization along a grid of eigenvalue variances at a fixed
  mean, with *common random numbers* (the same tokens, query, eigenbasis and spectrum shape for every grid point),
  so differences between grid points have small paired standard errors.
* :func:`gaussian_expectation`: exact expectations of polynomials of standard Gaussian vectors by tensor
  Gauss–Hermite quadrature (exact for degree <= 2m-1 per coordinate with m nodes), an independent check of
  the closed-form moments.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from boundlab.theory.validate import InputError, as_real_array, choice, positive_int
from boundlab.theory.qk_spectrum import attention_entropy, effective_support, qk_matrix, sparsemax_support, spectrum_with_moments

from ._torch import DTYPE, generator, resolve_device

__all__ = ["EntropyCurve", "entropy_curve", "gaussian_expectation"]


@dataclass
class EntropyCurve:
    """Per grid variance: mean entropy, effective support and sparsemax support; ``paired_se[i, j]`` is the
    standard error of the mean of :math:`H_i-H_j` over trials; ``regime`` records the setting."""

    sigma2: np.ndarray
    entropy: np.ndarray
    paired_se: np.ndarray
    effective_support: np.ndarray
    sparsemax_support: np.ndarray
    regime: dict


def entropy_curve(mean: float, sigma2, dim: int, n_tokens: int, *, trials: int = 256, seed: int = 0,
                  self_token: bool = True, scale: str = "sqrt_d", device=None) -> EntropyCurve:
    r"""Localization of :math:`p=\mathrm{softmax}(z)`, :math:`z_t=c\,q^\top Wx_t`, :math:`x_t\sim\mathcal N(0,I_d)`,
    for :math:`W=Q\,\mathrm{diag}(\lambda)Q^\top` with eigenvalue mean ``mean`` and each variance in ``sigma2``.

    ``self_token``: the query is :math:`x_1` (one of the T keys) or an independent Gaussian. ``scale``:
    :math:`c=1/\sqrt d` (``"sqrt_d"``) or 1. One seed fixes Q, the spectrum shape, the tokens and queries.
    """
    s2 = as_real_array("sigma2", sigma2, ndim=1)
    d = positive_int("dim", dim, minimum=2)
    t = positive_int("n_tokens", n_tokens, minimum=2)
    m = positive_int("trials", trials, minimum=2)
    choice("scale", scale, ("sqrt_d", "none"))
    dev = resolve_device(device)
    g = generator(seed, dev)
    basis = torch.randn((d, d), generator=g, device=dev, dtype=DTYPE).cpu().numpy()
    xi = torch.randn((d,), generator=g, device=dev, dtype=DTYPE).cpu().numpy()
    x = torch.randn((m, t, d), generator=g, device=dev, dtype=DTYPE)
    q = x[:, 0, :] if self_token else torch.randn((m, d), generator=g, device=dev, dtype=DTYPE)
    c = 1.0 / math.sqrt(d) if scale == "sqrt_d" else 1.0
    ent, eff, sps = [], [], []
    for v in s2:
        w = torch.as_tensor(qk_matrix(spectrum_with_moments(mean, float(v), xi), basis), dtype=DTYPE, device=dev)
        # z_t = (q^T W) . x_t; a broadcast product instead of einsum/bmm, which were 30x slower on a loaded
        # 2-core machine (batched small matmuls contend for threads)
        z = (x * (q @ w)[:, None, :]).sum(-1) * c
        p = torch.softmax(z, dim=-1).cpu().numpy()
        ent.append(attention_entropy(p))
        eff.append(effective_support(p))
        sps.append(sparsemax_support(z.cpu().numpy()))
    ent = np.array(ent)  # (grid, trials)
    diff = ent[:, None, :] - ent[None, :, :]
    paired = diff.std(axis=-1, ddof=1) / math.sqrt(m)
    regime = {"mean": float(mean), "dim": d, "n_tokens": t, "trials": m, "self_token": bool(self_token),
              "scale": scale, "T_over_d": t / d}
    return EntropyCurve(s2, ent.mean(axis=1), paired, np.mean(eff, axis=1), np.mean(sps, axis=1), regime)


def gaussian_expectation(f: Callable[[np.ndarray], np.ndarray], dim: int, nodes: int = 3) -> float:
    r""":math:`\mathbb E_{x\sim\mathcal N(0,I_{dim})}[f(x)]` by tensor Gauss–Hermite quadrature (probabilists'
    weight :math:`e^{-x^2/2}`), exact when f is a polynomial of degree :math:`\le 2\,\mathrm{nodes}-1` in each
    coordinate. ``f`` maps ``(N, dim)`` points to ``(N,)`` values. Grid size ``nodes**dim``: small dims only."""
    d = positive_int("dim", dim)
    k = positive_int("nodes", nodes)
    if k**d > 2_000_000:
        raise InputError(f"dim: a {k}^{d} quadrature grid is too large")
    x1, w1 = np.polynomial.hermite_e.hermegauss(k)
    w1 = w1 / math.sqrt(2 * math.pi)
    pts = np.array(list(itertools.product(x1, repeat=d)))
    wts = np.prod(np.array(list(itertools.product(w1, repeat=d))), axis=1)
    vals = np.asarray(f(pts), dtype=np.float64)
    if vals.shape != (pts.shape[0],):
        raise InputError(f"f: expected values of shape ({pts.shape[0]},), got {vals.shape}")
    return float(np.dot(wts, vals))
