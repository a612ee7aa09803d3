"""Strategies for the rank-collapse and QK-spectrum properties (composable, in the style of ``strategies.py``).

Every array is drawn from a numpy generator seeded by a drawn seed and stored in the :class:`Case`, together with
every drawn number, so the counterexample corpus replays a case whole.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from boundlab.empirical.rank_collapse import Block, TokenNetwork
from boundlab.theory.attention import AttentionWeights

from .cases import Case
from .strategies import log_uniform, seeds


@st.composite
def token_matrices(draw, min_tokens: int = 2, max_tokens: int = 6, max_dim: int = 4,
                   kinds=("gaussian", "integer", "near_rank_one")):
    """A token matrix X (n x d): Gaussian, small integers (ties, exact medians) or a rank-one matrix plus noise."""
    n = draw(st.integers(min_tokens, max_tokens))
    d = draw(st.integers(1, max_dim))
    kind = draw(st.sampled_from(kinds))
    seed = draw(seeds)
    s = draw(log_uniform(1e-2, 10.0))
    rng = np.random.default_rng(seed)
    if kind == "gaussian":
        x = rng.standard_normal((n, d)) * s
    elif kind == "integer":
        x = rng.integers(-3, 4, size=(n, d)).astype(np.float64) * s
    else:
        x = rng.standard_normal((1, d)) * s + 1e-3 * s * rng.standard_normal((n, d))
    return Case({"kind": kind, "seed": seed, "scale": s}, {"x": x})


@st.composite
def san_cases(draw, variant: str = "san", heads: int | None = None, max_heads: int = 2, max_depth: int = 3,
              max_tokens: int = 6, max_dim: int = 4, max_head_dim: int = 3, qk_scale=(0.1, 3.0),
              value_scale=(0.1, 3.0), residual_scale=(1e-2, 3.0), min_tokens: int = 2,
              replicated_heads: bool = False):
    r"""A bias-free token network (``variant`` of :mod:`empirical.rank_collapse`, no LayerNorm) and an input
    :math:`X=\mathbf 1x_0^\top+sR` whose shift :math:`x_0` and residual scale s are drawn log-uniformly.

    Arrays: ``query``/``key`` ``(L, H, d, d_k)``, ``value`` ``(L, H, d, d_k)``, ``output`` ``(L, H, d_k, d)``,
    ``x`` ``(n, d)``; MLP ``mlp_a`` ``(L, d, k)``, ``mlp_a0`` ``(L, k)``, ``mlp_b`` ``(L, k, d)``,
    ``mlp_b0`` ``(L, d)``.

    ``replicated_heads``: half the cases are H = 9..12 identical copies of one head on n = 2 tokens, d = 1, depth
    1 (where the single-head ratio reaches 1/8): the residual is H times the single head's, so a bound that drops
    its factor H fails there (the ``H dropped`` mutant of rank.dong_thm23).
    """
    replicate = replicated_heads and draw(st.booleans())
    if replicate:
        h, L, n, d = draw(st.integers(9, 12)), 1, 2, 1
    else:
        h = heads if heads is not None else draw(st.integers(1, max_heads))
        L = draw(st.integers(1, max_depth))
        n = draw(st.integers(min_tokens, max_tokens))
        d = draw(st.integers(1, max_dim))
    dk = draw(st.integers(1, max_head_dim))
    seed = draw(seeds)
    s_qk = draw(log_uniform(*qk_scale))
    s_v = draw(log_uniform(*value_scale))
    s_res = draw(log_uniform(*residual_scale))
    s_shift = draw(log_uniform(1e-2, 10.0))
    rng = np.random.default_rng(seed)
    arrays = {
        "query": rng.standard_normal((L, h, d, dk)) * s_qk / math.sqrt(d),
        "key": rng.standard_normal((L, h, d, dk)) * s_qk / math.sqrt(d),
        "value": rng.standard_normal((L, h, d, dk)) * s_v / math.sqrt(d),
        "output": rng.standard_normal((L, h, dk, d)) / math.sqrt(h * dk),
        "x": rng.standard_normal((1, d)) * s_shift + rng.standard_normal((n, d)) * s_res,
    }
    if replicate:  # every head a copy of head 0: arrays (L, H, ...) with H equal slices
        for key in ("query", "key", "value", "output"):
            arrays[key] = np.repeat(arrays[key][:, :1], h, axis=1)  # (L, 1, ...) -> (L, H, ...)
    cfg = {"variant": variant, "seed": seed, "replicated_heads": bool(replicate), "heads": h, "depth": L, "n_tokens": n, "dim": d, "head_dim": dk,
           "scale_qk": s_qk, "scale_v": s_v, "residual_scale": s_res, "shift_scale": s_shift}
    if variant == "san_mlp":
        k = draw(st.integers(1, 6))
        s_mlp = draw(log_uniform(0.1, 3.0))
        arrays.update(mlp_a=rng.standard_normal((L, d, k)) * s_mlp / math.sqrt(d),
                      mlp_a0=rng.standard_normal((L, k)) * 0.3,
                      mlp_b=rng.standard_normal((L, k, d)) * s_mlp / math.sqrt(k),
                      mlp_b0=rng.standard_normal((L, d)) * 0.3)
        cfg.update(hidden=k, scale_mlp=s_mlp)
    return Case(cfg, arrays)


def network_of(case: Case, variant: str | None = None) -> TokenNetwork:
    """The :class:`TokenNetwork` of a :func:`san_cases` case (optionally rewired as another variant)."""
    v = variant or case["variant"]
    blocks = []
    for l in range(case["query"].shape[0]):
        att = AttentionWeights.from_arrays(case["query"][l], case["key"][l], case["value"][l], case["output"][l])
        mlp = None
        if "mlp_a" in case.arrays:
            mlp = (case["mlp_a"][l], case["mlp_a0"][l], case["mlp_b"][l], case["mlp_b0"][l])
        blocks.append(Block(att, mlp))
    return TokenNetwork(v, tuple(blocks))


@st.composite
def layernorm_token_cases(draw, equal_std: bool = False, max_dim: int = 5):
    """Attention-like outputs Z (n >= d + 2 tokens) and LayerNorm parameters; ``equal_std`` gives every row the
    same standard deviation (rows = common std times unit-variance centred vectors, plus a row mean)."""
    d = draw(st.integers(2, max_dim))
    n = draw(st.integers(d + 2, d + 4))
    seed = draw(seeds)
    s = draw(log_uniform(0.1, 10.0))
    eps = draw(log_uniform(1e-6, 1e-2))
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((n, d)) * s
    if equal_std:
        c = z - z.mean(axis=1, keepdims=True)
        c /= c.std(axis=1, keepdims=True)
        z = s * c + rng.standard_normal((n, 1)) * s
    arrays = {"z": z, "gamma": 1 + 0.5 * rng.standard_normal(d), "beta": 0.5 * rng.standard_normal(d)}
    return Case({"seed": seed, "scale": s, "eps": eps, "equal_std": equal_std}, arrays)


@st.composite
def spectrum_cases(draw, max_dim: int = 6, mean=(-3.0, 3.0), variance=(1e-3, 10.0)):
    """A symmetric QK matrix with prescribed eigenvalue mean and variance (and its basis / shape arrays)."""
    d = draw(st.integers(2, max_dim))
    mu = draw(st.floats(*mean, allow_nan=False))
    s2 = draw(log_uniform(*variance))
    seed = draw(seeds)
    rng = np.random.default_rng(seed)
    xi = rng.standard_normal(d)
    if np.std(xi) == 0:  # pragma: no cover - probability zero
        xi[0] += 1.0
    return Case({"seed": seed, "mean": mu, "variance": s2, "dim": d},
                {"basis": rng.standard_normal((d, d)), "shape": xi})


@st.composite
def normal_spectrum_cases(draw, max_blocks: int = 3):
    """A non-symmetric normal W = Q B Q^T, B block-diagonal with rotation-scaling blocks [[a, -b], [b, a]] (and one
    real 1x1 block when d is odd): its eigenvalues a +- i b are known, so are the three conventions' variances."""
    k = draw(st.integers(1, max_blocks))
    odd = draw(st.booleans())
    seed = draw(seeds)
    rng = np.random.default_rng(seed)
    a, b = rng.standard_normal(k), rng.standard_normal(k) * draw(log_uniform(0.1, 3.0))
    c = rng.standard_normal(int(odd))
    return Case({"seed": seed, "blocks": k, "odd": odd, "kind": "normal"},
                {"a": a, "b": b, "c": c, "basis": rng.standard_normal((2 * k + int(odd),) * 2)})


@st.composite
def square_matrices(draw, max_dim: int = 4, kinds=("gaussian", "symmetric", "skew", "low_rank")):
    """A square real matrix W of a drawn kind (non-symmetric kinds exercise the convention traps)."""
    d = draw(st.integers(1, max_dim))
    kind = draw(st.sampled_from(kinds))
    seed = draw(seeds)
    s = draw(log_uniform(0.1, 3.0))
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((d, d))
    if kind == "symmetric":
        w = w + w.T
    elif kind == "skew":
        w = w - w.T
    elif kind == "low_rank":
        w = np.outer(rng.standard_normal(d), rng.standard_normal(d))
    return Case({"kind": kind, "seed": seed, "scale": s}, {"w": w * s})
