"""The one way a property is declared: :func:`bound_property` binds a bound's *record*, its strategy and tolerance.

::

    @bound_property(C.kernel_matrix_bound, cases=conv_cases(), rtol=1e-9)
    def test_kernel_matrix(check, case):
        check.upper(conv_operator_norm(case.layer), check.bound(case.layer))

* ``check.bound(...)`` evaluates the bound *through its record* (so a mutant put in place by ``boundlab mutate``
  is what the property sees), returning a :class:`~boundlab.theory.registry.BoundValue`;
* ``check.upper(lower, bound)`` compares a witness with the bound (``empirical<=bound``), ``check.claim`` the two
  sides of a claim, ``check.exact(value, truth)`` an exact value with a ground truth, ``check.order(small, large)``
  two bounds (an ordering: recorded, never a witness ratio). Each records the observation in the ledger with
  what it compared and raises :class:`~boundlab.verification.ledger.BoundViolation` when it fails.

The decorator returns the pytest test. For ``expect="holds"`` it is a Hypothesis property over ``cases`` (every
saved counterexample of the bound is replayed first); for ``expect="falsified"`` it is routed to
:func:`~boundlab.verification.falsify.must_falsify` (a fresh search must break the statement, shrink, save and
replay). Every declared property is kept in :data:`PROPERTIES`, which the "every bound has a property" test and
``boundlab mutate`` iterate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
from hypothesis import given

from boundlab.theory.registry import Bound, BoundValue

from . import corpus
from .cases import Case
from .falsify import must_falsify

__all__ = ["Property", "PROPERTIES", "Check", "bound_property", "properties_of", "load_property_modules"]


@dataclass(frozen=True)
class Property:
    """One declared property: the record it tests, its strategy, its check and tolerance."""

    bound: Bound
    name: str
    module: str
    cases: Any = field(repr=False)
    check: Callable = field(repr=False)
    rtol: float = 1e-9
    falsify: dict = field(default_factory=dict)
    replay: tuple[str, ...] = ()
    also: tuple[Bound, ...] = ()

    def tests(self, name: str) -> bool:
        """Does this property check bound ``name`` (its own record or one it declares in ``also``)?"""
        return self.bound.name == name or any(b.name == name for b in self.also)

    @property
    def key(self) -> str:
        return f"{self.module.rpartition('.')[2]}::{self.name}"

    def run_case(self, ledger, case: Case, expect: str | None = None) -> None:
        """Run the check on one case (raises :class:`BoundViolation` when a comparison fails)."""
        self.check(Check(ledger, self, case, expect), case)


#: every declared property, keyed by ``module_basename::test_name`` (a module imported twice registers once)
PROPERTIES: dict[str, Property] = {}


def _record(bound) -> Bound:
    if isinstance(bound, Bound):
        return bound
    rec = getattr(bound, "bound", None)
    if not isinstance(rec, Bound):
        raise TypeError(f"bound_property: expected a registered evaluator or a Bound record, got {bound!r}")
    return rec


class Check:
    """What a property's check function receives: the bound under test and the ledger comparisons."""

    def __init__(self, ledger, prop: Property, case: Case, expect: str | None = None, record: Bound | None = None):
        self.ledger, self.prop, self.case = ledger, prop, case
        self.record = record or prop.bound
        self.expect = expect or self.record.expect
        self.name = self.record.name

    def bound(self, *args, **kwargs) -> BoundValue:
        """Evaluate the bound under test through its record (mutants in place are what this returns)."""
        return self.record.evaluate(*args, **kwargs)

    def of(self, other) -> "Check":
        """The check of another record this property declared in ``also`` (e.g. m* beside a convex program)."""
        rec = _record(other)
        if rec not in self.prop.also:
            raise ValueError(f"{self.prop.key}: {rec.name} is not declared in also=")
        return Check(self.ledger, self.prop, self.case, None, rec)

    def lower(self, bound, witness, *, rtol: float | None = None, **extra) -> float:
        """A lower bound (a certified optimum) against a witness above it (an attained objective):
        ``bound <= witness * (1 + rtol)``."""
        return self.ledger.check_upper(self.name, self._num(bound), self._num(witness), self.case,
                                       rtol=self.prop.rtol if rtol is None else rtol, compares="bound<=empirical",
                                       expect=self.expect, **extra)

    @staticmethod
    def _num(x) -> float:
        return float(x.value) if isinstance(x, BoundValue) else float(x)

    def upper(self, lower, bound, *, rtol: float | None = None, **extra) -> float:
        """A witness (an empirical lower bound) against the bound: ``lower <= bound * (1 + rtol)``."""
        return self.ledger.check_upper(self.name, self._num(lower), self._num(bound), self.case,
                                       rtol=self.prop.rtol if rtol is None else rtol, compares="empirical<=bound",
                                       expect=self.expect, **extra)

    def claim(self, lower, upper, *, rtol: float | None = None, **extra) -> float:
        """The two sides of a claim: the measured side ``lower`` must not exceed the claimed side ``upper``."""
        return self.ledger.check_upper(self.name, self._num(lower), self._num(upper), self.case,
                                       rtol=self.prop.rtol if rtol is None else rtol, compares="claim",
                                       expect=self.expect, **extra)

    def order(self, smaller, larger, *, rtol: float, what: str, **extra) -> float:
        """An ordering between two bounds (``smaller <= larger * (1 + rtol)``): recorded, never a witness ratio."""
        return self.ledger.check_upper(self.name, self._num(smaller), self._num(larger), self.case, rtol=rtol,
                                       compares="bound<=bound", expect=self.expect, comparison=what, **extra)

    def exact(self, value, truth, *, rtol: float | None = None, **extra) -> float:
        """An exact value against a ground truth: relative gap at most ``rtol``."""
        v = value
        if isinstance(value, BoundValue):  # an exact result with all its values (a spectrum) compares them all
            v = value.details if isinstance(value.details, np.ndarray) else value.value
        return self.ledger.check_exact(self.name, v, truth, self.case,
                                       rtol=self.prop.rtol if rtol is None else rtol, expect=self.expect, **extra)


def bound_property(bound, *, cases, rtol: float = 1e-9, replay: tuple[str, ...] = (), also: tuple = (),
                   max_examples: int = 200, shrink: bool = True, check_shrunk: bool = True,
                   require_saved: bool = False):
    """Declare a property of ``bound`` (a registered evaluator or its :class:`Bound`) over the strategy ``cases``.

    ``rtol``: the tolerance of ``check.upper``/``check.claim``/``check.exact``. ``replay``: other bounds whose
    saved counterexamples are replayed too. ``also``: other records this property checks as well (through
    ``check.of(record)``), so that it counts as their property. For a bound with ``expect="falsified"``: ``max_examples``, ``shrink``,
    ``check_shrunk`` and ``require_saved`` are :func:`must_falsify`'s options.
    """
    record = _record(bound)

    def deco(check: Callable) -> Callable:
        prop = Property(record, check.__name__, check.__module__, cases, check, rtol,
                        {"max_examples": max_examples, "shrink": shrink, "check_shrunk": check_shrunk,
                         "require_saved": require_saved}, tuple(replay), tuple(_record(b) for b in also))
        PROPERTIES.setdefault(prop.key, prop)
        if record.expect == "falsified":
            def test(ledger):
                must_falsify(ledger, record.name, cases, lambda case: prop.run_case(ledger, case, "falsified"),
                             **prop.falsify)
        else:
            def test(ledger, case):
                prop.run_case(ledger, case)

            test = given(case=cases)(test)
            for name in (*reversed(replay), record.name):
                test = corpus.replay(name)(test)
        test.__name__ = check.__name__
        test.__qualname__ = check.__qualname__
        test.__doc__ = check.__doc__
        test.__module__ = check.__module__
        test.property = prop  # type: ignore[attr-defined]
        return test

    return deco


def properties_of(name: str) -> list[Property]:
    """The declared properties of bound ``name`` (after :func:`load_property_modules`)."""
    return [p for p in PROPERTIES.values() if p.tests(name)]


def load_property_modules() -> list[str]:
    """Import every ``test_*`` module of the verification suite and every module named by an installed
    ``boundlab.properties`` entry point, so that :data:`PROPERTIES` is complete; returns the module names."""
    import importlib
    import pkgutil
    from importlib import metadata

    from boundlab import verification

    names = [f"{verification.__name__}.{m.name}" for m in pkgutil.iter_modules(verification.__path__)
             if m.name.startswith("test_")]
    names += [ep.value.split(":")[0] for ep in metadata.entry_points(group="boundlab.properties")]
    for n in names:
        importlib.import_module(n)
    return names
