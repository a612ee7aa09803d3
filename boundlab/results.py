"""Result files: atomic JSON writes and the metadata every result carries (config, seed, versions, commit).

Every command that measures writes JSON through :func:`write_json`, which writes a temporary file in the
target folder and ``os.replace``-s it, so a killed run never leaves a half-written result.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import math
import os
import platform
import subprocess
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

_PACKAGES = ("numpy", "scipy", "torch", "cvxpy", "cvxopt", "clarabel", "scs", "gudhi", "giotto-ph", "POT",
             "scikit-learn", "hypothesis", "dask", "distributed", "matplotlib")


def versions() -> dict[str, str]:
    """Versions of Python, boundlab and the numeric packages (``missing`` if not installed)."""
    from . import __version__

    out = {"python": platform.python_version(), "boundlab": __version__}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "missing"
    return out


def git_commit(path: str | os.PathLike | None = None) -> str | None:
    """The commit of the checkout containing ``path`` (default: this package), or ``None`` outside git."""
    where = Path(path) if path else Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    if out.returncode != 0 or not sha:
        return None
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=where,
                           capture_output=True, text=True, timeout=5, check=False).stdout.strip()
    return sha + ("+dirty" if dirty else "")


def metadata_block(config: dict | None = None, seed: int | None = None) -> dict[str, Any]:
    """The common header of every result file."""
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "versions": versions(),
        "config": config or {},
        "seed": seed,
    }


def _default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (np.floating, np.integer, np.bool_)):
        return obj.item()
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "as_dict"):
        return obj.as_dict()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _clean(obj: Any) -> Any:
    """Replace non-finite floats by strings so the JSON stays standard ("inf", "nan")."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {k: _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def dumps(obj: Any) -> str:
    return json.dumps(_clean(json.loads(json.dumps(obj, default=_default, allow_nan=True))), indent=2, sort_keys=False)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w"):
    """Write ``path`` atomically: yield a temporary file in the same folder, then fsync it and ``os.replace`` it
    onto ``path``; on any error the temporary file is removed and ``path`` is left as it was."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Write ``obj`` as JSON to ``path`` atomically (temp file in the same folder, then ``os.replace``)."""
    text = dumps(obj)
    with atomic_file(path, "w") as fh:
        fh.write(text)
    return Path(path)


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """Write arrays to ``path`` (.npz) atomically."""
    with atomic_file(path, "wb") as fh:
        np.savez(fh, **arrays)
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    """Read a result file; a missing or malformed file raises an error naming it."""
    p = Path(path)
    if not p.is_file():
        raise FileNotFoundError(f"results file not found: {p}")
    try:
        return json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"results file {p} is not valid JSON: {exc}") from exc
