"""Composable Hypothesis strategies for weights and inputs. Each returns a :class:`~verification.cases.Case`.

Arrays are drawn from a seeded numpy generator (the seed is part of the draw), so Hypothesis shrinks shapes,
scales and seeds toward small, simple configurations while the arrays stay reproducible from the config.
Scales are log-uniform so that tiny and huge weights are both exercised.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from boundlab.theory.attention import AttentionLayer, AttentionWeights
from boundlab.theory.convolution import ConvLayer

from .cases import Case

seeds = st.integers(min_value=0, max_value=2**31 - 1)


def log_uniform(lo: float, hi: float) -> st.SearchStrategy[float]:
    """A float in [lo, hi] with uniform log10; shrinks toward 10**0 when 1 is in range, else toward lo."""
    a, b = math.log10(lo), math.log10(hi)
    return st.floats(min_value=a, max_value=b, allow_nan=False).map(lambda e: float(10.0**e))


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


@st.composite
def kernels(draw, max_channels: int = 4, max_k: int = 4, scale=(0.1, 10.0), kinds=("gaussian", "constant", "sparse")):
    """A conv kernel ``(c_out, c_in, k_h, k_w)`` and its config (kind, seed, scale)."""
    co = draw(st.integers(1, max_channels))
    ci = draw(st.integers(1, max_channels))
    kh = draw(st.integers(1, max_k))
    kw = draw(st.integers(1, max_k))
    kind = draw(st.sampled_from(kinds))
    seed = draw(seeds)
    s = draw(log_uniform(*scale))
    rng = _rng(seed)
    if kind == "gaussian":
        k = rng.standard_normal((co, ci, kh, kw)) / math.sqrt(ci * kh * kw)
    elif kind == "constant":  # all taps equal: the DC frequency carries everything
        k = np.ones((co, ci, kh, kw)) * rng.choice([-1.0, 1.0], size=(co, ci, 1, 1)) / (kh * kw)
    else:  # sparse: a few nonzero taps
        k = rng.standard_normal((co, ci, kh, kw)) * (rng.random((co, ci, kh, kw)) < 0.3)
        if not k.any():
            k.flat[0] = 1.0
    k = k * s
    return k, {"kind": kind, "seed": seed, "scale": s}


@st.composite
def conv_cases(draw, paddings=("circular", "zeros"), strides=(1, 2), max_n: int = 7, max_channels: int = 3,
               max_k: int = 3):
    """A convolution layer: kernel, input size, padding (circular, or zero-padding amounts per side: symmetric per
    axis like PyTorch's ``padding=P``, or all four independent), stride. :func:`conv_layer_of` builds the layer."""
    k, cfg = draw(kernels(max_channels=max_channels, max_k=max_k))
    kh, kw = k.shape[2:]
    h = draw(st.integers(max(kh, 1), max_n))
    w = draw(st.integers(max(kw, 1), max_n))
    mode = draw(st.sampled_from(paddings))
    if mode == "circular":
        padding = "circular"
    elif draw(st.booleans()):  # symmetric per axis (PyTorch's padding=(P_h, P_w)); every amount 0..k-1
        ph, pw = draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1))
        padding = [ph, ph, pw, pw]
    else:
        padding = [draw(st.integers(0, kh - 1)), draw(st.integers(0, kh - 1)), draw(st.integers(0, kw - 1)),
                   draw(st.integers(0, kw - 1))]
    stride = draw(st.sampled_from(strides))
    return Case({**cfg, "input_size": [h, w], "padding": padding, "stride": stride}, {"kernel": k})


def conv_layer_of(case: Case) -> ConvLayer:
    """The :class:`ConvLayer` of a conv case (``padding`` "zeros" in old corpus entries meant "same")."""
    padding = case["padding"]
    padding = "same" if padding == "zeros" else (padding if isinstance(padding, str) else tuple(padding))
    return ConvLayer.create(case["kernel"], tuple(case["input_size"]), padding, case["stride"])


@st.composite
def attention_weights(draw, max_heads: int = 2, max_dim: int = 4, max_head_dim: int = 3, tied: bool = False,
                      heads: int | None = None, scale=(0.1, 3.0)):
    """Weights of a multi-head attention layer as arrays + config."""
    h = heads if heads is not None else draw(st.integers(1, max_heads))
    d = draw(st.integers(1, max_dim))
    dk = draw(st.integers(1, max_head_dim))
    dv = draw(st.integers(1, max_head_dim))
    dout = draw(st.integers(1, max_dim))
    seed = draw(seeds)
    s_qk = draw(log_uniform(*scale))
    s_v = draw(log_uniform(*scale))
    rng = _rng(seed)
    q = rng.standard_normal((h, d, dk)) * s_qk / math.sqrt(d)
    k = q.copy() if tied else rng.standard_normal((h, d, dk)) * s_qk / math.sqrt(d)
    v = rng.standard_normal((h, d, dv)) * s_v / math.sqrt(d)
    o = rng.standard_normal((h, dv, dout)) / math.sqrt(h * dv)
    return {"query": q, "key": k, "value": v, "output": o}, {"seed": seed, "scale_qk": s_qk, "scale_v": s_v,
                                                             "heads": h, "tied": tied}


@st.composite
def attention_cases(draw, max_tokens: int = 5, radius=(0.1, 4.0), min_tokens: int = 1, **weight_kw):
    """Attention weights + a token count n + a domain radius R (every token in the R-ball)."""
    arrays, cfg = draw(attention_weights(**weight_kw))
    n = draw(st.integers(min_tokens, max_tokens))
    r = draw(log_uniform(*radius))
    return Case({**cfg, "n_tokens": n, "radius": r}, arrays)


@st.composite
def hard_attention_cases(draw, heads: int = 1, min_n: int = 32, max_n: int = 256):
    """The tight family of the sqrt(n) term of the bounded-domain attention bounds: n - 1 query tokens R e1 attending
    to one key token R e2 through A = a e1 e2^T (d = 2, d_k = 1), with ||A|| R^2 in [3, 8] and n in [32, 256]: the
    attention is nearly hard and the local constant at these tokens (array ``x0``) grows like sqrt(n) ||M||
    (``min_n``/``max_n`` narrow the token counts)."""
    n = draw(st.integers(min_n, max_n))
    ar2 = draw(st.floats(3.0, 8.0))
    r = draw(log_uniform(0.5, 2.0))
    seed = draw(seeds)
    rng = _rng(seed)
    a = ar2 / (r * r)
    q = np.zeros((heads, 2, 1))
    k = np.zeros((heads, 2, 1))
    q[:, 0, 0], k[:, 1, 0] = math.sqrt(a), math.sqrt(a)  # A_h = Q K^T / sqrt(1) = a e1 e2^T
    v = rng.standard_normal((heads, 2, 2)) / math.sqrt(2)
    o = rng.standard_normal((heads, 2, 2)) / math.sqrt(2 * heads)
    x0 = np.zeros((n, 2))
    x0[:-1, 0], x0[-1, 1] = r, r
    return Case({"seed": seed, "heads": heads, "n_tokens": n, "radius": r, "aR2": ar2, "kind": "hard_attention",
                 "scale_qk": math.sqrt(a), "scale_v": 1.0, "tied": False},
                {"query": q, "key": k, "value": v, "output": o, "x0": x0})


def weights_of(case: Case) -> AttentionWeights:
    """The :class:`AttentionWeights` of an attention case."""
    return AttentionWeights.from_arrays(case["query"], case["key"], case["value"], case["output"])


def attention_layer_of(case: Case, attention: str = "dot_product") -> AttentionLayer:
    """The :class:`AttentionLayer` of an attention case (its n_tokens and radius)."""
    return AttentionLayer.create(weights_of(case), case["n_tokens"], case["radius"], attention)


@st.composite
def layernorm_cases(draw, max_dim: int = 6):
    """LayerNorm parameters (gamma, beta, eps) and a search radius; half the draws are the tight family of
    ``composition.layernorm`` (a constant gamma: the constant input attains |gamma| / sqrt(eps))."""
    d = draw(st.integers(2, max_dim))
    seed = draw(seeds)
    rng = _rng(seed)
    s = draw(log_uniform(0.1, 10.0))
    eps = draw(log_uniform(1e-6, 1.0))
    r = draw(log_uniform(1e-3, 10.0))
    kind = draw(st.sampled_from(["random", "constant_gamma"]))
    gamma = rng.standard_normal(d) * s if kind == "random" else np.full(d, s * rng.choice([-1.0, 1.0]))
    beta = rng.standard_normal(d) if kind == "random" else np.zeros(d)
    return Case({"seed": seed, "scale": s, "eps": eps, "radius": r, "kind": kind}, {"gamma": gamma, "beta": beta})


@st.composite
def with_config(draw, cases: st.SearchStrategy[Case], **extra: st.SearchStrategy):
    """Add drawn config entries to a case strategy: ``with_config(attention_cases(), target=log_uniform(1, 1e6))``.

    Keeps every drawn value inside the :class:`Case`, so the counterexample corpus replays it whole.
    """
    case = draw(cases)
    return Case({**case.config, **{k: draw(s) for k, s in extra.items()}}, case.arrays)
