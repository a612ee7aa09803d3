"""pytest plugin of the verification suite: Hypothesis profiles, the ledger fixture, counterexample capture."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from . import corpus
from .ledger import BoundViolation, Ledger

settings.register_profile(
    "ci",
    max_examples=12,
    derandomize=True,
    deadline=None,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "campaign",  # many seeds of a mid-sized search: `boundlab verify --campaign --profile campaign --seeds 0,1,2`
    max_examples=100,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile(
    "thorough",
    max_examples=1000,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# --hypothesis-profile (Hypothesis' own pytest option) overrides this after conftest is loaded
settings.load_profile(os.environ.get("BOUNDLAB_PROFILE", "ci"))

_LEDGER = Ledger()


def pytest_addoption(parser):
    parser.addoption("--boundlab-json", default=os.environ.get("BOUNDLAB_JSON"),
                     help="write the verification summary (JSON) to this path")


@pytest.fixture(scope="session")
def ledger() -> Ledger:
    return _LEDGER


def _find_violation(exc) -> BoundViolation | None:
    if isinstance(exc, BoundViolation):
        return exc
    for sub in getattr(exc, "exceptions", ()) or ():
        found = _find_violation(sub)
        if found is not None:
            return found
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    yield
    if call.when != "call" or call.excinfo is None:
        return
    v = _find_violation(call.excinfo.value)
    if v is not None:  # a real bound was falsified: keep the shrunk counterexample for replay
        path = corpus.save(v.bound, v.case, {"lower": v.lower, "upper": v.upper, "test": item.nodeid})
        _LEDGER.falsified(v.bound, v.case, str(path))


def pytest_sessionfinish(session, exitstatus):
    path = session.config.getoption("--boundlab-json")
    if path and _LEDGER.records:
        profile = settings._current_profile  # noqa: SLF001 - the active profile name
        seed = session.config.getoption("hypothesis_seed", None)
        if seed is None and settings.default.derandomize:
            seed = "derandomized (fixed per test)"
        _LEDGER.write(path, profile=profile, seed=seed)
