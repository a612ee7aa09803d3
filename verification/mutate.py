r"""Mutation analysis: how wrong would a bound have to be before the suite catches it?

For a registered bound, a *mutant* is a wrong version of it put in place in process, through the registry
(:func:`boundlab.theory.registry.mutated`: no file is edited). The bound's declared properties
(:data:`~boundlab.verification.properties.PROPERTIES`) then run against it exactly as in ``boundlab verify``: its
saved counterexamples first, then a Hypothesis search under the chosen profile. The mutant is *caught* when a
property fails (a :class:`~boundlab.verification.ledger.BoundViolation`, shrunk by Hypothesis).

Mutants come from the record:

* generic scalings: an upper bound times :math:`1-\varepsilon` for :math:`\varepsilon\in\{0.5, 0.1, 0.01\}`
  (``x0.5``, ``x0.9``, ``x0.99``); an exact value times :math:`1\pm0.01`. A scaled upper bound is known to be
  false only when the record's tight family reaches a ratio above :math:`1-\varepsilon`; otherwise it is
  ``unknown`` (catching it says the witnesses are that close, missing it proves nothing);
* the formula mutants declared on the record (:class:`boundlab.theory.registry.Mutant`: a dropped factor, a wrong
  exponent, n - 1 for n, the wrong norm), each ``known_false`` with its witness, or ``unknown``.

Each (bound, mutant) is one executor unit (in process, local Dask or a cluster) whose result file records the
verdict, the failing property, the shrunk counterexample and the ledger summary of the run.
"""

from __future__ import annotations

import math
import time
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, Phase, given, settings

from boundlab.io.executor import Unit, commit_result, unit_key
from boundlab.io.results import config_hash, file_digest, git_commit, metadata_block, read_json, write_json
from boundlab.io.seeds import commit_seed
from boundlab.theory.registry import Bound, all_bounds, get, mutated

from . import corpus
from .ledger import BoundViolation, Ledger
from .properties import load_property_modules, properties_of

__all__ = ["MutantSpec", "DEFAULT_FACTORS", "mutants_of", "run_mutant", "mutation_units", "summarise",
           "mutate_unit"]

#: the generic scalings of an upper bound: value * factor
DEFAULT_FACTORS = (0.5, 0.9, 0.99)
#: the generic perturbations of an exact value
EXACT_FACTORS = (0.99, 1.01)


@dataclass(frozen=True)
class MutantSpec:
    """One mutant of one bound: ``kind`` is ``generic`` (value * ``factor``) or ``formula`` (declared)."""

    bound: str
    name: str
    kind: str
    falsity: str  # "known_false" or "unknown" (a result file's "status" is the executor's "finished")
    witness: str
    factor: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _generic_status(record: Bound, factor: float) -> tuple[str, str]:
    if record.kind == "exact":
        return "known_false", "an exact value perturbed by 1% (any non-zero value shows it)"
    tight = record.tight
    # a lower bound's tight ratio is bound / truth, so bound / f exceeds the truth where ratio > f, as for upper
    if tight is not None and tight.ratio > factor:
        return "known_false", f"the tight family reaches ratio {tight.ratio:g} > {factor:g}: {tight.description}"
    return "unknown", ("no tight family known" if tight is None else
                       f"the tight family reaches only ratio {tight.ratio:g}: {tight.description}")


def mutants_of(record: Bound, factors=DEFAULT_FACTORS, formula: bool = True) -> list[MutantSpec]:
    """The mutants of ``record``: generic scalings (upper: ``factors``; exact: x0.99, x1.01) and, with
    ``formula``, its declared formula mutants. A statement known to be false has none (it is already caught)."""
    if record.expect == "falsified":
        return []
    out = []
    if record.kind == "upper":
        out += [MutantSpec(record.name, f"x{f:g}", "generic", *_generic_status(record, f), f) for f in factors]
    elif record.kind == "exact":
        out += [MutantSpec(record.name, f"x{f:g}", "generic", *_generic_status(record, f), f) for f in EXACT_FACTORS]
    elif record.kind == "lower":  # a lower bound errs upwards: x(1/f)
        out += [MutantSpec(record.name, f"x{1 / f:.4g}", "generic", *_generic_status(record, f), 1 / f)
                for f in factors]
    if formula:
        out += [MutantSpec(record.name, m.name, "formula", m.status, m.witness) for m in record.mutants]
    return out


def _transform(record: Bound, spec: MutantSpec):
    if spec.kind == "generic":
        def scaled(args, kwargs, original):
            details = original.details
            if isinstance(details, np.ndarray):  # an exact result with all its values: scale them all
                details = details * spec.factor
            return replace(original, value=original.value * spec.factor, details=details)

        return scaled
    mutant = record.mutant(spec.name)
    return lambda args, kwargs, original: mutant.evaluate(*args, **kwargs)


def _profile_settings(profile: str, max_examples: int | None):
    base = settings.get_profile(profile)
    return settings(base, database=None, max_examples=max_examples or base.max_examples, deadline=None,
                    phases=(Phase.explicit, Phase.generate, Phase.shrink), print_blob=False,
                    suppress_health_check=list(HealthCheck))


def _leading(grp: BaseExceptionGroup) -> BaseException:
    """The first :class:`BoundViolation` among a group's leaves, else the first AssertionError, else the group."""
    leaves, stack = [], [grp]
    while stack:
        e = stack.pop(0)
        if isinstance(e, BaseExceptionGroup):
            stack[:0] = list(e.exceptions)
        else:
            leaves.append(e)
    for kind in (BoundViolation, AssertionError):
        for e in leaves:
            if isinstance(e, kind):
                return e
    return grp


def search_properties(bound: str, *, profile: str = "ci", max_examples: int | None = None,
                      seed: int | None = None) -> dict:
    """Run every property of ``bound`` as ``boundlab verify`` would (saved counterexamples first, then a fresh
    search under ``profile``) and stop at the first failure; whatever is in place (a mutant, a monkeypatched
    helper) is what is tested. Returns ``caught``, ``property``, ``counterexample`` (the shrunk case's summary),
    ``case`` (the :class:`Case`, not serialisable), ``detail``, ``error``, ``properties``, ``seconds``, ``ledger``."""
    load_property_modules()
    props = properties_of(bound)
    ledger = Ledger()
    doc = {"caught": False, "property": None, "counterexample": None, "case": None, "detail": None, "error": None,
           "properties": [p.key for p in props], "profile": profile}
    start = time.perf_counter()
    if not props:
        doc["error"] = "no property declared for this bound"
    run_settings = _profile_settings(profile, max_examples)
    for prop in props:
        try:
            try:
                for name in (prop.bound.name, *prop.replay):  # saved counterexamples first (as in verify)
                    for case in corpus.load(name):
                        prop.run_case(ledger, case)
                search = run_settings(given(case=prop.cases)(_runner(prop, ledger)))
                if seed is not None:
                    from hypothesis import seed as hseed

                    search = hseed(seed)(search)
                search()
            except BaseExceptionGroup as grp:  # Hypothesis found several distinct failures: the most telling one
                raise _leading(grp) from grp
        except BoundViolation as v:
            doc.update(caught=True, property=prop.key, counterexample=v.case.summary(), case=v.case,
                       detail=str(v).splitlines()[0])
            break
        except AssertionError as exc:  # a property's own assertion on the mutated value
            first = (str(exc).splitlines() or ["(no message)"])[0]  # a bare `assert x` has an empty message
            doc.update(caught=True, property=prop.key, detail=f"assertion: {first[:300]}")
            break
        except Exception as exc:  # noqa: BLE001 - reported, never silently counted as caught
            doc["error"] = f"{prop.key}: {type(exc).__name__}: {str(exc)[:300]}"
            doc["traceback"] = traceback.format_exc(limit=4)
            break
    doc["seconds"] = time.perf_counter() - start
    doc["ledger"] = [r.summary(None) for r in ledger.records.values()]
    return doc


def run_mutant(bound: str, mutant: str, *, profile: str = "ci", max_examples: int | None = None,
               seed: int | None = None, corpus_root: str | Path | None = None) -> dict:
    """Run every property of ``bound`` with ``mutant`` in place; returns the verdict document (not written).

    ``caught``: a property failed; ``property``, ``counterexample``: the first that failed and its shrunk case,
    saved under ``corpus_root`` (``corpus``: the path; ``None``: not saved) so that a later ``verify`` with that
    corpus replays it against the true bound; ``error``: an exception that is not a failed comparison (reported,
    counted as not caught)."""
    load_property_modules()
    record = get(bound)
    spec = next((m for m in mutants_of(record, factors=_factors_for(mutant, record.kind)) if m.name == mutant), None)
    if spec is None:
        raise KeyError(f"mutant: {bound} has no mutant {mutant!r}; known: {[m.name for m in mutants_of(record)]}")
    with mutated(bound, _transform(record, spec)):
        found = search_properties(bound, profile=profile, max_examples=max_examples, seed=seed)
    case = found.pop("case")
    doc = {**spec.as_dict(), **found, "corpus": None}
    if case is not None and corpus_root is not None:
        doc["corpus"] = str(corpus.save(bound, case, {"mutant": mutant, "property": found["property"],
                                                      "detail": found["detail"]}, root=corpus_root))
    return doc


def _runner(prop, ledger):
    def run(case):
        prop.run_case(ledger, case)

    return run


def _factors_for(name: str, kind: str = "upper") -> tuple[float, ...]:
    if name.startswith("x"):
        try:
            f = float(name[1:])
            return (1 / f,) if kind == "lower" else (f,)
        except ValueError:
            pass
    return DEFAULT_FACTORS


def mutate_unit(bound: str, mutant: str, result_path: str, profile: str, max_examples: int | None,
                seed: int | None, corpus_root: str | None = None) -> dict:
    """One (bound, mutant) as an executor unit: runs :func:`run_mutant` and commits its result file."""
    doc = run_mutant(bound, mutant, profile=profile, max_examples=max_examples, seed=seed, corpus_root=corpus_root)
    commit_result(result_path, {**metadata_block({"bound": bound, "mutant": mutant, "profile": profile,
                                                  "max_examples": max_examples}, seed), **doc})
    return {"bound": bound, "mutant": mutant, "caught": doc["caught"], "seconds": doc["seconds"]}


def code_digest(record: Bound) -> str:
    """sha256 over the source files a mutant's verdict depends on: the modules of the bound's evaluator and of its
    properties (with the strategies and helpers beside them: every ``.py`` of their folders). A unit whose code
    changed is a new unit, so a rerun into the same folder never reuses a verdict of other code."""
    import inspect
    import sys

    files = set()
    modules = {getattr(record.evaluate, "__module__", None)}
    modules |= {p.module for p in properties_of(record.name)}
    for name in filter(None, modules):
        src = getattr(sys.modules.get(name), "__file__", None)
        if src:
            files |= set(Path(src).parent.glob("*.py"))
    src = inspect.getsourcefile(Ledger)  # the comparison rules themselves
    if src:
        files |= set(Path(src).parent.glob("*.py"))
    return config_hash({f"{f.parent.name}/{f.name}": file_digest(f) for f in sorted(files)})


def mutation_units(out_dir, bounds=None, factors=DEFAULT_FACTORS, profile: str = "ci",
                   max_examples: int | None = None, seed: int | None = None, formula: bool = True,
                   corpus_root: str | Path | None = None) -> list[Unit]:
    """The executor units of a mutation analysis of ``bounds`` (default: every registered bound); the shrunk
    counterexample of each caught mutant goes to ``corpus_root`` (default ``OUT/mutate/corpus``)."""
    corpus_root = str(Path(corpus_root) if corpus_root is not None else Path(out_dir) / "mutate" / "corpus")
    records = [get(b) for b in bounds] if bounds else all_bounds()
    if seed is None:  # the ci profile's seed of this commit: a rerun of the analysis on a commit is the same run
        seed = commit_seed(git_commit())
    load_property_modules()
    code = {rec.name: code_digest(rec) for rec in records}
    units = []
    for rec in records:
        for spec in mutants_of(rec, factors, formula):
            cfg = {"bound": rec.name, "mutant": spec.name, "profile": profile, "max_examples": max_examples,
                   "seed": seed, "code": code[rec.name]}
            key = unit_key(f"{rec.name}:{spec.name}", cfg)
            path = Path(out_dir) / "mutate" / rec.name / f"{key.rpartition('-')[2]}-{_slug(spec.name)}.json"
            units.append(Unit(key, mutate_unit, {"bound": rec.name, "mutant": spec.name, "result_path": str(path),
                                                 "profile": profile, "max_examples": max_examples, "seed": seed,
                                                 "corpus_root": corpus_root}, str(path)))
    return units


def _slug(name: str) -> str:
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:60]


def summarise(units: list[Unit], out_dir, config: dict) -> dict:
    """The summary document (written to ``OUT/mutate/summary.json``) of every mutant analysed in ``out_dir``:
    this run's units and those of earlier runs into the same folder (``boundlab mutate --bound A`` then
    ``--bound B`` add up), the newest result per (bound, mutant); ``this_run`` marks the rows of ``units``."""
    ours = {str(Path(u.result_path).resolve()) for u in units}
    latest: dict[tuple[str, str], tuple[str, dict]] = {}
    root = Path(out_dir) / "mutate"
    for path in sorted(root.glob("*/*.json")):
        if path.parent.name == "corpus":
            continue
        try:
            r = read_json(path)
        except Exception:  # noqa: BLE001 - a foreign or broken file in the folder is skipped, not fatal
            continue
        if not isinstance(r, dict) or "bound" not in r or "caught" not in r:
            continue
        r = {**r, "this_run": str(path.resolve()) in ours}
        key = (r["bound"], r["name"])
        rank = (r["this_run"], r.get("created", ""))
        if key not in latest or rank > latest[key][0]:
            latest[key] = (rank, r)
    rows = [r for _, r in sorted(latest.values(), key=lambda t: (t[1]["bound"], t[1]["name"]))]
    per_bound: dict[str, dict] = {}
    for r in rows:
        b = per_bound.setdefault(r["bound"], {"bound": r["bound"], "mutants": 0, "caught": 0, "known_false": 0,
                                              "known_false_caught": 0, "smallest_eps_caught": None, "errors": 0,
                                              "witness_ratio": None})
        b["mutants"] += 1
        b["caught"] += bool(r["caught"])
        b["errors"] += bool(r.get("error"))
        if r["falsity"] == "known_false":
            b["known_false"] += 1
            b["known_false_caught"] += bool(r["caught"])
        if r["kind"] == "generic" and r["factor"]:  # the ratio the same witnesses reach against the true bound
            for led in r.get("ledger") or ():
                w = led.get("worst_ratio")
                if led.get("bound") == r["bound"] and isinstance(w, (int, float)) and math.isfinite(w):
                    # upper: witness / (f bound) -> x f; lower: (f bound) / witness -> / f
                    seen = w * r["factor"] if r["factor"] < 1 else w / r["factor"]
                    b["witness_ratio"] = max(b.get("witness_ratio") or 0.0, seen)
        if r["kind"] == "generic" and r["factor"] is not None and r["caught"]:
            eps = abs(1 - r["factor"])  # x(1 - eps) of an upper bound, x(1 + eps) of a lower bound
            b["smallest_eps_caught"] = eps if b["smallest_eps_caught"] is None else min(b["smallest_eps_caught"], eps)
    areas: dict[str, dict] = {}
    for b in per_bound.values():
        a = areas.setdefault(b["bound"].split(".")[0], {"mutants": 0, "caught": 0, "known_false": 0,
                                                        "known_false_caught": 0})
        for k in a:
            a[k] += b[k]
    for b in per_bound.values():
        try:
            rec = get(b["bound"])
        except KeyError:  # a bound of an uninstalled extension analysed earlier into this folder
            b.update(tight=None, confidence=None, kind=None)
            continue
        b["tight"] = rec.tight.as_dict() if rec.tight else None
        b["confidence"] = rec.confidence
        b["kind"] = rec.kind
    doc = {**metadata_block(config, config.get("seed")), "kind": "mutation_analysis", "mutants": rows,
           "bounds": sorted(per_bound.values(), key=lambda b: b["bound"]), "areas": areas}
    write_json(Path(out_dir) / "mutate" / "summary.json", doc)
    return doc
