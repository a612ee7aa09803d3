"""HTML report and benchmark history: built from the fixture results in tests/data/reports (documented format).

Fixture numbers are inputs written by hand; every expectation below is derived from them, never from running
the code under test.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from boundlab.cli import main
from boundlab.reports import build, build_report
from boundlab.reports.bench import check_saved, file_stem, history, latest_regressions, saved_doc
from boundlab.reports.load import load_results
from boundlab.reports.mathsvg import latex_svg, to_mathtext

DATA = Path(__file__).parent / "data" / "reports"


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> str:
    out = build_report(DATA, tmp_path_factory.mktemp("report"))
    assert out.name == "report.html"
    return out.read_text()


def test_report_has_every_section_and_bound(report_html):
    # breaks on: a section or a bound card dropped, or the verdict/SDP tables not rendered
    for sid in ("bounds", "sdp", "experiments", "benchmarks", "verdicts"):
        assert f'id="{sid}"' in report_html
    for name in ("conv.kernel_matrix", "conv.circular_exact", "planted.conv_no_k_factor"):
        assert f'data-plot="scatter:{name}"' in report_html and f'data-plot="ratio:{name}"' in report_html
    assert "Attn has lower activation variance than Conv" in report_html
    assert report_html.count('class="card run"') == 2  # the two topolip units
    assert 'data-plot="robustness:attn-digits-s0-0123abcd"' in report_html
    assert "TopoLip A" in report_html and "W_2 H0 to previous layer" in report_html


def test_report_is_self_contained(report_html):
    # breaks on: any CDN script/stylesheet/font/image (the report must work offline); the one inline script
    # (table sorting/filtering, tested in Chromium) fetches nothing
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", report_html, flags=re.S)
    assert len(scripts) == 1 and scripts[0][0].strip() == "", [a for a, _ in scripts]
    assert not re.search(r"fetch\(|XMLHttpRequest|import\(|\.src\s*=", scripts[0][1])
    assert "<link" not in report_html and "@import" not in report_html
    refs = re.findall(r'(?:src|href|xlink:href)\s*=\s*"([^"]*)"', report_html)
    assert all(r.startswith("#") or r.startswith("data:") for r in refs), [r for r in refs if not r.startswith("#")]
    assert "url(http" not in report_html


def test_report_shows_counterexample_and_replay(report_html):
    cx = json.loads((DATA / "corpus/planted.conv_no_k_factor/a4eeafa55e952faa.json").read_text())
    # breaks on: the counterexample's two values, its shape/scale config or the replay command not shown
    assert f"{cx['info']['lower']:.10g}" in report_html and f"{cx['info']['upper']:.10g}" in report_html
    assert cx["info"]["test"] in report_html
    assert "input_size" in report_html and "kernel.shape" in report_html
    assert "FALSIFIED" in report_html


def test_report_math_and_statement(report_html):
    from boundlab.theory.registry import get

    b = get("conv.kernel_matrix")
    # breaks on: math not rendered to inline SVG, raw LaTeX or assumptions not shown
    assert report_html.count('<div class="math"><svg') >= 2
    import html as _h

    assert _h.escape(b.latex) in report_html and all(_h.escape(a) in report_html for a in b.assumptions)


def test_report_sdp_beside_analytic(report_html):
    doc = json.loads((DATA / "lipsdp/mlp-3x16.json").read_text())
    # breaks on: a row's value or its lower/value ratio missing from the table, a falsified row shown as a bound
    for r in doc["results"]:
        assert f"<td>{r['value']:.8g}</td>" in report_html
        if r.get("tightness") is not None:
            assert f"<td>{r['tightness']:.3g}</td>" in report_html
    assert '<span class="kind-falsified">falsified</span>' in report_html


def test_report_flags_planted_bench_regression(report_html):
    # the fixture's last commit halves the conv benchmark's in-run ratio (38 -> 19)
    # breaks on: the regression not flagged in the report
    assert "REGRESSION" in report_html and "latest step regressed" in report_html


def _copy(tmp_path) -> Path:
    dst = tmp_path / "res"
    shutil.copytree(DATA, dst)
    return dst


def test_malformed_and_missing_files_are_named_and_rest_renders(tmp_path, capsys):
    res_dir = _copy(tmp_path)
    (res_dir / "verify.json").write_text("{not json")
    run = res_dir / "topolip/conv-digits-s0-89abcdef/result.json"
    doc = json.loads(run.read_text())
    del doc["epochs"][0]["layers"][1]["index"]
    run.write_text(json.dumps(doc))
    (res_dir / "lipsdp/mlp-3x16.json").unlink()
    out, res = build(res_dir, tmp_path / "out")
    text = out.read_text()
    err = capsys.readouterr().err
    # breaks on: a broken file crashing the report, or a message that does not name the file and key
    assert str(res_dir / "verify.json") in err and "not valid JSON" in err
    assert "epochs[0].layers[1].index" in text and str(run) in text
    assert 'id="problems"' in text
    assert "attn-digits-s0-0123abcd" in text  # the intact run still renders
    assert 'data-plot="bench:' in text and "No lipsdp/*.json" in text


def test_bad_observation_line_is_skipped_with_line_number(tmp_path):
    res_dir = _copy(tmp_path)
    jl = res_dir / "properties/conv.kernel_matrix.jsonl"
    lines = jl.read_text().splitlines()
    lines.insert(2, '{"lower": "oops"}')
    jl.write_text("\n".join(lines) + "\n")
    res = load_results(res_dir)  # reading only: no need to render
    # breaks on: one bad line discarding the whole property, or the message not naming file and line
    assert len(res.observations["conv.kernel_matrix"]) == len(lines) - 1
    assert any(p.path == str(jl) and "line 3" in p.message for p in res.problems)


def test_cli_report_exit_codes(tmp_path, capsys):
    assert main(["report", "--results", str(DATA), "--out", str(tmp_path / "a")]) == 0
    assert (tmp_path / "a/report.html").is_file()
    empty = tmp_path / "empty"
    empty.mkdir()
    # breaks on: an empty results folder reported as success
    assert main(["report", "--results", str(empty), "--out", str(tmp_path / "b")]) == 2
    assert "no readable result file" in capsys.readouterr().err
    assert "verify.json" in (tmp_path / "b/report.html").read_text()
    assert main(["report", "--results", str(tmp_path / "nope")]) == 2
    assert "--results: folder not found" in capsys.readouterr().err


def _saved():
    return [json.loads(p.read_text()) for p in sorted((DATA / "bench").glob("*.json"))]


def test_bench_history_flags_planted_regression():
    docs = _saved()
    series = {s.name: s for s in history(list(reversed(docs)), threshold=1.3)}  # input order must not matter
    conv = series["benchmarks/test_speed.py::test_conv_fft_vs_power_iteration"]
    assert [p.commit for p in conv.points] == ["aaaaaaa1", "bbbbbbb2", "ccccccc3"]  # breaks on: wrong ordering
    assert conv.points[-1].ratio_change == pytest.approx(19 / 38)
    # breaks on: regressions judged on the noisy time (which improved here) instead of the in-run ratio
    assert [p.regression for p in conv.points] == [False, False, True]
    assert [s.name for s in latest_regressions(list(series.values()))] == [conv.name]
    # a looser threshold than the planted factor 2 lets it pass; breaks on: threshold ignored
    assert latest_regressions(history(docs, threshold=2.5)) == []


def test_bench_history_time_only_benchmark(tmp_path):
    docs = _saved()[:2]
    docs[1]["benchmark"]["benchmarks"][1]["stats"]["min"] = 0.010 * 1.5
    s = {x.name: x for x in history(docs, 1.3)}["benchmarks/test_speed.py::test_no_ratio"]
    # breaks on: benchmarks without a ratio never flagged
    assert s.points[-1].regression and s.points[-1].time_change == pytest.approx(1.5)


def test_cli_bench_history(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("BOUNDLAB_BENCH_HISTORY", "")  # the fixture runs only, not the committed benchmarks/history
    assert main(["bench", "history", "--out", str(DATA)]) == 1  # breaks on: regression not turning the exit nonzero
    assert "REGRESSION" in capsys.readouterr().out
    ok = tmp_path / "ok"
    (ok / "bench").mkdir(parents=True)
    for p in sorted((DATA / "bench").glob("*.json"))[:2]:
        shutil.copy(p, ok / "bench" / p.name)
    assert main(["bench", "history", "--out", str(ok)]) == 0
    (ok / "bench" / "broken.json").write_text('{"benchmark": {"benchmarks": [{"fullname": "x", "stats": {}}]}}')
    assert main(["bench", "history", "--out", str(ok)]) == 2  # breaks on: malformed file silently skipped
    assert "broken.json" in capsys.readouterr().err
    assert main(["bench", "history", "--out", str(tmp_path / "none")]) == 2
    with pytest.raises(SystemExit):
        main(["bench", "history", "--threshold", "0.9"])


def test_saved_doc_roundtrip():
    raw = _saved()[0]["benchmark"]
    doc = saved_doc(raw, "abc123+dirty", {"command": "bench"})
    check_saved(doc)  # breaks on: the saved format not accepted by its own reader
    assert doc["commit_id"] == "abc123+dirty" and doc["machine"]["node"] == "ci-box" and "versions" in doc
    assert file_stem("abc123+dirty", doc["created"]) == "abc123-dirty"
    assert file_stem(None, "2026-01-02T03:04:05+00:00").startswith("nocommit-2026")


def test_mathtext_rewrites_and_fallback():
    # breaks on: unbraced arguments or \le passed through (mathtext rejects them)
    assert to_mathtext(r"\tfrac12\le\sqrt n\big(x\big)") == r"\frac{1}{2}\leq\sqrt{n}(x)"
    assert latex_svg(r"\frac12\le\sqrt n").startswith("<svg")
    assert latex_svg(r"\frac{") is None or latex_svg(r"\frac{").startswith("<svg")
    assert latex_svg(r"\notacommand{x}") is None  # breaks on: a parse failure raising instead of falling back


def test_reports_never_import_torch(tmp_path):
    code = (f"import sys; from boundlab.reports import plots; from boundlab.reports.load import load_results; "
            f"load_results({str(DATA)!r}); plots.ratio_hist([1.0, 0.5], 'x'); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"  # breaks on: reports pulling in torch


def test_cli_report_new_flags_csv_and_compare(tmp_path, capsys, monkeypatch):
    """--out is the results folder (as in every command), --html the report file, --csv the tables, --compare a
    diff against an older folder: a property falsified only in the new run is listed as newly falsified."""
    import json

    monkeypatch.setenv("BOUNDLAB_BENCH_HISTORY", "")
    new = _copy(tmp_path / "new")
    assert main(["report", "--out", str(new), "--html", str(tmp_path / "r.html"), "--csv", str(tmp_path / "csv")]) == 0
    assert (tmp_path / "r.html").is_file() and not (new / "report.html").exists()
    bounds_csv = (tmp_path / "csv" / "bounds.csv").read_text().splitlines()
    assert bounds_csv[0].startswith("bound,kind,confidence") and len(bounds_csv) == 4  # header + 3 properties
    assert (tmp_path / "csv" / "verdicts.csv").is_file() and (tmp_path / "csv" / "comparisons.csv").is_file()
    old = _copy(tmp_path / "old")
    doc = json.loads((new / "verify.json").read_text())
    for p in doc["properties"]:
        if p["bound"] == "conv.kernel_matrix":
            p["falsified"], p["worst_ratio"] = True, 1.5
    (new / "verify.json").write_text(json.dumps(doc))
    assert main(["report", "--out", str(new), "--compare", str(old)]) == 0
    page = (new / "report.html").read_text()
    assert 'id="changes"' in page and "newly falsified" in page and "expectation changed" in page
    assert main(["report", "--out", str(new), "--compare", str(tmp_path / "nope")]) == 2
    assert "--compare" in capsys.readouterr().err
