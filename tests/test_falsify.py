"""The expected-falsification helper has teeth of its own: a statement that holds must make it fail, and a saved
counterexample that no longer violates must make the replay fail."""

import pytest
from hypothesis import strategies as st

from boundlab.verification.cases import Case
from boundlab.verification.falsify import must_falsify
from boundlab.verification.ledger import Ledger

CASES = st.integers(0, 50).map(lambda k: Case({"k": k}))


def test_a_true_statement_is_not_reported_falsified(tmp_path, monkeypatch):
    monkeypatch.setenv("BOUNDLAB_CORPUS", str(tmp_path))
    ledger = Ledger()

    def holds(case):  # k <= 100 for every drawn k: never violated
        ledger.check_upper("planted.never", case["k"], 100.0, case, rtol=0.0, expect="falsified")

    with pytest.raises(pytest.fail.Exception):
        must_falsify(ledger, "planted.never", CASES, holds, max_examples=30)


def test_a_false_statement_is_found_shrunk_saved_and_replayed(tmp_path, monkeypatch):
    monkeypatch.setenv("BOUNDLAB_CORPUS", str(tmp_path))
    ledger = Ledger()

    def fails_above_10(case):
        ledger.check_upper("planted.ten", case["k"], 10.0, case, rtol=0.0, expect="falsified")

    found = must_falsify(ledger, "planted.ten", CASES, fails_above_10, max_examples=100)
    assert found.case["k"] == 11  # shrunk to the smallest violation
    assert list((tmp_path / "planted.ten").glob("*.json"))
    with pytest.raises(AssertionError, match="shipped counterexample"):
        must_falsify(ledger, "planted.ten", CASES, fails_above_10, require_saved=True)  # not in the shipped corpus
