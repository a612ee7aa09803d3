"""The ledger: one record of every comparison a property makes, shared by verify, mutate, the report and benchmarks.

Every observation says what it compared (:data:`COMPARES`):

* ``empirical<=bound``: an empirical lower bound (a witness) against the bound: its ratio is the *witness ratio*;
* ``bound<=empirical``: a lower bound (an optimum's certified value) against a witness above it (an objective
  attained by some weights): also a witness ratio;
* ``claim``: the two sides of a qualitative claim (``lower <= upper``): also a witness ratio;
* ``bound<=bound``: an ordering between two bounds (Neuron <= Layer <= product): recorded, never a witness ratio;
* ``exact==truth``: an exact value against a ground truth: its relative gap.

So a property's ``worst_ratio`` is the largest witness ratio, never an ordering's. A failed comparison raises
:class:`BoundViolation` (Hypothesis then shrinks the case). :meth:`Ledger.write` produces the JSON summary of
``docs/results.md`` plus one ``.jsonl`` of observations per bound. Whether a run met a bound's expectation is the
record's rule (:meth:`boundlab.theory.registry.Bound.met`), here and in verify and the report alike.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from boundlab import __version__
from boundlab.io.results import dumps, metadata_block, write_json, write_text
from boundlab.theory.registry import expectation_met

from .cases import Case

COMPARES = ("empirical<=bound", "bound<=empirical", "claim", "bound<=bound", "exact==truth")
WITNESS = ("empirical<=bound", "bound<=empirical", "claim")


class BoundViolation(AssertionError):
    """A comparison failed: the empirical lower bound exceeds the claimed upper bound (or values disagree)."""

    def __init__(self, bound: str, lower: float, upper: float, case: Case, detail: str = "",
                 compares: str = "empirical<=bound"):
        self.bound, self.lower, self.upper, self.case, self.compares = bound, lower, upper, case, compares
        ratio = lower / upper if upper else math.inf
        super().__init__(
            f"{bound} falsified ({compares}): {lower:.9g} vs {upper:.9g} (ratio {ratio:.9g}) {detail}\n  case: {case!r}"
        )


@dataclass
class PropertyRecord:
    bound: str
    expect: str  # "holds" or "falsified"
    source: str = ""
    confidence: str = ""
    kind: str = ""
    examples: int = 0
    falsified: bool = False
    worst_ratio: float = -math.inf
    worst_gap: float | None = None
    orderings: int = 0
    counterexample: str | None = None
    first_violation_size: int | None = None
    shrunk_size: int | None = None
    observations: list = field(default_factory=list)

    @property
    def met(self) -> bool:
        return expectation_met(self.expect, self.falsified)

    def summary(self, obs_path: str | None) -> dict:
        witnessed = self.worst_ratio > -math.inf
        return {
            "bound": self.bound,
            "kind": self.kind,
            "source": self.source,
            "confidence": self.confidence,
            "expect": self.expect,
            "examples": self.examples,
            "falsified": self.falsified,
            "met": self.met,
            "worst_ratio": self.worst_ratio if witnessed else None,
            "worst_gap": self.worst_gap,
            "orderings_checked": self.orderings,
            "counterexample": self.counterexample,
            "first_violation_size": self.first_violation_size,
            "shrunk_size": self.shrunk_size,
            "observations": obs_path,
        }


def _bound_meta(name: str) -> dict:
    from boundlab.theory.registry import get

    try:
        b = get(name)
    except KeyError:
        return {"expect": "holds", "source": "", "confidence": "", "kind": ""}
    return {"expect": b.expect, "source": b.source, "confidence": b.confidence, "kind": b.kind}


class Ledger:
    """Collects observations per bound during a pytest session (or a mutate run)."""

    def __init__(self) -> None:
        self.records: dict[str, PropertyRecord] = {}

    def record(self, bound: str, expect: str | None = None) -> PropertyRecord:
        if bound not in self.records:
            meta = _bound_meta(bound)
            if expect is not None:
                meta["expect"] = expect
            self.records[bound] = PropertyRecord(bound=bound, **meta)
        return self.records[bound]

    def _observe(self, bound: str, lower: float, upper: float, case: Case, compares: str, expect: str | None,
                 extra: dict) -> PropertyRecord:
        if compares not in COMPARES:
            raise ValueError(f"compares: expected one of {COMPARES}, got {compares!r}")
        rec = self.record(bound, expect)
        ratio = lower / upper if upper > 0 else (math.inf if lower > 0 else 0.0)
        if compares == "bound<=bound":
            rec.orderings += 1
        else:
            rec.examples += 1
        if compares in WITNESS:
            rec.worst_ratio = max(rec.worst_ratio, ratio)
        rec.observations.append({"compares": compares, "lower": lower, "upper": upper, "ratio": ratio,
                                 "case": case.summary(), **extra})
        return rec

    def _fail(self, rec: PropertyRecord, case: Case) -> None:
        if rec.first_violation_size is None:
            rec.first_violation_size = case.size()

    def check_upper(self, bound: str, lower: float, upper: float, case: Case, *, rtol: float,
                    compares: str = "empirical<=bound", expect: str | None = None, **extra) -> float:
        """Record ``lower <= upper * (1 + rtol)`` (``compares``: what the two sides are) and raise
        :class:`BoundViolation` if it fails."""
        lower, upper = float(lower), float(upper)
        rec = self._observe(bound, lower, upper, case, compares, expect, extra)
        if not (lower <= upper * (1.0 + rtol)):
            self._fail(rec, case)
            raise BoundViolation(bound, lower, upper, case, f"(rtol {rtol:g})", compares)
        return lower / upper if upper else 0.0

    def check_exact(self, bound: str, value, truth, case: Case, *, rtol: float, expect: str | None = None,
                    **extra) -> float:
        """Record ``max|value - truth| <= rtol * max|truth|`` (scalars or arrays of equal shape)."""
        v = np.atleast_1d(np.asarray(value, dtype=np.float64))
        t = np.atleast_1d(np.asarray(truth, dtype=np.float64))
        if v.shape != t.shape:
            raise BoundViolation(bound, float(t.max()), float(v.max()), case, f"(shape {v.shape} != {t.shape})",
                                 "exact==truth")
        scale = max(float(np.abs(t).max()), 1e-300)
        gap = float(np.abs(v - t).max()) / scale
        rec = self._observe(bound, float(t.max()), float(v.max()), case, "exact==truth", expect,
                            {"relative_gap": gap, **extra})
        rec.worst_gap = gap if rec.worst_gap is None else max(rec.worst_gap, gap)
        if not gap <= rtol:
            self._fail(rec, case)
            raise BoundViolation(bound, float(t.max()), float(v.max()), case,
                                 f"(exact: relative gap {gap:.3g} > {rtol:g})", "exact==truth")
        return gap

    def falsified(self, bound: str, case: Case, corpus_file: str | None) -> None:
        rec = self.record(bound)
        rec.falsified = True
        rec.counterexample = corpus_file
        rec.shrunk_size = case.size()

    def write(self, path: str | Path, profile: str, seed, extra: dict | None = None) -> Path:
        """Write the JSON summary and one ``properties/<bound>.jsonl`` per property next to it."""
        path = Path(path)
        props_dir = path.parent / "properties"
        props = []
        for name in sorted(self.records):
            rec = self.records[name]
            obs = props_dir / f"{name}.jsonl"
            write_text(obs, "".join(dumps(o, indent=None) + "\n" for o in rec.observations))
            props.append(rec.summary(str(obs.relative_to(path.parent))))
        doc = {"boundlab": __version__, "profile": profile,
               **metadata_block({"profile": profile, **(extra or {})}, seed), "properties": props}
        return write_json(path, doc)

    def failures(self) -> list[PropertyRecord]:
        """Records whose expectation was not met (a real bound falsified, a false one not falsified)."""
        return [r for r in self.records.values() if not r.met]
