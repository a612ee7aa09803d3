"""Input validation shared by every layer above :mod:`boundlab.io` (theory, empirical, the CLI).

Every check raises :class:`boundlab.io.errors.InputError` (a ``ValueError``) whose message names the argument and
states what was expected, so that a caller sees ``kernel: expected finite values, got nan at index (0, 1, 2, 0)``
rather than a stack trace from deep inside numpy.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np

from ..io.errors import InputError

__all__ = ["InputError", "as_real_array", "positive_float", "positive_int", "pair_of_ints", "choice", "integer"]


def as_real_array(name: str, value: Any, *, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Return ``value`` as a float64 array after checking it is real, finite and of the right rank."""
    if value is None:
        raise InputError(f"{name}: expected an array, got None")
    try:
        arr = np.asarray(value)
    except Exception as exc:  # pragma: no cover - exotic objects
        raise InputError(f"{name}: expected an array, got {type(value).__name__}") from exc
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise InputError(f"{name}: expected a numeric array, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise InputError(f"{name}: expected a real array, got complex dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if arr.ndim not in allowed:
            raise InputError(f"{name}: expected an array with ndim in {allowed}, got shape {arr.shape}")
    if arr.size == 0:
        raise InputError(f"{name}: expected a non-empty array, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise InputError(f"{name}: expected finite values, got {arr[idx]} at index {idx}")
    return arr


def positive_float(name: str, value: Any, *, allow_zero: bool = False) -> float:
    """Return ``value`` as a float after checking it is finite and > 0 (or >= 0 with ``allow_zero``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InputError(f"{name}: expected a real number, got {value!r}")
    v = float(value)
    if not math.isfinite(v):
        raise InputError(f"{name}: expected a finite number, got {v}")
    if v < 0 or (v == 0 and not allow_zero):
        sign = ">= 0" if allow_zero else "> 0"
        raise InputError(f"{name}: expected a number {sign}, got {v}")
    return v


def positive_int(name: str, value: Any, *, minimum: int = 1) -> int:
    """Return ``value`` as an int after checking it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name}: expected an integer >= {minimum}, got {value!r}")
    v = int(value)
    if v < minimum:
        raise InputError(f"{name}: expected an integer >= {minimum}, got {v}")
    return v


def pair_of_ints(name: str, value: Any, *, minimum: int = 1) -> tuple[int, int]:
    """Accept ``n`` or ``(h, w)`` and return ``(h, w)``, each an integer >= ``minimum``."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool):
        v = positive_int(name, value, minimum=minimum)
        return v, v
    try:
        items = tuple(value)
    except TypeError:
        raise InputError(f"{name}: expected an integer or a pair of integers, got {value!r}") from None
    if len(items) != 2:
        raise InputError(f"{name}: expected an integer or a pair of integers, got {value!r}")
    return (positive_int(f"{name}[0]", items[0], minimum=minimum), positive_int(f"{name}[1]", items[1], minimum=minimum))


def choice(name: str, value: Any, options: tuple[str, ...]) -> str:
    """Check that ``value`` is one of ``options``."""
    if value not in options:
        raise InputError(f"{name}: expected one of {options}, got {value!r}")
    return value


def integer(name: str, value: Any) -> int:
    """Return ``value`` as an int after checking it is an integer (any sign; a seed, an offset)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InputError(f"{name}: expected an integer, got {value!r}")
    return int(value)
