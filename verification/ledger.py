"""The ledger: one record of every bound-vs-estimate comparison, shared by verify, reports and benchmarks.

A property calls :meth:`Ledger.check_upper` (empirical lower bound <= theory upper bound) or
:meth:`Ledger.check_exact` (two quantities that must agree). Both record the observation and raise
:class:`BoundViolation` when the comparison fails, so that Hypothesis shrinks the case. At the end of the
session :meth:`Ledger.write` produces the JSON summary described in ``design.md`` plus one ``.jsonl`` file of
observations per property.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from boundlab import __version__  # noqa: F401 - recorded in the summary
from boundlab.io.results import dumps, metadata_block, write_json, write_text

from .cases import Case


class BoundViolation(AssertionError):
    """A comparison failed: the empirical lower bound exceeds the claimed upper bound (or values disagree)."""

    def __init__(self, bound: str, lower: float, upper: float, case: Case, detail: str = ""):
        self.bound, self.lower, self.upper, self.case = bound, lower, upper, case
        ratio = lower / upper if upper else math.inf
        super().__init__(
            f"{bound} falsified: empirical {lower:.9g} vs bound {upper:.9g} (ratio {ratio:.9g}) {detail}\n  case: {case!r}"
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
    counterexample: str | None = None
    first_violation_size: int | None = None
    shrunk_size: int | None = None
    observations: list = field(default_factory=list)

    def summary(self, obs_path: str | None) -> dict:
        return {
            "bound": self.bound,
            "kind": self.kind,
            "source": self.source,
            "confidence": self.confidence,
            "expect": self.expect,
            "examples": self.examples,
            "falsified": self.falsified,
            "worst_ratio": self.worst_ratio if self.examples else None,
            "counterexample": self.counterexample,
            "first_violation_size": self.first_violation_size,
            "shrunk_size": self.shrunk_size,
            "observations": obs_path,
        }


def _bound_meta(name: str) -> dict:
    from boundlab.theory.registry import get

    from .planted import PLANTED

    if name in PLANTED:
        p = PLANTED[name]
        return {"source": p["source"], "confidence": "planted", "kind": "upper"}
    try:
        b = get(name)
    except KeyError:
        return {"source": "", "confidence": "", "kind": ""}
    return {"source": b.source, "confidence": b.confidence, "kind": b.kind}


class Ledger:
    """Collects observations per bound during a pytest session."""

    def __init__(self) -> None:
        self.records: dict[str, PropertyRecord] = {}

    def record(self, bound: str, expect: str = "holds") -> PropertyRecord:
        if bound not in self.records:
            self.records[bound] = PropertyRecord(bound=bound, expect=expect, **_bound_meta(bound))
        return self.records[bound]

    def _observe(self, bound: str, lower: float, upper: float, case: Case, expect: str, extra: dict) -> PropertyRecord:
        rec = self.record(bound, expect)
        rec.examples += 1
        ratio = lower / upper if upper > 0 else (math.inf if lower > 0 else 0.0)
        rec.worst_ratio = max(rec.worst_ratio, ratio)
        rec.observations.append({"lower": lower, "upper": upper, "ratio": ratio, "case": case.summary(), **extra})
        return rec

    def check_upper(self, bound: str, lower: float, upper: float, case: Case, *, rtol: float, expect: str = "holds",
                    **extra) -> float:
        """Record ``lower <= upper * (1 + rtol)`` and raise :class:`BoundViolation` if it fails."""
        lower, upper = float(lower), float(upper)
        rec = self._observe(bound, lower, upper, case, expect, extra)
        if not (lower <= upper * (1.0 + rtol)):
            if rec.first_violation_size is None:
                rec.first_violation_size = case.size()
            raise BoundViolation(bound, lower, upper, case, f"(rtol {rtol:g})")
        return lower / upper if upper else 0.0

    def check_exact(self, bound: str, value, truth, case: Case, *, rtol: float, expect: str = "holds",
                    **extra) -> float:
        """Record ``max|value - truth| <= rtol * max|truth|`` (scalars or arrays of equal shape)."""
        v = np.atleast_1d(np.asarray(value, dtype=np.float64))
        t = np.atleast_1d(np.asarray(truth, dtype=np.float64))
        if v.shape != t.shape:
            raise BoundViolation(bound, float(t.max()), float(v.max()), case, f"(shape {v.shape} != {t.shape})")
        scale = max(float(np.abs(t).max()), 1e-300)
        gap = float(np.abs(v - t).max()) / scale
        rec = self._observe(bound, float(t.max()), float(v.max()), case, expect, {"relative_gap": gap, **extra})
        if not gap <= rtol:
            if rec.first_violation_size is None:
                rec.first_violation_size = case.size()
            raise BoundViolation(bound, float(t.max()), float(v.max()), case, f"(exact: relative gap {gap:.3g} > {rtol:g})")
        return float(t.max()) / float(v.max()) if v.max() else 0.0

    def falsified(self, bound: str, case: Case, corpus_file: str | None) -> None:
        rec = self.record(bound)
        rec.falsified = True
        rec.counterexample = corpus_file
        rec.shrunk_size = case.size()

    def write(self, path: str | Path, profile: str, seed) -> Path:
        """Write the JSON summary and one ``properties/<bound>.jsonl`` per property next to it."""
        path = Path(path)
        props_dir = path.parent / "properties"
        props_dir.mkdir(parents=True, exist_ok=True)
        props = []
        for name in sorted(self.records):
            rec = self.records[name]
            obs = props_dir / f"{name}.jsonl"
            write_text(obs, "".join(dumps(o, indent=None) + "\n" for o in rec.observations))
            props.append(rec.summary(str(obs.relative_to(path.parent))))
        doc = {"boundlab": __version__, "profile": profile, **metadata_block({"profile": profile}, seed),
               "properties": props}
        return write_json(path, doc)

    def failures(self) -> list[PropertyRecord]:
        """Real bounds that were falsified, and planted bounds that were not."""
        return [r for r in self.records.values() if r.falsified != (r.expect == "falsified")]
