"""Covering-number bounds vs empirical covering numbers, and the scale invariance of intrinsic-dimension estimators.

Empirical side (:mod:`empirical.compactness`): for a finite sample S' of a set S (a class evaluated on data, or a
layer's outputs), a greedy packing whose points are pairwise more than 2 eps apart has at most N(eps, S) points
(no closed eps-ball holds two of them), so ``ln(packing)`` is a **lower** bound on ``ln N(eps, S)``; a greedy eps-net
is an upper bound on N(eps, S'). Bounds are rounded outward by 1e-10 and counts are exact integers, so the
comparisons use rtol = 1e-9 and can only fail if a bound is wrong.

* ``covering.ball``: ``ln |greedy eps-net(S)| <= m ln(1 + 2R/eps)`` for S in B_R (the packing form of the volumetric
  bound; the diameter grid is the extremal 1-D configuration, where the bound is tight to one point).
* ``covering.lipschitz_image``: on real activations (digits images through a conv layer with its certified
  spectral norm; digits patch tokens in B_R^n through dot-product attention with ``attention.bounded_dp``):
  the image of an eps-net of S covers f(S) at L times its covering radius, and a 2L eps-packing of f(S) has no
  more points than the eps-net of S. Distances are float64 sums of squares (relative error ~1e-15), hence rtol 1e-9.
* ``covering.bartlett17_matrix`` / ``bartlett17_network`` / ``graf22_conv`` / ``edelman22_attention``: packings
  of a few hundred class members (random, on the norm boundary, and extreme atoms) evaluated on the data.
  These bounds are far from tight except in one dimension; the properties catch gross errors only.
* ``compactness.*_scale_invariant``: the estimate on ``c X Q + t`` equals the estimate on X to 1e-9 relative (the
  estimators are functions of distance ratios; rotation/scaling perturb distances by ~1e-15 relative).
* ground truth for the same estimators (``test_intrinsic_dimension_ground_truth``): N = 1000 points drawn uniformly
  on the sphere S^d or from a standard Gaussian in a d-dimensional subspace, isometrically embedded in R^12
  (d = 1, 2, 3, 5; no boundary, so no boundary bias), must give d within a stated statistical tolerance: TwoNN and
  the MacKay-Ghahramani average of Levina-Bickel (``average="inverse"``) within 20% (their sampling spread at
  N = 1000 is ~3% relative; measured over 10 seeds: TwoNN 0.92-1.12 d, inverse 0.96-1.03 d); the plain mean of
  the pointwise MLE (``average="mean"``, k = 10) in [0.95 d, 1.25 d], because it is biased upward by about
  (k - 1)/(k - 2) = 1.125 (MacKay and Ghahramani's comment; measured 1.08-1.16 d). A log in the wrong base, a
  ratio inverted, the wrong neighbour or a missing 1/(k-1) is off by far more than these tolerances.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import strategies as st

from boundlab.empirical.attention import dot_product_attention
from boundlab.io.seeds import derive_seed
from boundlab.empirical.data import digits_images
from boundlab.empirical.compactness import BRACKET_MARGIN, covering_bracket, covering_radius, greedy_net
from boundlab.empirical.lipschitz import conv_operator
from boundlab.theory import attention as A
from boundlab.theory import compactness as K
from boundlab.theory import convolution as C
from boundlab.theory import covering as CV
from boundlab.theory.numerics import round_up

from boundlab.verification.cases import Case
from boundlab.verification.properties import bound_property
from boundlab.verification.strategies import conv_layer_of, log_uniform, seeds
from boundlab.verification.strategies_convex import (ball_cases, conv_class_cases, head_class_cases, matrix_class_cases,
                                network_class_cases, point_clouds)

RTOL = 1e-9
SAMPLES = 300


def _log(count: int) -> float:
    return math.log(count) if count > 0 else 0.0


def _packing_log(points: np.ndarray, eps: float, metric: str = "euclidean") -> float:
    """``ln`` of a greedy 2 eps-packing: a lower bound on ln N(eps, set). The packing is re-certified by its
    pairwise distances computed independently (scipy), so a slip in the greedy scan cannot inflate the count."""
    from scipy.spatial.distance import pdist

    bracket = covering_bracket(points, eps, metric)
    packing = greedy_net(points, 2.0 * eps * (1.0 + BRACKET_MARGIN), metric)
    assert packing.size == bracket.lower
    if packing.size > 1:
        gaps = pdist(np.asarray(points, dtype=np.float64)[packing], metric=metric)
        assert float(gaps.min()) > 2.0 * eps, f"packing not 2 eps-separated: {gaps.min()} <= {2 * eps}"
    return _log(packing.size)


@bound_property(CV.ball_log_covering, cases=ball_cases(), rtol=RTOL)
def test_ball(check, case):
    """The eps-net's centres are pairwise > eps apart: a packing, so the volumetric bound must cover its size; on the
    diameter grid (the tight family) the net keeps all k + 1 points and the bound is ln(1 + k(1 + 2e-9))."""
    from scipy.spatial.distance import pdist

    net = greedy_net(case["points"], case["eps"])
    if net.size > 1:
        assert float(pdist(case["points"][net]).min()) > case["eps"], "the greedy net is not eps-separated"
    check.upper(_log(net.size), check.bound(case["radius"], case["eps"], case["dim"]))


# --------------------------------------------------------------------------- Lipschitz image on activations
def _digits() -> np.ndarray:
    return digits_images()[0]


@st.composite
def image_layer_cases(draw):
    """Digits images through a conv layer (kernel drawn), a pointwise scaling (a 1x1 conv: f(x) = c x, where the
    rule is tight), or their patch tokens through attention (weights drawn)."""
    layer = draw(st.sampled_from(("conv", "pointwise", "attention")))
    seed = draw(seeds)
    count = draw(st.integers(20, 120))
    quantile = draw(st.floats(0.05, 0.95))
    scale = draw(log_uniform(0.2, 5.0))
    rng = np.random.default_rng(seed)
    idx = rng.choice(1797, size=count, replace=False)
    cfg = {"layer": layer, "seed": seed, "count": count, "quantile": quantile, "scale": scale}
    if layer in ("conv", "pointwise"):
        co, k = (int(rng.integers(1, 4)), int(rng.integers(1, 4))) if layer == "conv" else (1, 1)
        cfg["padding"] = draw(st.sampled_from(("circular", "zeros")))
        kernel = rng.standard_normal((co, 1, k, k)) * scale / k if layer == "conv" else np.full((1, 1, 1, 1), scale)
        return Case(cfg, {"kernel": kernel, "indices": idx})
    d, dk, n_tok = 4, int(rng.integers(1, 4)), 4
    cfg.update({"radius": 1.0, "n_tokens": n_tok})
    arrays = {"query": rng.standard_normal((1, d, dk)) * scale / 2, "key": rng.standard_normal((1, d, dk)) * scale / 2,
              "value": rng.standard_normal((1, d, dk)) / 2, "output": rng.standard_normal((1, dk, d)) / 2,
              "indices": idx}
    return Case(cfg, arrays)


def _layer(case):
    """(inputs S as flat rows, f on flat rows, certified L) for a Lipschitz-image case."""
    img = _digits()[case["indices"]]
    if case["layer"] in ("conv", "pointwise"):
        layer = conv_layer_of(Case({"input_size": [8, 8], "padding": case["padding"], "stride": 1},
                                   {"kernel": case["kernel"]}))
        op = conv_operator(layer)
        lip = (C.zero_padded_upper(layer).value if layer.padding_mode == "zeros"
               else round_up(C.circular_exact(layer).value))
        x = img.reshape(len(img), -1)
        f = lambda z: op(torch.as_tensor(z).reshape(-1, 1, 8, 8)).reshape(len(z), -1).numpy()  # noqa: E731
        return x, f, lip
    w = A.AttentionWeights.from_arrays(case["query"], case["key"], case["value"], case["output"])
    # four 4x4 quadrant patches per image, 16 pixels pooled to 4 features; tokens scaled into the unit ball
    quad = img.reshape(len(img), 2, 4, 2, 4).transpose(0, 1, 3, 2, 4).reshape(len(img), 4, 4, 4).mean(axis=3)
    tokens = quad / max(float(np.linalg.norm(quad, axis=2).max()), 1e-12) * case["radius"]
    att = dot_product_attention(w)
    f = lambda z: att(torch.as_tensor(z).reshape(-1, 4, 4)).reshape(len(z), -1).numpy()  # noqa: E731
    layer = A.AttentionLayer.create(w, case["n_tokens"], case["radius"])
    return tokens.reshape(len(img), -1), f, A.bounded_dot_product_bound(layer).value


@bound_property(CV.lipschitz_image, cases=image_layer_cases(), rtol=RTOL)
def test_lipschitz_image_on_activations(check, case):
    x, f, lip = _layer(case)
    dist = np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))
    positive = dist[dist > 0]
    if positive.size == 0:
        return
    eps = float(np.quantile(positive, case["quantile"]))
    net = greedy_net(x, eps)
    fx = f(x)
    # the image of the net covers f(S) at the scale the rule gives for the net's own covering radius
    # (catches a rule that does not multiply the scale by L: pointwise layers stretch every distance by exactly L)
    r_in = covering_radius(x, x[net])
    check.upper(covering_radius(fx, fx[net]), check.bound(_log(net.size), r_in, lip).details.scale, check="radius",
                lipschitz=lip)
    # N(L eps, f(S)) >= (2 L eps-packing of f(S)) must not exceed the eps-net of S
    image = check.bound(_log(net.size), eps, lip)
    if image.details.scale > 0:
        check.upper(_packing_log(fx, image.details.scale), image.value, check="count", lipschitz=lip)


# --------------------------------------------------------------------------- class covering bounds
def _ball_sample(rng, shape, norm, budget: float, count: int) -> list[np.ndarray]:
    """``count`` arrays with ``norm(A) <= budget``: random directions at random radii, half on the boundary."""
    out = []
    for i in range(count):
        a = rng.standard_normal(shape)
        size = norm(a)
        if size > 0:
            radius = 1.0 if i % 2 else rng.random() ** (1.0 / a.size)
            out.append(a * (budget * radius / size) * (1 - 1e-12))
    return out


@bound_property(CV.bartlett17_matrix, cases=matrix_class_cases(), rtol=RTOL)
def test_bartlett17_matrix(check, case):
    x, m, p, s, a = case["data"], case["m"], case["p"], case["s"], case["a"]
    d = x.shape[1]
    q = math.inf if p == 1 else p / (p - 1)
    rng = np.random.default_rng(case["seed"])
    members = _ball_sample(rng, (d, m), lambda z: CV.norm_pq(z, q, s), a, SAMPLES)
    for i in range(d):  # extreme points of the (q, s) ball: scaled signed atoms
        for j in range(m):
            for sign in (-1.0, 1.0):
                atom = np.zeros((d, m))
                atom[i, j] = sign * a * (1 - 1e-12)
                members.append(atom)
    outputs = np.stack([(x @ am).ravel() for am in members])
    r = math.inf if s == 1 else s / (s - 1)
    radius = a * float(np.linalg.norm(x.ravel(), ord=p)) * (m ** (1 / r) if math.isfinite(r) else 1.0)
    eps = case["frac"] * max(radius, 1e-12)
    check.upper(_packing_log(outputs, eps), check.bound(x, a, eps, m, p=p, s=s))


def _relu_net(weights, x):
    h = x.T
    for i, w in enumerate(weights):
        h = w @ h
        if i < len(weights) - 1:
            h = np.maximum(h, 0.0)
    return h.T


@bound_property(CV.bartlett17_network, cases=network_class_cases(), rtol=RTOL)
def test_bartlett17_network(check, case):
    base = [case[f"w{i}"] for i in range(case["depth"])]
    spectral, l21 = CV.network_norms(base)
    spectral = [max(v, 1e-12) for v in spectral]
    rng = np.random.default_rng(case["seed"])
    members = [base, [-w for w in base]]
    for k in range(SAMPLES):
        net = []
        for w, sv, b1 in zip(base, spectral, l21):
            a = rng.standard_normal(w.shape)
            sa, ba = CV.network_norms([a])
            factor = min(sv / max(sa[0], 1e-300), b1 / max(ba[0], 1e-300)) * (1.0 if k % 2 else rng.random())
            net.append(a * factor * (1 - 1e-12))
        members.append(net)
    x = case["data"]
    outputs = np.stack([_relu_net(net, x).ravel() for net in members])
    radius = float(np.linalg.norm(x)) * float(np.prod(spectral))
    eps = case["frac"] * max(radius, 1e-12)
    bound = check.bound(x, spectral, l21, eps, width=max(case["widths"]))
    assert check.bound(x, spectral, l21, eps, width=max(case["widths"]), ceil=True).value >= bound.value * (1 - 1e-12)
    check.upper(_packing_log(outputs, eps), bound)


@bound_property(CV.graf22_conv, cases=conv_class_cases(), rtol=RTOL)
def test_graf22_conv(check, case):
    x, b = case["data"], case["b"]
    shape = (case["c_out"], x.shape[1], case["k"], case["k"])
    rng = np.random.default_rng(case["seed"])
    kernels = _ball_sample(rng, shape, CV.conv_l21_norm, b, SAMPLES)
    for o in range(shape[0]):  # extreme points: one tap of one filter, all mass on one input direction
        for u in range(case["k"] ** 2):
            kern = np.zeros(shape)
            kern[o, :, u // case["k"], u % case["k"]] = rng.standard_normal(shape[1])
            kernels.append(kern * b / CV.conv_l21_norm(kern) * (1 - 1e-12))
    # every class member in one convolution: the kernels stacked along the output channels
    stacked = np.concatenate(kernels, axis=0)
    layer = conv_layer_of(Case({"input_size": [x.shape[2], x.shape[3]], "padding": case["padding"],
                                "stride": case["stride"]}, {"kernel": stacked}))
    out = conv_operator(layer)(torch.as_tensor(x)).numpy()
    outputs = out.reshape(x.shape[0], len(kernels), shape[0], *out.shape[2:]).swapaxes(0, 1).reshape(len(kernels), -1)
    eps = case["frac"] * max(b * float(np.linalg.norm(x)), 1e-12)
    check.upper(_packing_log(outputs, eps), check.bound(x, b, eps, shape))


def _head_outputs(x, w, v, qk) -> np.ndarray:
    """f(X) = w^T relu(V^T X^T softmax(X W_QK x_1)) for each sequence (query = first token)."""
    logits = np.einsum("mtd,de,me->mt", x, qk, x[:, 0])
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    pooled = np.einsum("mt,mtd->md", p, x)
    return np.maximum(pooled @ v, 0.0) @ w


@bound_property(CV.edelman22_attention, cases=head_class_cases(), rtol=RTOL)
def test_edelman22_attention(check, case):
    x = case["data"]
    d = x.shape[2]
    rng = np.random.default_rng(case["seed"])
    outputs = []
    for k in range(SAMPLES):
        w = rng.standard_normal(d)
        w *= case["b_w"] / max(np.linalg.norm(w), 1e-300)
        v = rng.standard_normal((d, d))
        v *= min(case["b_v"] / max(np.linalg.norm(v, 2), 1e-300), case["b_v21"] / max(CV.norm_pq(v, 2, 1), 1e-300))
        qk = rng.standard_normal((d, d))
        qk *= case["b_qk21"] / max(CV.norm_pq(qk, 2, 1), 1e-300) * (1.0 if k % 2 else rng.random())
        outputs.append(_head_outputs(x, w, v * (1 - 1e-12), qk))
    outputs = np.stack(outputs)
    radius = case["b_w"] * case["b_v"] * float(np.linalg.norm(x, axis=2).max())
    eps = case["frac"] * max(radius, 1e-12)
    bound = check.bound(x, eps, b_w=case["b_w"], b_v=case["b_v"], b_v21=case["b_v21"], b_qk21=case["b_qk21"])
    check.upper(_packing_log(outputs, eps, "chebyshev"), bound)


# --------------------------------------------------------------------------- intrinsic dimension
def _transformed(case) -> np.ndarray:
    return case["scale"] * case["points"] @ case["rotation"] + case["shift"]


@bound_property(K.twonn_dimension, cases=point_clouds(), rtol=RTOL)
def test_twonn_scale_invariant(check, case):
    check.exact(check.bound(_transformed(case)), check.bound(case["points"]).value)


@bound_property(K.levina_bickel_dimension, cases=point_clouds(min_points=12), rtol=RTOL)
def test_mle_scale_invariant(check, case):
    k = min(10, case["n"] - 1)
    for average in ("mean", "inverse"):
        check.exact(check.bound(_transformed(case), k, average), check.bound(case["points"], k, average).value,
                    average=average)


@pytest.mark.parametrize("kind", ["sphere", "gaussian"])
@pytest.mark.parametrize("dim", [1, 2, 3, 5])
def test_intrinsic_dimension_ground_truth(kind, dim):
    """TwoNN and Levina-Bickel recover the dimension of a known manifold (module docstring: tolerances)."""
    rng = np.random.default_rng(derive_seed(20261202, "intrinsic-dimension", kind, dim))
    n, ambient = 1000, 12
    z = rng.standard_normal((n, dim + 1 if kind == "sphere" else dim))  # (n, intrinsic coordinates)
    if kind == "sphere":
        z /= np.linalg.norm(z, axis=1, keepdims=True)  # uniform on S^dim in R^(dim+1)
    q, _ = np.linalg.qr(rng.standard_normal((ambient, z.shape[1])))  # (ambient, k): orthonormal columns
    x = z @ q.T  # (n, ambient): an isometric embedding
    twonn = K.twonn_dimension(x).value
    inverse = K.levina_bickel_dimension(x, 10, "inverse").value
    mean = K.levina_bickel_dimension(x, 10, "mean").value
    assert abs(twonn / dim - 1) <= 0.2, f"TwoNN {twonn:.3f} for a {dim}-dimensional {kind}"
    assert abs(inverse / dim - 1) <= 0.2, f"Levina-Bickel (inverse) {inverse:.3f} for a {dim}-dimensional {kind}"
    assert 0.95 <= mean / dim <= 1.25, f"Levina-Bickel (mean) {mean:.3f} for a {dim}-dimensional {kind}"
