"""``boundlab bench``: run the pytest-benchmark suites, benchmark past commits, and show the trend across commits.

``boundlab bench [--save] [--out DIR] [-k EXPR]`` runs ``pytest benchmarks --benchmark-json`` on the working tree
as it is and prints each benchmark's minimum time and in-run ratio; with ``--save`` the run (pytest-benchmark
JSON + commit + machine info + metadata block) is written to ``OUT/bench/<commit>.json`` (a local run: dirty trees
are saved as ``<sha>-dirty``).

``boundlab bench run REVS [-k EXPR] [--repeat 3] [--history DIR] [--skip-existing]`` benchmarks committed code,
the way asv does: for every commit of ``REVS`` (``A..B`` = the first-parent commits after A up to B, oldest first;
one revision; or a comma list of either) it checks the commit out in a temporary ``git worktree add --detach``,
creates a temporary virtual environment whose dependencies are those of the *running* environment (a ``.pth``
file lists its site-packages, so torch, numpy, ... are reused and nothing is downloaded) and installs the
commit's boundlab into it (``pip install --no-deps --no-build-isolation --no-index -e``). Then it runs
``python -m pytest <worktree>/benchmarks`` there ``--repeat`` times (separate processes; not the commit's own CLI,
so old commits work too) and writes all repeats to ``DIR/<machine>/<commit>.json`` (default: the checkout's
``benchmarks/history``, the committed history). A commit without ``benchmarks/test_*.py`` is reported as skipped.
The worktree and the environment are removed afterwards, also on failure, Ctrl-C or SIGTERM (exit status 130).
Exit status 1 when a commit could not be benchmarked or a benchmark test failed (its timings are still saved), 2 on
bad input.

``boundlab bench history [--out DIR] [--history DIR] [--threshold X] [--machine ID]`` prints, per benchmark and
machine, the trend over the committed history plus ``OUT/bench`` (median over the repeats of each commit: min time,
in-run ratio, and both relative to the previous commit) and flags regressions: ratio_prev/ratio > X for benchmarks
that record a ratio, time/time_prev > X for the others (:mod:`reports.bench`). Exit status 1 when the latest step
of any benchmark regressed, 0 otherwise, 2 on bad input (no saved runs, malformed file).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import re
import shutil
import signal
import site
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.markup import escape
from rich.table import Table

from ..io.results import git_commit, metadata_block, write_json
from ._common import CliError, console, err_console, positive_int

_REPO = Path(__file__).resolve().parents[2]


def _bench_dir() -> Path:
    here = _REPO / "benchmarks"
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


# ------------------------------------------------------------------------------------------------ machine
def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith(("model name", "hardware", "cpu model")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "?"


def machine_info() -> dict:
    """What identifies this machine (recorded in full in every history file)."""
    info = {"node": platform.node(), "cpu_count": os.cpu_count(), "cpu_model": _cpu_model(),
            "machine": platform.machine(), "system": platform.system(), "release": platform.release(),
            "python_version": platform.python_version(), "python_implementation": platform.python_implementation()}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                info["memory_gb"] = round(int(line.split()[1]) / 2**20, 1)
    except (OSError, ValueError, IndexError):
        pass
    return info


def this_machine_id() -> str:
    from boundlab.reports.bench import machine_id

    info = machine_info()
    return machine_id(info["node"], info["cpu_count"], info["cpu_model"])


# ------------------------------------------------------------------------------------------------ git
def _git(repo: Path, *args: str, check: bool = True) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        raise CliError(f"git {' '.join(args)}: {exc}") from None
    if check and out.returncode != 0:
        raise CliError(f"git {' '.join(args)}: {out.stderr.strip() or f'exit status {out.returncode}'}")
    return out.stdout.strip() if out.returncode == 0 else ""


def repo_root(start: Path | None = None) -> Path:
    start = start or _REPO
    top = _git(start, "rev-parse", "--show-toplevel", check=False)
    if not top:
        raise CliError(f"bench run: {start} is not a git checkout (bench run needs the repository's history)")
    return Path(top)


_REV_OK = re.compile(r"^[A-Za-z0-9_./~^@{}:+-]+$")


def _resolve(repo: Path, rev: str, spec: str) -> str:
    if not rev or rev.startswith("-") or not _REV_OK.match(rev):
        raise CliError(f"REVS: bad revision {rev!r} in {spec!r} (expected e.g. HEAD~3..HEAD, abc123, or a,b,c)")
    sha = _git(repo, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
    if not sha:
        raise CliError(f"REVS: unknown revision {rev!r} (in {spec!r})")
    return sha


def parse_revs(spec: str, repo: Path) -> list[str]:
    """The commits of a REV_RANGE, oldest first, without duplicates: ``A..B`` (first-parent commits reachable
    from B and not from A), a single revision, or a comma list of either. Bad specs raise :class:`CliError`."""
    text = (spec or "").strip()
    if not text:
        raise CliError("REVS: empty revision range")
    if any(ch.isspace() for ch in text):
        raise CliError(f"REVS: whitespace in {spec!r} (separate revisions with commas, no spaces)")
    if "..." in text:
        raise CliError(f"REVS: symmetric ranges (A...B) are not supported in {spec!r}; use A..B")
    out: list[str] = []
    for part in text.split(","):
        if not part:
            raise CliError(f"REVS: empty item in {spec!r}")
        if ".." in part:
            lo, _, hi = part.partition("..")
            if not lo or not hi or ".." in hi:
                raise CliError(f"REVS: a range needs both ends, got {part!r} (e.g. HEAD~3..HEAD)")
            a, b = _resolve(repo, lo, spec), _resolve(repo, hi, spec)
            shas = _git(repo, "rev-list", "--reverse", "--first-parent", f"{a}..{b}").split()
            if not shas:
                raise CliError(f"REVS: the range {part!r} has no commits ({hi} is not after {lo})")
        else:
            shas = [_resolve(repo, part, spec)]
        out += [s for s in shas if s not in out]
    return out


# ------------------------------------------------------------------------------------------------ one commit
class Skipped(Exception):
    """This commit cannot be benchmarked for a reason that is not an error (no benchmarks at that commit)."""


class CommitFailed(Exception):
    """This commit could not be benchmarked (worktree, install or pytest produced no results)."""


def _tail(text: str, n: int = 15) -> str:
    return "\n".join((text or "").strip().splitlines()[-n:])


def _site_dirs() -> list[str]:
    """Site-packages folders of the running environment (what the temporary environment reuses): its own, the
    user site, and any other ``site-packages``/``dist-packages`` folder on ``sys.path`` (an environment that itself
    borrows packages through a ``.pth``, as the temporary ones do). Source checkouts on the path are not included."""
    dirs = list(site.getsitepackages())
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    dirs += [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]
    out: list[str] = []
    for d in dirs:
        if d and os.path.isdir(d) and d not in out:
            out.append(d)
    return out


def _env(extra: dict) -> dict:
    """The child environment: this one without PYTHONPATH/PYTHONHOME (they could put another boundlab first)."""
    return {**{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}, **extra}


def make_env(env: Path, worktree: Path, log) -> Path:
    """A temporary venv whose packages are the running environment's (plain paths in a .pth, so the running
    environment's own .pth files, among them its editable boundlab, are not processed) plus the commit's boundlab,
    installed editable from ``worktree`` without dependencies, build isolation or an index. Returns its python."""
    base = getattr(sys, "_base_executable", None) or sys.executable
    r = subprocess.run([base, "-m", "venv", "--without-pip", str(env)], capture_output=True, text=True, check=False,
                       env=_env({}))
    if r.returncode != 0:
        raise CommitFailed(f"python -m venv failed: {_tail(r.stderr)}")
    py = env / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    purelib = subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=False, env=_env({})).stdout.strip()
    if not purelib:
        raise CommitFailed(f"could not locate the site-packages of {py}")
    Path(purelib).mkdir(parents=True, exist_ok=True)
    (Path(purelib) / "_boundlab_bench_parent.pth").write_text("".join(d + "\n" for d in _site_dirs()))
    cmd = [str(py), "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index",
           "--disable-pip-version-check", "--no-input", "-q", "-e", str(worktree)]
    log.append({"step": "install", "cmd": cmd[1:]})
    r = subprocess.run(cmd, cwd=worktree, capture_output=True, text=True, check=False,
                       env=_env({"PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}))
    if r.returncode != 0:
        raise CommitFailed(f"pip install -e of the commit failed: {_tail(r.stdout + r.stderr)}")
    return py


def _failures(output: str) -> list[str]:
    """Node ids of the failed/errored tests in pytest's ``-rfE`` summary (``FAILED path::name - message``)."""
    out = []
    for ln in output.splitlines():
        if ln.startswith(("FAILED ", "ERROR ")):
            node = ln.split(" ", 1)[1].split(" - ", 1)[0].strip()
            if node and node not in out:
                out.append(node)
    return out


#: plugin autoloading off (only pytest-benchmark is loaded): the running environment's boundlab dist-info is visible
#: too, and its pytest plugin entry point may not exist at an old commit; the other plugins (hypothesis, ...) are
#: not needed by benchmarks and cost seconds of start-up per run
PYTEST_ENV = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "PYTHONDONTWRITEBYTECODE": "1"}


def pytest_cmd(python: str, bdir: str, worktree: str, raw: str, select: str | None) -> list[str]:
    """The pytest invocation of one repeat (run with :data:`PYTEST_ENV`, in the worktree)."""
    cmd = [python, "-m", "pytest", bdir, "-q", "-rfE", "-p", "pytest_benchmark.plugin", "-p", "no:cacheprovider",
           "--rootdir", worktree, f"--benchmark-json={raw}"]
    return cmd + (["-k", select] if select else [])


def run_commit(repo: Path, sha: str, *, select: str | None, repeat: int, say) -> dict:
    """Benchmark one commit in a temporary worktree and environment; the repeats and what happened.

    Raises :class:`Skipped` (no benchmarks at this commit) or :class:`CommitFailed`; removes the worktree and
    the environment in every case (KeyboardInterrupt included)."""
    tmp = Path(tempfile.mkdtemp(prefix=f"boundlab-bench-{sha[:10]}-"))
    wt, env = tmp / "src", tmp / "env"
    added = False
    log: list[dict] = []
    try:
        r = subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(wt), sha], cwd=repo,
                           capture_output=True, text=True, check=False)
        if r.returncode != 0:
            raise CommitFailed(f"git worktree add failed: {_tail(r.stderr)}")
        added = True
        bdir = wt / "benchmarks"
        if not (bdir.is_dir() and any(bdir.glob("test_*.py"))):
            raise Skipped("no benchmarks/test_*.py at this commit")
        t0 = time.perf_counter()
        py = make_env(env, wt, log)
        say(f"  environment ready in {time.perf_counter() - t0:.0f} s")
        runs, statuses, failed = [], [], []
        for i in range(repeat):
            raw = tmp / f"run-{i}.json"
            cmd = pytest_cmd(str(py), str(bdir), str(wt), str(raw), select)
            t = time.perf_counter()
            r = subprocess.run(cmd, cwd=wt, capture_output=True, text=True, check=False, env=_env(PYTEST_ENV))
            statuses.append(r.returncode)
            failed.append(_failures(r.stdout))
            if r.returncode == 5:
                raise Skipped("no benchmark selected at this commit (pytest exit status 5"
                              + (f", -k {select})" if select else ")"))
            if not raw.is_file():
                raise CommitFailed(f"pytest wrote no benchmark results (exit status {r.returncode}): "
                                   f"{_tail(r.stdout + r.stderr)}")
            run = json.loads(raw.read_text())
            if not run.get("benchmarks"):
                raise CommitFailed(f"pytest-benchmark recorded no benchmark (exit status {r.returncode}): "
                                   f"{_tail(r.stdout + r.stderr)}")
            runs.append(run)
            note = escape(f", {len(failed[-1])} failed: {'; '.join(failed[-1])}") if failed[-1] else ""
            say(f"  run {i + 1}/{repeat}: {len(run['benchmarks'])} benchmarks in {time.perf_counter() - t:.0f} s "
                f"(pytest exit status {r.returncode}{note})")
        return {"runs": runs, "pytest_status": statuses, "failed": failed}
    finally:
        if added:
            subprocess.run(["git", "worktree", "remove", "--force", str(wt)], cwd=repo, capture_output=True,
                           check=False)
        shutil.rmtree(tmp, ignore_errors=True)
        subprocess.run(["git", "worktree", "prune"], cwd=repo, capture_output=True, check=False)


def history_doc(repo: Path, sha: str, result: dict, *, select: str | None, repeat: int, machine: dict,
                mid: str) -> dict:
    """The file ``bench run`` writes for one commit (metadata block: the harness's own commit and versions)."""
    from boundlab.reports.bench import ENVIRONMENT

    config = {"command": "bench run", "select": select, "repeat": repeat, "pytest_status": result["pytest_status"]}
    return {**metadata_block(config), "kind": "bench", "commit_id": sha,
            "commit_time": _git(repo, "show", "-s", "--format=%cI", sha, check=False) or None,
            "commit_subject": _git(repo, "show", "-s", "--format=%s", sha, check=False)[:200],
            "machine_id": mid, "machine": machine, "environment": ENVIRONMENT,
            "environment_detail": {"python": sys.version.split()[0], "site_packages": _site_dirs(),
                                   "install": "pip install --no-deps --no-build-isolation --no-index -e <worktree>",
                                   "pytest": " ".join(["PYTEST_DISABLE_PLUGIN_AUTOLOAD=1"] + pytest_cmd(
                                       "python", "<worktree>/benchmarks", "<worktree>", "<run.json>", select))},
            "failed": result["failed"], "runs": result["runs"]}


def _history_arg(value: str | None) -> Path | None:
    from boundlab.reports.bench import history_dir

    if value is None:
        return history_dir(_REPO)  # the checkout whose CLI runs (env override honoured)
    return Path(value)


@contextlib.contextmanager
def _term_as_interrupt():
    """SIGTERM raises KeyboardInterrupt while commits run, so that a killed ``bench run`` still removes its
    worktree and environment (the ``finally`` of :func:`run_commit`)."""
    def handler(signum, frame):
        raise KeyboardInterrupt(f"signal {signum}")

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def cmd_run(args) -> int:
    from boundlab.reports.bench import check_saved

    if args.history is not None and not args.history.strip():
        raise CliError("--history: expected a folder, got an empty string")
    repo = repo_root()
    shas = parse_revs(args.revs, repo)
    dest = _history_arg(args.history)
    if dest is None:
        dest = repo / "benchmarks" / "history"
    machine = machine_info()
    from boundlab.reports.bench import machine_id

    mid = machine_id(machine["node"], machine["cpu_count"], machine["cpu_model"])
    err_console.print(f"[bold]boundlab bench run[/]: {len(shas)} commit(s), {args.repeat} repeat(s) each"
                      + escape(f"{', -k ' + args.select if args.select else ''}; machine {mid}; -> {dest / mid}"))
    done = skipped = bad = failing = 0
    total_t = time.perf_counter()
    with _term_as_interrupt():
        for n, sha in enumerate(shas, 1):
            subject = _git(repo, "show", "-s", "--format=%s", sha, check=False)[:60]
            head = escape(f"[{n}/{len(shas)}] {sha[:10]} {subject}")
            target = dest / mid / f"{sha}.json"
            if args.skip_existing and target.is_file():
                err_console.print(f"{head}: skipped (already saved: {escape(str(target))})")
                skipped += 1
                continue
            err_console.print(f"{head}: started")
            t0 = time.perf_counter()
            try:
                result = run_commit(repo, sha, select=args.select, repeat=args.repeat, say=err_console.print)
            except Skipped as exc:
                err_console.print(f"{head}: skipped ({escape(str(exc))})")
                skipped += 1
                continue
            except CommitFailed as exc:
                err_console.print(f"[red]{head}: failed after {time.perf_counter() - t0:.0f} s: "
                                  f"{escape(str(exc))}[/]")
                bad += 1
                continue
            except KeyboardInterrupt:
                err_console.print(f"{head}: interrupted; temporary worktree and environment removed; "
                                  f"{done} commit(s) saved before")
                return 130
            doc = history_doc(repo, sha, result, select=args.select, repeat=args.repeat, machine=machine,
                              mid=mid)
            check_saved(doc)
            out = write_json(target, doc)
            n_failed = sum(len(f) for f in result["failed"])
            failing += bool(n_failed or any(s != 0 for s in result["pytest_status"]))
            note = f"; [red]{n_failed} failed test result(s), timings saved[/]" if n_failed else ""
            err_console.print(f"{head}: done in {time.perf_counter() - t0:.0f} s -> {escape(str(out))}{note}")
            done += 1
    err_console.print(f"bench run: {done} saved, {skipped} skipped, {bad} failed, "
                      f"in {time.perf_counter() - total_t:.0f} s"
                      + (f"; {failing} commit(s) with failing benchmark tests" if failing else ""))
    return 1 if (bad or failing) else 0


# ------------------------------------------------------------------------------------------------ in-tree run
def cmd_bench(args) -> int:
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
    doc = saved_doc(data, commit, {"command": "bench", "select": args.select, "pytest_status": status},
                    machine_id=this_machine_id())
    check_saved(doc)
    table = Table(title=f"benchmarks at {commit or 'no commit'}")
    for col in ("benchmark", "min time (s)", "in-run ratio", "baseline"):
        table.add_column(col, overflow="fold")
    for b in data.get("benchmarks", []):
        extra = b.get("extra_info") or {}
        ratio = extra.get("ratio")
        table.add_row(escape(b["fullname"]), f"{b['stats']['min']:.4g}",
                      f"{ratio:.3g}" if isinstance(ratio, float) else "-", escape(str(extra.get("baseline", "-"))))
    console.print(table)
    if args.save:
        out = write_json(Path(args.out) / "bench" / f"{file_stem(commit, doc['created'])}.json", doc)
        console.print(f"saved -> {out}")
    return 0 if status == 0 else 1


# ------------------------------------------------------------------------------------------------ history
def load_saved(out: str | Path, history: str | None) -> tuple[list[dict], list[str]]:
    """Every saved run: the committed history (``history``, default :func:`reports.bench.history_dir`) plus
    ``OUT/bench/*.json``. Returns the documents and the sources read; a malformed file raises :class:`CliError`."""
    from boundlab.reports.bench import history_files, read_saved

    if history is not None and history != "" and not Path(history).is_dir():
        raise CliError(f"--history: folder not found: {history}")
    hdir = _history_arg(history) if history != "" else None
    local = Path(out) / "bench"
    files = history_files(hdir) + (sorted(local.glob("*.json")) if local.is_dir() else [])
    ok, bad = read_saved(files)
    if bad:
        path, msg = bad[0]
        raise CliError(f"{path}: {msg}" + (f" (and {len(bad) - 1} more malformed file(s))" if len(bad) > 1 else ""))
    sources = []
    if hdir is not None:
        n = sum(1 for p, _ in ok if hdir in p.parents)
        sources.append(f"{n} committed in {hdir}")
    sources.append(f"{sum(1 for p, _ in ok if local in p.parents)} local in {local}")
    return [doc for _, doc in ok], sources


def cmd_history(args) -> int:
    from boundlab.reports.bench import history, latest_regressions

    docs, sources = load_saved(args.out, args.history)
    if args.machine:
        from boundlab.reports.bench import machine_key

        docs = [d for d in docs if machine_key(d) == args.machine]
    if not docs:
        raise CliError(f"no saved benchmark runs ({'; '.join(sources)}"
                       + (f", machine {args.machine}" if args.machine else "")
                       + "): run `boundlab bench run HEAD` (committed history) or `boundlab bench --save` first")
    series = history(docs, args.threshold)
    for s in series:
        table = Table(title=escape(f"{s.name} @ {s.machine}") + ("  (judged on the in-run ratio)" if s.tracks_ratio
                                                        else "  (no in-run ratio: judged on time)"))
        for col in ("commit", "runs", "median min time (s)", "x prev", "median ratio", "x prev", "flag"):
            table.add_column(col, overflow="fold")
        for p in s.points:
            def f(v, d=4):
                return "-" if v is None else f"{v:.{d}g}"
            flag = " ".join(x for x in ("[red]REGRESSION[/]" if p.regression else "",
                                        f"[yellow]test failed in {p.failed}/{p.runs} runs[/]" if p.failed else "") if x)
            table.add_row(p.commit[:12], str(p.runs), f(p.time), f(p.time_change, 3), f(p.ratio),
                          f(p.ratio_change, 3), flag)
        console.print(table)
    bad = latest_regressions(series)
    few = sorted({s.machine for s in series if s.points and s.points[-1].runs < 3})
    if few:
        console.print(f"note: the latest commit has fewer than 3 runs on {', '.join(few)} (one noisy run can flag a "
                      f"step; `boundlab bench run REV` repeats 3 times)")
    if bad:
        console.print(f"[red]{len(bad)} benchmark(s) regressed beyond x{args.threshold:g} at the latest commit: "
                      f"{escape(', '.join(f'{s.name} @ {s.machine}' for s in bad))}[/]")
        return 1
    console.print(f"no regression beyond x{args.threshold:g} at the latest commit ({len(docs)} saved runs: "
                  f"{'; '.join(sources)})")
    return 0


def register(subparsers) -> None:
    s = subparsers.add_parser("bench", help="run the benchmarks (optionally save); `bench run REVS`; `bench history`")
    s.add_argument("--save", action="store_true", help="save the run to OUT/bench/<commit>.json")
    s.add_argument("--out", default="boundlab-results", help="results folder (default: %(default)s)")
    s.add_argument("-k", "--select", default=None, help="pytest -k expression to run a subset")
    s.set_defaults(func=cmd_bench)
    sub = s.add_subparsers(dest="bench_action", required=False)
    r = sub.add_parser("run", help="benchmark commits in temporary worktrees; save to benchmarks/history/<machine>/")
    r.add_argument("revs", metavar="REVS", help="A..B (first-parent commits after A up to B), a revision, or a,b,c")
    r.add_argument("-k", "--select", default=None, help="pytest -k expression to run a subset")
    r.add_argument("--repeat", type=positive_int, default=3, help="separate pytest runs per commit (default: %(default)s)")
    r.add_argument("--history", default=None,
                   help="history folder to write (default: the checkout's benchmarks/history)")
    r.add_argument("--skip-existing", action="store_true", help="skip commits already saved for this machine")
    r.set_defaults(func=cmd_run)
    h = sub.add_parser("history", help="trend of each benchmark across commits; exit 1 on a regression")
    h.add_argument("--out", default="boundlab-results", help="results folder with local runs in bench/ "
                   "(default: %(default)s)")
    h.add_argument("--history", default=None, help="committed history folder (default: the checkout's "
                   "benchmarks/history, or $BOUNDLAB_BENCH_HISTORY; '' for none)")
    h.add_argument("--threshold", type=_threshold, default=1.3,
                   help="flag a step worse than this factor (default: %(default)s)")
    h.add_argument("--machine", default=None, help="only this machine id (default: every machine, never mixed)")
    h.set_defaults(func=cmd_history)
