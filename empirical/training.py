"""Training with a recorded config, atomic per-epoch checkpoints and exact resumption.

:func:`fit` trains ``model`` for ``config.epochs`` epochs. Epoch ``e`` means "after ``e`` epochs of training"
(``e = 0`` is the initialisation). After each epoch (and once before training, ``e = 0``) it calls
``on_epoch(model, e)`` and stores what the callback returns in the checkpoint **together with** the weights,
optimiser and schedule state, written atomically (``torch.save`` to a temporary file in the same folder, then
``os.replace``). A killed run restarted with ``resume=True`` continues after the last completed epoch and, because
the mini-batch order of epoch ``e`` is drawn from a generator seeded with ``(seed, e)``, ends with the same
weights as an uninterrupted run. A corrupted or foreign checkpoint is a :class:`CheckpointError` naming the file.
"""

from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import torch
import torch.nn.functional as F

from ..io.progress import emit
from ..io.results import atomic_file
from ..io.seeds import derive_seed
from ..theory.validate import InputError, choice, positive_float, positive_int

__all__ = ["TrainConfig", "CheckpointError", "fit", "save_checkpoint", "load_checkpoint", "evaluate_accuracy",
           "top1_accuracy"]


class CheckpointError(InputError):
    """A checkpoint that cannot be read or does not belong to this run."""


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines training (recorded in every result file)."""

    optimizer: str = "adamw"      # "adamw" | "sgd"
    lr: float = 1e-3
    schedule: str = "cosine"      # "cosine" (per epoch, to 0 at the last epoch) | "constant"
    epochs: int = 5
    batch_size: int = 64
    weight_decay: float = 5e-4
    momentum: float = 0.9         # SGD only
    seed: int = 0

    def validate(self) -> "TrainConfig":
        choice("optimizer", self.optimizer, ("adamw", "sgd"))
        choice("schedule", self.schedule, ("cosine", "constant"))
        positive_float("lr", self.lr)
        positive_int("epochs", self.epochs, minimum=0)
        positive_int("batch_size", self.batch_size)
        positive_float("weight_decay", self.weight_decay, allow_zero=True)
        positive_float("momentum", self.momentum, allow_zero=True)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise InputError(f"seed: expected an integer, got {self.seed!r}")
        return self

    def as_dict(self) -> dict:
        return asdict(self)


def _optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)


def _lr_factor(cfg: TrainConfig, epoch: int) -> float:
    """Learning-rate factor for (0-based) training epoch ``epoch``."""
    if cfg.schedule == "constant" or cfg.epochs <= 1:
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * epoch / cfg.epochs))


def save_checkpoint(path: str | os.PathLike, state: dict) -> Path:
    """``torch.save(state)`` atomically (:func:`boundlab.io.results.atomic_file`: temp file, fsync, ``os.replace``)."""
    with atomic_file(path, "wb") as fh:
        torch.save(state, fh)
    return Path(path)


def load_checkpoint(path: str | os.PathLike, expect_hash: str | None = None) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only``: tensors and plain containers only).

    Raises :class:`CheckpointError` naming the file when it is unreadable, incomplete or (``expect_hash``)
    written for another configuration."""
    p = Path(path)
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is the same user error
        raise CheckpointError(f"checkpoint: {p} is corrupted or not a boundlab checkpoint ({type(exc).__name__}); "
                              f"delete it to start this unit afresh") from exc
    need = ("epoch", "model", "optimizer", "config_hash", "log", "train_loss")
    if not isinstance(state, dict) or any(k not in state for k in need):
        raise CheckpointError(f"checkpoint: {p} lacks the entries {list(need)}; delete it to start afresh")
    if expect_hash is not None and state["config_hash"] != expect_hash:
        raise CheckpointError(f"checkpoint: {p} was written for another configuration "
                              f"(hash {state['config_hash'][:8]} != {expect_hash[:8]})")
    return state


def top1_accuracy(logits, labels) -> float:
    """Fraction of rows whose largest logit is at the label (numpy arrays or tensors): the one accuracy."""
    if isinstance(logits, torch.Tensor):
        return float((logits.argmax(1) == labels).float().mean()) if logits.shape[0] else 0.0
    import numpy as np

    return float(np.mean(np.asarray(logits).argmax(axis=1) == np.asarray(labels))) if len(logits) else 0.0


@torch.no_grad()
def evaluate_accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    """Top-1 accuracy of ``model`` in eval mode on ``(x, y)`` (tensors already on the model's device)."""
    was = model.training
    model.eval()
    correct = 0.0
    for i in range(0, x.shape[0], batch_size):
        xb = x[i:i + batch_size]
        correct += top1_accuracy(model(xb), y[i:i + batch_size]) * xb.shape[0]
    model.train(was)
    return correct / max(1, x.shape[0])


def _train_epoch(model, opt, x, y, cfg: TrainConfig, epoch: int, progress=None) -> float:
    model.train()
    g = torch.Generator()
    g.manual_seed(derive_seed(cfg.seed, "train.batch_order", epoch))
    perm = torch.randperm(x.shape[0], generator=g).to(x.device)
    for group in opt.param_groups:
        group["lr"] = cfg.lr * _lr_factor(cfg, epoch)
    total, count = 0.0, 0
    label = f"epoch {epoch + 1}/{cfg.epochs}"
    for i in range(0, x.shape[0], cfg.batch_size):
        idx = perm[i:i + cfg.batch_size]
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        total += float(loss.detach()) * idx.numel()
        count += idx.numel()
        emit(progress, label, count, x.shape[0])
    model.eval()
    return total / max(1, count)


def fit(model: torch.nn.Module, x_train: torch.Tensor, y_train: torch.Tensor, config: TrainConfig, *,
        checkpoint: str | os.PathLike | None = None, resume: bool = False, run_hash: str = "",
        on_epoch: Callable[[torch.nn.Module, int], dict] | None = None, progress=None) -> dict:
    """Train ``model`` (already on the data's device) and return ``{"train_loss": [...], "log": [...]}``.

    ``train_loss[e]`` is the mean mini-batch loss of epoch ``e`` (``None`` for ``e = 0``); ``log[j]`` what
    ``on_epoch`` returned (``None`` entries are not stored). With ``checkpoint`` every epoch is saved atomically; with
    ``resume`` and an existing checkpoint (its ``run_hash`` must match) training continues after its epoch."""
    cfg = config.validate()
    opt = _optimizer(model, cfg)
    state = {"epoch": -1, "train_loss": [], "log": []}
    if resume and checkpoint is not None and Path(checkpoint).is_file():
        saved = load_checkpoint(checkpoint, run_hash)
        try:
            model.load_state_dict(saved["model"])
            opt.load_state_dict(saved["optimizer"])
        except (RuntimeError, KeyError, ValueError) as exc:
            raise CheckpointError(f"checkpoint: {checkpoint} does not fit this model: {exc}") from exc
        state = {"epoch": int(saved["epoch"]), "train_loss": list(saved["train_loss"]), "log": list(saved["log"])}

    def finish_epoch(e: int, loss) -> None:
        state["epoch"] = e
        state["train_loss"].append(loss)
        if on_epoch is not None:
            entry = on_epoch(model, e)
            if entry is not None:
                state["log"].append(entry)
        if checkpoint is not None:
            save_checkpoint(checkpoint, {**state, "model": model.state_dict(), "optimizer": opt.state_dict(),
                                         "config_hash": run_hash, "config": cfg.as_dict()})

    if state["epoch"] < 0:
        model.eval()
        finish_epoch(0, None)
    for e in range(state["epoch"], cfg.epochs):
        loss = _train_epoch(model, opt, x_train, y_train, cfg, e, progress)
        finish_epoch(e + 1, loss)
    model.eval()
    return {"train_loss": state["train_loss"], "log": state["log"], "epochs": state["epoch"]}
