r"""The statistics of the verdicts: a seeded paired bootstrap interval, an exact paired sign-flip test, the rule.

For a claim "a is lower than b" the compared quantity per seed s is the paired difference
:math:`d_s=g(a_s)-g(b_s)` (g = log for positive, scale-like quantities, the identity otherwise). The verdict comes
from the bootstrap 95% percentile interval of the mean difference, never from the mean alone:

* ``supported`` when the whole interval lies on the claim's side of 0 (``< 0`` for "lower", ``> 0`` for "higher"),
* ``contradicted`` when it lies on the other side,
* ``inconclusive`` when it contains 0, with fewer than 2 seeds, or with a missing value.

The paired test reported beside it is the exact sign-flip permutation test of the mean difference (all
:math:`2^n` sign patterns for n <= 16 seeds, 20,000 seeded draws above): under the null of a symmetric
difference distribution every sign pattern is equally likely. With 5 seeds its smallest two-sided p-value is
2/32 = 0.0625, which is why the interval, not a p < 0.05 threshold, decides.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

__all__ = ["bootstrap_mean_ci", "sign_flip_test", "verdict_from_interval", "paired", "transform"]


def transform(values, scale: str) -> np.ndarray:
    a = np.asarray(values, dtype=float)
    return np.log(a) if scale == "log" else a


def bootstrap_mean_ci(d, n_boot: int, seed: int, level: float = 0.95) -> tuple[float, float, float]:
    """``(mean, lo, hi)``: the mean of ``d`` and the percentile interval of ``n_boot`` seeded resample means."""
    d = np.asarray(d, dtype=float)
    if d.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(np.mean(d))
    if not np.isfinite(d).all():  # an infinite difference (a vacuous bound): the interval is unbounded that way
        lo = -math.inf if (d == -np.inf).any() else float(np.min(d[np.isfinite(d)], initial=math.inf))
        hi = math.inf if (d == np.inf).any() else float(np.max(d[np.isfinite(d)], initial=-math.inf))
        return mean, lo, hi
    rng = np.random.default_rng(int(seed))
    idx = rng.integers(0, d.size, size=(int(n_boot), d.size))
    means = d[idx].mean(axis=1)
    a = (1 - level) / 2
    return mean, float(np.quantile(means, a)), float(np.quantile(means, 1 - a))


def sign_flip_test(d, seed: int = 0, draws: int = 20000) -> float:
    """Two-sided p-value of the paired sign-flip test of ``mean(d) = 0`` (exact for up to 16 pairs)."""
    d = np.asarray(d, dtype=float)
    d = d[np.isfinite(d)]
    n = d.size
    if n == 0:
        return math.nan
    obs = abs(d.mean())
    if n <= 16:
        signs = np.array(list(itertools.product((-1.0, 1.0), repeat=n)))
    else:
        signs = np.random.default_rng(int(seed)).choice((-1.0, 1.0), size=(draws, n))
    stats = np.abs((signs * d).mean(axis=1))
    return float(np.mean(stats >= obs - 1e-12 * max(1.0, obs)))


def verdict_from_interval(lo: float, hi: float, direction: str) -> str:
    """``supported`` / ``contradicted`` / ``inconclusive`` from the interval of the mean difference a - b."""
    if math.isnan(lo) or math.isnan(hi):
        return "inconclusive"
    if direction == "lower":
        return "supported" if hi < 0 else ("contradicted" if lo > 0 else "inconclusive")
    return "supported" if lo > 0 else ("contradicted" if hi < 0 else "inconclusive")


def paired(a: dict, b: dict, scale: str, direction: str, n_boot: int, seed: int) -> dict:
    """The paired comparison of per-seed values ``a``, ``b`` (dicts seed -> value): interval, test, verdict."""
    seeds = sorted(set(a) & set(b))
    base = {"seeds": seeds, "scale": scale, "n": len(seeds)}
    if not seeds:
        return {**base, "verdict": "inconclusive", "reason": "no seed with both models finished"}
    missing = [s for s in seeds if not _ok(a[s], scale) or not _ok(b[s], scale)]
    if missing:
        return {**base, "verdict": "inconclusive", "reason": f"value missing or not positive for seeds {missing}"}
    d = transform([a[s] for s in seeds], scale) - transform([b[s] for s in seeds], scale)
    mean, lo, hi = bootstrap_mean_ci(d, n_boot, seed)
    out = {**base, "difference": {"mean": mean, "ci95": [lo, hi], "what": ("log(a) - log(b)" if scale == "log"
                                                                           else "a - b")},
           "test": {"name": "paired sign-flip permutation test of the mean difference", "p": sign_flip_test(d, seed)}}
    if len(seeds) < 2:
        return {**out, "verdict": "inconclusive", "reason": "fewer than 2 seeds"}
    return {**out, "verdict": verdict_from_interval(lo, hi, direction)}


def _ok(v, scale: str) -> bool:
    if not isinstance(v, (int, float)) or isinstance(v, bool) or math.isnan(v):
        return False
    return v > 0 if scale == "log" else math.isfinite(v)
