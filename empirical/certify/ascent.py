r"""Empirical local Lipschitz lower bounds in an input region: dense Jacobians at searched points of the region.

For a region :math:`R=\{x:\|x-x_0\|\le\varepsilon\}\cap[\mathrm{lo},\mathrm{hi}]^D` (``linf`` box or ``l2`` ball, the
pixel box), every point x of R gives :math:`\|J_f(x)\|_2\le\sup_{y\in R}\|\partial f(y)\|_2`, the quantity the
certificate bounds; the search reports the largest value it met, **a lower bound**. Points searched, all inside R
(by construction: the projection onto the ball or box is followed by the clip to the pixel box, which keeps a
point of the ball in the ball because the clip is non-expansive and fixes :math:`x_0`):

* the centre; seeded uniform points of R and random vertices of the box (``linf``) / of the sphere (``l2``);
* ``steps`` of projected ascent on :math:`\sigma_{\max}(J_f(x))` (gradient of :math:`u^\top J_f(x)v` at the top
  singular pair, a forward-over-reverse product), from the best ``restarts`` points. A ReLU network is piecewise
  linear, so there that gradient is zero almost everywhere; with ``smooth = beta`` the direction is that of the
  surrogate in which every ReLU is :math:`\mathrm{softplus}_\beta(z)=\log(1+e^{\beta z})/\beta` (its top singular
  pair and gradient; the mode :class:`SmoothRelu`), which sees the neurons about to switch, so the ascent also
  works on ReLU layers. The surrogate only steers: every value reported is :math:`\|J_f\|_2` of the model
  itself at a point of R;
* the vertex :math:`x_0\pm\varepsilon\,\mathrm{sign}(v)` along the top right singular vector of each ascent point.

:math:`\|J_f(x)\|_2` is the exact spectral norm of the dense float64 Jacobian (``torch.func.jacrev``), so the
search costs ``out_dim`` backward passes per point.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from boundlab.theory.validate import InputError, choice, positive_float, positive_int

__all__ = ["RegionSearch", "SmoothRelu", "project", "jacobian_norms", "region_lower_bound"]

_RELUS = (F.relu, torch.relu, torch.Tensor.relu)


class SmoothRelu(TorchFunctionMode):
    r"""While active, every ReLU (``F.relu``, ``torch.relu``, ``Tensor.relu``, hence ``nn.ReLU``) is evaluated as
    :math:`\mathrm{softplus}_\beta`: the smooth surrogate that steers the ascent of :func:`region_lower_bound`
    (never used for a reported value)."""

    def __init__(self, beta: float):
        super().__init__()
        self.beta = positive_float("smooth", beta)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _RELUS:
            return F.softplus(args[0], beta=self.beta)
        return func(*args, **kwargs)


@dataclass(frozen=True)
class RegionSearch:
    """Result of :func:`region_lower_bound`: the best ``||J_f(x)||_2`` found, where, and how many points."""

    lower_bound: float
    argmax: np.ndarray
    centre_value: float
    points: int
    seed: int

    def as_dict(self) -> dict:
        return {"lower_bound": self.lower_bound, "centre_value": self.centre_value, "points": self.points,
                "seed": self.seed}


def project(x: torch.Tensor, centre: torch.Tensor, eps: float, norm: str, lower=0.0, upper=1.0) -> torch.Tensor:
    """Into the region: onto the ``eps``-ball (box or l2) around ``centre``, then clipped to the pixel box."""
    d = x - centre
    if norm == "linf":
        d = d.clamp(-eps, eps)
    else:
        n = d.flatten(1).norm(dim=1).clamp_min(1e-300).view(-1, *([1] * (d.dim() - 1)))
        d = d * torch.clamp(eps / n, max=1.0)
    y = centre + d
    if lower is not None or upper is not None:
        y = y.clamp(lower if lower is not None else -np.inf, upper if upper is not None else np.inf)
    return y


def jacobian_norms(f, x: torch.Tensor, batch: int = 64) -> tuple[np.ndarray, torch.Tensor, torch.Tensor]:
    """Per-point ``||J_f(x)||_2`` (dense Jacobian, SVD) and the top singular pairs ``(u, v)``."""
    def single(xi):
        return f(xi.unsqueeze(0)).squeeze(0)

    vals, us, vs = [], [], []
    for i in range(0, x.shape[0], batch):
        jac = torch.func.vmap(torch.func.jacrev(single))(x[i:i + batch])
        jac = jac.reshape(jac.shape[0], jac.shape[1], -1)
        u, s, vh = torch.linalg.svd(jac, full_matrices=False)
        vals.append(s[:, 0])
        us.append(u[:, :, 0])
        vs.append(vh[:, 0, :])
    return (torch.cat(vals).detach().cpu().numpy(), torch.cat(us).detach(),
            torch.cat(vs).detach().reshape(x.shape))


def _ascent_direction(f, x: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    r""":math:`\nabla_x\,u^\top J_f(x)v` (the gradient of :math:`\sigma_{\max}` at a simple top singular value)."""
    def objective(xi, ui, vi):
        _, jv = torch.func.jvp(lambda z: f(z.unsqueeze(0)).squeeze(0), (xi,), (vi,))
        return (ui * jv).sum()

    return torch.func.vmap(torch.func.grad(objective))(x, u, v).detach()


def region_lower_bound(f, centre, eps: float, *, norm: str = "linf", lower=0.0, upper=1.0, samples: int = 64,
                       restarts: int = 4, steps: int = 8, seed: int = 0, smooth: float | None = None) -> RegionSearch:
    """The largest :math:`\\|J_f(x)\\|_2` found at points x of the region (see the module docstring).

    ``f`` maps a batch ``(B, *shape)`` to ``(B, out)`` sample-wise (an eval-mode float64 model); ``centre`` is one
    input of ``shape`` (no batch axis); ``smooth``: the softplus sharpness beta of the ReLU surrogate that steers
    the ascent (``None``: the model's own gradient)."""
    eps = positive_float("eps", eps)
    if smooth is not None:
        smooth = positive_float("smooth", smooth)
    choice("norm", norm, ("linf", "l2"))
    samples = positive_int("samples", samples, minimum=0)
    restarts = positive_int("restarts", restarts, minimum=0)
    steps = positive_int("steps", steps, minimum=0)
    c = torch.as_tensor(centre, dtype=torch.float64)
    if not torch.isfinite(c).all():
        raise InputError("centre: expected finite values")
    g = torch.Generator().manual_seed(int(seed))
    shape = tuple(c.shape)
    pts = [c.unsqueeze(0)]
    if samples:
        half = max(1, samples // 2)
        if norm == "linf":
            uni = (torch.rand((half, *shape), generator=g, dtype=torch.float64) * 2 - 1) * eps
            vert = (torch.randint(0, 2, (samples - half, *shape), generator=g).to(torch.float64) * 2 - 1) * eps
        else:
            dirs = torch.randn((samples, *shape), generator=g, dtype=torch.float64)
            dirs = dirs / dirs.flatten(1).norm(dim=1).view(-1, *([1] * len(shape)))
            rad = torch.rand((half, *([1] * len(shape))), generator=g, dtype=torch.float64) ** (1.0 / c.numel())
            uni, vert = dirs[:half] * rad * eps, dirs[half:] * eps
        pts += [project(c + uni, c, eps, norm, lower, upper), project(c + vert, c, eps, norm, lower, upper)]
    x = torch.cat(pts)
    vals, us, vs = jacobian_norms(f, x)
    best_val, best_x = float(vals.max()), x[int(np.argmax(vals))].clone()
    centre_val = float(vals[0])
    count = x.shape[0]
    if restarts and steps:
        order = np.argsort(vals)[::-1][:restarts].copy()
        xa, ua, va = x[order], us[order], vs[order]
        lr = eps / 4 if norm == "linf" else eps / 2
        for k in range(steps):
            if smooth is None:
                grad = _ascent_direction(f, xa, ua, va)
            else:
                with SmoothRelu(smooth):
                    _, su, sv = jacobian_norms(f, xa)
                    grad = _ascent_direction(f, xa, su, sv)
            if norm == "linf":
                step = grad.sign() * lr * (1 - k / (steps + 1))
            else:
                step = grad / grad.flatten(1).norm(dim=1).clamp_min(1e-300).view(-1, *([1] * len(shape))) * lr
            signs = project(c + eps * va.sign(), c, eps, norm, lower, upper) if norm == "linf" else \
                project(c + eps * va, c, eps, norm, lower, upper)
            xa = project(xa + step, c, eps, norm, lower, upper)
            cand = torch.cat([xa, signs])
            cv, cu, cvv = jacobian_norms(f, cand)
            count += cand.shape[0]
            i = int(np.argmax(cv))
            if cv[i] > best_val:
                best_val, best_x = float(cv[i]), cand[i].clone()
            n = xa.shape[0]
            ua, va = cu[:n], cvv[:n]
    return RegionSearch(best_val, best_x.numpy(), centre_val, count, int(seed))
