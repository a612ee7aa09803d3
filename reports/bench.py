"""Benchmark tracking across commits: saved pytest-benchmark runs, their trend, and regression flags.

A saved run (``OUT/bench/<commit>.json``, written by ``boundlab bench --save``) is
``{created, commit, versions, config, seed, kind: "bench", commit_id, commit_time, machine, benchmark}`` where
``benchmark`` is pytest-benchmark's ``--benchmark-json`` document unchanged.

Per benchmark the history tracks two numbers per commit:

* ``time``: the benchmark's *minimum* round time in seconds (the least noisy statistic on a shared machine);
* ``ratio``: ``extra_info["ratio"]``, the time of an in-run baseline divided by the benchmarked time (higher is
  better; e.g. 200 power-iteration steps vs the FFT route). Both are measured in the same process moments
  apart, so machine load largely cancels; this is the number regressions are judged on when present.

A step from the previous saved commit to the next is a *regression* when ``time_new / time_old > threshold``
(benchmarks without a ratio) or ``ratio_old / ratio_new > threshold`` (benchmarks with one).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .load import Malformed, num, require


def check_saved(doc: dict) -> None:
    """Raise :class:`Malformed` naming the key when ``doc`` is not a saved benchmark run."""
    bench = require(doc, "benchmark", dict)
    items = require(bench, "benchmarks", list, "benchmark.")
    for i, b in enumerate(items):
        require(b, "fullname", str, f"benchmark.benchmarks[{i}].")
        stats = require(b, "stats", dict, f"benchmark.benchmarks[{i}].")
        if num(stats.get("min")) is None:
            raise Malformed(f"key 'benchmark.benchmarks[{i}].stats.min' should be a number")


def saved_doc(bench_json: dict, commit: str | None, config: dict) -> dict:
    """The document ``boundlab bench --save`` writes: metadata + commit + machine info + the pytest-benchmark JSON."""
    from boundlab.io.results import metadata_block

    info = bench_json.get("commit_info") or {}
    return {**metadata_block(config), "kind": "bench", "commit_id": commit or info.get("id"),
            "commit_time": info.get("time"), "machine": bench_json.get("machine_info") or {}, "benchmark": bench_json}


def file_stem(commit: str | None, created: str) -> str:
    """``<sha>`` (``<sha>-dirty`` for a modified tree); outside git ``nocommit-<timestamp>``."""
    if not commit:
        return "nocommit-" + "".join(ch for ch in created if ch.isalnum())
    return commit.replace("+", "-")


def machine_label(machine: dict) -> str:
    cpu = machine.get("cpu") or {}
    brand = cpu.get("brand_raw") or cpu.get("brand") or machine.get("processor") or "?"
    return f"{machine.get('node', '?')} ({brand}, {cpu.get('count', '?')} cpus, python {machine.get('python_version', '?')})"


@dataclass
class Point:
    """One benchmark at one saved commit."""

    commit: str
    created: str
    machine: str
    time: float
    ratio: float | None
    time_change: float | None = None  # time / previous time
    ratio_change: float | None = None  # ratio / previous ratio
    regression: bool = False


@dataclass
class Series:
    name: str
    points: list[Point] = field(default_factory=list)

    @property
    def tracks_ratio(self) -> bool:
        return any(p.ratio is not None for p in self.points)


def _order_key(doc: dict) -> tuple:
    # commit time first (a run saved later for an older commit still sorts by its commit), then save time
    return (str(doc.get("commit_time") or ""), str(doc.get("created") or ""))


def history(saved: list[dict], threshold: float) -> list[Series]:
    """Per benchmark, its points over the saved runs in commit order, with step changes and regression flags."""
    if not (threshold > 1 and math.isfinite(threshold)):
        raise ValueError(f"threshold: expected a finite factor > 1, got {threshold}")
    series: dict[str, Series] = {}
    for doc in sorted(saved, key=_order_key):
        commit = str(doc.get("commit_id") or doc.get("commit") or "?")
        for b in doc["benchmark"]["benchmarks"]:
            extra = b.get("extra_info") or {}
            ratio = num(extra.get("ratio"))
            s = series.setdefault(b["fullname"], Series(b["fullname"]))
            s.points.append(Point(commit, str(doc.get("created", "")), machine_label(doc.get("machine") or {}),
                                  num(b["stats"]["min"]), ratio if ratio is not None and ratio > 0 else None))
    for s in series.values():
        for prev, cur in zip(s.points, s.points[1:]):
            if prev.time > 0:
                cur.time_change = cur.time / prev.time
            if prev.ratio and cur.ratio:
                cur.ratio_change = cur.ratio / prev.ratio
            if s.tracks_ratio and cur.ratio_change is not None:
                cur.regression = 1.0 / cur.ratio_change > threshold
            elif not s.tracks_ratio and cur.time_change is not None:
                cur.regression = cur.time_change > threshold
    return [series[k] for k in sorted(series)]


def latest_regressions(series: list[Series]) -> list[Series]:
    """Benchmarks whose last step (previous saved commit -> latest) is a regression."""
    return [s for s in series if len(s.points) >= 2 and s.points[-1].regression]
