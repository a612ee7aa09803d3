"""Composition rules (LayerNorm, eval BatchNorm, residual, product, radius propagation) vs search on real stacks."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from boundlab.empirical.attention import dot_product_attention
from boundlab.empirical.lipschitz import conv_operator, global_lipschitz_lower_bound, jacobian_norm
from boundlab.theory import composition as CP

from boundlab.verification.cases import Case
from boundlab.verification.corpus import replay
from boundlab.verification.strategies import attention_weights, kernels, layernorm_cases, log_uniform, seeds, weights_of

RTOL = 1e-9


def _ln_torch(gamma, beta, eps):
    g, b = torch.as_tensor(gamma), torch.as_tensor(beta)
    return lambda x: F.layer_norm(x, (g.shape[0],), g, b, eps)


@replay("composition.layernorm")
@given(case=layernorm_cases())
def test_layernorm(ledger, case):
    g, b, eps, r = case["gamma"], case["beta"], case["eps"], case["radius"]
    d = g.size
    f = _ln_torch(g, b, eps)
    # constant vectors (zero variance) are where the Jacobian peaks: start there too
    inits = np.stack([np.full((1, d), c) for c in (0.0, r / math.sqrt(d), -r / math.sqrt(d))])
    res = global_lipschitz_lower_bound(f, (1, d), r, inits=inits, seed=case["seed"], restarts=4, steps=10)
    ledger.check_upper("composition.layernorm", res.lower_bound, CP.layernorm_lipschitz(g, eps), case, rtol=RTOL)


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


@replay("composition.batchnorm_eval")
@given(case=batchnorm_cases())
def test_batchnorm_eval(ledger, case):
    g, v, m, eps, s = case["gamma"], case["running_var"], case["running_mean"], case["eps"], case["size"]
    gt, vt, mt = (torch.as_tensor(a) for a in (g, v, m))
    f = lambda x: F.batch_norm(x, mt, vt, gt, torch.zeros_like(gt), training=False, eps=eps)  # noqa: E731
    x = torch.zeros((1, g.size, s, s), dtype=torch.float64)
    exact = float(jacobian_norm(f, x)[0])
    ledger.check_exact("composition.batchnorm_eval", CP.batchnorm_eval_lipschitz(g, v, eps), exact, case, rtol=1e-9)


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


@replay("composition.network")
@given(case=block_cases())
def test_transformer_block_network_bound(ledger, case):
    w = weights_of(case)
    eps, n = case["eps"], case["n_tokens"]
    a = {k: case[k] for k in ("g1", "b1", "g2", "b2", "w1", "c1", "w2", "c2")}
    layers = [
        CP.layernorm(a["g1"], a["b1"], eps),
        CP.residual(CP.attention(w, n)),
        CP.layernorm(a["g2"], a["b2"], eps),
        CP.residual(CP.linear(a["w1"], a["c1"]), CP.relu(), CP.linear(a["w2"], a["c2"])),
    ]
    bound, _ = CP.network_bound(layers)  # global: the first LayerNorm bounds the attention's domain
    ln1, ln2 = _ln_torch(a["g1"], a["b1"], eps), _ln_torch(a["g2"], a["b2"], eps)
    att = dot_product_attention(w)
    t = {k: torch.as_tensor(v) for k, v in a.items()}

    def f(x):
        x = ln1(x)
        x = x + att(x)
        x = ln2(x)
        return x + torch.relu(x @ t["w1"] + t["c1"]) @ t["w2"] + t["c2"]

    res = global_lipschitz_lower_bound(f, (n, w.dim), case["radius"], seed=case["mlp_seed"], restarts=4, steps=10)
    ledger.check_upper("composition.network", res.lower_bound, bound, case, rtol=RTOL)


@st.composite
def conv_stack_cases(draw):
    k1, c1 = draw(kernels(max_channels=3, max_k=3))
    co = k1.shape[0]
    k2, c2 = draw(kernels(max_channels=3, max_k=3))
    k2 = np.resize(k2, (k2.shape[0], co, *k2.shape[2:]))
    n = draw(st.integers(max(k1.shape[2], k1.shape[3], k2.shape[2], k2.shape[3]), 6))
    return Case({"k1": c1, "k2": c2, "n": n, "seed": c1["seed"]}, {"kernel1": k1, "kernel2": k2})


@replay("composition.product")
@given(case=conv_stack_cases())
def test_conv_relu_conv_product(ledger, case):
    """conv(circular) -> ReLU -> conv(zeros, same): the product rule with exact / sound per-layer constants."""
    n = case["n"]
    l1, l2 = CP.conv2d(case["kernel1"], n, "circular"), CP.conv2d(case["kernel2"], n, "same")
    bound = CP.product_bound([l1.lipschitz(math.inf), 1.0, l2.lipschitz(math.inf)])
    op1 = conv_operator(case["kernel1"], n, "circular")
    op2 = conv_operator(case["kernel2"], n, "zeros")
    f = lambda x: op2(torch.relu(op1(x)))  # noqa: E731
    res = global_lipschitz_lower_bound(f, (case["kernel1"].shape[1], n, n), 1.0, seed=case["seed"], restarts=4,
                                       steps=8)
    ledger.check_upper("composition.product", res.lower_bound, bound, case, rtol=RTOL)
