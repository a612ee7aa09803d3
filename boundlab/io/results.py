"""Result files: the one atomic writer, the one reader, the one config hash, and the metadata block.

Every file boundlab writes (JSON results, ``.npz`` arrays, checkpoints, the HTML report, ledger ``.jsonl``) goes
through :func:`atomic_file`: a temporary file in the target folder, fsync-ed, given mode 0644 under the umask
(readable by the other users of a shared results folder), then published with ``os.replace`` (or, with
``exclusive=True``, hard-linked so that the first finisher wins). A killed run never leaves a half-written file.
Every result document starts with :func:`metadata_block` (config, seed, versions, commit, creation time) and every
config is hashed with :func:`config_hash`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
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

from .errors import InputError

__all__ = ["ResultFileError", "versions", "git_commit", "metadata_block", "config_hash", "file_digest", "dumps",
           "atomic_file", "write_json", "write_npz", "write_text", "read_json"]

_PACKAGES = ("numpy", "scipy", "torch", "cvxpy", "cvxopt", "clarabel", "scs", "gudhi", "giotto-ph", "POT",
             "scikit-learn", "hypothesis", "dask", "distributed", "matplotlib")


class ResultFileError(InputError):
    """A result file that is missing, unreadable or not valid JSON (the message names the file)."""


def versions() -> dict[str, str]:
    """Versions of Python, boundlab and the numeric packages (``missing`` if not installed)."""
    from .. import __version__

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
    """The common header of every result file: ``created``, ``commit``, ``versions``, ``config``, ``seed``."""
    return {
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "commit": git_commit(),
        "versions": versions(),
        "config": config or {},
        "seed": seed,
    }


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=_default)


def config_hash(config: Any) -> str:
    """The SHA-256 (hex) of the canonical JSON of ``config`` (sorted keys, no whitespace; arrays as lists).

    The one config hash: experiment units, checkpoints, campaign units and corpus cases are keyed by it (or by
    its first characters)."""
    return hashlib.sha256(_canonical(config).encode()).hexdigest()


def file_digest(path: str | os.PathLike) -> str:
    """``sha256:<hex>`` of a file's bytes: recorded beside every input file a result was computed from."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


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


def dumps(obj: Any, indent: int | None = 2) -> str:
    """JSON text of ``obj`` (numpy values converted, non-finite floats as "inf"/"-inf"/"nan" strings)."""
    return json.dumps(_clean(json.loads(json.dumps(obj, default=_default, allow_nan=True))), indent=indent,
                      sort_keys=False)


def _file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, mode: str = "w", *, exclusive: bool = False):
    """Write ``path`` atomically: yield a temporary file in the same folder, then fsync it, give it mode 0644
    under the umask and publish it.

    ``exclusive=False``: ``os.replace`` onto ``path`` (the last writer wins). ``exclusive=True``: ``link(2)``,
    which fails with ``FileExistsError`` if ``path`` exists (the first writer wins; used for exactly-once unit
    commits). On any error the temporary file is removed and ``path`` is left as it was.
    """
    target = Path(path)
    if target.is_dir():
        raise InputError(f"{target}: is a folder; expected a file path to write")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, mode) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _file_mode())
        if exclusive:
            os.link(tmp, target)
            os.unlink(tmp)
        else:
            os.replace(tmp, target)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path: str | os.PathLike, obj: Any, *, exclusive: bool = False) -> Path:
    """Write ``obj`` as JSON to ``path`` through :func:`atomic_file`."""
    text = dumps(obj)
    with atomic_file(path, "w", exclusive=exclusive) as fh:
        fh.write(text)
    return Path(path)


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` through :func:`atomic_file`."""
    with atomic_file(path, "w") as fh:
        fh.write(text)
    return Path(path)


def write_npz(path: str | os.PathLike, **arrays: np.ndarray) -> Path:
    """Write arrays to ``path`` (.npz) through :func:`atomic_file`."""
    with atomic_file(path, "wb") as fh:
        np.savez(fh, **arrays)
    return Path(path)


def read_json(path: str | os.PathLike) -> Any:
    """Read a JSON file; a missing, unreadable or malformed file raises :class:`ResultFileError` naming it."""
    p = Path(path)
    if not p.is_file():
        raise ResultFileError(f"{p}: results file not found")
    try:
        text = p.read_text()
    except OSError as exc:
        raise ResultFileError(f"{p}: cannot read ({exc.strerror or exc})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ResultFileError(f"{p}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from exc
