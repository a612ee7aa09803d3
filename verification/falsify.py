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
    is no larger than the first violating case met (Hypothesis shrank it). ``require_saved``: the shipped corpus
    must already hold a counterexample of ``name`` (checked before the search).
    """
    if require_saved:
        assert list((corpus.SHIPPED / name).glob("*.json")), f"the shipped counterexample of {name} is missing"
    phases = tuple(Phase) if shrink else (Phase.explicit, Phase.reuse, Phase.generate)
    search = settings(database=None, max_examples=max_examples, phases=phases, deadline=None)(
        given(case=strategy)(check))
    with pytest.raises(BoundViolation) as info:
        search()
    found = info.value
    if shrink and check_shrunk:
        rec = ledger.record(name, "falsified")
        assert rec.first_violation_size is not None
        assert found.case.size() <= rec.first_violation_size, "Hypothesis did not shrink the counterexample"
    path = corpus.save(name, found.case, {"lower": found.lower, "upper": found.upper})
    ledger.falsified(name, found.case, str(path))
    for case in corpus.load(name):  # replay: every saved counterexample must still falsify the statement
        with pytest.raises(BoundViolation):
            check(case)
    return found
