r"""Robust accuracy on a probe set: clean, FGSM, PGD (:math:`L_\infty`) and Gaussian noise, in pixel space.

Every perturbed image stays in the pixel box :math:`[0,1]` (attacks project onto
:math:`\{x' : \|x'-x\|_\infty\le\varepsilon\}\cap[0,1]^D`). Attack accuracies are **upper bounds** on the true
robust accuracy (a stronger attack can only lower them); PGD starts from a seeded uniform point of the
:math:`\varepsilon`-ball, step size ``step_fraction * eps``. The model is evaluated in eval mode (BatchNorm
running statistics), so every image is attacked independently of the others in its batch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F

from boundlab.theory.validate import InputError, positive_float, positive_int

from ..io.seeds import derive_seed
from .data import gaussian_noise
from .training import evaluate_accuracy

__all__ = ["RobustnessConfig", "fgsm", "pgd", "robustness_report", "eps_key"]


@dataclass(frozen=True)
class RobustnessConfig:
    """Attack budgets in pixel units (defaults: docs/research/topolip.md 6.4, eps in {1,2,4,8}/255, noise {2,4,8}/255)."""

    eps: tuple[float, ...] = (1 / 255, 2 / 255, 4 / 255, 8 / 255)
    noise_sigmas: tuple[float, ...] = (2 / 255, 4 / 255, 8 / 255)
    pgd_steps: int = 10
    step_fraction: float = 0.25
    batch_size: int = 256

    def validate(self) -> "RobustnessConfig":
        for i, e in enumerate(self.eps):
            positive_float(f"eps[{i}]", e)
        for i, s in enumerate(self.noise_sigmas):
            positive_float(f"noise_sigmas[{i}]", s)
        positive_int("pgd_steps", self.pgd_steps)
        positive_float("step_fraction", self.step_fraction)
        positive_int("batch_size", self.batch_size)
        return self

    def as_dict(self) -> dict:
        return {**asdict(self), "eps": list(self.eps), "noise_sigmas": list(self.noise_sigmas),
                "norm": "Linf", "pgd_start": "uniform in the eps-ball (seeded)", "space": "pixels in [0,1]"}


def eps_key(eps: float) -> str:
    """Dictionary key of a budget in result files: 4 decimals (``8/255 -> "0.0314"``)."""
    return f"{eps:.4f}"


def _grad(model, x, y):
    x = x.detach().requires_grad_(True)
    loss = F.cross_entropy(model(x), y, reduction="sum")
    (g,) = torch.autograd.grad(loss, x)
    return g


def fgsm(model, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    r"""Fast gradient sign: :math:`\mathrm{clip}_{[0,1]}(x+\varepsilon\,\mathrm{sign}\nabla_x\ell)`."""
    eps = positive_float("eps", eps)
    return (x + eps * _grad(model, x, y).sign()).clamp(0.0, 1.0).detach()


def pgd(model, x: torch.Tensor, y: torch.Tensor, eps: float, steps: int = 10, step_fraction: float = 0.25,
        seed: int = 0) -> torch.Tensor:
    r"""Projected gradient ascent on the loss in :math:`\{\|x'-x\|_\infty\le\varepsilon\}\cap[0,1]^D`."""
    eps = positive_float("eps", eps)
    steps = positive_int("steps", steps)
    alpha = positive_float("step_fraction", step_fraction) * eps
    g = torch.Generator(device=x.device)
    g.manual_seed(int(seed))
    delta = (torch.rand(x.shape, generator=g, device=x.device, dtype=x.dtype) * 2 - 1) * eps
    adv = (x + delta).clamp(0.0, 1.0)
    for _ in range(steps):
        adv = adv + alpha * _grad(model, adv, y).sign()
        adv = torch.min(torch.max(adv, x - eps), x + eps).clamp(0.0, 1.0).detach()
    return adv


def robustness_report(model, x: torch.Tensor, y: torch.Tensor, config: RobustnessConfig | None = None,
                      seed: int = 0) -> dict:
    """``{"clean", "fgsm": {eps: acc}, "pgd": {eps: acc}, "noise": {sigma: acc}}`` on the probe set ``(x, y)``."""
    cfg = (config or RobustnessConfig()).validate()
    if x.shape[0] != y.shape[0]:
        raise InputError(f"y: expected {x.shape[0]} labels, got {y.shape[0]}")
    was = model.training
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        bs = cfg.batch_size
        out = {"clean": evaluate_accuracy(model, x, y, bs), "fgsm": {}, "pgd": {}, "noise": {}}
        for j, eps in enumerate(cfg.eps):
            f_ok = p_ok = 0
            for i in range(0, x.shape[0], bs):
                xb, yb = x[i:i + bs], y[i:i + bs]
                adv_f = fgsm(model, xb, yb, eps)
                adv_p = pgd(model, xb, yb, eps, cfg.pgd_steps, cfg.step_fraction, seed=derive_seed(seed, "pgd", j, i))
                with torch.no_grad():
                    f_ok += int((model(adv_f).argmax(1) == yb).sum())
                    p_ok += int((model(adv_p).argmax(1) == yb).sum())
            out["fgsm"][eps_key(eps)] = f_ok / x.shape[0]
            out["pgd"][eps_key(eps)] = p_ok / x.shape[0]
        for j, s in enumerate(cfg.noise_sigmas):
            noisy = gaussian_noise(x, s, derive_seed(seed, "noise", j))
            out["noise"][eps_key(s)] = evaluate_accuracy(model, noisy, y, bs)
    finally:
        for p in model.parameters():
            p.requires_grad_(True)
        model.train(was)
    return out
