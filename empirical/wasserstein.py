r"""Wasserstein distances between uniform empirical measures on point clouds (POT; exact, no entropic blur).

:math:`W_p(\mu_X,\mu_Y)=\big(\min_{\pi\in\Pi(\frac1n\mathbf 1,\frac1m\mathbf 1)}\sum_{ij}\pi_{ij}\|x_i-y_j\|^p\big)^{1/p}`.
"""

from __future__ import annotations

import numpy as np
import ot
from scipy.optimize import linear_sum_assignment

from boundlab.theory.validate import InputError, as_real_array, positive_float


def wasserstein_uniform(x, y, p: float = 2.0) -> float:
    """Exact :math:`W_p` between the uniform measures on the rows of ``x`` (n, d) and ``y`` (m, d)."""
    a = as_real_array("x", x, ndim=2)
    b = as_real_array("y", y, ndim=2)
    if a.shape[1] != b.shape[1]:
        raise InputError(f"y: expected {a.shape[1]} columns like x, got shape {b.shape}")
    p = positive_float("p", p)
    if p < 1:
        raise InputError(f"p: expected p >= 1, got {p}")
    # differences, not the |a|^2 + |b|^2 - 2ab expansion of ot.dist, which cancels for nearby points
    cost = np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1)) ** p
    scale = float(cost.max())
    if scale == 0.0:
        return 0.0
    if a.shape[0] == b.shape[0]:
        # equal sizes: an optimal plan is a permutation (Birkhoff), solved exactly by the Hungarian method
        rows, cols = linear_sum_assignment(cost)
        val = float(cost[rows, cols].mean())
    else:
        # POT's network simplex works to an absolute tolerance: rescale the costs to O(1) first (with costs
        # of 1e-18 it returned W2 50% too large, which made a correct bound look falsified; corpus entry of
        # attention.meanfield_w2)
        wa = np.full(a.shape[0], 1.0 / a.shape[0])
        wb = np.full(b.shape[0], 1.0 / b.shape[0])
        val = float(ot.emd2(wa, wb, cost / scale, numItermax=1_000_000)) * scale
    return max(val, 0.0) ** (1.0 / p)
