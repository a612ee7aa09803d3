r"""Fine-tuning heads on frozen features, in the spirit of Sahiner et al. 2022 §5 (convex heads vs linear and MLP).

Frozen features (the default, no download): scikit-learn's embedded ``load_digits`` (1797 images, 8x8, 10 classes),
cut into ``patch`` x ``patch`` patches at ``stride`` (4 and 2: a 3x3 grid of s = 9 tokens), each embedded by one
*fixed random* linear map plus a fixed random positional vector and a ReLU (a frozen random patch embedding,
seeded), then standardised per feature on the training split and scaled to unit mean token norm. Any other
frozen features can be passed as ``(n, s, d)`` tokens with labels (``boundlab convex-heads --features F.npz``).

Every head is trained with the same pooled cross-entropy (token outputs averaged, then softmax; sums over samples)
and the same weight decay :math:`\beta=\lambda\,n_{train}` on its factors:

==========================  ================================================================  ===================
head                        model                                                              solved by
==========================  ================================================================  ===================
``linear``                  :math:`\bar x W` (a factorised linear head: penalty :math:`\beta\|W\|_*`)  convex (certified)
``linear_flat``             linear on the flattened tokens (keeps positions)                  convex (certified)
``relu_mlp``                :math:`\sum_j\max(0,x_tw_{1j})w_{2j}^\top`, m hidden units            L-BFGS (non-convex)
``convex_gated_mlp``        ``convex.mlp_head`` with P gates                                  convex (certified)
``attention``               m linear self-attention heads                                     L-BFGS (non-convex)
``convex_linear_attention`` ``convex.linear_attention``                                       convex (certified)
``convex_gated_attention``  ``convex.gated_relu_attention`` with P gates                      convex (certified)
==========================  ================================================================  ===================

Convex heads are solved by :func:`empirical.convex_heads.factored_solve` (Burer-Monteiro L-BFGS, then FISTA) and
their optimum is certified in float64 by the dual bound of :mod:`theory.convex_attention` (the ``gap`` column);
cvxpy is too slow at these sizes (a 300-sample cross-entropy solve took 67-150 s with Clarabel, measured).
The non-convex attention row reports the relative gap of its final objective to the certified convex optimum.

``scale="paper"``: all 1797 images (1400 train), d = 8, 50 gate patterns for the gated head (the ``neurons=50`` of
the authors' ConvexViT code), 8 attention gates, 50 hidden units, 8 attention heads. The paper itself used
ImageNet-pretrained backbones on CIFAR-100 (not reproducible offline); its accuracy table is not known here.

Cost (measured on 2 shared cores at load ~10, torch and BLAS single-threaded for these small tensors, see
:data:`empirical.convex_heads.THREADS`): ``small`` 40 s CPU (222 s wall), ``paper`` 108 s CPU (519 s wall); the gated
attention head dominates both (its lifting has P d^3 features).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, replace

import numpy as np

from boundlab.theory import convex_attention as CA
from boundlab.theory.validate import InputError, as_real_array, choice, positive_float, positive_int

from ..io.progress import emit
from .convex_heads import factored_solve, train_heads
from .data import digits_images, patch_tokens
from .training import top1_accuracy

__all__ = ["FinetuneConfig", "SCALES", "digits_tokens", "run_finetune"]


@dataclass(frozen=True)
class FinetuneConfig:
    """Sizes and hyperparameters of :func:`run_finetune` (``lam`` is the per-sample weight decay)."""

    n_train: int = 500
    n_test: int | None = None
    dim: int = 6
    patch: int = 4
    stride: int = 2
    lam: float = 1e-3
    mlp_gates: int = 20
    attention_gates: int = 4
    hidden: int = 20
    attention_heads: int = 4
    steps: int = 300
    polish: int = 2000
    gap_tol: float = 1e-5
    seed: int = 0

    def validated(self) -> "FinetuneConfig":
        for name in ("n_train", "dim", "patch", "stride", "mlp_gates", "attention_gates", "hidden",
                     "attention_heads", "steps"):
            positive_int(name, getattr(self, name))
        positive_int("polish", self.polish, minimum=0)
        if self.n_test is not None:
            positive_int("n_test", self.n_test)
        positive_float("lam", self.lam)
        positive_float("gap_tol", self.gap_tol)
        return self


SCALES = {
    "small": FinetuneConfig(),
    "paper": FinetuneConfig(n_train=1400, dim=8, mlp_gates=50, attention_gates=8, hidden=50, attention_heads=8,
                            steps=500, polish=4000),
}


def digits_tokens(dim: int, patch: int = 4, stride: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Raw frozen random patch-embedding tokens of the digits images, ``(1797, s, dim)``, and the labels."""
    dim, patch, stride = (positive_int(k, v) for k, v in (("dim", dim), ("patch", patch), ("stride", stride)))
    if patch > 8:
        raise InputError(f"patch: expected a patch size <= 8 (8x8 images), got {patch}")
    img, labels = digits_images()
    rng = np.random.default_rng(seed)
    patches = patch_tokens(img, patch, stride)  # (1797, s, patch*patch)
    embed = rng.standard_normal((patch * patch, dim)) / patch
    position = 0.5 * rng.standard_normal((patches.shape[1], dim))
    return np.maximum(patches @ embed + position, 0.0), labels.astype(int)


def _standardise(tokens: np.ndarray, train: np.ndarray) -> np.ndarray:
    flat = tokens[train].reshape(-1, tokens.shape[-1])
    out = (tokens - flat.mean(0)) / (flat.std(0) + 1e-12)
    return out / np.sqrt((out[train] ** 2).sum(-1).mean())


def _convex_row(name, kind, lift, block_shape, x_tr, y_tr, x_te, y_te, beta, c, cfg, gates=None) -> dict:
    tr = CA.lifted_problem(lift(x_tr, gates), y_tr, beta, block_shape=block_shape, loss="cross_entropy", classes=c,
                           kind=kind)
    te = CA.lifted_problem(lift(x_te, gates), y_te, beta, block_shape=block_shape, loss="cross_entropy", classes=c,
                           kind=kind)
    res = factored_solve(tr, steps=cfg.steps, seed=cfg.seed, polish=cfg.polish, gap_tol=cfg.gap_tol)
    sol = CA.ConvexSolution(tr, res.z, res.primal, res.dual, res.gap, "factored+fista", "certificate", res.seconds)
    return {"head": name, "solver": "convex (Burer-Monteiro + FISTA, certified)",
            "train_acc": top1_accuracy(tr.predictions(res.z), y_tr), "test_acc": top1_accuracy(te.predictions(res.z), y_te),
            "objective": res.primal, "certified_lower": res.dual, "gap": res.gap,
            "heads": len(CA.recover_heads(sol)), "m_star": int(CA.m_star(tr).value), "seconds": res.seconds}


def _nonconvex_row(name, kind, x_tr, y_tr, x_te, y_te, beta, c, heads, cfg, convex_optimum=None) -> dict:
    res = train_heads(kind, x_tr, y_tr, beta, heads=heads, loss="cross_entropy", classes=c, steps=cfg.steps,
                      seed=cfg.seed)
    import torch

    from .convex_heads import predictions as torch_predictions

    def logits(x):
        xt = torch.as_tensor(x, dtype=torch.float64)
        masks = torch.ones((1, *x.shape[:2], x.shape[1]) if kind == "attention" else (1, *x.shape[:2]),
                           dtype=torch.float64)
        out = torch_predictions(kind, xt, *(torch.as_tensor(a) for a in (res.heads.first, res.heads.second,
                                                                        res.heads.gate)), masks)
        return out.mean(dim=1).numpy()

    row = {"head": name, "solver": "L-BFGS (non-convex)", "train_acc": top1_accuracy(logits(x_tr), y_tr),
           "test_acc": top1_accuracy(logits(x_te), y_te), "objective": res.objective, "certified_lower": None,
           "gap": None, "heads": heads, "m_star": None, "seconds": res.seconds}
    if convex_optimum is not None:
        row["gap_to_convex"] = (res.objective - convex_optimum) / abs(convex_optimum)
    return row


def run_finetune(config: FinetuneConfig | str = "small", tokens=None, labels=None, progress=None,
                 **overrides) -> dict:
    """Train every head of the module table on frozen features; returns ``{"config", "rows", "data"}``.

    ``progress``: a :data:`boundlab.io.progress.Reporter` (one step per head, a line as each head starts).

    ``config``: a :class:`FinetuneConfig` or a name in :data:`SCALES`; ``overrides`` replace its fields.
    ``tokens``/``labels``: external frozen features ``(n, s, d)`` and integer labels (default: digits).
    """
    if isinstance(config, str):
        config = SCALES[choice("scale", config, tuple(SCALES))]
    cfg = replace(config, **overrides).validated()
    if tokens is None:
        raw, y = digits_tokens(cfg.dim, cfg.patch, cfg.stride, cfg.seed)
        source = f"sklearn load_digits, frozen random {cfg.patch}x{cfg.patch}/{cfg.stride} patch embedding"
    else:
        raw = CA.as_tokens(tokens)
        y = as_real_array("labels", labels, ndim=1).astype(int)
        if y.shape[0] != raw.shape[0]:
            raise InputError(f"labels: expected {raw.shape[0]} labels, got {y.shape[0]}")
        source = "external frozen features"
    n = raw.shape[0]
    if cfg.n_train >= n:
        raise InputError(f"n_train: expected fewer than the {n} samples available, got {cfg.n_train}")
    rng = np.random.default_rng(cfg.seed)
    perm = rng.permutation(n)
    n_test = n - cfg.n_train if cfg.n_test is None else min(cfg.n_test, n - cfg.n_train)
    tr, te = perm[: cfg.n_train], perm[cfg.n_train: cfg.n_train + n_test]
    x = _standardise(raw, tr)
    d, c = x.shape[2], int(y.max()) + 1
    beta = cfg.lam * cfg.n_train
    x_tr, x_te, y_tr, y_te = x[tr], x[te], y[tr], y[te]
    mlp_gates = rng.standard_normal((cfg.mlp_gates, d))
    att_gates = rng.standard_normal((cfg.attention_gates, d, d))
    flat = lambda z, g: CA.mlp_lifting(z.reshape(z.shape[0], 1, -1), g)  # noqa: E731
    start = time.perf_counter()
    results: dict = {}
    jobs = [
        ("linear", lambda: _convex_row("linear", "linear_mlp", CA.mlp_lifting, (d, c), x_tr, y_tr, x_te, y_te, beta,
                                       c, cfg)),
        ("linear_flat", lambda: _convex_row("linear_flat", "linear_mlp", flat, (d * x.shape[1], c), x_tr, y_tr, x_te,
                                            y_te, beta, c, cfg)),
        ("relu_mlp", lambda: _nonconvex_row("relu_mlp", "relu_mlp", x_tr, y_tr, x_te, y_te, beta, c, cfg.hidden,
                                            cfg)),
        ("convex_gated_mlp", lambda: _convex_row("convex_gated_mlp", "gated_mlp", CA.mlp_lifting, (d, c), x_tr, y_tr,
                                                 x_te, y_te, beta, c, cfg, mlp_gates)),
        ("convex_linear_attention", lambda: _convex_row("convex_linear_attention", "linear_attention",
                                                        CA.attention_lifting, (d * d, d * c), x_tr, y_tr, x_te, y_te,
                                                        beta, c, cfg)),
        ("attention", lambda: _nonconvex_row("attention", "attention", x_tr, y_tr, x_te, y_te, beta, c,
                                             cfg.attention_heads, cfg,
                                             convex_optimum=results["convex_linear_attention"]["certified_lower"])),
        ("convex_gated_attention", lambda: _convex_row("convex_gated_attention", "gated_attention",
                                                       CA.attention_lifting, (d * d, d * c), x_tr, y_tr, x_te, y_te,
                                                       beta, c, cfg, att_gates)),
    ]
    for i, (name, job) in enumerate(jobs):
        emit(progress, "heads", i, len(jobs), f"head {i + 1}/{len(jobs)}: {name}")
        results[name] = job()
    emit(progress, "heads", len(jobs), len(jobs))
    order = ("linear", "linear_flat", "relu_mlp", "convex_gated_mlp", "attention", "convex_linear_attention",
             "convex_gated_attention")
    rows = [results[k] for k in order]
    data = {"source": source, "n_train": int(len(tr)), "n_test": int(len(te)), "tokens": int(x.shape[1]),
            "dim": int(d), "classes": c, "beta": beta}
    return {"config": asdict(cfg), "data": data, "rows": rows, "seconds": time.perf_counter() - start}
