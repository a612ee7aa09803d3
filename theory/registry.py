"""The bound record and the registry that lists every bound boundlab encodes.

A :class:`Bound` says *what* is claimed (the inequality in LaTeX), *when* (assumptions), *who* claimed it
(source) and *how sure we are of the statement* (confidence). Functions that evaluate a bound are
registered with the :func:`register` decorator; ``boundlab bounds`` prints :func:`all_bounds` as a table,
and the verification suite keys every property by :attr:`Bound.name`.

Names follow ``area.what[_variant]`` (``conv.circular_exact``, ``attention.kim_l2_2norm``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Callable, Literal

Kind = Literal["upper", "exact", "lower", "claim"]
"""``upper``: a Lipschitz (or norm) upper bound; ``exact``: an exact value; ``lower``: a lower bound;
``claim``: a qualitative statement encoded so that it can be tested (e.g. *not globally Lipschitz*)."""

Confidence = Literal["standard", "derived", "reconstructed"]
"""``standard``: a textbook fact or a result reproduced in public code and checked here against a dense ground
truth; ``derived``: proved in this project (the proof is in the docstring); ``reconstructed``: the published
statement could not be read here and was recalled from secondary sources: the uncertain choices are parameters."""

KINDS: tuple[str, ...] = ("upper", "exact", "lower", "claim")
CONFIDENCES: tuple[str, ...] = ("standard", "derived", "reconstructed")


@dataclass(frozen=True)
class Bound:
    """One registered bound: the statement and where it comes from."""

    name: str
    kind: Kind
    latex: str
    assumptions: tuple[str, ...]
    source: str
    confidence: Confidence
    function: str = ""
    covers: str = ""
    notes: str = ""
    tags: tuple[str, ...] = field(default_factory=tuple)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["assumptions"] = list(self.assumptions)
        d["tags"] = list(self.tags)
        return d


_REGISTRY: dict[str, Bound] = {}


def register(
    name: str,
    *,
    kind: Kind,
    latex: str,
    assumptions: tuple[str, ...] | list[str],
    source: str,
    confidence: Confidence,
    covers: str = "",
    notes: str = "",
    tags: tuple[str, ...] = (),
) -> Callable:
    """Decorator: register the decorated function as the evaluator of bound ``name``."""
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    if confidence not in CONFIDENCES:
        raise ValueError(f"confidence: expected one of {CONFIDENCES}, got {confidence!r}")

    def deco(fn: Callable) -> Callable:
        if name in _REGISTRY and _REGISTRY[name].function != f"{fn.__module__}.{fn.__qualname__}":
            raise ValueError(f"name: bound {name!r} is registered twice")
        record = Bound(
            name=name,
            kind=kind,
            latex=latex,
            assumptions=tuple(assumptions),
            source=source,
            confidence=confidence,
            function=f"{fn.__module__}.{fn.__qualname__}",
            covers=covers,
            notes=notes,
            tags=tuple(tags),
        )
        _REGISTRY[name] = record
        fn.bound = record  # type: ignore[attr-defined]
        return fn

    return deco


def get(name: str) -> Bound:
    """The record of bound ``name``; raises ``KeyError`` naming the known bounds otherwise."""
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"name: unknown bound {name!r}; known: {sorted(_REGISTRY)}") from None


def all_bounds() -> list[Bound]:
    """Every registered bound, sorted by name."""
    _load_all()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def _load_all() -> None:
    """Import every public topic module of :mod:`theory` so that their ``@register`` decorators have run."""
    import importlib
    import pkgutil

    from . import __path__ as pkg_path

    for info in pkgutil.iter_modules(pkg_path):
        if not info.name.startswith("_") and info.name != "registry":
            importlib.import_module(f"{__package__}.{info.name}")
