"""Composable Hypothesis strategies for the convex-duality and covering properties; each returns a Case.

As in :mod:`verification.strategies`, arrays come from a seeded numpy generator whose seed is part of the draw,
so Hypothesis shrinks sizes, scales and seeds while every array stays reproducible from the config. Sizes are tiny
(n, s, d, c <= 4) so that one cvxpy solve takes a few hundredths of a second.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from .cases import Case
from .strategies import log_uniform, seeds

LOSS_MODES = ("squared", "squared_pooled", "cross_entropy")


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def loss_kwargs(case: Case) -> dict:
    """``loss``/``pool``/``classes`` keyword arguments of the theory programs for a case's ``mode``."""
    mode = case["mode"]
    if mode == "cross_entropy":
        return {"loss": "cross_entropy", "classes": case["c"]}
    return {"loss": "squared", "pool": mode == "squared_pooled"}


def _targets(rng, mode: str, n: int, s: int, c: int, scale: float) -> np.ndarray:
    if mode == "cross_entropy":
        return rng.integers(0, c, n).astype(np.float64)
    shape = (n, c) if mode == "squared_pooled" or s == 1 else (n, s, c)
    return rng.standard_normal(shape) * scale


@st.composite
def convex_cases(draw, head: str = "attention", gated: bool = False, modes=LOSS_MODES, max_n: int = 4,
                 max_tokens: int = 3, max_dim: int = 3, max_gates: int = 3, data_scale=(0.3, 3.0), beta=(1e-2, 10.0)):
    """Tokens ``(n, s, d)``, targets for a loss ``mode``, weight decay ``beta`` and, if ``gated``, gates.

    ``head="attention"`` gates are ``(P, d, d)`` matrices, ``head="mlp"`` gates ``(P, d)`` vectors.
    """
    n = draw(st.integers(1, max_n))
    s = draw(st.integers(1, max_tokens))
    d = draw(st.integers(1, max_dim))
    mode = draw(st.sampled_from(modes))
    c = draw(st.integers(2, 3)) if mode == "cross_entropy" else draw(st.integers(1, 2))
    seed = draw(seeds)
    scale = draw(log_uniform(*data_scale))
    b = draw(log_uniform(*beta))
    p = draw(st.integers(1, max_gates)) if gated else 0
    rng = _rng(seed)
    arrays = {"tokens": rng.standard_normal((n, s, d)) * scale / math.sqrt(d),
              "targets": _targets(rng, mode, n, s, c, 1.0)}
    if gated:
        arrays["gates"] = rng.standard_normal((p, d, d) if head == "attention" else (p, d))
    return Case({"head": head, "gated": gated, "n": n, "s": s, "d": d, "c": c, "mode": mode, "seed": seed,
                 "data_scale": scale, "beta": b, "gates_count": p}, arrays)


@st.composite
def ball_cases(draw):
    """A finite set inside the ball B_R of R^m (uniform, on the sphere, or a tight grid on a diameter) and eps."""
    kind = draw(st.sampled_from(("uniform", "sphere", "diameter_grid")))
    m = 1 if kind == "diameter_grid" else draw(st.integers(1, 3))
    r = draw(log_uniform(0.1, 10.0))
    frac = draw(log_uniform(0.05, 2.5))
    count = draw(st.integers(20, 300))
    seed = draw(seeds)
    rng = _rng(seed)
    eps = frac * r
    if kind == "diameter_grid":  # the tight family: k + 1 points eps (1 + 1e-9) apart, eps = 2R / (k (1 + 2e-9))
        eps = 2.0 * r / (draw(st.integers(1, 40)) * (1 + 2e-9))
        u = rng.standard_normal(m)
        u /= np.linalg.norm(u)
        steps = np.arange(-r, r + 1e-12 * r, eps * (1 + 1e-9))
        pts = np.outer(steps, u)
    else:
        g = rng.standard_normal((count, m))
        g /= np.linalg.norm(g, axis=1, keepdims=True)
        rad = np.ones((count, 1)) if kind == "sphere" else rng.random((count, 1)) ** (1.0 / m)
        pts = g * rad * r
    pts *= 1.0 - 1e-12  # stay inside the closed ball despite rounding
    return Case({"dim": m, "radius": r, "eps": eps, "kind": kind, "count": count, "seed": seed}, {"points": pts})


@st.composite
def matrix_class_cases(draw):
    """Data X ``(n, d)``, an output width m, exponents (p, s), a norm budget a and a scale fraction."""
    n, d, m = (draw(st.integers(1, k)) for k in (4, 3, 3))
    p = draw(st.sampled_from((2.0, 1.5, 1.0)))
    s = draw(st.sampled_from((1.0, 2.0)))
    a = draw(log_uniform(0.1, 10.0))
    frac = draw(log_uniform(0.05, 1.5))
    seed = draw(seeds)
    x = _rng(seed).standard_normal((n, d))
    return Case({"n": n, "d": d, "m": m, "p": p, "s": s, "a": a, "frac": frac, "seed": seed}, {"data": x})


@st.composite
def network_class_cases(draw):
    """A base ReLU network (its norms define the class), data and a scale fraction."""
    depth = draw(st.integers(1, 2))
    widths = [draw(st.integers(1, 3)) for _ in range(depth + 1)]
    n = draw(st.integers(1, 4))
    frac = draw(log_uniform(0.05, 1.5))
    seed = draw(seeds)
    rng = _rng(seed)
    arrays = {"data": rng.standard_normal((n, widths[0]))}
    for i in range(depth):
        arrays[f"w{i}"] = rng.standard_normal((widths[i + 1], widths[i])) / math.sqrt(widths[i])
    return Case({"depth": depth, "widths": widths, "n": n, "frac": frac, "seed": seed}, arrays)


@st.composite
def conv_class_cases(draw):
    """Inputs ``(n, c_in, h, w)``, a kernel shape, a (2,1) budget b, padding/stride and a scale fraction."""
    n, ci, co = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    k = draw(st.integers(1, 3))
    size = draw(st.integers(max(k, 2), 5))
    b = draw(log_uniform(0.1, 10.0))
    frac = draw(log_uniform(0.05, 1.5))
    padding = draw(st.sampled_from(("zeros", "circular")))
    stride = draw(st.sampled_from((1, 2)))
    seed = draw(seeds)
    x = _rng(seed).standard_normal((n, ci, size, size))
    return Case({"c_out": co, "k": k, "size": size, "b": b, "frac": frac, "padding": padding, "stride": stride,
                 "seed": seed}, {"data": x})


@st.composite
def head_class_cases(draw):
    """Sequences ``(m, T, d)`` and the norm budgets of Edelman et al.'s attention-head class."""
    m, t, d = draw(st.integers(1, 4)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    seed = draw(seeds)
    cfg = {"m": m, "T": t, "d": d, "seed": seed, "frac": draw(log_uniform(0.05, 1.5))}
    for key in ("b_w", "b_v", "b_v21", "b_qk21"):
        cfg[key] = draw(log_uniform(0.2, 5.0))
    x = _rng(seed).standard_normal((m, t, d)) * draw(log_uniform(0.3, 3.0)) / math.sqrt(d)
    return Case(cfg, {"data": x})


@st.composite
def point_clouds(draw, min_points: int = 20, max_points: int = 150):
    """A point cloud of known structure (a low-dimensional subspace, a sphere, a cube) and a similarity transform."""
    n = draw(st.integers(min_points, max_points))
    ambient = draw(st.integers(2, 6))
    intrinsic = draw(st.integers(1, ambient))
    kind = draw(st.sampled_from(("subspace", "sphere", "cube")))
    seed = draw(seeds)
    scale = draw(log_uniform(1e-3, 1e3))
    rng = _rng(seed)
    if kind == "sphere":
        z = rng.standard_normal((n, intrinsic + 1))
        z /= np.linalg.norm(z, axis=1, keepdims=True)
        base = z @ rng.standard_normal((intrinsic + 1, ambient + 1))
    else:
        z = rng.standard_normal((n, intrinsic)) if kind == "subspace" else rng.random((n, intrinsic))
        base = z @ rng.standard_normal((intrinsic, ambient))
    q, _ = np.linalg.qr(rng.standard_normal((base.shape[1], base.shape[1])))
    shift = rng.standard_normal(base.shape[1]) * scale
    return Case({"n": n, "ambient": ambient, "intrinsic": intrinsic, "kind": kind, "seed": seed, "scale": scale},
                {"points": base, "rotation": q, "shift": shift})
