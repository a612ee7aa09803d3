"""The self-contained HTML report: one file, CSS inline, plots and math as inline SVG, no script, no fetch.

:func:`build_report` reads a results folder (``docs/results.md``) with :mod:`reports.load`, draws with
:mod:`reports.plots` and writes ``OUT/report.html``. It never recomputes a result; unreadable files are listed
in a "Problems" section (and returned) and the rest still renders.
"""

from __future__ import annotations

import datetime as _dt
import html
import math
import sys
from pathlib import Path

from ..io.results import write_text
from ..theory.registry import expectation_met
from . import plots
from .bench import history, latest_regressions
from .load import Results, load_results, num
from .mathsvg import latex_svg
from .teeth import teeth_section

DEFAULT_THRESHOLD = 1.3

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1d2330;background:#f6f7f9}
header{background:#1d2330;color:#fff;padding:14px 24px}header h1{margin:0;font-size:22px}
header p{margin:4px 0 0;color:#c7ccd6;font-size:13px}
nav{padding:8px 24px;background:#e9ecf1;font-size:14px}nav a{margin-right:16px;color:#1f4e9c}
main{padding:8px 24px 40px}section{margin:18px 0}h2{border-bottom:2px solid #d0d5de;padding-bottom:4px}
h3{margin:6px 0}.card{background:#fff;border:1px solid #d9dde4;border-radius:6px;padding:12px 16px;margin:12px 0}
table{border-collapse:collapse;font-size:13px;margin:8px 0}td,th{border:1px solid #d0d5de;padding:3px 8px;
text-align:left;vertical-align:top}th{background:#eef1f5}td.num{text-align:right;font-variant-numeric:tabular-nums}
.tag{display:inline-block;border-radius:10px;padding:1px 8px;font-size:12px;margin-right:4px;background:#e6e9ef}
.tag.standard{background:#d8f0dc}.tag.derived{background:#dbe7fb}.tag.reconstructed{background:#fbe7c6}
.tag.planted{background:#eadcf8}.ok{color:#17803d;font-weight:600}.bad{color:#c62828;font-weight:600}
.math{overflow-x:auto;padding:4px 0}.math svg{max-width:100%;height:auto}code,pre{font-size:12px;
background:#f0f2f5;border-radius:4px;padding:1px 4px}pre{padding:8px;overflow-x:auto;white-space:pre-wrap}
.plots{display:flex;flex-wrap:wrap;gap:10px}.plots svg{max-width:100%;height:auto;background:#fff}
.warn{color:#b26a00;font-weight:600}.problems{background:#fff4f4;border:1px solid #e3a4a4}.muted{color:#667085;font-size:13px}
"""


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _fmt(x, digits: int = 6) -> str:
    v = num(x)
    if v is None:
        return "-" if x is None else _e(x)
    if math.isinf(v) or math.isnan(v):
        return str(v)
    return f"{v:.{digits}g}"


def _table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    """``rows`` hold ready HTML cells (escape before passing)."""
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _anchor(name: str) -> str:
    return "bound-" + "".join(ch if ch.isalnum() else "-" for ch in name)


# --------------------------------------------------------------------------------------------- bounds
def _replay_hint(bound: str, cx: dict | None) -> str:
    test = (cx or {}).get("info", {}).get("test")
    where = f" The case is saved at <code>{_e(cx['path'])}</code> (config + <code>.npz</code> arrays)." if cx else ""
    cmd = (f'python -m pytest "{test}" -p no:cacheprovider' if test
           else f'boundlab verify -k "{bound.partition(".")[2] or bound}"')
    return (f"<p>Replay:{where} Saved counterexamples are replayed as explicit Hypothesis examples every time the "
            f"property runs, e.g. <code>{_e(cmd)}</code> (from the repository root).</p>")


def _counterexample(p: dict, obs: list[dict], cx: dict | None) -> str:
    worst = max((o for o in obs if o.get("ratio") is not None), key=lambda o: o["ratio"], default=None)
    parts = []
    if cx:
        info = cx.get("info", {})
        rows = [[_e(k), _e(v)] for k, v in sorted(cx.get("config", {}).items())]
        rows += [[_e(f"{k}.shape"), _e(v)] for k, v in sorted(cx.get("shapes", {}).items())]
        rows += [["<b>empirical lower bound</b>", _fmt(info.get("lower"), 10)],
                 ["<b>claimed bound</b>", _fmt(info.get("upper"), 10)]]
        lo, up = num(info.get("lower")), num(info.get("upper"))
        if lo is not None and up:
            rows.append(["<b>ratio</b>", _fmt(lo / up, 8)])
        parts.append(f"<p>Shrunk counterexample (size {_e(p.get('shrunk_size'))}, first found at size "
                     f"{_e(p.get('first_violation_size'))}):</p>" + _table(["field", "value"], rows))
    if worst is not None:
        rows = [[_e(k), _e(v)] for k, v in sorted((worst.get("case") or {}).items())]
        rows += [["<b>empirical lower bound</b>", _fmt(worst["lower"], 10)],
                 ["<b>claimed bound</b>", _fmt(worst["upper"], 10)], ["<b>ratio</b>", _fmt(worst["ratio"], 8)]]
        parts.append("<p>Worst case seen in this run:</p>" + _table(["field", "value"], rows))
    if not parts:
        parts.append('<p class="muted">No counterexample file was recorded.</p>')
    return "".join(parts) + _replay_hint(p["bound"], cx)


def _bound_card(res: Results, p: dict) -> str:
    name = p["bound"]
    meta = res.bounds.get(name, {})
    conf = p.get("confidence") or meta.get("confidence", "")
    latex = meta.get("latex", "")
    svg = latex_svg(latex) if latex else None
    if latex:
        math_html = (f'<div class="math">{svg}</div>' if svg else
                     '<p class="muted">(mathtext could not render this statement; raw LaTeX below)</p>')
        math_html += f"<details{'' if svg else ' open'}><summary>LaTeX</summary><pre>{_e(latex)}</pre></details>"
    else:
        math_html = '<p class="muted">No statement recorded for this name (a planted or unregistered bound).</p>'
    assumptions = meta.get("assumptions") or []
    assum = ("<ul>" + "".join(f"<li>{_e(a)}</li>" for a in assumptions) + "</ul>") if assumptions else ""
    obs = res.observations.get(name, [])
    falsified = bool(p.get("falsified"))
    expected = expectation_met(p.get("expect", "holds"), falsified)
    status = (f'<span class="{"ok" if expected else "bad"}">{"FALSIFIED" if falsified else "not falsified"}</span>'
              f' (expected: {_e(p.get("expect"))}; {"as expected" if expected else "UNEXPECTED"})')
    plot_html = ""
    if obs:
        plot_html = ('<div class="plots">'
                     + plots.bound_scatter([o["lower"] for o in obs], [o["upper"] for o in obs], name,
                                           p.get("kind") or meta.get("kind", ""))
                     + plots.ratio_hist([o["ratio"] for o in obs], name) + "</div>")
    else:
        plot_html = '<p class="muted">No observations were read for this bound.</p>'
    cx_html = _counterexample(p, obs, res.counterexamples.get(name)) if falsified else ""
    return (f'<div class="card bound" id="{_anchor(name)}"><h3>{_e(name)} <span class="tag {_e(conf)}">{_e(conf)}'
            f'</span><span class="tag">{_e(p.get("kind") or meta.get("kind", ""))}</span></h3>{math_html}'
            f'{"<p><b>Assumptions</b></p>" + assum if assum else ""}'
            f'<p><b>Source</b>: {_e(p.get("source") or meta.get("source", ""))}</p>'
            f'<p><b>Result</b>: {status}; {p.get("examples")} cases, worst ratio {_fmt(p.get("worst_ratio"), 8)}</p>'
            f"{plot_html}{cx_html}</div>")


def _bounds_section(res: Results) -> str:
    v = res.verify
    if v is None:
        return '<p class="muted">No readable verify.json: bound-vs-empirical results are not shown.</p>'
    rows = []
    for p in v["properties"]:
        met = expectation_met(p["expect"], bool(p["falsified"]))
        rows.append([f'<a href="#{_anchor(p["bound"])}">{_e(p["bound"])}</a>', _e(p.get("kind", "")),
                     f'<span class="tag {_e(p.get("confidence", ""))}">{_e(p.get("confidence", ""))}</span>',
                     _e(p["expect"]), f'<span class="num">{p["examples"]}</span>', _e(p["falsified"]),
                     _fmt(p.get("worst_ratio"), 8),
                     '<span class="ok">as expected</span>' if met else '<span class="bad">UNEXPECTED</span>'])
    head = (f'<p class="muted">profile {_e(v.get("profile"))}, commit {_e(v.get("commit"))}, created '
            f'{_e(v.get("created"))}. Worst ratio = max over cases of empirical lower bound / claimed bound '
            f"(1 = tight, &gt; 1 = falsified). Statements from {_e(res.bounds_origin)}.</p>")
    table = _table(["bound", "kind", "confidence", "expect", "cases", "falsified", "worst ratio", "verdict"], rows,
                   "summary")
    cards = []
    for p in v["properties"]:
        try:
            cards.append(_bound_card(res, p))
        except Exception as exc:  # noqa: BLE001 - one odd property must not hide the others
            res.problem(res.root / "verify.json", f"property {p['bound']} could not be rendered: {exc}")
            cards.append(f'<div class="card bound"><h3>{_e(p["bound"])}</h3><p class="bad">could not be rendered: '
                         f"{_e(exc)}</p></div>")
    return head + table + "".join(cards)


# --------------------------------------------------------------------------------------------- bound tables
def _sdp_section(res: Results) -> str:
    """One table per comparison file: every registered bound that applied to the layer, its norm, and the
    empirical lower bound of the same norm (rows of other norms are not compared with it)."""
    if not res.lipsdp:
        return '<p class="muted">No lipsdp/*.json results in this folder (run <code>boundlab lipsdp --json</code>).</p>'
    from .load import comparison_rows

    out = []
    for name, doc in res.lipsdp:
        rows = []
        for r in comparison_rows(doc):
            tight = num(r.get("tightness"))
            note = r.get("refutation") or r.get("error") or r.get("covers", "")
            kind = r.get("kind", "")
            rows.append([_e(r.get("name", "")), f'<span class="kind-{_e(kind)}">{_e(kind)}</span>', _e(r.get("norm", "")),
                         _fmt(r.get("value"), 8), _fmt(tight, 3) if tight is not None else "-",
                         _fmt(r.get("seconds"), 3), _e(note)])
        title = doc.get("title") or doc.get("config", {}).get("network") or name
        out.append(f'<div class="card sdp"><h3>{_e(name)}</h3><p class="muted">{_e(title)}</p>'
                   + _table(["bound", "kind", "norm", "value", "lower / value", "seconds", "covers / refutation"],
                            rows) + "</div>")
    return ('<p class="muted">Every row is a registered bound that applies to the layer (SDP values are the '
            "certified ones); the empirical rows are lower bounds, compared only with bounds of the same norm.</p>"
            + "".join(out))


# --------------------------------------------------------------------------------------------- experiments
def _layer_panels(run: dict) -> dict[str, dict[int, list[tuple[int, float]]]]:
    panels: dict[str, dict[int, list[tuple[int, float]]]] = {}

    def add(metric, epoch, index, value):
        v = num(value)
        if v is not None and math.isfinite(v):
            panels.setdefault(metric, {}).setdefault(epoch, []).append((index, v))

    for ep in run["epochs"]:
        e = ep["epoch"]
        for layer in ep["layers"]:
            i = layer["index"]
            for key in ("variance", "id_twonn", "id_mle"):
                add(key, e, i, layer.get(key))
            for hom, by_p in (layer.get("diagram_distance_to_previous") or {}).items():
                for p, v in (by_p or {}).items():
                    add(f"W_{p} {hom} to previous layer", e, i, v)
            for var, v in (layer.get("topolip") or {}).items():
                add(f"TopoLip {var}", e, i, v)
    return panels


def _run_card(unit: str, run: dict) -> str:
    epochs = run["epochs"]
    train = {k: [(ep["epoch"], num(ep.get(k))) for ep in epochs if num(ep.get(k)) is not None]
             for k in ("train_loss", "clean_accuracy")}
    figs = [plots.xy_lines({k: v for k, v in train.items() if v}, f"{unit}: training", "epoch", "value",
                           f"training:{unit}")]
    panels = _layer_panels(run)
    if panels:
        figs.append(plots.layer_curves(panels, f"{unit}: per-layer measurements over epochs", f"layers:{unit}"))
    if epochs and epochs[-1].get("robustness"):
        last = epochs[-1]
        series = {}
        for attack, by_eps in last["robustness"].items():
            pts = [(num(eps), num(acc)) for eps, acc in (by_eps or {}).items()]
            series[attack] = [(x, y) for x, y in pts if x is not None and y is not None]
        figs.append(plots.xy_lines(series, f"{unit}: robustness (epoch {last['epoch']})", "epsilon", "accuracy",
                                   f"robustness:{unit}"))
    info = (f'model {_e(run.get("model"))}, dataset {_e(run.get("dataset"))}, seed {_e(run.get("seed"))}, '
            f'status {_e(run.get("status"))}, network upper bound {_fmt(run.get("network_upper_bound"))}')
    return (f'<div class="card run" id="run-{_e(unit)}"><h3>{_e(unit)}</h3><p class="muted">{info}</p>'
            f'<div class="plots">{"".join(figs)}</div></div>')


def _experiments_section(res: Results) -> str:
    parts = []
    if res.verdicts is not None:
        rows = []
        for c in res.verdicts["claims"]:
            cls = {"supported": "ok", "contradicted": "bad"}.get(c["verdict"], "")
            rows.append([_e(c["id"]), _e(c.get("claim", "")), _e(c.get("metric", "")),
                         f'<span class="{cls}">{_e(c["verdict"])}</span>', _e(c.get("detail", "")),
                         _e(c.get("source", ""))])
        parts.append('<h3 id="verdicts">Verdicts on the seed claims</h3>'
                     + _table(["id", "claim", "metric", "verdict", "detail", "source"], rows, "verdicts"))
    for unit, run in res.topolip_runs:
        parts.append(_run_card(unit, run))
    if not parts:
        return '<p class="muted">No topolip/ results in this folder (run <code>boundlab experiment topolip</code>).</p>'
    return "".join(parts)


# --------------------------------------------------------------------------------------------- benchmarks
def _bench_section(res: Results, threshold: float) -> str:
    if not res.bench:
        return '<p class="muted">No saved benchmark runs (bench/*.json; run <code>boundlab bench --save</code>).</p>'
    series = history([doc for _, doc in res.bench], threshold)
    flagged = {s.name for s in latest_regressions(series)}
    out = [f'<p class="muted">{len(res.bench)} saved run(s). Time = minimum round time; ratio = in-run baseline '
           f"time / benchmarked time (higher is better). Steps worse than x{threshold:g} are flagged.</p>"]
    for s in series:
        rows = [[_e(p.commit[:12]), _e(p.created), _fmt(p.time, 4), _fmt(p.ratio, 4), _fmt(p.time_change, 3),
                 _fmt(p.ratio_change, 3), '<span class="bad">REGRESSION</span>' if p.regression else "",
                 _e(p.machine)] for p in s.points]
        out.append(f'<div class="card bench"><h3>{_e(s.name)}{" <span class=bad>(latest step regressed)</span>" if s.name in flagged else ""}</h3>'
                   + plots.bench_trend([p.commit for p in s.points], [p.time for p in s.points],
                                       [p.ratio for p in s.points], [p.regression for p in s.points], s.name)
                   + _table(["commit", "saved", "min time (s)", "ratio", "time / prev", "ratio / prev", "flag",
                             "machine"], rows) + "</div>")
    return "".join(out)


# --------------------------------------------------------------------------------------------- page
def _safe(section, res: Results, *args) -> str:
    """Render one section; an unexpected structure becomes a problem line instead of a crash."""
    try:
        return section(res, *args)
    except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
        res.problem(res.root, f"section could not be rendered: {type(exc).__name__}: {exc}")
        return f'<p class="bad">This section could not be rendered: {_e(type(exc).__name__)}: {_e(exc)}</p>'


def render(res: Results, threshold: float = DEFAULT_THRESHOLD) -> str:
    sections = [("bounds", "Bounds vs empirical lower bounds", _bounds_section, ()),
                ("teeth", "Teeth: how wrong a bound must be to be caught", teeth_section, ()),
                ("sdp", "SDP bounds beside analytic bounds", _sdp_section, ()),
                ("experiments", "Experiments", _experiments_section, ()),
                ("benchmarks", "Benchmarks across commits", _bench_section, (threshold,))]
    body = [(sid, title, _safe(fn, res, *args)) for sid, title, fn, args in sections]
    problems = ""
    if res.problems:
        problems = ('<section id="problems" class="card problems"><h2>Problems reading results</h2><ul>'
                    + "".join(f"<li><code>{_e(p.path)}</code>: {_e(p.message)}</li>" for p in res.problems)
                    + "</ul></section>")
    nav = "".join(f'<a href="#{sid}">{_e(t)}</a>' for sid, t, _ in body)
    now = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    main = "".join(f'<section id="{sid}"><h2>{_e(t)}</h2>{h}</section>' for sid, t, h in body)
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>boundlab report</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head><body>'
            f"<header><h1>boundlab report</h1><p>results: {_e(res.root)} &middot; rendered {now} &middot; "
            f"{len(res.files_read)} files read, {len(res.problems)} problem(s)</p></header><nav>{nav}</nav>"
            f"<main>{problems}{main}</main></body></html>")


def build(results_dir: str | Path, out_dir: str | Path, *, threshold: float = DEFAULT_THRESHOLD,
          stderr=None) -> tuple[Path, Results]:
    """:func:`build_report` that also returns what was read (``Results.problems``, ``Results.files_read``)."""
    res = load_results(results_dir)
    text = render(res, threshold)
    out = write_text(Path(out_dir) / "report.html", text)
    err = stderr if stderr is not None else sys.stderr
    for p in res.problems:
        print(f"boundlab report: {p}", file=err)
    return out, res


def build_report(results_dir: str | Path, out_dir: str | Path) -> Path:
    """Render ``results_dir`` into ``out_dir/report.html`` and return its path.

    Unreadable or malformed files are listed in the report's "Problems" section and printed on stderr (one line
    each, naming the file); the rest of the report still renders.
    """
    return build(results_dir, out_dir)[0]
