"""Hypothesis strategies for the LipSDP properties: small random MLPs (widths, depth, activation, scale, seed), and
the same with biases and an input region for the local bounds; plus the empirical lower bound inside a region.

Kept tiny (input <= 3, hidden widths <= 5, <= 2 hidden layers; local cases <= 3 hidden layers of width <= 5) so
each SDP solves in tens of milliseconds and the ``ci`` profile stays fast; the thorough profile draws many more.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from hypothesis import strategies as st

from boundlab.empirical.mlp import activation_module
from boundlab.theory.lipsdp import FeedForward
from boundlab.theory.lipsdp_local import LocalNetwork, Region

from .cases import Case
from .strategies import log_uniform, seeds

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "gelu", "silu")
LOCAL_ACTIVATIONS = ("relu", "relu", "leaky_relu", "tanh", "sigmoid")

__all__ = ["ACTIVATIONS", "LOCAL_ACTIVATIONS", "mlp_cases", "net_of", "local_cases", "local_of",
           "biased_function", "region_lower_bound", "project_region"]


@st.composite
def mlp_cases(draw, max_in: int = 3, max_width: int = 5, max_hidden_layers: int = 2, max_out: int = 2,
              activations=ACTIVATIONS, min_hidden_layers: int = 1):
    """Weights ``w0..wL`` (``(out, in)``), activation name, negative slope, search radius."""
    depth = draw(st.integers(min_hidden_layers, max_hidden_layers))
    widths = [draw(st.integers(1, max_in))] + [draw(st.integers(1, max_width)) for _ in range(depth)]
    widths.append(draw(st.integers(1, max_out)))
    act = draw(st.sampled_from(activations))
    slope = draw(st.sampled_from([0.01, 0.2, -0.5])) if act == "leaky_relu" else 0.01
    seed = draw(seeds)
    scale = draw(log_uniform(0.3, 3.0))
    rng = np.random.default_rng(seed)
    arrays = {f"w{i}": rng.standard_normal((widths[i + 1], widths[i])) * scale / math.sqrt(widths[i])
              for i in range(len(widths) - 1)}
    radius = draw(log_uniform(0.5, 5.0))
    return Case({"widths": widths, "activation": act, "negative_slope": slope, "seed": seed, "scale": scale,
                 "radius": radius}, arrays)


def net_of(case: Case) -> FeedForward:
    ws = [case[f"w{i}"] for i in range(len(case["widths"]) - 1)]
    return FeedForward.from_weights(ws, case["activation"], negative_slope=case["negative_slope"])


@st.composite
def local_cases(draw, max_in: int = 3, max_width: int = 5, max_hidden_layers: int = 3, max_out: int = 2,
                activations=LOCAL_ACTIVATIONS):
    """An MLP with biases and a region: kind (``linf``/``l2``), center ``c``, radius (log-uniform 0.02..3)."""
    case = draw(mlp_cases(max_in=max_in, max_width=max_width, max_hidden_layers=max_hidden_layers,
                          max_out=max_out, activations=activations))
    rng = np.random.default_rng(case["seed"] + 1)
    widths = case["widths"]
    bias_scale = draw(st.sampled_from([0.0, 0.5, 2.0]))
    arrays = dict(case.arrays)
    for i in range(len(widths) - 1):
        arrays[f"b{i}"] = rng.standard_normal(widths[i + 1]) * bias_scale
    arrays["center"] = rng.standard_normal(widths[0]) * draw(st.sampled_from([0.0, 1.0, 3.0]))
    config = dict(case.config, region=draw(st.sampled_from(["linf", "l2"])), region_radius=draw(log_uniform(0.02, 3.0)),
                  bias_scale=bias_scale)
    return Case(config, arrays)


def local_of(case: Case) -> LocalNetwork:
    net = net_of(case)
    biases = [case[f"b{i}"] for i in range(len(case["widths"]) - 1)]
    region = Region.create(case["region"], case["center"], case["region_radius"], net.weights[0].shape[1])
    return LocalNetwork.create(net, region, biases)


def biased_function(local: LocalNetwork):
    """``x -> W_L phi(... phi(W_0 x + b_0) ...) + b_L`` on batches ``(B, n_0)`` (float64 torch)."""
    net = local.net
    slope = net.alpha if net.activation == "leaky_relu" and net.beta == 1.0 else net.beta
    act = activation_module(net.activation, slope if net.activation == "leaky_relu" else 0.01)
    ws = [torch.as_tensor(w, dtype=torch.float64) for w in net.weights]
    bs = [torch.as_tensor(b, dtype=torch.float64) for b in local.biases]

    def f(x: torch.Tensor) -> torch.Tensor:
        z = x
        for w, b in zip(ws[:-1], bs[:-1]):
            z = act(z @ w.T + b)
        return z @ ws[-1].T + bs[-1]

    return f


def project_region(x: torch.Tensor, region: Region, shrink: float = 1e-9) -> torch.Tensor:
    """Project a batch ``(B, n_0)`` onto the region, shrunk by ``shrink`` relative (points stay inside)."""
    c = torch.as_tensor(region.center, dtype=x.dtype)
    r = region.radius * (1.0 - shrink)
    d = x - c
    if region.kind == "linf":
        return c + d.clamp(-r, r)
    n = d.norm(dim=1, keepdim=True).clamp_min(1e-300)
    return c + d * torch.clamp(r / n, max=1.0)


def region_lower_bound(local: LocalNetwork, *, seed: int = 0, samples: int = 64, steps: int = 12,
                       lr: float = 0.3) -> float:
    r"""The largest :math:`\|J_f(x)\|_2` found at points of the region (a lower bound on
    :math:`\mathrm{Lip}_2(f|_{\mathcal X})`, since every such point has the region around it on some side).

    Starts: the center, seeded uniform points, and (box) seeded vertices; then projected gradient ascent on the
    exact spectral norm of the dense Jacobian (``steps`` steps of length ``lr * radius``, decaying; for ReLU the
    gradient is zero almost everywhere and the sampling does the work). Every visited point is a witness.
    """
    region = local.region
    f = biased_function(local)
    g = torch.Generator().manual_seed(int(seed) % 2**31)
    n0 = region.center.shape[0]
    c = torch.as_tensor(region.center, dtype=torch.float64)
    r = region.radius
    if region.kind == "linf":
        pts = c + (torch.rand((samples, n0), generator=g, dtype=torch.float64) * 2 - 1) * r
        corners = c + torch.sign(torch.randn((samples, n0), generator=g, dtype=torch.float64)) * r
        pts = torch.cat([c[None], pts, corners])
    else:
        d = torch.randn((2 * samples, n0), generator=g, dtype=torch.float64)
        d = d / d.norm(dim=1, keepdim=True).clamp_min(1e-300)
        rad = torch.rand((2 * samples, 1), generator=g, dtype=torch.float64) ** (1.0 / n0)
        rad[:samples] = 1.0
        pts = torch.cat([c[None], c + d * rad * r])
    x = project_region(pts, region)

    def norms(xb: torch.Tensor) -> torch.Tensor:
        jac = torch.func.vmap(torch.func.jacrev(lambda xi: f(xi[None])[0]))(xb)
        return torch.linalg.matrix_norm(jac, ord=2)

    best = float(norms(x).max())
    for k in range(steps):
        xr = x.detach().requires_grad_(True)
        val = norms(xr)
        best = max(best, float(val.detach().max()))
        (grad,) = torch.autograd.grad(val.sum(), xr)
        gn = grad.norm(dim=1, keepdim=True).clamp_min(1e-300)
        x = project_region(x + grad / gn * (lr * r * (1 - k / (steps + 1))), region).detach()
    return max(best, float(norms(x).max()))
