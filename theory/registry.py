r"""The bound record, the one contract between a bound and every consumer, and the registry that lists them.

A :class:`Bound` says everything a consumer needs: *what* is claimed (the inequality in LaTeX, read from the
evaluator's docstring so that it is written once), *when* (assumptions, and a machine-checkable ``applies`` test
on a validated layer type), in *which norm*, *who* claimed it (source), *how sure we are* (confidence), what we
*expect* of it (``holds``, or ``falsified`` for a statement shown false, planted bounds included), the *tight
family* that attains it where one is known, and the plausible *mutants* (wrong formulas) its properties must
catch. The CLI, the verification properties, the report and ``boundlab mutate`` iterate the registry and never
restate what a bound says.

Every evaluator is registered with :func:`register` and returns one result type, :class:`BoundValue`
(``value, kind, norm, bound, details``): the rich results of a bound (a LipSDP certificate, a convex solution, a
witness) are its ``details``. A statement with ``expect="falsified"`` evaluates to a :class:`BoundValue` of kind
``falsified``, so nothing downstream can mistake it for an upper bound.

Names follow ``area.what[_variant]`` (``conv.circular_exact``, ``attention.kim_l2_2norm``). Bounds of other
packages are found through the entry point group ``boundlab.bounds`` (docs/extending.md).
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import inspect
import numbers
import re
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Literal

import numpy as np

__all__ = ["Kind", "Expect", "Confidence", "KINDS", "EXPECTS", "CONFIDENCES", "NORMS", "BoundValue", "TightFamily",
           "Mutant", "Bound", "register", "get", "all_bounds", "applicable", "expectation_met", "mutated",
           "ENTRY_POINT_GROUP"]

Kind = Literal["upper", "exact", "lower", "claim"]
"""``upper``: a Lipschitz (or norm, or count) upper bound; ``exact``: an exact value; ``lower``: a lower bound;
``claim``: a qualitative statement encoded so that it can be tested (e.g. *not globally Lipschitz*)."""

Expect = Literal["holds", "falsified"]
"""``holds``: the suite expects no counterexample; ``falsified``: the statement is known false (a finding, or a
planted false bound proving the suite's teeth) and the suite must find a counterexample."""

Confidence = Literal["standard", "derived", "reconstructed", "planted"]
"""``standard``: a textbook fact or a result reproduced in public code and checked here against a dense ground
truth; ``derived``: proved in this project (the proof is in the docstring); ``reconstructed``: the published
statement could not be read here and was recalled from secondary sources: the uncertain choices are parameters;
``planted``: a deliberately false statement the suite must falsify."""

KINDS: tuple[str, ...] = ("upper", "exact", "lower", "claim")
EXPECTS: tuple[str, ...] = ("holds", "falsified")
CONFIDENCES: tuple[str, ...] = ("standard", "derived", "reconstructed", "planted")
ENTRY_POINT_GROUP = "boundlab.bounds"

#: the norms (or distances) a value can be measured in; every record names one
NORMS: dict[str, str] = {
    "l2": "Euclidean norm of the flattened input and output (Frobenius norm for token matrices)",
    "linf": "l_inf norm of the flattened input and output (induced infinity-norms of the matrices)",
    "W2": "2-Wasserstein distance between the uniform measures on the input and output tokens",
    "bottleneck": "bottleneck distance between persistence diagrams, input clouds in the Euclidean norm",
    "wasserstein": "p-Wasserstein distance between persistence diagrams",
    "composite": "the composite (1, inf) quantity sqrt(||X||_1 ||X||_inf) of token matrices (not a norm)",
    "covering": "log covering number at scale eps in the norm the record's assumptions name",
    "count": "a count (heads, paths), no norm",
    "none": "a value or a qualitative statement without a norm",
}


def expectation_met(expect: str, falsified: bool) -> bool:
    """The one rule for "met its expectation": a ``holds`` statement was not falsified, a ``falsified`` one was."""
    return bool(falsified) == (expect == "falsified")


@dataclass(frozen=True)
class BoundValue:
    """What every registered evaluator returns.

    ``value`` is the number (for an upper bound: sound in float64, rounded outward); ``kind`` is the record's kind,
    or ``falsified`` for a statement known false; ``norm`` the norm it is measured in; ``bound`` the record's name;
    ``details`` the evaluator's rich result (a certificate, a solution, per-head terms), or ``None``.
    """

    value: float
    kind: str
    norm: str
    bound: str
    details: Any = None

    def __float__(self) -> float:
        return float(self.value)

    def as_dict(self) -> dict:
        d = {"bound": self.bound, "kind": self.kind, "norm": self.norm, "value": self.value}
        if self.details is not None:
            d["details"] = self.details.as_dict() if hasattr(self.details, "as_dict") else _plain(self.details)
        return d


def _plain(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (str, int, float, bool, type(None), np.floating, np.integer)):
        return x
    return repr(x)


@dataclass(frozen=True)
class TightFamily:
    """A construction that attains (or approaches) a bound, with its citation.

    ``construct(rng, **size)``, where present, draws one member as the bound's input type (the verification
    strategies draw from it, so that a bound scaled by 0.99 is caught); ``ratio`` says how close the family comes
    (1.0: attained; a smaller number: the best known ratio of witness to bound).
    """

    description: str
    citation: str = ""
    construct: Callable[..., Any] | None = None
    ratio: float = 1.0

    def as_dict(self) -> dict:
        return {"description": self.description, "citation": self.citation, "ratio": self.ratio,
                "constructible": self.construct is not None}


@dataclass(frozen=True)
class Mutant:
    """A plausible slip in a bound's formula (a dropped factor, a wrong exponent, n - 1 for n, the wrong norm).

    ``evaluate`` has the evaluator's signature and returns the mutated number, or a rich result of the evaluator's
    own type (so that properties reading ``details`` see the slip too). ``status`` is ``known_false`` (the
    mutated statement is false; ``witness`` says which input shows it, and the suite must catch it) or
    ``unknown`` (it may be true; catching it shows how tight the witnesses are, missing it proves nothing).
    """

    name: str
    evaluate: Callable[..., float]
    status: Literal["known_false", "unknown"] = "known_false"
    witness: str = ""

    def as_dict(self) -> dict:
        return {"name": self.name, "status": self.status, "witness": self.witness}


@dataclass(frozen=True)
class Bound:
    """One registered bound: the statement, where it comes from, and what its consumers need to use it."""

    name: str
    kind: Kind
    latex: str
    assumptions: tuple[str, ...]
    source: str
    confidence: Confidence
    norm: str
    evaluate: Callable[..., BoundValue] = field(repr=False, compare=False)
    expect: Expect = "holds"
    input_type: type | None = None
    applies: Callable[[Any], bool] | None = field(default=None, repr=False, compare=False)
    refutation: str = ""
    tight: TightFamily | None = None
    mutants: tuple[Mutant, ...] = ()
    function: str = ""
    covers: str = ""
    notes: str = ""
    tags: tuple[str, ...] = ()

    @property
    def reported_kind(self) -> str:
        """``falsified`` for a statement known false (it is never reported as a bound), else :attr:`kind`."""
        return "falsified" if self.expect == "falsified" else self.kind

    @property
    def planted(self) -> bool:
        return self.confidence == "planted"

    def met(self, falsified: bool) -> bool:
        """Did a verification run meet this record's expectation? (:func:`expectation_met`)"""
        return expectation_met(self.expect, falsified)

    def applies_to(self, layer: Any) -> bool:
        """True when ``layer`` is of this bound's input type and satisfies its assumptions (``applies``)."""
        if self.input_type is None or not isinstance(layer, self.input_type):
            return False
        return True if self.applies is None else bool(self.applies(layer))

    def mutant(self, name: str) -> Mutant:
        for m in self.mutants:
            if m.name == name:
                return m
        raise KeyError(f"mutant: {self.name} has no mutant {name!r}; known: {[m.name for m in self.mutants]}")

    def as_dict(self) -> dict:
        return {"name": self.name, "kind": self.kind, "reported_kind": self.reported_kind, "expect": self.expect,
                "latex": self.latex, "assumptions": list(self.assumptions), "source": self.source,
                "confidence": self.confidence, "norm": self.norm, "function": self.function,
                "input_type": self.input_type.__name__ if self.input_type is not None else None,
                "covers": self.covers, "notes": self.notes, "refutation": self.refutation,
                "tight": self.tight.as_dict() if self.tight else None,
                "mutants": [m.as_dict() for m in self.mutants], "tags": list(self.tags)}


_REGISTRY: dict[str, Bound] = {}
#: active mutants: bound name -> transform(args, kwargs, original BoundValue) -> mutated value
_ACTIVE: dict[str, Callable[[tuple, dict, BoundValue], float]] = {}

_MATH = re.compile(r"^[ \t]*\.\. math::[ \t]*(.*)$")


def docstring_math(fn: Callable) -> str | None:
    """The first ``.. math::`` block of ``fn``'s docstring, continuation lines joined (the record's LaTeX)."""
    doc = inspect.getdoc(fn) or ""
    lines = doc.splitlines()
    for i, line in enumerate(lines):
        m = _MATH.match(line)
        if not m:
            continue
        parts = [m.group(1).strip()] if m.group(1).strip() else []
        for cont in lines[i + 1:]:
            if not cont.strip():
                if parts:
                    break
                continue
            if not cont.startswith((" ", "\t")):
                break
            parts.append(cont.strip())
        text = " ".join(p for p in parts if p)
        return text.rstrip(" ,.") or None
    return None


def _as_value(raw: Any, extract: Callable[[Any], float] | None, name: str) -> tuple[float, Any]:
    if extract is not None:
        return float(extract(raw)), raw
    if isinstance(raw, BoundValue):
        return float(raw.value), raw.details
    if isinstance(raw, (numbers.Real, np.floating, np.integer)) and not isinstance(raw, bool):
        return float(raw), None
    raise TypeError(f"{name}: the evaluator returned {type(raw).__name__}; register it with value=<extractor>")


def register(
    name: str,
    *,
    kind: Kind,
    assumptions: tuple[str, ...] | list[str],
    source: str,
    confidence: Confidence,
    norm: str,
    expect: Expect = "holds",
    input_type: type | None = None,
    applies: Callable[[Any], bool] | None = None,
    refutation: str = "",
    tight: TightFamily | None = None,
    mutants: tuple[Mutant, ...] | list[Mutant] = (),
    value: Callable[[Any], float] | None = None,
    covers: str = "",
    notes: str = "",
    tags: tuple[str, ...] = (),
) -> Callable:
    """Decorator: register the decorated function as the evaluator of bound ``name``.

    The decorated function computes the bound (a float, or a rich result from which ``value`` extracts the
    number); what the decorator returns is the evaluator: it has the same signature and returns a
    :class:`BoundValue` (``details`` = the rich result). The record's LaTeX is the first ``.. math::`` block of the
    function's docstring. ``input_type`` + ``applies``: the validated layer type the bound takes and the test of
    its assumptions on such a layer (consumers list the bounds that apply to a layer with :func:`applicable`).
    """
    if kind not in KINDS:
        raise ValueError(f"kind: expected one of {KINDS}, got {kind!r}")
    if expect not in EXPECTS:
        raise ValueError(f"expect: expected one of {EXPECTS}, got {expect!r}")
    if confidence not in CONFIDENCES:
        raise ValueError(f"confidence: expected one of {CONFIDENCES}, got {confidence!r}")
    if norm not in NORMS:
        raise ValueError(f"norm: expected one of {sorted(NORMS)}, got {norm!r}")
    if expect == "falsified" and not refutation:
        raise ValueError(f"refutation: {name} is expected to be falsified; say which counterexample shows it")
    if (confidence == "planted") != name.startswith("planted."):
        raise ValueError(f"confidence: planted bounds are named planted.* and only they, got {name!r}")

    def deco(fn: Callable) -> Callable:
        qual = f"{fn.__module__}.{fn.__qualname__}"
        if name in _REGISTRY and _REGISTRY[name].function != qual:
            raise ValueError(f"name: bound {name!r} is registered twice ({_REGISTRY[name].function}, {qual})")
        latex = docstring_math(fn)
        if not latex:
            raise ValueError(f"{qual}: the docstring of a registered bound must state it in a '.. math::' block")
        holder: dict[str, Bound] = {}

        @functools.wraps(fn)
        def evaluator(*args, **kwargs) -> BoundValue:
            record = holder["record"]
            raw = fn(*args, **kwargs)
            val, details = _as_value(raw, value, name)
            out = BoundValue(val, record.reported_kind, record.norm, name, details)
            transform = _ACTIVE.get(name)
            if transform is not None:  # a mutant (boundlab mutate): a number, a BoundValue, or a raw result
                res = transform(args, kwargs, out)
                if isinstance(res, BoundValue):
                    out = res
                elif isinstance(res, (numbers.Real, np.floating, np.integer)) and not isinstance(res, bool):
                    out = replace(out, value=float(res))
                else:
                    val, det = _as_value(res, value, name)
                    out = replace(out, value=val, details=det)
            return out

        record = Bound(name=name, kind=kind, latex=latex, assumptions=tuple(assumptions), source=source,
                       confidence=confidence, norm=norm, evaluate=evaluator, expect=expect, input_type=input_type,
                       applies=applies, refutation=refutation, tight=tight, mutants=tuple(mutants), function=qual,
                       covers=covers, notes=notes, tags=tuple(tags))
        holder["record"] = record
        _REGISTRY[name] = record
        evaluator.bound = record  # type: ignore[attr-defined]
        evaluator.raw = fn  # type: ignore[attr-defined]
        return evaluator

    return deco


@contextlib.contextmanager
def mutated(name: str, transform: Callable[[tuple, dict, BoundValue], float]) -> Iterator[Bound]:
    """Within the block, bound ``name`` evaluates to ``transform(args, kwargs, original)`` (in process, no file
    edited): how ``boundlab mutate`` puts a mutant in place. ``transform`` returns the mutated number, a whole
    :class:`BoundValue`, or a raw result of the evaluator's type (its ``details`` then change too). Nested or
    concurrent use on one bound is an error."""
    record = get(name)
    if name in _ACTIVE:
        raise RuntimeError(f"mutant: {name} already has an active mutant")
    _ACTIVE[name] = transform
    try:
        yield record
    finally:
        _ACTIVE.pop(name, None)


def get(name: str) -> Bound:
    """The record of bound ``name``; raises ``KeyError`` naming the known bounds otherwise."""
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"name: unknown bound {name!r}; known: {sorted(_REGISTRY)}") from None


def all_bounds() -> list[Bound]:
    """Every registered bound (boundlab's and those of installed ``boundlab.bounds`` entry points), by name."""
    _load_all()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def applicable(layer: Any, *, include_planted: bool = False) -> list[Bound]:
    """The records whose input type and assumptions fit ``layer`` (planted bounds only on request)."""
    return [b for b in all_bounds() if b.applies_to(layer) and (include_planted or not b.planted)]


_LOADED: list[bool] = []


def _load_all() -> None:
    """Import every public topic module of :mod:`boundlab.theory` (their ``@register`` decorators run) and every
    module named by an installed ``boundlab.bounds`` entry point."""
    if _LOADED:
        return
    import pkgutil
    from importlib import metadata

    from . import __path__ as pkg_path

    _LOADED.append(True)
    for info in pkgutil.iter_modules(pkg_path):
        if not info.name.startswith("_") and info.name != "registry":
            importlib.import_module(f"{__package__}.{info.name}")
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        importlib.import_module(ep.value.split(":")[0])
