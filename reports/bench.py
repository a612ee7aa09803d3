"""Benchmark tracking across commits: saved pytest-benchmark runs, their trend per machine, and regression flags.

Two sources of saved runs, read the same way:

* the **committed history** ``benchmarks/history/<machine>/<commit>.json`` (written by ``boundlab bench run REVS``,
  one file per benchmarked commit and machine; it ships with the repository, so a fresh clone shows the trend);
  :func:`history_dir` locates it (``BOUNDLAB_BENCH_HISTORY`` overrides; an empty value turns it off);
* local runs ``OUT/bench/<commit>.json`` (written by ``boundlab bench --save``, the working tree as it is).

A saved run is ``{created, commit, versions, config, seed, kind: "bench", commit_id, commit_time, machine, ...}``
with either ``runs`` (a list of pytest-benchmark ``--benchmark-json`` documents, one per repeat, unchanged; written
by ``bench run``, together with ``machine_id`` and ``environment``) or ``benchmark`` (one such document; written
by ``bench --save`` and by older versions).

Per benchmark, per machine, per commit the history tracks two numbers, each the **median over the repeats** (all
runs saved for that commit on that machine, pooled):

* ``time``: the benchmark's *minimum* round time in seconds within one run (the least noisy statistic of a run);
* ``ratio``: ``extra_info["ratio"]``, the time of an in-run baseline divided by the benchmarked time (higher is
  better; e.g. 200 power-iteration steps vs the FFT route), measured in the same process moments apart.

Series never mix machines. A step from the previous commit to the next (same machine) is a *regression* when
``ratio_old / ratio_new > threshold`` (benchmarks that record a ratio) or ``time_new / time_old > threshold``
(the others). ``bench run`` repeats every benchmark 3 times by default so that one noisy run cannot flag a step.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import os
import re
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from .load import Malformed, num, read_doc, require

#: recorded in every file ``bench run`` writes: where the dependencies came from
ENVIRONMENT = "current venv + commit's boundlab"
HISTORY_ENV = "BOUNDLAB_BENCH_HISTORY"


# ------------------------------------------------------------------------------------------------ saved format
def _check_run(bench: dict, where: str) -> None:
    items = require(bench, "benchmarks", list, where)
    for i, b in enumerate(items):
        require(b, "fullname", str, f"{where}benchmarks[{i}].")
        stats = require(b, "stats", dict, f"{where}benchmarks[{i}].")
        if num(stats.get("min")) is None:
            raise Malformed(f"key '{where}benchmarks[{i}].stats.min' should be a number")


def check_saved(doc: dict) -> None:
    """Raise :class:`Malformed` naming the key when ``doc`` is not a saved benchmark run."""
    if "runs" in doc:
        runs = require(doc, "runs", list)
        if not runs:
            raise Malformed("key 'runs' is an empty list (no repeat was saved)")
        for r, run in enumerate(runs):
            if not isinstance(run, dict):
                raise Malformed(f"key 'runs[{r}]' should be dict, got {type(run).__name__}")
            _check_run(run, f"runs[{r}].")
        if "machine_id" in doc:
            require(doc, "machine_id", str)
        return
    _check_run(require(doc, "benchmark", dict), "benchmark.")


def runs_of(doc: dict) -> list[dict]:
    """The pytest-benchmark documents of a saved run: its repeats (``runs``) or its single ``benchmark``."""
    return list(doc["runs"]) if "runs" in doc else [doc["benchmark"]]


def saved_doc(bench_json: dict, commit: str | None, config: dict, machine_id: str | None = None) -> dict:
    """The document ``boundlab bench --save`` writes: metadata + commit + machine info + the pytest-benchmark JSON."""
    from boundlab.io.results import metadata_block

    info = bench_json.get("commit_info") or {}
    machine = bench_json.get("machine_info") or {}
    return {**metadata_block(config), "kind": "bench", "commit_id": commit or info.get("id"),
            "commit_time": info.get("time"), "machine_id": machine_id or machine_key({"machine": machine}),
            "machine": machine, "benchmark": bench_json}


def file_stem(commit: str | None, created: str) -> str:
    """``<sha>`` (``<sha>-dirty`` for a modified tree); outside git ``nocommit-<timestamp>``."""
    if not commit:
        return "nocommit-" + "".join(ch for ch in created if ch.isalnum())
    return commit.replace("+", "-")


# ---------------------------------------------------------------------------------------------------- machines
def machine_id(node: str, cpus: int | str, cpu_model: str) -> str:
    """A short stable machine id: ``<hostname>-<n>cpu-<8 hex of sha256(cpu model)>`` (safe as a folder name)."""
    host = re.sub(r"[^A-Za-z0-9_.-]+", "_", str(node or "unknown")).strip("._") or "unknown"
    digest = hashlib.sha256(str(cpu_model or "?").strip().encode()).hexdigest()[:8]
    return f"{host[:40]}-{cpus if cpus not in (None, '') else '?'}cpu-{digest}"


def _cpu(machine: dict) -> tuple[str, str]:
    cpu = machine.get("cpu") if isinstance(machine.get("cpu"), dict) else {}
    model = (machine.get("cpu_model") or cpu.get("brand_raw") or cpu.get("brand") or machine.get("processor")
             or "?")
    count = machine.get("cpu_count") or cpu.get("count") or "?"
    return str(model), str(count)


def machine_key(doc: dict) -> str:
    """The machine a saved run was measured on: its ``machine_id``, or one derived from pytest-benchmark's
    ``machine_info`` (node, cpu count, cpu brand) for files written before ids existed."""
    if isinstance(doc.get("machine_id"), str) and doc["machine_id"]:
        return doc["machine_id"]
    machine = doc.get("machine") if isinstance(doc.get("machine"), dict) else {}
    model, count = _cpu(machine)
    return machine_id(str(machine.get("node") or "unknown"), count, model)


def machine_label(machine: dict) -> str:
    model, count = _cpu(machine)
    python = machine.get("python_version") or machine.get("python") or "?"
    return f"{machine.get('node', '?')} ({model}, {count} cpus, python {python})"


# ---------------------------------------------------------------------------------------------------- history
@dataclass
class Point:
    """One benchmark at one commit on one machine: medians over the pooled repeats."""

    commit: str
    created: str
    machine: str
    time: float
    ratio: float | None
    times: list[float] = field(default_factory=list)  # per-run minimum times (one per repeat)
    ratios: list[float] = field(default_factory=list)  # per-run in-run ratios
    failed: int = 0  # runs in which the benchmark's test failed (its timing is kept, its assertions did not hold)
    time_change: float | None = None  # time / previous time
    ratio_change: float | None = None  # ratio / previous ratio
    regression: bool = False

    @property
    def runs(self) -> int:
        return len(self.times)


@dataclass
class Series:
    name: str
    points: list[Point] = field(default_factory=list)
    machine: str = ""

    @property
    def tracks_ratio(self) -> bool:
        return any(p.ratio is not None for p in self.points)


def _when(text) -> float:
    """Seconds since the epoch of an ISO time (naive = UTC); ``-inf`` when missing or unparseable."""
    if not isinstance(text, str) or not text:
        return -math.inf
    try:
        t = _dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return -math.inf
    if t.tzinfo is None:
        t = t.replace(tzinfo=_dt.timezone.utc)
    return t.timestamp()


def _order_key(doc: dict) -> tuple:
    # commit time first (a run saved later for an older commit still sorts by its commit), then save time
    return (_when(doc.get("commit_time")), str(doc.get("commit_time") or ""), _when(doc.get("created")),
            str(doc.get("created") or ""))


def _positive(v) -> float | None:
    v = num(v)
    return v if v is not None and v > 0 and math.isfinite(v) else None


def history(saved: list[dict], threshold: float) -> list[Series]:
    """Per benchmark and machine, its points over the saved runs in commit order (runs of one commit pooled,
    medians over the repeats), with step changes and regression flags."""
    if not (threshold > 1 and math.isfinite(threshold)):
        raise ValueError(f"threshold: expected a finite factor > 1, got {threshold}")
    # (name, machine) -> commit -> Point; commits keep the order of their first (sorted) saved run
    table: dict[tuple[str, str], dict[str, Point]] = {}
    for doc in sorted(saved, key=_order_key):
        commit = str(doc.get("commit_id") or doc.get("commit") or "?")
        machine = machine_key(doc)
        failed = doc.get("failed") if isinstance(doc.get("failed"), list) else []
        for r, run in enumerate(runs_of(doc)):
            failed_here = failed[r] if r < len(failed) and isinstance(failed[r], list) else []
            for b in run["benchmarks"]:
                per_commit = table.setdefault((b["fullname"], machine), {})
                p = per_commit.setdefault(commit, Point(commit, str(doc.get("created", "")), machine, math.nan, None))
                p.failed += b["fullname"] in failed_here
                t = _positive(b["stats"]["min"])
                if t is not None:
                    p.times.append(t)
                r = _positive((b.get("extra_info") or {}).get("ratio"))
                if r is not None:
                    p.ratios.append(r)
    out = []
    for (name, machine), per_commit in sorted(table.items()):
        s = Series(name, [], machine)
        for p in per_commit.values():
            if not p.times:
                continue
            p.time = statistics.median(p.times)
            p.ratio = statistics.median(p.ratios) if p.ratios else None
            s.points.append(p)
        for prev, cur in zip(s.points, s.points[1:]):
            cur.time_change = cur.time / prev.time
            if prev.ratio and cur.ratio:
                cur.ratio_change = cur.ratio / prev.ratio
            if s.tracks_ratio and cur.ratio_change is not None:
                cur.regression = 1.0 / cur.ratio_change > threshold
            elif not s.tracks_ratio:
                cur.regression = cur.time_change > threshold
        if s.points:
            out.append(s)
    return out


def latest_regressions(series: list[Series]) -> list[Series]:
    """Series (benchmark on a machine) whose last step (previous commit -> latest) is a regression."""
    return [s for s in series if len(s.points) >= 2 and s.points[-1].regression]


# ------------------------------------------------------------------------------------------ reading the history
def history_dir(checkout: Path | None = None) -> Path | None:
    """The committed history folder: ``$BOUNDLAB_BENCH_HISTORY`` if set (empty: none), else
    ``benchmarks/history`` of ``checkout`` (default: the source checkout this package runs from); ``None`` when
    that folder does not exist (an installed package without a checkout)."""
    env = os.environ.get(HISTORY_ENV)
    if env is not None:
        return Path(env) if env.strip() else None
    here = Path(checkout or Path(__file__).resolve().parents[1]) / "benchmarks" / "history"
    return here if here.is_dir() else None


def read_saved(paths) -> tuple[list[tuple[Path, dict]], list[tuple[Path, str]]]:
    """Read and check saved runs: ``(ok, problems)`` with ``ok = [(path, doc)]``, ``problems = [(path, message)]``."""
    ok, bad = [], []
    for path in paths:
        try:
            doc = read_doc(Path(path))
            check_saved(doc)
        except Malformed as exc:
            bad.append((Path(path), str(exc)))
            continue
        ok.append((Path(path), doc))
    return ok, bad


def history_files(folder: Path | None) -> list[Path]:
    """``folder/<machine>/<commit>.json`` (and any ``*.json`` directly in ``folder``), sorted."""
    if folder is None or not Path(folder).is_dir():
        return []
    folder = Path(folder)
    return sorted(set(folder.glob("*/*.json")) | set(folder.glob("*.json")))


# ---------------------------------------------------------------------------------------------------- plotting
def trend_panel(s: Series) -> str:
    """One small panel: median time (blue, every repeat as a faint dot) and, when recorded, the median in-run
    ratio (orange, right axis) against commit; regressions marked in red. An inline SVG (``data-plot=bench:``)."""
    from . import plots

    plt = plots._plt()
    with plt.rc_context(plots._RC):
        fig, ax = plt.subplots(figsize=(3.6, 2.3))
        x = list(range(len(s.points)))
        for i, p in zip(x, s.points):
            ax.plot([i] * len(p.times), p.times, ".", color="#1f77b4", alpha=0.35, ms=4)
        ax.plot(x, [p.time for p in s.points], marker="o", ms=3, lw=1, color="#1f77b4", label="median time")
        ax.set_ylabel("time (s), median of runs", color="#1f77b4")
        ax.set_ylim(bottom=0)
        if s.tracks_ratio:
            ax2 = ax.twinx()
            rx = [(i, p.ratio) for i, p in zip(x, s.points) if p.ratio is not None]
            ax2.plot(*zip(*rx), marker="s", ms=3, lw=1, color="#ff7f0e", label="median ratio")
            ax2.set_ylabel("in-run ratio (higher better)", color="#ff7f0e")
            ax2.set_ylim(bottom=0)
            ax2.grid(False)
        for i, p in zip(x, s.points):
            if p.regression:
                ax.axvline(i, color="#d62728", lw=1.2, ls=":")
        ax.set_xticks(x)
        ax.set_xticklabels([p.commit[:7] for p in s.points], rotation=45, fontsize=6)
        if len(x) == 1:
            ax.set_xlim(-0.5, 0.5)
        short = s.name.split("::")[-1]
        ax.set_title(short if len(short) <= 48 else short[:45] + "...", fontsize=7)
        fig.tight_layout()
    return plots.to_svg(fig, f"bench:{s.machine}:{s.name}")
