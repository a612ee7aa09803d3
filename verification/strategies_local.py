"""Strategies for the local certificate: tiny random networks of every layer family and a region around a point.

A case holds every parameter as a named array and the structure in its config, so :func:`problem_of` rebuilds the
same :class:`theory.local.LocalProblem` from a saved counterexample. Families (each tiny, so that a property costs
milliseconds per case):

* ``mlp``: dense -> ReLU -> dense (-> ReLU -> dense), hidden biases that put kinks near the centre;
* ``conv``: zero-padded conv (stride 1 or 2) -> eval BatchNorm -> ReLU -> spatial mean -> dense;
* ``resnet``: conv -> ReLU -> residual [conv, BN, ReLU, conv] (+ optional 1x1 projection shortcut) -> ReLU -> head;
* ``attention``: tokens -> dot-product attention -> token mean -> dense;
* ``vit``: image -> normalise -> patchify -> token dense + positions -> residual [LayerNorm, attention] ->
  residual [LayerNorm, dense, ReLU, dense] -> LayerNorm -> mean -> dense.
"""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from boundlab.theory import local as TL
from boundlab.theory.attention import AttentionWeights
from boundlab.theory.convolution import ConvLayer

from .cases import Case
from .strategies import log_uniform, seeds

FAMILIES = ("mlp", "conv", "resnet", "attention", "vit")


def _arr(rng, shape, scale):
    return rng.standard_normal(shape) * scale / np.sqrt(max(1, int(np.prod(shape[1:])) if len(shape) > 1 else 1))


@st.composite
def local_cases(draw, families=FAMILIES, eps=(1e-3, 0.5), kinks: bool = True):
    """A network of one of ``families`` (weights scaled by a drawn factor) and a region (eps, norm, pixel clip)."""
    fam = draw(st.sampled_from(families))
    seed = draw(seeds)
    scale = draw(log_uniform(0.3, 3.0))
    rng = np.random.default_rng(seed)
    cfg = {"family": fam, "seed": seed, "scale": scale}
    a: dict = {}
    if fam == "mlp":
        d, h1 = draw(st.integers(1, 4)), draw(st.integers(1, 5))
        deep = draw(st.booleans())
        shape = (d,)
        a["w1"], a["w2"] = _arr(rng, (h1, d), scale), _arr(rng, (h1 if not deep else 3, h1), scale)
        a["centre"] = rng.random(shape)
        b1 = rng.standard_normal(h1) * 0.1
        a["b1"] = b1 - a["w1"] @ a["centre"] if kinks else b1  # kinks at the centre (+ small offsets)
        a["b2"] = rng.standard_normal(a["w2"].shape[0]) * 0.3
        if deep:
            a["w3"], a["b3"] = _arr(rng, (2, 3), scale), rng.standard_normal(2) * 0.3
        cfg.update(d=d, h1=h1, deep=deep)
    elif fam in ("conv", "resnet"):
        c, n = draw(st.integers(1, 2)), draw(st.integers(3, 5))
        co, k = draw(st.integers(1, 3)), draw(st.integers(2, 3))
        pad, stride = draw(st.integers(0, k - 1)), draw(st.sampled_from((1, 2)))
        shape = (c, n, n)
        a["k1"], a["bias1"] = _arr(rng, (co, c, k, k), scale), rng.standard_normal(co) * 0.2
        a["bn_g"], a["bn_b"] = 1 + 0.3 * rng.standard_normal(co), 0.2 * rng.standard_normal(co)
        a["bn_m"], a["bn_v"] = 0.2 * rng.standard_normal(co), 0.2 + rng.random(co)
        cfg.update(c=c, n=n, co=co, k=k, pad=pad, stride=stride)
        if fam == "resnet":
            cfg["project"] = draw(st.booleans())
            a["k2"], a["k3"] = _arr(rng, (co, co, 3, 3), scale), _arr(rng, (co, co, 3, 3), scale)
            if cfg["project"]:
                a["kp"] = _arr(rng, (co, co, 1, 1), scale)
        a["centre"] = rng.random(shape)
        a["head"], a["head_b"] = _arr(rng, (2, co), scale), rng.standard_normal(2) * 0.2
    elif fam == "attention":
        n, d, h = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 2))
        dk = draw(st.integers(1, 2))
        shape = (n, d)
        a["q"], a["k"] = _arr(rng, (h, d, dk), scale), _arr(rng, (h, d, dk), scale)
        a["v"], a["o"] = _arr(rng, (h, d, dk), 1.0), _arr(rng, (h, dk, d), 1.0)
        a["head"], a["head_b"] = _arr(rng, (2, d), 1.0), np.zeros(2)
        a["centre"] = rng.random(shape)
        cfg.update(n=n, d=d, heads=h, dk=dk)
    else:  # vit
        p, g, d = 2, draw(st.integers(1, 2)), draw(st.integers(2, 3))
        size = p * g
        shape = (1, size, size)
        a["mean"], a["std"] = np.array([0.3]), np.array([0.3 + 0.2 * rng.random()])
        a["embed"], a["embed_b"], a["pos"] = _arr(rng, (d, p * p), scale), 0.1 * rng.standard_normal(d), \
            0.1 * rng.standard_normal((g * g, d))
        for nm in ("ln1", "ln2", "ln3"):
            a[nm + "_g"], a[nm + "_b"] = 1 + 0.2 * rng.standard_normal(d), 0.1 * rng.standard_normal(d)
        a["q"], a["k"] = _arr(rng, (1, d, d), scale), _arr(rng, (1, d, d), scale)
        a["v"], a["o"] = _arr(rng, (1, d, d), 1.0), _arr(rng, (1, d, d), 1.0)
        a["fc1"], a["fc1_b"] = _arr(rng, (2 * d, d), 1.0), 0.1 * rng.standard_normal(2 * d)
        a["fc2"], a["fc2_b"] = _arr(rng, (d, 2 * d), 1.0), 0.1 * rng.standard_normal(d)
        a["head"], a["head_b"] = _arr(rng, (2, d), 1.0), np.zeros(2)
        a["centre"] = rng.random(shape)
        cfg.update(grid=g, d=d)
    e = draw(log_uniform(*eps))
    cfg.update(eps=e, norm=draw(st.sampled_from(("linf", "l2"))), clip=draw(st.booleans()))
    return Case(cfg, a)


def network_of(case: Case) -> TL.Network:
    """The :class:`theory.local.Network` a case describes."""
    fam = case["family"]
    if fam == "mlp":
        layers = [TL.Dense.create(case["w1"], case["b1"]), TL.Relu.create(), TL.Dense.create(case["w2"], case["b2"])]
        if case["deep"]:
            layers += [TL.Relu.create(), TL.Dense.create(case["w3"], case["b3"])]
        return TL.Network.create((case["d"],), layers)
    if fam in ("conv", "resnet"):
        n, c = case["n"], case["c"]
        conv1 = TL.Conv.create(ConvLayer.create(case["k1"], n, case["pad"], case["stride"]), case["bias1"])
        size = conv1.layer.output_size[0]
        bn = TL.ChannelAffine.batchnorm(case["bn_g"], case["bn_b"], case["bn_m"], case["bn_v"], 1e-5)
        layers = [conv1, bn, TL.Relu.create()]
        if fam == "resnet":
            k2 = TL.Conv.create(ConvLayer.create(case["k2"], size, 1, 1))
            k3 = TL.Conv.create(ConvLayer.create(case["k3"], size, 1, 1))
            short = [TL.Conv.create(ConvLayer.create(case["kp"], size, 0, 1))] if case["project"] else []
            layers += [TL.Residual.create([k2, bn, TL.Relu.create(), k3], short), TL.Relu.create()]
        layers += [TL.Mean.create("spatial"), TL.Dense.create(case["head"], case["head_b"])]
        return TL.Network.create((c, n, n), layers)
    if fam == "attention":
        w = AttentionWeights.from_arrays(case["q"], case["k"], case["v"], case["o"])
        layers = [TL.Attention.create(w), TL.Mean.create("tokens"), TL.Dense.create(case["head"], case["head_b"])]
        return TL.Network.create((case["n"], case["d"]), layers)
    g = case["grid"]
    ln = {nm: TL.LayerNorm.create(case[nm + "_g"], case[nm + "_b"], 1e-5) for nm in ("ln1", "ln2", "ln3")}
    w = AttentionWeights.from_arrays(case["q"], case["k"], case["v"], case["o"])
    layers = [TL.ChannelAffine.normalise(case["mean"], case["std"]), TL.Patchify.create(1, 2 * g, 2),
              TL.TokenDense.create(case["embed"], case["embed_b"]), TL.AddConstant.create(case["pos"]),
              TL.Residual.create([ln["ln1"], TL.Attention.create(w)]),
              TL.Residual.create([ln["ln2"], TL.TokenDense.create(case["fc1"], case["fc1_b"]), TL.Relu.create(),
                                  TL.TokenDense.create(case["fc2"], case["fc2_b"])]),
              ln["ln3"], TL.Mean.create("tokens"), TL.Dense.create(case["head"], case["head_b"])]
    return TL.Network.create((1, 2 * g, 2 * g), layers)


def problem_of(case: Case) -> TL.LocalProblem:
    """The network and the region (``clip``: intersected with the pixel box [0, 1]) of a case."""
    lo, hi = (0.0, 1.0) if case["clip"] else (None, None)
    region = TL.Region.create(case["centre"], case["eps"], case["norm"], lo, hi)
    return TL.LocalProblem.create(network_of(case), region)
