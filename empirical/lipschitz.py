r"""Empirical Lipschitz estimates. Every number returned here is a **lower bound** on the true constant.

* :func:`local_lipschitz`: :math:`\sigma_{\max}(J_f(x))` by power iteration on :math:`J^\top J` with
  ``torch.func`` jvp/vjp, batched over many x (each Rayleigh quotient :math:`\|Jv\|` with :math:`\|v\|=1` is
  :math:`\le\sigma_{\max}`, so every iterate is a lower bound; convergence is the relative change of the estimate).
* :func:`dense_jacobian`: the full Jacobian per sample (small inputs), for exact local constants in any norm.
* :func:`global_lipschitz_lower_bound`: maximise the local constant over a domain (projected gradient ascent
  with restarts); :math:`\mathrm{Lip}(f|_D)\ge\|J_f(x)\|` for x in a convex domain D with interior.
* :func:`conv_operator_norm`: ground truth for a convolution layer with its real padding and stride,
  matrix-free (Lanczos via ARPACK on :math:`T^\top T`, or plain power iteration).

Functions ``f`` take a batch ``(B, *shape)`` and must act on each sample independently (eval-mode models do).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from boundlab.theory.convolution import ConvLayer
from boundlab.theory.validate import InputError, choice, positive_float, positive_int

from ._torch import DTYPE, as_tensor, generator, resolve_device

Fn = Callable[[torch.Tensor], torch.Tensor]

__all__ = [
    "LocalLipschitz",
    "GlobalLipschitz",
    "local_lipschitz",
    "dense_jacobian",
    "jacobian_norm",
    "global_lipschitz_lower_bound",
    "project_token_ball",
    "conv_operator",
    "conv_operator_norm",
]


def _bnorm(t: torch.Tensor) -> torch.Tensor:
    """Per-sample Euclidean norm over all but the batch dimension."""
    return t.flatten(1).norm(dim=1)


def _bscale(t: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
    return t * s.view(-1, *([1] * (t.dim() - 1)))


@dataclass
class LocalLipschitz:
    """Result of :func:`local_lipschitz`: per-sample lower bounds on :math:`\\sigma_{\\max}(J_f(x))`."""

    sigma: np.ndarray
    iterations: int
    converged: np.ndarray
    max_iter: int
    vectors: torch.Tensor = field(repr=False)


def local_lipschitz(
    f: Fn,
    x,
    *,
    tol: float = 1e-4,
    max_iter: int = 1000,
    seed: int = 0,
    device=None,
    v0: torch.Tensor | None = None,
) -> LocalLipschitz:
    r"""Per-sample :math:`\sigma_{\max}(J_f(x_b))` by power iteration on :math:`J^\top J` (matrix-free).

    Stops when every sample's estimate changes by less than ``tol`` relatively, or after ``max_iter``
    iterations (``converged`` says which samples met ``tol``). Each estimate :math:`\|J v\|` with a unit ``v``
    is a lower bound on :math:`\sigma_{\max}` (up to rounding), whatever the convergence.
    """
    dev = resolve_device(device)
    xt = as_tensor("x", x, dev)
    if xt.dim() < 2:
        raise InputError(f"x: expected a batch (B, ...) with at least 2 dims, got shape {tuple(xt.shape)}")
    tol = positive_float("tol", tol)
    max_iter = positive_int("max_iter", max_iter)
    if v0 is None:
        v = torch.randn(xt.shape, generator=generator(seed, dev), device=dev, dtype=DTYPE)
    else:
        v = as_tensor("v0", v0, dev)
    v = _bscale(v, 1.0 / _bnorm(v).clamp_min(1e-300))
    _, vjp_fn = torch.func.vjp(f, xt)
    prev = torch.zeros(xt.shape[0], dtype=DTYPE, device=dev)
    sigma = prev
    conv = torch.zeros(xt.shape[0], dtype=torch.bool, device=dev)
    it = 0
    for it in range(1, max_iter + 1):
        _, jv = torch.func.jvp(f, (xt,), (v,))
        sigma = _bnorm(jv)
        conv = (sigma - prev).abs() <= tol * sigma.clamp_min(1e-300)
        if it > 1 and bool(conv.all()):
            break
        prev = sigma
        (w,) = vjp_fn(jv)
        nw = _bnorm(w)
        v = torch.where(
            (nw > 0).view(-1, *([1] * (w.dim() - 1))), _bscale(w, 1.0 / nw.clamp_min(1e-300)), v
        )
    return LocalLipschitz(sigma.detach().cpu().numpy(), it, conv.cpu().numpy(), max_iter, v.detach())


def dense_jacobian(f: Fn, x, device=None) -> np.ndarray:
    """Full per-sample Jacobians, shape ``(B, out_dim, in_dim)`` (float64). For small inputs only."""
    dev = resolve_device(device)
    xt = as_tensor("x", x, dev)
    if xt.dim() < 2:
        raise InputError(f"x: expected a batch (B, ...) with at least 2 dims, got shape {tuple(xt.shape)}")

    def single(xi: torch.Tensor) -> torch.Tensor:
        return f(xi.unsqueeze(0)).squeeze(0)

    jac = torch.func.vmap(torch.func.jacrev(single))(xt)
    b = xt.shape[0]
    in_dim = xt[0].numel()
    return jac.reshape(b, -1, in_dim).detach().cpu().numpy()


def jacobian_norm(f: Fn, x, norm: str = "2", device=None) -> np.ndarray:
    r"""Exact per-sample :math:`\|J_f(x)\|` from the dense Jacobian: ``"2"`` spectral, ``"inf"`` max abs row sum."""
    choice("norm", norm, ("2", "inf"))
    j = dense_jacobian(f, x, device)
    if norm == "2":
        return np.linalg.svd(j, compute_uv=False)[:, 0]
    return np.abs(j).sum(axis=2).max(axis=1)


def project_token_ball(x: torch.Tensor, radius: float) -> torch.Tensor:
    """Project every token (last axis) onto the Euclidean ball of ``radius``."""
    n = x.norm(dim=-1, keepdim=True)
    return x * torch.clamp(radius / n.clamp_min(1e-300), max=1.0)


@dataclass
class GlobalLipschitz:
    """Result of :func:`global_lipschitz_lower_bound`: the best lower bound found and where."""

    lower_bound: float
    argmax: np.ndarray
    per_restart: np.ndarray
    steps: int
    restarts: int
    seed: int


def global_lipschitz_lower_bound(
    f: Fn,
    shape: tuple[int, ...],
    radius: float,
    *,
    restarts: int = 8,
    steps: int = 30,
    seed: int = 0,
    inits=None,
    norm: str = "2",
    device=None,
    power_steps: int = 3,
) -> GlobalLipschitz:
    r"""Lower bound on :math:`\mathrm{Lip}(f|_{D})`, :math:`D=\{x\in\mathbb R^{shape}:\|x_{\dots,i,:}\|\le R\}` (token balls).

    Projected gradient ascent on :math:`\|J_f(x)v\|` (``norm="2"``, with v refreshed by ``power_steps`` power
    iterations each step) or on the exact :math:`\|J_f(x)\|_\infty` (``norm="inf"``, dense Jacobian: small
    inputs only), from ``restarts`` seeded random starts (plus ``inits``, projected into D). The final value at
    each restart's best point is re-measured to convergence; the reported number is their maximum.
    Since D is convex with non-empty interior, every :math:`\|J_f(x)\|` with :math:`x\in D` is a valid lower bound.
    """
    choice("norm", norm, ("2", "inf"))
    radius = positive_float("radius", radius)
    restarts = positive_int("restarts", restarts)
    steps = positive_int("steps", steps, minimum=0)
    dev = resolve_device(device)
    g = generator(seed, dev)
    shape = tuple(positive_int(f"shape[{i}]", s) for i, s in enumerate(shape))
    # random starts: uniform directions, radii spread over (0, R]
    x = torch.randn((restarts, *shape), generator=g, device=dev, dtype=DTYPE)
    x = x / x.norm(dim=-1, keepdim=True).clamp_min(1e-300)
    rad = torch.rand((restarts, *shape[:-1], 1), generator=g, device=dev, dtype=DTYPE) ** (1.0 / shape[-1])
    rad[: max(1, restarts // 2)] = 1.0  # half the restarts start on the boundary, where constants peak
    x = x * rad * radius
    if inits is not None:
        extra = as_tensor("inits", inits, dev)
        if tuple(extra.shape[1:]) != shape:
            raise InputError(f"inits: expected shape (k, {shape}), got {tuple(extra.shape)}")
        x = torch.cat([project_token_ball(extra, radius), x])
    x = project_token_ball(x, radius)

    def objective(xb: torch.Tensor, vb: torch.Tensor | None) -> torch.Tensor:
        if norm == "2":
            _, jv = torch.func.jvp(f, (xb,), (vb,))
            return _bnorm(jv)
        jac = torch.func.vmap(torch.func.jacrev(lambda xi: f(xi.unsqueeze(0)).squeeze(0)))(xb)
        return jac.reshape(xb.shape[0], -1, xb[0].numel()).abs().sum(-1).amax(-1)

    v = torch.randn(x.shape, generator=g, device=dev, dtype=DTYPE)
    v = _bscale(v, 1.0 / _bnorm(v))
    best_val = torch.full((x.shape[0],), -1.0, dtype=DTYPE, device=dev)
    best_x = x.clone()
    step = 0.2 * radius
    for k in range(steps + 1):
        if norm == "2":
            _, vjp_fn = torch.func.vjp(f, x)
            for _ in range(power_steps):
                _, jv = torch.func.jvp(f, (x,), (v,))
                (w,) = vjp_fn(jv)
                v = _bscale(w, 1.0 / _bnorm(w).clamp_min(1e-300))
        xr = x.detach().requires_grad_(True)
        val = objective(xr, v.detach() if norm == "2" else None)
        better = val.detach() > best_val
        best_val = torch.where(better, val.detach(), best_val)
        best_x[better] = x[better]
        if k == steps:
            break
        (grad,) = torch.autograd.grad(val.sum(), xr)
        gn = _bnorm(grad).clamp_min(1e-300)
        lr = step * (1.0 - k / (steps + 1))
        x = project_token_ball(x + _bscale(grad, lr / gn), radius).detach()
    if norm == "2":
        final = local_lipschitz(f, best_x, seed=seed, device=dev, max_iter=2000).sigma
    else:
        final = objective(best_x, None).detach().cpu().numpy()
    final = np.maximum(final, best_val.cpu().numpy())
    i = int(np.argmax(final))
    return GlobalLipschitz(float(final[i]), best_x[i].cpu().numpy(), final, steps, x.shape[0], seed)


def _conv_layer(layer) -> ConvLayer:
    if not isinstance(layer, ConvLayer):
        raise InputError(f"layer: expected a ConvLayer (boundlab.theory.convolution.ConvLayer.create), got "
                         f"{type(layer).__name__}")
    return layer


def conv_operator(layer: ConvLayer, device=None) -> Fn:
    """The convolution layer as a batched function ``(B, c_in, h, w) -> (B, c_out, h', w')`` (float64, no bias),
    with exactly the layer's padding (circular or zero amounts per side) and stride."""
    layer = _conv_layer(layer)
    dev = resolve_device(device)
    kt = torch.as_tensor(layer.kernel, dtype=DTYPE, device=dev)
    pads = layer.torch_padding
    circular = layer.padding_mode == "circular"

    def op(x: torch.Tensor) -> torch.Tensor:
        xp = F.pad(x, pads, mode="circular") if circular else F.pad(x, pads)
        return F.conv2d(xp, kt, stride=layer.stride)

    return op


def conv_operator_norm(layer: ConvLayer, *, method: str = "lanczos", n_iter: int = 200, tol: float = 1e-12,
                       seed: int = 0, device=None, dense_below: int = 256) -> float:
    r"""Lower bound on the spectral norm of a convolution layer with its real padding and stride (matrix-free).

    ``method="lanczos"``: ARPACK (``scipy.sparse.linalg.eigsh``) on :math:`T^\top T`, converged to ``tol``; a Ritz
    value never exceeds :math:`\lambda_{\max}`, so :math:`\sqrt{\theta}\le\|T\|_2`. ``method="power"``: ``n_iter``
    steps of power iteration (the classic estimate, also a lower bound). Inputs with at most ``dense_below``
    entries are handled exactly instead: T is applied to the identity basis in one batched call and the
    resulting matrix gets a dense SVD (ARPACK is much slower than that for a few hundred unknowns).
    """
    layer = _conv_layer(layer)
    choice("method", method, ("lanczos", "power"))
    dev = resolve_device(device)
    op = conv_operator(layer, device=dev)
    shape = (1, layer.kernel.shape[1], *layer.input_size)
    x0 = torch.zeros(shape, dtype=DTYPE, device=dev)
    _, vjp_fn = torch.func.vjp(op, x0)  # linear map: the adjoint does not depend on x0

    def normal(vec: torch.Tensor) -> torch.Tensor:
        return vjp_fn(op(vec))[0]

    if method == "power":
        n_iter = positive_int("n_iter", n_iter)
        v = torch.randn(shape, generator=generator(seed, dev), device=dev, dtype=DTYPE)
        v = v / v.norm()
        s = 0.0
        for _ in range(n_iter):
            y = op(v)
            s = float(y.norm())
            z = vjp_fn(y)[0]
            v = z / z.norm().clamp_min(1e-300)
        return s
    from scipy.sparse.linalg import LinearOperator, eigsh

    size = int(np.prod(shape))
    if size <= dense_below:
        # small layers: apply T to the whole identity basis in one batched call and take the exact SVD
        basis = torch.eye(size, dtype=DTYPE, device=dev).reshape(size, *shape[1:])
        mat = op(basis).reshape(size, -1).cpu().numpy()
        return float(np.linalg.svd(mat, compute_uv=False)[0])

    def matvec(vec: np.ndarray) -> np.ndarray:
        t = torch.as_tensor(np.ascontiguousarray(vec).reshape(shape), dtype=DTYPE, device=dev)
        return normal(t).reshape(-1).cpu().numpy()

    rng = np.random.default_rng(seed)
    lin = LinearOperator((size, size), matvec=matvec, dtype=np.float64)
    val = eigsh(lin, k=1, which="LA", tol=tol, v0=rng.standard_normal(size), return_eigenvectors=False)
    return float(np.sqrt(max(val[0], 0.0)))
