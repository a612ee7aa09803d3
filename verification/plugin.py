"""pytest plugin of the verification suite (entry point ``pytest11: boundlab``): Hypothesis profiles, the ledger
fixture, counterexample capture, the JSON summary, and the property modules of other packages.

A package that adds bounds (entry point group ``boundlab.bounds``) adds their properties with the group
``boundlab.properties`` (a module of :func:`~boundlab.verification.properties.bound_property` tests): whenever this
suite's folder is collected, those modules are collected too (``--no-boundlab-external`` leaves them out), so
``boundlab verify`` and ``pytest verification/`` run them without editing boundlab (docs/extending.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

from . import corpus
from .ledger import BoundViolation, Ledger
from ..io.results import git_commit
from ..io.seeds import commit_seed

#: examples per property search in the default (ci) profile
CI_EXAMPLES = 50

settings.register_profile(
    "ci",  # the default run: CI_EXAMPLES examples, seeded from the commit (ci_seed), new ground at each commit
    max_examples=CI_EXAMPLES,
    derandomize=False,
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
#: the Hypothesis seed of this session (set in pytest_configure): --hypothesis-seed, BOUNDLAB_SEED, or the commit's
_SEED: dict[str, object] = {"seed": None, "source": None}




def pytest_addoption(parser):
    parser.addoption("--boundlab-json", default=os.environ.get("BOUNDLAB_JSON"),
                     help="write the verification summary (JSON) to this path")
    parser.addoption("--boundlab-progress", action="store_true", default=False,
                     help="one plain line per finished property: bound, examples, worst ratio, seconds, outcome")
    parser.addoption("--no-boundlab-external", action="store_true", default=False,
                     help="do not collect the property modules of installed boundlab.properties entry points")


def external_property_files() -> list[str]:
    """The files of the modules named by installed ``boundlab.properties`` entry points."""
    import importlib.util
    from importlib import metadata

    out = []
    for ep in metadata.entry_points(group="boundlab.properties"):
        spec = importlib.util.find_spec(ep.value.split(":")[0])
        if spec is None or not spec.origin:
            raise pytest.UsageError(f"boundlab.properties entry point {ep.name!r}: module {ep.value!r} not found")
        out.append(spec.origin)
    return out


@pytest.hookimpl(trylast=True)
def pytest_configure(config):
    """Seed Hypothesis (after its own plugin read --hypothesis-seed): an explicit --hypothesis-seed wins, then the
    environment variable BOUNDLAB_SEED, then :func:`boundlab.io.seeds.commit_seed` of the checked-out commit. Derandomized profiles keep
    their fixed per-test seeds (no global seed is forced)."""
    import hypothesis.core as hcore

    _CONFIG["config"] = config
    _torch_threads(config)

    given = config.getoption("hypothesis_seed", None)
    if given is not None:
        _SEED.update(seed=int(given) if str(given).isdigit() else given, source="--hypothesis-seed")
    elif settings.default.derandomize:
        _SEED.update(seed="derandomized (fixed per test)", source="profile")
    else:
        env = os.environ.get("BOUNDLAB_SEED")
        if env is not None:
            try:
                seed, source = int(env), "BOUNDLAB_SEED"
            except ValueError:
                raise pytest.UsageError(f"BOUNDLAB_SEED: expected an integer, got {env!r}") from None
        else:
            commit = git_commit(Path(__file__).resolve().parent)
            seed, source = commit_seed(commit), f"commit {commit}" if commit else "no git checkout (0)"
        hcore.global_force_seed = seed
        _SEED.update(seed=seed, source=source)
    _collect_external(config)


def _torch_threads(config) -> None:
    """One torch thread for the test run (``BOUNDLAB_TORCH_THREADS`` overrides; benchmark runs are left alone).

    The properties evaluate thousands of tiny operators (a 6 x 6 convolution, a 5-token attention): with two
    intra-op threads each call pays a thread hand-off, and on a loaded 2-core machine the spinning workers made a
    3 x 3 conv2d cost 30 ms instead of 0.03 ms (measured: test_conv_relu_conv_product 276 s, 6734 conv2d calls)."""
    if any("benchmarks" in Path(str(a)).parts for a in config.args):
        return
    threads = os.environ.get("BOUNDLAB_TORCH_THREADS", "1")
    try:
        n = int(threads)
    except ValueError:
        raise pytest.UsageError(f"BOUNDLAB_TORCH_THREADS: expected an integer, got {threads!r}") from None
    if n > 0:
        import torch

        torch.set_num_threads(n)


def pytest_report_header(config):
    return f"boundlab: Hypothesis profile {settings._current_profile}, seed {_SEED['seed']} ({_SEED['source']})"  # noqa: SLF001


def _collect_external(config):
    if config.getoption("--no-boundlab-external"):
        return
    here = Path(__file__).resolve().parent
    args = [Path(str(a).split("::")[0]).resolve() for a in config.args]
    if any(a == here or here in a.parents for a in args):
        known = {str(a) for a in args}
        config.args.extend(f for f in external_property_files() if str(Path(f).resolve()) not in known)


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
    outcome = yield
    if call.when != "call" or call.excinfo is None:
        return
    v = _find_violation(call.excinfo.value)
    if v is not None:  # a real bound was falsified: keep the shrunk counterexample for replay
        path = corpus.save(v.bound, v.case, {"lower": v.lower, "upper": v.upper, "test": item.nodeid})
        _LEDGER.falsified(v.bound, v.case, str(path))
        report = outcome.get_result()
        seed = _SEED["seed"]
        replay = f"python -m pytest '{item.nodeid}'" + (f" --hypothesis-seed={seed}" if isinstance(seed, int) else "")
        report.sections.append(("boundlab", f"{v.bound} falsified; shrunk counterexample saved to {path} "
                                            f"(replayed first by every later run)\nreplay the search: {replay}"))


def pytest_sessionfinish(session, exitstatus):
    path = session.config.getoption("--boundlab-json")
    if path and _LEDGER.records:
        profile = settings._current_profile  # noqa: SLF001 - the active profile name
        _LEDGER.write(path, profile=profile, seed=_SEED["seed"], extra={"seed_source": _SEED["source"]})


_DONE = {"n": 0}
_CONFIG: dict = {}


def pytest_runtest_logreport(report):
    """With ``--boundlab-progress``: a plain line per finished test (what ``boundlab verify`` shows outside a
    terminal instead of minutes of dots), naming the bounds its property checked and their ledger numbers."""
    config = _CONFIG.get("config")
    if config is None or not config.getoption("--boundlab-progress") or report.when != "call":
        return
    _DONE["n"] += 1
    from .properties import PROPERTIES

    name = report.nodeid.split("::")[-1].split("[")[0]
    module = report.nodeid.split("::")[0].rsplit("/", 1)[-1].removesuffix(".py")
    prop = PROPERTIES.get(f"{module}::{name}")
    parts = []
    if prop is not None:
        for rec in (prop.bound, *prop.also):
            led = _LEDGER.records.get(rec.name)
            if led is not None:
                ratio = led.worst_ratio if led.worst_ratio > float("-inf") else None
                parts.append(f"{rec.name}: {led.examples} examples" + (f", worst ratio {ratio:.4g}" if ratio else ""))
    total = _CONFIG.get("total") or "?"
    line = (f"[{_DONE['n']}/{total}] {report.nodeid} {report.outcome} in {report.duration:.1f} s"
            + (f" ({'; '.join(parts)})" if parts else ""))
    tr = config.pluginmanager.get_plugin("terminalreporter")
    if tr is not None:
        if getattr(tr._tw, "width_of_current_line", 0):  # noqa: SLF001 - after pytest's progress dot
            tr.write("\n")
        tr.write_line(line)
    else:
        print(line, flush=True)


def pytest_collection_modifyitems(config, items):
    """Tests marked ``slow`` (long campaigns, end-to-end runs in fresh environments) are skipped in the default run
    unless selected by a marker expression naming ``slow`` (``-m slow``) or ``BOUNDLAB_SLOW=1``."""
    expr = config.getoption("markexpr", "") or ""
    if os.environ.get("BOUNDLAB_SLOW") or ("slow" in expr and "not slow" not in expr):
        return
    skip = pytest.mark.skip(reason="slow: run with -m slow or BOUNDLAB_SLOW=1")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def pytest_collection_finish(session):
    _CONFIG["total"] = len(session.items)  # after -k deselection
