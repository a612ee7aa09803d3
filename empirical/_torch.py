"""Device and dtype plumbing shared by the empirical estimators (float64 everywhere by default)."""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from boundlab.theory.validate import InputError, positive_int

DTYPE = torch.float64


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None``/``"cpu"`` -> CPU; ``"cuda"`` only if CUDA exists (never a silent CPU fallback)."""
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InputError(f"device: expected 'cpu' or 'cuda[:N]', got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise InputError("device: 'cuda' was requested but torch.cuda.is_available() is False")
    if dev.type not in ("cpu", "cuda"):
        raise InputError(f"device: expected 'cpu' or 'cuda[:N]', got {device!r}")
    return dev


def as_tensor(name: str, value, device: torch.device, dtype: torch.dtype = DTYPE) -> torch.Tensor:
    """Convert to a tensor on ``device`` after checking finiteness; the error names the argument."""
    if isinstance(value, torch.Tensor):
        t = value.detach().to(device=device, dtype=dtype)
    else:
        try:
            t = torch.as_tensor(np.asarray(value, dtype=np.float64), device=device, dtype=dtype)
        except (TypeError, ValueError) as exc:
            raise InputError(f"{name}: expected a numeric array, got {type(value).__name__}") from exc
    if t.numel() == 0:
        raise InputError(f"{name}: expected a non-empty array, got shape {tuple(t.shape)}")
    if not torch.isfinite(t).all():
        raise InputError(f"{name}: expected finite values (found NaN or Inf)")
    return t


def generator(seed: int, device: torch.device) -> torch.Generator:
    """A seeded generator on ``device`` (every random draw in :mod:`empirical` goes through one)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise InputError(f"seed: expected an integer, got {seed!r}")
    g = torch.Generator(device=device)
    g.manual_seed(int(seed))
    return g


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """Run the block with ``torch.set_num_threads(threads)`` and restore the previous value (``None``: unchanged).

    Float reductions depend on the number of intra-op threads, so work whose numbers must not depend on where it
    runs (experiment units on any executor) fixes and records it."""
    if threads is None:
        yield
        return
    threads = positive_int("threads", threads)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)
