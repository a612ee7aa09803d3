"""What every command module shares: the consoles, the user-error type, argument types, file loaders.

Commands print results on stdout (:data:`console`) and errors, warnings and progress on stderr
(:data:`err_console`, :func:`boundlab.io.progress.console_reporter`). A user error is any
:class:`boundlab.io.errors.InputError` (:class:`CliError` included): :func:`boundlab.cli.main` prints it as one
line on stderr and exits 2; a failed solve or check exits 1 (:mod:`boundlab.io.errors`).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from rich.console import Console

from ..io.errors import InputError

__all__ = ["console", "err_console", "CliError", "positive_int", "nonnegative_int", "positive_float", "seed_list",
           "load_npy"]

console = Console(width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else 160)


class CliError(InputError):
    """A user error found by a command (bad option, missing file): one line on stderr, exit status 2."""


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {v}")
    return v


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}") from None
    if v < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {v}")
    return v


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0 (also a fraction such as ``2/255``)."""
    try:
        if "/" in text:
            num, den = text.split("/", 1)
            v = float(num) / float(den)
        else:
            v = float(text)
    except (ValueError, ZeroDivisionError):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}") from None
    if not (v > 0 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text!r}")
    return v


def seed_list(values, option: str = "--seeds") -> tuple[int, ...]:
    """Seeds given as ``0 1 2``, ``0,1,2`` or a mix (one convention for every command); duplicates dropped."""
    if isinstance(values, str):
        values = [values]
    out = []
    for v in values:
        for part in str(v).split(","):
            if part.strip():
                try:
                    out.append(int(part))
                except ValueError:
                    raise CliError(f"{option}: expected integers, got {part!r}") from None
    if not out:
        raise CliError(f"{option}: expected at least one seed")
    return tuple(dict.fromkeys(out))


def load_npy(path: str, name: str):
    """A numeric ``.npy`` array (no pickles); every unreadable file is a :class:`CliError` naming ``name``."""
    import numpy as np

    p = Path(path)
    if not p.is_file():
        raise CliError(f"{name}: file not found: {p}")
    try:
        arr = np.load(p, allow_pickle=False)
    except ValueError as exc:
        if "pickled" in str(exc):
            raise CliError(f"{name}: {p} is not a numeric .npy array (it holds pickled objects or is not .npy)") \
                from exc
        raise CliError(f"{name}: cannot read {p} as .npy: {exc}") from exc
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error
        raise CliError(f"{name}: cannot read {p} as .npy ({type(exc).__name__}: {exc})") from exc
    if isinstance(arr, np.lib.npyio.NpzFile):
        arr.close()
        raise CliError(f"{name}: {p} is an .npz archive; expected a single .npy array")
    if arr.dtype.kind not in "biuf":
        raise CliError(f"{name}: {p} holds a {arr.dtype} array; expected real numbers")
    return arr
