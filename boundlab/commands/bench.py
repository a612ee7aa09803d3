"""``boundlab bench``: run the pytest-benchmark suites, save them per commit, and show the trend across commits.

``boundlab bench [--save] [--out DIR] [-k EXPR]`` runs ``pytest benchmarks --benchmark-json`` and prints each
benchmark's minimum time and in-run ratio; with ``--save`` the run (pytest-benchmark JSON + commit + machine
info + metadata block) is written to ``OUT/bench/<commit>.json``.

``boundlab bench history [--out DIR] [--threshold X]`` prints, per benchmark, the trend over the saved commits
(min time, in-run ratio, and both relative to the previous commit) and flags regressions: ratio_prev/ratio > X
for benchmarks that record a ratio, time/time_prev > X for the others (:mod:`reports.bench`). Exit status 1
when the latest step of any benchmark regressed, 0 otherwise, 2 on bad input (no saved runs, malformed file).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from rich.table import Table

from ..io.results import git_commit, write_json
from ._common import CliError, console


def _bench_dir() -> Path:
    here = Path(__file__).resolve().parents[2] / "benchmarks"
    if not here.is_dir():
        raise CliError(f"benchmarks folder not found at {here} (run from a source checkout: pip install -e .)")
    return here


def _threshold(text: str) -> float:
    import argparse
    import math

    v = float(text)
    if not (v > 1 and math.isfinite(v)):
        raise argparse.ArgumentTypeError(f"expected a finite factor > 1, got {v}")
    return v


def cmd_bench(args) -> int:
    import json

    from boundlab.reports.bench import check_saved, file_stem, saved_doc

    bdir = _bench_dir()
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "bench.json"
        cmd = [sys.executable, "-m", "pytest", str(bdir), "-q", "-p", "no:cacheprovider", f"--benchmark-json={raw}",
               "--rootdir", str(bdir.parent)]
        if args.select:
            cmd += ["-k", args.select]
        console.print(f"[bold]boundlab bench[/]: {' '.join(cmd[2:])}")
        status = subprocess.call(cmd, cwd=bdir.parent)
        if not raw.is_file():
            raise CliError(f"pytest-benchmark wrote no results (pytest exit status {status})")
        data = json.loads(raw.read_text())
    commit = git_commit(bdir)
    doc = saved_doc(data, commit, {"command": "bench", "select": args.select, "pytest_status": status})
    check_saved(doc)
    table = Table(title=f"benchmarks at {commit or 'no commit'}")
    for col in ("benchmark", "min time (s)", "in-run ratio", "baseline"):
        table.add_column(col, overflow="fold")
    for b in data.get("benchmarks", []):
        extra = b.get("extra_info") or {}
        ratio = extra.get("ratio")
        table.add_row(b["fullname"], f"{b['stats']['min']:.4g}", f"{ratio:.3g}" if isinstance(ratio, float) else "-",
                      str(extra.get("baseline", "-")))
    console.print(table)
    if args.save:
        out = write_json(Path(args.out) / "bench" / f"{file_stem(commit, doc['created'])}.json", doc)
        console.print(f"saved -> {out}")
    return 0 if status == 0 else 1


def cmd_history(args) -> int:
    from boundlab.reports.bench import check_saved, history, latest_regressions
    from boundlab.reports.load import Malformed, read_doc

    folder = Path(args.out) / "bench"
    files = sorted(folder.glob("*.json")) if folder.is_dir() else []
    if not files:
        raise CliError(f"--out: no saved benchmark runs in {folder} (run `boundlab bench --save` first)")
    docs = []
    for f in files:
        try:
            doc = read_doc(f)
            check_saved(doc)
        except Malformed as exc:
            raise CliError(f"{f}: {exc}") from None
        docs.append(doc)
    series = history(docs, args.threshold)
    for s in series:
        table = Table(title=s.name + ("  (regressions judged on the in-run ratio)" if s.tracks_ratio
                                      else "  (no in-run ratio: judged on time)"))
        for col in ("commit", "min time (s)", "x prev", "ratio", "x prev", "flag", "machine"):
            table.add_column(col, overflow="fold")
        for p in s.points:
            def f(v, d=4):
                return "-" if v is None else f"{v:.{d}g}"
            table.add_row(p.commit[:12], f(p.time), f(p.time_change, 3), f(p.ratio), f(p.ratio_change, 3),
                          "[red]REGRESSION[/]" if p.regression else "", p.machine)
        console.print(table)
    bad = latest_regressions(series)
    if bad:
        console.print(f"[red]{len(bad)} benchmark(s) regressed beyond x{args.threshold:g} at the latest commit: "
                      f"{', '.join(s.name for s in bad)}[/]")
        return 1
    console.print(f"no regression beyond x{args.threshold:g} at the latest commit ({len(docs)} saved runs)")
    return 0


def register(subparsers) -> None:
    s = subparsers.add_parser("bench", help="run the benchmarks (optionally save per commit); `bench history`")
    s.add_argument("--save", action="store_true", help="save the run to OUT/bench/<commit>.json")
    s.add_argument("--out", default="boundlab-results", help="results folder (default: %(default)s)")
    s.add_argument("-k", "--select", default=None, help="pytest -k expression to run a subset")
    s.set_defaults(func=cmd_bench)
    sub = s.add_subparsers(dest="bench_action", required=False)
    h = sub.add_parser("history", help="trend of each benchmark across saved commits; exit 1 on a regression")
    h.add_argument("--out", default="boundlab-results", help="results folder (default: %(default)s)")
    h.add_argument("--threshold", type=_threshold, default=1.3,
                   help="flag a step worse than this factor (default: %(default)s)")
    h.set_defaults(func=cmd_history)
