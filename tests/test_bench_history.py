"""Benchmarks across commits: the committed history (benchmarks/history/<machine>/<commit>.json), medians over
repeats, per-machine series, machine ids, REV_RANGE parsing, `bench run` on a throw-away git repository.

Synthetic saved runs are written by hand below; every expectation is derived from those numbers. The one real
`bench run` of this checkout's HEAD is marked slow (it imports torch in a fresh environment: ~30 s).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from boundlab.cli import main
from boundlab.commands import bench as B
from boundlab.commands._common import CliError
from boundlab.reports.bench import (ENVIRONMENT, HISTORY_ENV, Malformed, check_saved, history, history_files,
                                    latest_regressions, machine_id, machine_key, read_saved)

FAST, RATIO = "benchmarks/test_x.py::test_fast", "benchmarks/test_x.py::test_ratio"


def _run(t_fast: float, t_ratio: float, ratio: float) -> dict:
    return {"benchmarks": [
        {"name": "test_fast", "fullname": FAST, "stats": {"min": t_fast, "median": t_fast}, "extra_info": {}},
        {"name": "test_ratio", "fullname": RATIO, "stats": {"min": t_ratio}, "extra_info": {"ratio": ratio}}]}


def _doc(commit: str, day: int, runs: list[dict], machine: str = "box-2cpu-00000000", failed=None) -> dict:
    doc = {"created": f"2026-12-{day:02d}T12:00:00+00:00", "commit": "harness", "versions": {}, "config": {},
           "seed": None, "kind": "bench", "commit_id": commit, "commit_time": f"2026-12-{day:02d}T10:00:00+00:00",
           "machine_id": machine, "machine": {"node": machine.split("-")[0], "cpu_count": 2, "cpu_model": "X"},
           "environment": ENVIRONMENT, "runs": runs}
    if failed is not None:
        doc["failed"] = failed
    return doc


def _series(docs, threshold=1.3):
    return {(s.name, s.machine): s for s in history(docs, threshold)}


# ------------------------------------------------------------------------------------------ medians, regressions
def test_median_of_repeats_ignores_one_noisy_run():
    # commit b: one of three runs is 3x slower (machine load); the median is the typical run
    docs = [_doc("a" * 40, 1, [_run(1.0, 1.0, 10.0), _run(1.1, 1.0, 10.0), _run(0.9, 1.0, 10.0)]),
            _doc("b" * 40, 2, [_run(3.0, 1.0, 3.0), _run(1.05, 1.0, 10.5), _run(0.95, 1.0, 9.5)])]
    s = _series(docs)
    fast, rat = s[(FAST, "box-2cpu-00000000")], s[(RATIO, "box-2cpu-00000000")]
    assert [p.runs for p in fast.points] == [3, 3] and fast.points[1].times == [3.0, 1.05, 0.95]
    assert fast.points[0].time == pytest.approx(1.0) and fast.points[1].time == pytest.approx(1.05)
    assert rat.points[1].ratio == pytest.approx(9.5)  # median of 3.0, 10.5, 9.5
    # breaks on: one noisy run (3x on time, ratio 10 -> 3) flagging the step
    assert latest_regressions(list(s.values())) == []


def test_consistent_slowdown_is_flagged_on_ratio_or_time():
    docs = [_doc("a" * 40, 1, [_run(1.0, 1.0, 10.0)] * 3),
            _doc("b" * 40, 2, [_run(1.5, 0.5, 5.0), _run(1.4, 0.5, 4.0), _run(1.6, 0.5, 6.0)])]
    s = _series(docs)
    fast, rat = s[(FAST, "box-2cpu-00000000")], s[(RATIO, "box-2cpu-00000000")]
    assert fast.points[-1].time_change == pytest.approx(1.5) and fast.points[-1].regression  # time-only benchmark
    # the ratio benchmark got faster in time but its in-run ratio halved: judged on the ratio
    assert rat.points[-1].ratio_change == pytest.approx(0.5) and rat.points[-1].regression
    assert {x.name for x in latest_regressions(list(s.values()))} == {FAST, RATIO}
    assert latest_regressions(history(docs, 2.5)) == []  # breaks on: threshold ignored


def test_machines_are_never_mixed_and_runs_of_one_commit_pool():
    fast_box = [_doc("a" * 40, 1, [_run(1.0, 1.0, 10.0)] * 3, "fast-8cpu-11111111")]
    slow_box = [_doc("b" * 40, 2, [_run(5.0, 5.0, 10.0)] * 3, "slow-2cpu-22222222"),
                _doc("b" * 40, 3, [_run(5.2, 5.0, 10.0)], "slow-2cpu-22222222")]  # same commit saved again later
    s = _series(fast_box + slow_box)
    # breaks on: a slower machine's later commit read as a 5x regression of the faster machine's series
    assert latest_regressions(list(s.values())) == []
    slow = s[(FAST, "slow-2cpu-22222222")]
    assert len(slow.points) == 1 and slow.points[0].runs == 4 and slow.points[0].time == pytest.approx(5.0)
    assert len(s[(FAST, "fast-8cpu-11111111")].points) == 1


def test_commit_order_is_commit_time_not_input_order_and_failures_are_counted():
    docs = [_doc("c" * 40, 3, [_run(1.0, 1.0, 10.0)] * 3, failed=[[], [FAST], []]),
            _doc("a" * 40, 1, [_run(1.0, 1.0, 10.0)] * 3)]
    fast = _series(docs)[(FAST, "box-2cpu-00000000")]
    assert [p.commit[0] for p in fast.points] == ["a", "c"]
    assert fast.points[-1].failed == 1 and fast.points[0].failed == 0  # breaks on: failed tests hidden


def test_saved_format_checks_name_the_key():
    check_saved(_doc("a" * 40, 1, [_run(1.0, 1.0, 1.0)]))
    with pytest.raises(Malformed, match="runs"):
        check_saved(_doc("a" * 40, 1, []))
    bad = _run(1.0, 1.0, 1.0)
    del bad["benchmarks"][1]["stats"]["min"]
    with pytest.raises(Malformed, match=r"runs\[1\]\.benchmarks\[1\]\.stats\.min"):
        check_saved(_doc("a" * 40, 1, [_run(1.0, 1.0, 1.0), bad]))


# ---------------------------------------------------------------------------------------------- machine ids
def test_machine_id_is_short_stable_and_safe():
    a = machine_id("build host.local", 2, "AMD EPYC 7B13")
    assert a == machine_id("build host.local", 2, "AMD EPYC 7B13")  # breaks on: a random or time-based id
    assert a.startswith("build_host.local-2cpu-") and len(a.rsplit("-", 1)[1]) == 8
    assert "/" not in machine_id("a/../b", 4, "x")
    assert len({a, machine_id("build host.local", 4, "AMD EPYC 7B13"), machine_id("other", 2, "AMD EPYC 7B13"),
                machine_id("build host.local", 2, "Intel Xeon")}) == 4
    assert B.this_machine_id() == B.this_machine_id()
    info = B.machine_info()
    assert B.this_machine_id() == machine_id(info["node"], info["cpu_count"], info["cpu_model"])
    # files written before ids existed: derived from pytest-benchmark's machine_info (node, count, brand)
    legacy = {"machine": {"node": "ci-box", "cpu": {"brand_raw": "Fixture CPU", "count": 2}}}
    assert machine_key(legacy) == machine_id("ci-box", 2, "Fixture CPU")


# ---------------------------------------------------------------------------------------------- git fixtures
def _git(repo: Path, *args: str) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@example.org"}
    return subprocess.run(["git", *args], cwd=repo, env=env, check=True, capture_output=True,
                          text=True).stdout.strip()


BENCH_FILE = '''
def test_tiny(benchmark):
    out = benchmark.pedantic(sum, args=(range(1000),), rounds=3, iterations=1)
    benchmark.extra_info["ratio"] = 2.0
    assert out == 499500
'''


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """c1: no benchmarks; c2: a tiny installable project with benchmarks/test_tiny.py; c3: a change to it."""
    r = tmp_path_factory.mktemp("repo")
    _git(r, "init", "-q", "-b", "main")
    (r / "README").write_text("x\n")
    _git(r, "add", ".")
    _git(r, "commit", "-q", "-m", "c1 no benchmarks")
    (r / "pyproject.toml").write_text('[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = '
                                      '"setuptools.build_meta"\n[project]\nname = "tinybench"\nversion = "0.0.1"\n'
                                      '[tool.setuptools]\npackages = ["tinybench"]\n')
    (r / "tinybench").mkdir()
    (r / "tinybench/__init__.py").write_text("VALUE = 1\n")
    (r / "benchmarks").mkdir()
    (r / "benchmarks/test_tiny.py").write_text(BENCH_FILE)
    _git(r, "add", ".")
    _git(r, "commit", "-q", "-m", "c2 benchmarks")
    (r / "tinybench/__init__.py").write_text("VALUE = 2\n")
    _git(r, "commit", "-q", "-am", "c3 change")
    return r


def _shas(repo: Path) -> list[str]:
    return _git(repo, "rev-list", "--reverse", "HEAD").split()


def test_parse_revs_ranges_lists_and_errors(repo):
    c1, c2, c3 = _shas(repo)
    assert B.parse_revs("HEAD~2..HEAD", repo) == [c2, c3]  # oldest first, the lower end excluded
    assert B.parse_revs("HEAD", repo) == [c3]
    assert B.parse_revs(f"{c1[:8]},HEAD~1..HEAD,HEAD", repo) == [c1, c3]  # comma list, duplicates dropped
    for bad, msg in [("nosuch", "unknown revision"), ("HEAD~1 HEAD", "whitespace"), ("HEAD...HEAD~1", "symmetric"),
                     ("HEAD,,HEAD", "empty item"), ("..HEAD", "both ends"), ("HEAD..HEAD~2", "no commits"),
                     ("-x", "bad revision"), ("HEAD;rm", "bad revision"), ("", "empty")]:
        with pytest.raises(CliError, match=msg):
            B.parse_revs(bad, repo)


def _worktrees(repo: Path) -> list[str]:
    return [ln for ln in _git(repo, "worktree", "list", "--porcelain").splitlines() if ln.startswith("worktree ")]


def test_commit_without_benchmarks_is_skipped_and_cleaned_up(repo, tmp_path, monkeypatch):
    monkeypatch.setattr(B.tempfile, "tempdir", str(tmp_path))
    with pytest.raises(B.Skipped, match="no benchmarks"):
        B.run_commit(repo, _shas(repo)[0], select=None, repeat=3, say=lambda s: None)
    assert len(_worktrees(repo)) == 1 and list(tmp_path.iterdir()) == []  # breaks on: worktree/tmp left behind


def test_interrupt_removes_worktree_and_env(repo, tmp_path, monkeypatch):
    monkeypatch.setattr(B.tempfile, "tempdir", str(tmp_path))

    def interrupted(env, wt, log):
        env.mkdir()
        raise KeyboardInterrupt

    monkeypatch.setattr(B, "make_env", interrupted)
    with pytest.raises(KeyboardInterrupt):
        B.run_commit(repo, _shas(repo)[1], select=None, repeat=3, say=lambda s: None)
    # breaks on: Ctrl-C leaving a registered worktree or the temporary environment behind
    assert len(_worktrees(repo)) == 1 and list(tmp_path.iterdir()) == []


def test_bench_run_cli_end_to_end_on_a_tiny_repo(repo, tmp_path, monkeypatch, capsys):
    """The real path: worktree, temporary venv (current packages + the commit installed editable), pytest
    -benchmark twice per commit, the saved file; a commit without benchmarks skipped, not an error."""
    monkeypatch.setattr(B, "_REPO", repo)
    hist = tmp_path / "hist"
    assert main(["bench", "run", "HEAD~2..HEAD~1,HEAD~2", "--repeat", "2", "--history", str(hist)]) == 0
    err = capsys.readouterr().err
    c1, c2, _ = _shas(repo)
    assert "skipped (no benchmarks" in err and "done in" in err and "run 2/2" in err
    files = history_files(hist)
    mid = B.this_machine_id()
    assert files == [hist / mid / f"{c2}.json"]  # breaks on: the skipped commit saved, or the wrong key
    doc = json.loads(files[0].read_text())
    check_saved(doc)
    assert doc["environment"] == ENVIRONMENT and doc["machine_id"] == mid and doc["machine"]["cpu_count"]
    assert doc["commit_id"] == c2 and doc["commit_time"] and doc["config"]["repeat"] == 2
    assert len(doc["runs"]) == 2 and doc["failed"] == [[], []] and "versions" in doc
    assert doc["runs"][0]["benchmarks"][0]["fullname"] == "benchmarks/test_tiny.py::test_tiny"
    assert doc["runs"][0]["benchmarks"][0]["extra_info"]["ratio"] == 2.0
    assert len(_worktrees(repo)) == 1
    # the saved file is read back by `bench history` (committed history only, no local runs)
    assert main(["bench", "history", "--history", str(hist), "--out", str(tmp_path / "none")]) == 0
    assert "test_tiny" in capsys.readouterr().out


def test_bench_run_bad_input_exits_2(repo, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(B, "_REPO", repo)
    assert main(["bench", "run", "nosuch..HEAD", "--history", str(tmp_path)]) == 2
    assert "unknown revision 'nosuch'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["bench", "run", "HEAD", "--repeat", "0"])
    monkeypatch.setattr(B, "_REPO", tmp_path)  # not a git checkout
    assert main(["bench", "run", "HEAD", "--history", str(tmp_path)]) == 2


# ------------------------------------------------------------------------------------------ bench history CLI
def _write(folder: Path, doc: dict) -> Path:
    p = folder / doc["machine_id"] / f"{doc['commit_id']}.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(doc))
    return p


def test_cli_history_reads_committed_history_plus_local_runs(tmp_path, capsys):
    hist, out = tmp_path / "hist", tmp_path / "res"
    _write(hist, _doc("a" * 40, 1, [_run(1.0, 1.0, 10.0)] * 3))
    _write(hist, _doc("b" * 40, 2, [_run(1.0, 1.0, 10.0)] * 3))
    # a fresh clone: no local runs, the committed history alone shows the trend
    assert main(["bench", "history", "--history", str(hist), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "aaaaaaaaaaaa" in text and "bbbbbbbbbbbb" in text and "2 committed" in text
    # a local run of a later commit on the same machine extends that machine's series and can flag it
    (out / "bench").mkdir(parents=True)
    (out / "bench" / "c.json").write_text(json.dumps(_doc("c" * 40, 3, [_run(2.0, 1.0, 10.0)] * 3)))
    assert main(["bench", "history", "--history", str(hist), "--out", str(out)]) == 1
    assert "REGRESSION" in capsys.readouterr().out
    assert main(["bench", "history", "--history", str(hist), "--out", str(out), "--machine", "other"]) == 2
    assert main(["bench", "history", "--history", str(tmp_path / "missing")]) == 2  # explicit folder must exist
    (hist / "box-2cpu-00000000" / "broken.json").write_text('{"runs": []}')
    assert main(["bench", "history", "--history", str(hist), "--out", str(out)]) == 2
    assert "broken.json" in capsys.readouterr().err  # breaks on: a malformed committed file silently skipped


def test_history_dir_env_override(tmp_path, monkeypatch):
    from boundlab.reports.bench import history_dir

    monkeypatch.setenv(HISTORY_ENV, str(tmp_path))
    assert history_dir() == tmp_path
    monkeypatch.setenv(HISTORY_ENV, "")
    assert history_dir() is None
    monkeypatch.delenv(HISTORY_ENV)
    checkout = Path(B.__file__).resolve().parents[2] / "benchmarks" / "history"
    assert history_dir() == (checkout if checkout.is_dir() else None)


def test_committed_history_files_are_valid():
    """Every file under benchmarks/history is a readable saved run keyed by its machine and commit."""
    from boundlab.reports.bench import history_dir

    folder = Path(B.__file__).resolve().parents[2] / "benchmarks" / "history"
    ok, bad = read_saved(history_files(folder))
    assert bad == []  # breaks on: a committed history file the reader rejects
    for path, doc in ok:
        assert path.parent.name == doc["machine_id"] == machine_key(doc) and path.stem == doc["commit_id"]
        assert doc["environment"] == ENVIRONMENT and len(doc["runs"]) >= 3
    assert history_dir() is not None or not ok


# ---------------------------------------------------------------------------------------------- the report
def test_report_section_plots_committed_history(tmp_path, monkeypatch):
    from boundlab.reports.html import _bench_section
    from boundlab.reports.load import Results

    res = Results(root=tmp_path)
    monkeypatch.setenv(HISTORY_ENV, str(tmp_path / "none"))
    assert "No saved benchmark runs" in _bench_section(res, 1.3)
    hist = tmp_path / "hist"
    _write(hist, _doc("a" * 40, 1, [_run(1.0, 1.0, 10.0)] * 3))
    _write(hist, _doc("b" * 40, 2, [_run(1.0, 1.0, 4.0)] * 3))
    (hist / "box-2cpu-00000000" / "bad.json").write_text("{")
    monkeypatch.setenv(HISTORY_ENV, str(hist))
    html = _bench_section(res, 1.3)
    # breaks on: the trend not plotted (one small panel per benchmark and machine), or the regression not flagged
    assert html.count('data-plot="bench:box-2cpu-00000000:') == 2 and "latest step regressed" in html
    assert "machine box-2cpu-00000000" in html and "2 commit file(s) from the committed history" in html
    assert any("bad.json" in p.path for p in res.problems)  # a malformed committed file is named, not fatal


@pytest.mark.slow
def test_bench_run_head_of_this_checkout(tmp_path):
    """The real thing on this repository (slow: a fresh environment importing torch): HEAD with one benchmark."""
    hist = tmp_path / "hist"
    r = subprocess.run([sys.executable, "-m", "boundlab", "bench", "run", "HEAD", "-k", "diagram_w2", "--repeat",
                        "1", "--history", str(hist)], capture_output=True, text=True, timeout=600)
    assert r.returncode in (0, 1), r.stderr
    if "skipped" not in r.stderr:
        (f,) = history_files(hist)
        doc = json.loads(f.read_text())
        assert doc["runs"][0]["benchmarks"][0]["fullname"].endswith("test_diagram_w2_distance")
