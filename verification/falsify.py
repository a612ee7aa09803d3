"""Expected falsifications: a fresh Hypothesis search must break a statement, and every saved case must still break it.

Used for planted false bounds (the suite's teeth) and for documented findings (a published or reconstructed
statement that fails in some regime). :func:`must_falsify` runs ``check`` over ``strategy`` with no example database
and passes only if a :class:`~verification.ledger.BoundViolation` is raised; the counterexample is saved to the
corpus and recorded in the ledger, then every saved case of ``name`` is replayed and must violate again.
"""

from __future__ import annotations

import pytest
from hypothesis import Phase, given, settings

from . import corpus
from .ledger import BoundViolation


def must_falsify(ledger, name: str, strategy, check, *, max_examples: int = 200, shrink: bool = True,
                 check_shrunk: bool = True, require_saved: bool = False) -> BoundViolation:
    """Search for a violation of ``name`` with ``check(case)`` (which calls ``ledger.check_upper(..., expect=
    "falsified")``); returns the violation found.

    ``shrink=False`` keeps the first falsifying case (for searches whose examples cost seconds; the shipped corpus
    then holds a case shrunk by an earlier run, which is replayed). ``check_shrunk``: assert that the reported case
    is no larger than the largest violating case met in the search (Hypothesis shrank it; its order is not
    Case.size, so the first violation met can be smaller than the shrunk one). ``require_saved``: the shipped corpus
    must already hold a counterexample of ``name`` (checked before the search).
    """
    if require_saved:
        assert list((corpus.SHIPPED / name).glob("*.json")), f"the shipped counterexample of {name} is missing"
    phases = tuple(Phase) if shrink else (Phase.explicit, Phase.reuse, Phase.generate)
    met: list[int] = []  # sizes of the violating cases of this search, in the order met

    def tracked(case):
        try:
            check(case)
        except BoundViolation:
            met.append(case.size())
            raise

    search = settings(database=None, max_examples=max_examples, phases=phases, deadline=None)(
        given(case=strategy)(tracked))
    with pytest.raises(BoundViolation) as info:
        search()
    found = info.value
    if shrink and check_shrunk:
        # Hypothesis shrinks in its own order (shortlex on the choices, not Case.size: measured, a first violation
        # with 10 x 1 points shrank to 5 x 4, fewer points first), so the reported case is compared with the
        # largest violating case the search met; a search that reports an unshrunk or foreign case still fails
        rec = ledger.record(name, "falsified")
        assert rec.first_violation_size is not None and met
        assert found.case.size() <= max(met), "Hypothesis did not shrink the counterexample"
    path = corpus.save(name, found.case, {"lower": found.lower, "upper": found.upper})
    ledger.falsified(name, found.case, str(path))
    for case in corpus.load(name):  # replay: every saved counterexample must still falsify the statement
        with pytest.raises(BoundViolation):
            check(case)
    return found
