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
           "load_npy", "load_npz", "device", "output_file"]

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


def nonnegative_float(text: str) -> float:
    """argparse type: a finite number >= 0."""
    try:
        if float(text) == 0.0:
            return 0.0
    except ValueError:
        pass
    try:
        return positive_float(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a finite number >= 0, got {text!r}") from None


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


_NPY_MAGIC, _ZIP_MAGIC = b"\x93NUMPY", b"PK\x03\x04"


def _sniff(p: Path, name: str) -> bytes:
    if not p.exists():
        raise CliError(f"{name}: file not found: {p}")
    if p.is_dir():
        raise CliError(f"{name}: {p} is a folder; expected a file")
    try:
        with open(p, "rb") as fh:
            return fh.read(8)
    except OSError as exc:
        raise CliError(f"{name}: cannot read {p}: {exc.strerror or exc}") from exc


def _not_numpy(p: Path, head: bytes, expected: str) -> str:
    if not head:
        return f"{p} is empty; expected {expected}"
    return f"{p} is not a numpy file (it starts with {head[:8]!r}); expected {expected}"


def load_npy(path: str, name: str):
    """A numeric ``.npy`` array (no pickles); every unreadable file is a :class:`CliError` naming ``name``.

    The file's first bytes decide what it is, whatever its suffix: an ``.npz``/torch (zip) file, a text file or a
    truncated array each get their own message."""
    import numpy as np

    p = Path(path)
    head = _sniff(p, name)
    if head.startswith(_ZIP_MAGIC):
        raise CliError(f"{name}: {p} is a zip archive (an .npz or a torch file); expected a single .npy array")
    if not head.startswith(_NPY_MAGIC):
        raise CliError(f"{name}: {_not_numpy(p, head, 'a .npy array (numpy.save)')}")
    try:
        arr = np.load(p, allow_pickle=False)
    except ValueError as exc:
        if "pickled" in str(exc) or "allow_pickle" in str(exc):
            raise CliError(f"{name}: {p} holds Python objects (object dtype); expected an array of real numbers") \
                from exc
        raise CliError(f"{name}: cannot read {p} as .npy ({exc})") from exc
    except Exception as exc:  # noqa: BLE001 - any unreadable file is a user error
        raise CliError(f"{name}: cannot read {p} as .npy, truncated or corrupt? ({type(exc).__name__}: {exc})") \
            from exc
    if arr.dtype.kind not in "biuf":
        raise CliError(f"{name}: {p} holds a {arr.dtype} array; expected real numbers")
    return arr


def load_npz(path: str, name: str, required: tuple[str, ...] = ()) -> dict:
    """The numeric arrays of an ``.npz`` archive as a dict; a single ``.npy``, a text file, a truncated archive,
    an object-dtype member or a missing ``required`` member is a :class:`CliError` naming ``name``."""
    import zipfile

    import numpy as np

    p = Path(path)
    head = _sniff(p, name)
    if head.startswith(_NPY_MAGIC):
        raise CliError(f"{name}: {p} is a single .npy array; expected an .npz archive (numpy.savez) with arrays "
                       f"{', '.join(required) or '...'}")
    if not head.startswith(_ZIP_MAGIC):
        raise CliError(f"{name}: {_not_numpy(p, head, 'an .npz archive (numpy.savez)')}")
    arrays = {}
    try:
        with np.load(p, allow_pickle=False) as data:
            for key in data.files:
                try:
                    arrays[key] = data[key]
                except ValueError as exc:
                    raise CliError(f"{name}: array {key!r} of {p} holds Python objects (object dtype); expected "
                                   f"real numbers") from exc
    except CliError:
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise CliError(f"{name}: cannot read {p} as an .npz archive, truncated or corrupt? ({type(exc).__name__}: "
                       f"{str(exc)[:120]})") from exc
    for key, a in arrays.items():
        if a.dtype.kind not in "biuf":
            raise CliError(f"{name}: array {key!r} of {p} has dtype {a.dtype}; expected real numbers")
    missing = [k for k in required if k not in arrays]
    if missing:
        raise CliError(f"{name}: {p} lacks arrays {missing} (has {sorted(arrays)})")
    return arrays


def device(text: str) -> str:
    """argparse type of ``--device``: ``cpu`` or ``cuda[:N]``, with CUDA checked to exist *now*, before any work
    (a ``--device cuda`` on a machine without it fails at the command line, not after the computation)."""
    import argparse
    import re

    m = re.fullmatch(r"(cpu|cuda)(?::(\d+))?", text.strip())
    if m is None or (m.group(1) == "cpu" and m.group(2) is not None):
        raise argparse.ArgumentTypeError(f"expected cpu or cuda[:N], got {text!r}")
    if m.group(1) == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise argparse.ArgumentTypeError(f"{text!r} requested but torch.cuda.is_available() is False here "
                                             f"(no GPU, or a CPU build of torch {torch.__version__})")
        index = int(m.group(2) or 0)
        if index >= torch.cuda.device_count():
            raise argparse.ArgumentTypeError(f"{text!r}: only {torch.cuda.device_count()} CUDA device(s)")
    return text.strip()


def output_file(text: str) -> str:
    """argparse type of a file to be written (``--json OUT``): refused at the command line, before any work, when
    it names an existing folder or lies under a file."""
    import argparse

    p = Path(text)
    if p.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder; expected a file path to write (e.g. {p / 'out.json'})")
    for parent in p.parents:
        if parent.exists():
            if not parent.is_dir():
                raise argparse.ArgumentTypeError(f"{text}: {parent} is a file, not a folder")
            break
    return text
