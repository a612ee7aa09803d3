"""Composition rules (LayerNorm, eval BatchNorm, residual, product, radius propagation) vs search on real stacks."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import strategies as st

from boundlab.empirical.attention import dot_product_attention
from boundlab.empirical.lipschitz import conv_operator, global_lipschitz_lower_bound, jacobian_norm
from boundlab.theory import composition as CP
from boundlab.theory.convolution import ConvLayer

from boundlab.verification.cases import Case
from boundlab.verification.properties import bound_property
from boundlab.verification.strategies import attention_weights, kernels, layernorm_cases, log_uniform, seeds, weights_of

RTOL = 1e-9


def _ln_torch(gamma, beta, eps):
    g, b = torch.as_tensor(gamma), torch.as_tensor(beta)
    return lambda x: F.layer_norm(x, (g.shape[0],), g, b, eps)


@bound_property(CP.layernorm_lipschitz, cases=layernorm_cases(), rtol=RTOL)
def test_layernorm(check, case):
    g, b, eps, r = case["gamma"], case["beta"], case["eps"], case["radius"]
    d = g.size
    f = _ln_torch(g, b, eps)
    # constant vectors (zero variance) are where the Jacobian peaks: start there too
    inits = np.stack([np.full((1, d), c) for c in (0.0, r / math.sqrt(d), -r / math.sqrt(d))])
    res = global_lipschitz_lower_bound(f, (1, d), r, inits=inits, seed=case["seed"], restarts=4, steps=10)
    check.upper(res.lower_bound, check.bound(g, eps))


@bound_property(CP.layernorm_output_radius, cases=layernorm_cases(), rtol=RTOL)
def test_layernorm_radius(check, case):
    """||LN(x)|| <= ||gamma||_inf sqrt(d) + ||beta||: the largest output norm over zero-mean inputs of large variance
    (where the normalised vector's norm tends to sqrt(d)) and random inputs."""
    # wrong code caught: the radius without sqrt(d) (constant gamma, beta = 0 reach |gamma| sqrt(d) (1 - eps/var))
    g, b, eps = case["gamma"], case["beta"], case["eps"]
    d = g.size
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((64, d))
    x[:32] -= x[:32].mean(axis=1, keepdims=True)
    x[:32] *= 1e4 * math.sqrt(eps + 1e-300) / np.maximum(x[:32].std(axis=1, keepdims=True), 1e-300)
    out = F.layer_norm(torch.as_tensor(x), (d,), torch.as_tensor(g), torch.as_tensor(b), eps).numpy()
    check.upper(float(np.linalg.norm(out, axis=1).max()), check.bound(g, b))


@st.composite
def batchnorm_cases(draw):
    c = draw(st.integers(1, 4))
    seed = draw(seeds)
    rng = np.random.default_rng(seed)
    gamma = rng.standard_normal(c) * draw(log_uniform(0.1, 10))
    var = rng.random(c) * draw(log_uniform(1e-4, 10))
    eps = draw(log_uniform(1e-6, 1e-1))
    return Case({"seed": seed, "eps": eps, "size": draw(st.integers(1, 3))}, {"gamma": gamma, "running_var": var,
                                                                             "running_mean": rng.standard_normal(c)})


@bound_property(CP.batchnorm_eval_lipschitz, cases=batchnorm_cases(), rtol=1e-9)
def test_batchnorm_eval(check, case):
    g, v, m, eps, s = case["gamma"], case["running_var"], case["running_mean"], case["eps"], case["size"]
    gt, vt, mt = (torch.as_tensor(a) for a in (g, v, m))
    f = lambda x: F.batch_norm(x, mt, vt, gt, torch.zeros_like(gt), training=False, eps=eps)  # noqa: E731
    x = torch.zeros((1, g.size, s, s), dtype=torch.float64)
    exact = float(jacobian_norm(f, x)[0])
    check.exact(check.bound(g, v, eps), exact)


@st.composite
def block_cases(draw):
    """A pre-norm transformer block: LN -> x + MHA(x) -> LN -> x + W2 relu(W1 x + b1) + b2."""
    arrays, cfg = draw(attention_weights(max_dim=4))
    d = arrays["query"].shape[1]
    arrays["output"] = arrays["output"][:, :, :1].repeat(d, axis=2) if arrays["output"].shape[2] != d else arrays["output"]
    seed = draw(seeds)
    rng = np.random.default_rng(seed)
    hidden = draw(st.integers(1, 6))
    s_mlp = draw(log_uniform(0.1, 3.0))
    eps = draw(log_uniform(1e-5, 1e-1))
    n = draw(st.integers(1, 4))
    r = draw(log_uniform(0.1, 10.0))
    arrays.update(
        g1=1 + 0.3 * rng.standard_normal(d), b1=0.3 * rng.standard_normal(d),
        g2=1 + 0.3 * rng.standard_normal(d), b2=0.3 * rng.standard_normal(d),
        w1=rng.standard_normal((d, hidden)) * s_mlp / math.sqrt(d), c1=rng.standard_normal(hidden),
        w2=rng.standard_normal((hidden, d)) * s_mlp / math.sqrt(hidden), c2=rng.standard_normal(d),
    )
    return Case({**cfg, "mlp_seed": seed, "eps": eps, "n_tokens": n, "radius": r}, arrays)


@bound_property(CP.network_bound, cases=block_cases(), rtol=RTOL)
def test_transformer_block_network_bound(check, case):
    w = weights_of(case)
    eps, n = case["eps"], case["n_tokens"]
    a = {k: case[k] for k in ("g1", "b1", "g2", "b2", "w1", "c1", "w2", "c2")}
    layers = [
        CP.layernorm(a["g1"], a["b1"], eps),
        CP.residual(CP.attention(w, n)),
        CP.layernorm(a["g2"], a["b2"], eps),
        CP.residual(CP.linear(a["w1"], a["c1"]), CP.relu(), CP.linear(a["w2"], a["c2"])),
    ]
    bound = check.bound(layers)  # global: the first LayerNorm bounds the attention's domain
    ln1, ln2 = _ln_torch(a["g1"], a["b1"], eps), _ln_torch(a["g2"], a["b2"], eps)
    att = dot_product_attention(w)
    t = {k: torch.as_tensor(v) for k, v in a.items()}

    def f(x):
        x = ln1(x)
        x = x + att(x)
        x = ln2(x)
        return x + torch.relu(x @ t["w1"] + t["c1"]) @ t["w2"] + t["c2"]

    res = global_lipschitz_lower_bound(f, (n, w.dim), case["radius"], seed=case["mlp_seed"], restarts=4, steps=10)
    check.upper(res.lower_bound, bound)


@st.composite
def conv_stack_cases(draw):
    """conv -> ReLU -> conv: random kernels, or the tight family of the product rule (``aligned``: one channel,
    positive constant kernels, both circular: at a positive constant input both layers act at their DC frequency
    and the ReLU is the identity, so the product of the norms is attained)."""
    k1, c1 = draw(kernels(max_channels=3, max_k=3))
    co = k1.shape[0]
    k2, c2 = draw(kernels(max_channels=3, max_k=3))
    k2 = np.resize(k2, (k2.shape[0], co, *k2.shape[2:]))
    aligned = draw(st.booleans())
    if aligned:
        # DC norms log-uniform in [0.5, 20]: the product exceeds the sum (a wrong rule) once both exceed ~2.6
        n1, n2 = draw(log_uniform(0.5, 20.0)), draw(log_uniform(0.5, 20.0))
        k1 = np.full((1, 1, *k1.shape[2:]), n1 / (k1.shape[2] * k1.shape[3]))
        k2 = np.full((1, 1, *k2.shape[2:]), n2 / (k2.shape[2] * k2.shape[3]))
    n = draw(st.integers(max(k1.shape[2], k1.shape[3], k2.shape[2], k2.shape[3]), 6))
    return Case({"k1": c1, "k2": c2, "n": n, "seed": c1["seed"], "aligned": aligned}, {"kernel1": k1, "kernel2": k2})


@bound_property(CP.product_bound, cases=conv_stack_cases(), rtol=RTOL)
def test_conv_relu_conv_product(check, case):
    """conv(circular) -> ReLU -> conv(zeros, same): the product rule with exact / sound per-layer constants."""
    # wrong code caught: a sum for the product (the aligned family attains the product of the norms)
    n = case["n"]
    c1 = ConvLayer.create(case["kernel1"], n, "circular")
    c2 = ConvLayer.create(case["kernel2"], n, "circular" if case.config.get("aligned") else "same")
    l1, l2 = CP.conv2d(c1), CP.conv2d(c2)
    bound = check.bound([l1.lipschitz(math.inf), 1.0, l2.lipschitz(math.inf)])
    op1 = conv_operator(c1)
    op2 = conv_operator(c2)
    f = lambda x: op2(torch.relu(op1(x)))  # noqa: E731
    inits = np.full((1, case["kernel1"].shape[1], n, n), 1.0 / n)  # a positive constant image (the DC direction)
    res = global_lipschitz_lower_bound(f, (case["kernel1"].shape[1], n, n), 1.0, seed=case["seed"], restarts=4,
                                       steps=8, inits=inits)
    check.upper(res.lower_bound, bound)


@st.composite
def chain_cases(draw):
    """A chain linear -> ReLU -> ... -> linear of 1-3 hidden layers: ``aligned`` (W_l = s_l u_{l+1} u_l^T with
    positive unit vectors: on the positive cone every ReLU is the identity and the composition has norm
    prod s_l: the tight family of composition.network and composition.product) or random."""
    depth = draw(st.integers(1, 3))
    widths = [draw(st.integers(1, 4)) for _ in range(depth + 2)]
    seed = draw(seeds)
    aligned = draw(st.booleans())
    rng = np.random.default_rng(seed)
    arrays = {}
    us = [np.abs(rng.standard_normal(w)) + 0.1 for w in widths]
    us = [u / np.linalg.norm(u) for u in us]
    for i in range(depth + 1):
        s = float(10 ** rng.uniform(-0.5, 0.7))
        arrays[f"w{i}"] = (s * np.outer(us[i], us[i + 1]) if aligned
                           else rng.standard_normal((widths[i], widths[i + 1])) * s / math.sqrt(widths[i]))
        arrays[f"b{i}"] = np.zeros(widths[i + 1]) if aligned else 0.3 * rng.standard_normal(widths[i + 1])
    return Case({"depth": depth, "widths": widths, "seed": seed, "aligned": aligned}, arrays)


@bound_property(CP.network_bound, cases=chain_cases(), rtol=RTOL)
def test_linear_relu_chain_network_bound(check, case):
    """composition.network on linear/ReLU chains (token-wise, one token): the aligned family attains the bound."""
    # wrong code caught: a dropped layer constant, a radius used as a constant (both fail on the aligned family)
    depth = case["depth"]
    layers = []
    for i in range(depth + 1):
        layers.append(CP.linear(case[f"w{i}"], case[f"b{i}"]))
        if i < depth:
            layers.append(CP.relu())
    bound = check.bound(layers)
    ws = [torch.as_tensor(case[f"w{i}"]) for i in range(depth + 1)]
    bs = [torch.as_tensor(case[f"b{i}"]) for i in range(depth + 1)]

    def f(x):
        for i, (w, b) in enumerate(zip(ws, bs)):
            x = x @ w + b
            if i < depth:
                x = torch.relu(x)
        return x

    inits = np.full((1, 1, case["widths"][0]), 1.0 / math.sqrt(case["widths"][0]))  # on the positive cone
    res = global_lipschitz_lower_bound(f, (1, case["widths"][0]), 1.0, seed=case["seed"] % 2**31, restarts=3, steps=8,
                                       inits=inits)
    check.upper(res.lower_bound, bound)


@st.composite
def residual_cases(draw):
    """A residual block x + g(x) with a linear branch g(x) = W x of norm L: ``aligned`` (W = L P, P an orthogonal
    projection: ||I + W|| = 1 + L, the tight family), ``random`` (||W|| = L, any direction), or ``relu`` (g a
    one-hidden-layer ReLU net whose branch constant is bounded by ||W_2|| ||W_1||)."""
    d = draw(st.integers(1, 5))
    scale = draw(log_uniform(1e-2, 10.0))
    kind = draw(st.sampled_from(["aligned", "random", "relu"]))
    seed = draw(seeds)
    rng = np.random.default_rng(seed)
    if kind == "aligned":
        q, _ = np.linalg.qr(rng.standard_normal((d, d)))
        rank = int(rng.integers(1, d + 1))
        w = scale * q[:, :rank] @ q[:, :rank].T
        arrays = {"w": w}
    elif kind == "random":
        w = rng.standard_normal((d, d))
        arrays = {"w": w * scale / np.linalg.norm(w, 2)}
    else:
        h = int(rng.integers(1, 6))
        w1, w2 = rng.standard_normal((h, d)), rng.standard_normal((d, h))
        arrays = {"w1": w1 * math.sqrt(scale) / np.linalg.norm(w1, 2), "w2": w2 * math.sqrt(scale) / np.linalg.norm(w2, 2)}
    return Case({"kind": kind, "seed": seed, "scale": scale, "dim": d}, arrays)


@bound_property(CP.residual_bound, cases=residual_cases(), rtol=RTOL)
def test_residual(check, case):
    """composition.residual: Lip(x + g(x)) <= 1 + Lip(g). Linear branches give the exact constant ||I + W||_2 (an
    SVD, tight for the aligned family); ReLU branches a searched lower bound."""
    # wrong code caught: max(1, L) or L for 1 + L (the aligned family reaches 1 + L), a dropped 1
    if case["kind"] == "relu":
        w1, w2 = case["w1"], case["w2"]
        branch = float(np.linalg.norm(w2, 2) * np.linalg.norm(w1, 2))
        t1, t2 = torch.as_tensor(w1), torch.as_tensor(w2)
        res = global_lipschitz_lower_bound(lambda x: x + torch.relu(x @ t1.T) @ t2.T, (1, case["dim"]), 1.0,
                                           seed=case["seed"] % 2**31, restarts=4, steps=10)
        lower = res.lower_bound
    else:
        w = case["w"]
        branch = float(np.linalg.norm(w, 2))
        lower = float(np.linalg.svd(np.eye(w.shape[0]) + w, compute_uv=False)[0])
    check.upper(lower, check.bound(branch))
