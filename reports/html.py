"""The self-contained HTML report: one file, CSS inline, plots and math as inline SVG, one small inline script
(sorting and filtering the tables, opening a linked card), nothing fetched.

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
from .certify import certify_section
from .load import Results, load_results, num
from .mathsvg import latex_svg, share_definitions, share_styles
from .teeth import teeth_section
from .texinline import tex_inline_html

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
.warn{color:#b26a00;font-weight:600}.plot text{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
details.bound>summary{cursor:pointer;font-weight:600;font-size:15px;padding:2px 0}details.bound[open]>summary{margin-bottom:6px}
.filters{margin:8px 0;font-size:13px}.filters input,.filters select{font-size:13px;margin-right:10px}
table.sortable th{cursor:pointer;user-select:none}table.sortable th:after{content:" ↕";color:#98a2b3}
.counts span{margin-right:14px}.violation{color:#c62828;font-weight:700}.kind-claim{font-style:italic}
.assumptions li{margin:2px 0}.problems{background:#fff4f4;border:1px solid #e3a4a4}.muted{color:#667085;font-size:13px}
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


def _ratios(obs: list[dict]) -> list[float]:
    """Witness ratios of a property's observations (orderings and exact comparisons are not witnesses)."""
    keep = ("empirical<=bound", "bound<=empirical", "claim", None)
    return [o["ratio"] for o in obs if o.get("ratio") is not None and math.isfinite(o["ratio"])
            and o.get("compares") in keep]


def _median(values: list[float]) -> float | None:
    if not values:
        return None
    v = sorted(values)
    m = len(v) // 2
    return v[m] if len(v) % 2 else 0.5 * (v[m - 1] + v[m])


def _verdict(p: dict) -> tuple[str, str]:
    """(css class, text) of a property's outcome: a violation is red even when it was expected (planted)."""
    falsified = bool(p.get("falsified"))
    met = expectation_met(p.get("expect", "holds"), falsified)
    if not met:
        return "bad", ("UNEXPECTED: falsified" if falsified else "UNEXPECTED: a false statement was not falsified")
    if falsified:
        what = "planted false bound" if p.get("confidence") == "planted" else "known false"
        return "violation", f"FALSIFIED (expected: {what})"
    return "ok", "holds (not falsified)"


def _bound_card(res: Results, p: dict) -> str:
    name = p["bound"]
    meta = res.bounds.get(name, {})
    conf = p.get("confidence") or meta.get("confidence", "")
    kind = p.get("kind") or meta.get("kind", "")
    latex = meta.get("latex", "")
    svg = latex_svg(latex) if latex else None
    if latex:
        math_html = (f'<div class="math">{svg}</div>' if svg else
                     '<p class="muted">(mathtext could not render this statement; raw LaTeX below)</p>')
        math_html += f"<details{'' if svg else ' open'}><summary>LaTeX</summary><pre>{_e(latex)}</pre></details>"
    else:
        math_html = '<p class="muted">No statement recorded for this name (an unregistered bound).</p>'
    if conf == "planted":
        math_html = ('<p><b>Planted false bound</b>: the statement below is wrong on purpose; the suite must '
                     "falsify it (proof that the properties have teeth).</p>" + math_html)
    elif p.get("expect") == "falsified":
        math_html = ('<p><b>Known false statement</b> (a finding of this project): shown with its refutation, never '
                     f'as a bound. {_e(meta.get("refutation", ""))}</p>' + math_html)
    assumptions = meta.get("assumptions") or []
    assum = ('<ul class="assumptions">' + "".join(f"<li>{tex_inline_html(a)}</li>" for a in assumptions)
             + "</ul>") if assumptions else ""
    obs = res.observations.get(name, [])
    falsified = bool(p.get("falsified"))
    cls, text = _verdict(p)
    ratios = _ratios(obs)
    med = _median(ratios)
    sides = "measured / claimed side" if kind == "claim" else "empirical / bound"
    if obs:
        plot_html = ('<div class="plots">'
                     + plots.bound_scatter([o["lower"] for o in obs], [o["upper"] for o in obs], name, kind)
                     + plots.ratio_hist(ratios or [o["ratio"] for o in obs if o.get("ratio") is not None], name)
                     + "</div>")
    else:
        plot_html = '<p class="muted">No observations were read for this bound.</p>'
    cx_html = _counterexample(p, obs, res.counterexamples.get(name)) if falsified else ""
    source = p.get("source") or meta.get("source", "")
    summary = (f'{_e(name)} <span class="tag {_e(conf)}">{_e(conf)}</span><span class="tag kind-{_e(kind)}">'
               f'{_e(kind)}</span> <span class="{cls}">{_e(text)}</span>')
    return (f'<details class="card bound" id="{_anchor(name)}"{" open" if cls == "bad" else ""}>'
            f"<summary>{summary}</summary>{math_html}"
            f'{"<p><b>Assumptions</b></p>" + assum if assum else ""}'
            f"<p><b>Source</b>: {_e(source)}</p>"
            f'<p><b>Result</b>: <span class="{cls}">{_e(text)}</span>; {p.get("examples")} cases; {sides}: worst '
            f'{_fmt(p.get("worst_ratio"), 8)}, median {_fmt(med, 4)}</p>'
            f"{plot_html}{cx_html}</details>")


def _overview_rows(res: Results) -> list[dict]:
    rows = []
    for p in (res.verify or {}).get("properties", []):
        ratios = _ratios(res.observations.get(p["bound"], []))
        rows.append({"name": p["bound"], "worst": num(p.get("worst_ratio")), "median": _median(ratios),
                     "confidence": p.get("confidence"), "expect": p.get("expect"), "falsified": bool(p.get("falsified")),
                     "met": expectation_met(p.get("expect", "holds"), bool(p.get("falsified"))),
                     "kind": p.get("kind", ""), "examples": p.get("examples")})
    return rows


def _overview_section(res: Results) -> str:
    """The first screen: counts, the figure of every bound's worst and median witness ratio, the filterable table."""
    v = res.verify
    if v is None:
        return '<p class="muted">No readable verify.json: bound-vs-empirical results are not shown.</p>'
    rows = _overview_rows(res)
    unexpected = [r for r in rows if not r["met"]]
    planted = sum(r["confidence"] == "planted" for r in rows)
    findings = sum(r["expect"] == "falsified" and r["confidence"] != "planted" for r in rows)
    holds = sum(r["expect"] == "holds" and r["met"] for r in rows)
    counts = (f'<p class="counts"><span><b>{len(rows)}</b> properties</span><span class="ok">{holds} bounds hold</span>'
              f'<span class="violation">{planted} planted false bounds falsified as they must be</span>'
              f"<span>{findings} known-false statements falsified</span>"
              f'<span class="{"bad" if unexpected else "ok"}">{len(unexpected)} unexpected</span></p>')
    if unexpected:
        counts += ('<p class="bad">Unexpected: ' + ", ".join(f'<a href="#{_anchor(r["name"])}">{_e(r["name"])}</a>'
                                                          for r in unexpected) + "</p>")
    head = (f'<p class="muted">profile {_e(v.get("profile"))}, seed {_e(v.get("seed"))}, commit {_e(v.get("commit"))}, '
            f'created {_e(v.get("created"))}. Witness ratio = empirical / bound per case (1 = tight; above 1 the '
            "inequality failed: red). Statements from "
            f"{_e(res.bounds_origin)}.</p>")
    figure = plots.bounds_overview(rows)
    trs = []
    for r, p in zip(rows, v["properties"]):
        cls, text = _verdict(p)
        verdict_key = "unexpected" if cls == "bad" else ("falsified" if r["falsified"] else "holds")
        trs.append(
            f'<tr data-confidence="{_e(r["confidence"])}" data-verdict="{verdict_key}">'
            f'<td><a href="#{_anchor(r["name"])}">{_e(r["name"])}</a></td><td>{_e(r["kind"])}</td>'
            f'<td><span class="tag {_e(r["confidence"])}">{_e(r["confidence"])}</span></td><td>{_e(r["expect"])}</td>'
            f'<td class="num" data-v="{_e(r["examples"])}">{_e(r["examples"])}</td>'
            f'<td class="num" data-v="{_e(r["worst"] if r["worst"] is not None else "")}">{_fmt(r["worst"], 6)}</td>'
            f'<td class="num" data-v="{_e(r["median"] if r["median"] is not None else "")}">{_fmt(r["median"], 4)}</td>'
            f'<td class="{cls}">{_e(text)}</td></tr>')
    confs = sorted({r["confidence"] or "" for r in rows})
    filters = ('<div class="filters"><input id="bound-filter" type="search" placeholder="filter bounds (name, kind, '
               'source...)"> <select id="conf-filter"><option value="">every confidence</option>'
               + "".join(f'<option value="{_e(c)}">{_e(c)}</option>' for c in confs)
               + '</select><select id="verdict-filter"><option value="">every verdict</option>'
               '<option value="holds">holds</option><option value="falsified">falsified</option>'
               '<option value="unexpected">unexpected</option></select><span class="muted" id="shown-count"></span>'
               "</div>")
    table = ('<table class="sortable" id="bound-table"><thead><tr><th>bound</th><th>kind</th><th>confidence</th>'
             "<th>expect</th><th>cases</th><th>worst ratio</th><th>median ratio</th><th>verdict</th></tr></thead>"
             f"<tbody>{''.join(trs)}</tbody></table>")
    return head + counts + f'<div class="plots">{figure}</div>' + filters + table


def _bounds_section(res: Results) -> str:
    v = res.verify
    if v is None:
        return '<p class="muted">No readable verify.json: bound-vs-empirical results are not shown.</p>'
    cards = []
    for p in v["properties"]:
        try:
            cards.append(_bound_card(res, p))
        except Exception as exc:  # noqa: BLE001 - one odd property must not hide the others
            res.problem(res.root / "verify.json", f"property {p['bound']} could not be rendered: {exc}")
            cards.append(f'<div class="card bound"><h3>{_e(p["bound"])}</h3><p class="bad">could not be rendered: '
                         f"{_e(exc)}</p></div>")
    return ('<p class="muted">One card per property (click to open; unexpected outcomes are open). The scatter '
            "shows every case (decimated above 200 points: every violation kept), the histogram the witness ratios."
            "</p>" + "".join(cards))


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


def _eps_value(key) -> float | None:
    """An attack radius from a robustness table key: a number, or its string form ("0.0078", "2/255")."""
    v = num(key)
    if v is not None:
        return v
    if isinstance(key, str):
        text = key.strip()
        try:
            if "/" in text:
                a, b = text.split("/", 1)
                return float(a) / float(b)
            return float(text)
        except (ValueError, ZeroDivisionError):
            return None
    return None


def _run_card(unit: str, run: dict) -> str:
    epochs = run["epochs"]
    train = {k: [(ep["epoch"], num(ep.get(k))) for ep in epochs if num(ep.get(k)) is not None]
             for k in ("train_loss", "clean_accuracy")}
    figs = [plots.training_curves(train["train_loss"], train["clean_accuracy"], f"{unit}: training",
                                  f"training:{unit}")]
    panels = _layer_panels(run)
    if panels:
        figs.append(plots.layer_curves(panels, f"{unit}: per-layer measurements over epochs", f"layers:{unit}"))
    if epochs and epochs[-1].get("robustness"):
        last = epochs[-1]
        series = {}
        for attack, by_eps in last["robustness"].items():
            if not isinstance(by_eps, dict):
                continue
            pts = [(_eps_value(eps), num(acc)) for eps, acc in by_eps.items()]
            series[attack] = [(x, y) for x, y in pts if x is not None and y is not None]
        figs.append(plots.xy_lines(series, f"{unit}: robustness (epoch {last['epoch']})", "epsilon", "accuracy",
                                   f"robustness:{unit}"))
    bound = num(run.get("network_upper_bound"))
    context = ("" if bound is None else
               f" &mdash; the product of the certified per-block l2 Lipschitz upper bounds (composition rule) on the "
               f"whole input space{', vacuous: it multiplies every block&#39;s worst case, which no input attains at once' if bound > 1e3 else ''}")
    info = (f'model {_e(run.get("model"))}, dataset {_e(run.get("dataset"))}, seed {_e(run.get("seed"))}, '
            f'status {_e(run.get("status"))}, network upper bound {_fmt(run.get("network_upper_bound"))}{context}')
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
    from .bench import history_dir, history_files, machine_key, machine_label, read_saved, trend_panel

    hdir = history_dir()
    committed, bad = read_saved(history_files(hdir))
    for path, message in bad:
        res.problem(path, message)
    docs = [doc for _, doc in res.bench] + [doc for _, doc in committed]
    if not docs:
        return ('<p class="muted">No saved benchmark runs: no bench/*.json in the results folder and no committed '
                "history (benchmarks/history/&lt;machine&gt;/&lt;commit&gt;.json). Run <code>boundlab bench run HEAD"
                "</code> (committed history) or <code>boundlab bench --save</code> (this results folder).</p>")
    series = history(docs, threshold)
    flagged = {(s.name, s.machine) for s in latest_regressions(series)}
    labels = {machine_key(d): machine_label(d.get("machine") or {}) for d in docs}
    out = [f'<p class="muted">{len(res.bench)} saved run(s) from this results folder, {len(committed)} commit file(s) '
           f"from the committed history ({_e(hdir) if hdir else 'none'}). Per commit and machine: time = median over "
           "the runs of each run's minimum round time (faint dots: the runs); ratio = median in-run baseline time / "
           f"benchmarked time (higher is better). A step worse than x{threshold:g} against the previous commit on the "
           "same machine is flagged (on the ratio when the benchmark records one); machines are never mixed.</p>"]
    for machine in sorted({s.machine for s in series}):
        cards = []
        for s in (x for x in series if x.machine == machine):
            rows = [[_e(p.commit[:12]), str(p.runs), _fmt(p.time, 4), _fmt(p.ratio, 4), _fmt(p.time_change, 3),
                     _fmt(p.ratio_change, 3), ('<span class="bad">REGRESSION</span> ' if p.regression else "")
                     + (f"test failed in {p.failed}/{p.runs} runs" if p.failed else "")] for p in s.points]
            mark = " <span class=bad>(latest step regressed)</span>" if (s.name, machine) in flagged else ""
            cards.append(f'<div class="card bench" style="flex:0 1 27em;min-width:0"><h4>{_e(s.name)}{mark}</h4>'
                         + trend_panel(s) + _table(["commit", "runs", "median time (s)", "median ratio",
                                                    "time / prev", "ratio / prev", "flag"], rows) + "</div>")
        out.append(f"<h3>machine {_e(machine)}</h3><p class=\"muted\">{_e(labels.get(machine, ''))}</p>"
                   f'<div style="display:flex;flex-wrap:wrap;gap:0.6em;align-items:flex-start">{"".join(cards)}</div>')
    return "".join(out)


# --------------------------------------------------------------------------------------------- page
#: the only script: sorting and filtering of the tables, opening a collapsed card that a link points to
_JS = """
(function(){
function val(td){var v=td.getAttribute('data-v');if(v!==null&&v!==''&&!isNaN(+v))return +v;return td.textContent.trim().toLowerCase();}
document.querySelectorAll('table.sortable').forEach(function(t){
  var head=t.tHead?t.tHead.rows[0]:t.rows[0];if(!head)return;
  Array.prototype.forEach.call(head.cells,function(th,i){th.addEventListener('click',function(){
    var body=t.tBodies[0],rows=Array.prototype.slice.call(body.rows).filter(function(r){return r!==head;});
    var dir=th.getAttribute('data-dir')==='asc'?-1:1;th.setAttribute('data-dir',dir===1?'asc':'desc');
    rows.sort(function(a,b){var x=val(a.cells[i]),y=val(b.cells[i]);
      if(typeof x==='number'&&typeof y==='number')return dir*(x-y);return dir*String(x).localeCompare(String(y));});
    rows.forEach(function(r){body.appendChild(r);});});});});
var f=document.getElementById('bound-filter'),c=document.getElementById('conf-filter'),
    v=document.getElementById('verdict-filter'),n=document.getElementById('shown-count');
function apply(){var t=document.getElementById('bound-table');if(!t)return;var q=(f.value||'').toLowerCase(),shown=0;
  Array.prototype.forEach.call(t.tBodies[0].rows,function(r){
    var ok=(!q||r.textContent.toLowerCase().indexOf(q)>=0)&&(!c.value||r.getAttribute('data-confidence')===c.value)
      &&(!v.value||r.getAttribute('data-verdict')===v.value);r.style.display=ok?'':'none';shown+=ok?1:0;});
  if(n)n.textContent=shown+' shown';}
[f,c,v].forEach(function(e){if(e)e.addEventListener('input',apply);});apply();
function openHash(){var id=decodeURIComponent(location.hash.slice(1));if(!id)return;var el=document.getElementById(id);
  if(el&&el.tagName==='DETAILS'){el.open=true;el.scrollIntoView();}}
window.addEventListener('hashchange',openHash);openHash();
})();
"""


def _safe(section, res: Results, *args) -> str:
    """Render one section; an unexpected structure becomes a problem line instead of a crash."""
    try:
        return section(res, *args)
    except Exception as exc:  # noqa: BLE001 - one broken section must not hide the others
        res.problem(res.root, f"section could not be rendered: {type(exc).__name__}: {exc}")
        return f'<p class="bad">This section could not be rendered: {_e(type(exc).__name__)}: {_e(exc)}</p>'


def render(res: Results, threshold: float = DEFAULT_THRESHOLD, compare: Results | None = None) -> str:
    """The page; with ``compare`` (an older results folder) a first section lists what changed since it."""
    sections = []
    if compare is not None:
        from .export import compare_section

        sections.append(("changes", f"What changed since {compare.root}", lambda r: compare_section(r, compare),
                         ()))
    sections += [("overview", "Which bounds hold, and how tight", _overview_section, ()),
                ("bounds", "Bounds vs empirical lower bounds", _bounds_section, ()),
                ("teeth", "Teeth: how wrong a bound must be to be caught", teeth_section, ()),
                ("sdp", "SDP bounds beside analytic bounds", _sdp_section, ()),
                ("experiments", "Experiments", _experiments_section, ()),
                ("certify", "Certified local smoothness and verdicts with intervals", certify_section, ()),
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
    main, sprites = share_definitions(main)  # glyphs and markers defined once for every inlined figure
    main, shared_css = share_styles(main)  # the figures' repeated inline styles as classes
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>boundlab report</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}{shared_css}</style>'
            "</head><body>"
            f"{sprites}"
            f"<header><h1>boundlab report</h1><p>results: {_e(res.root)} &middot; rendered {now} &middot; "
            f"{len(res.files_read)} files read, {len(res.problems)} problem(s)</p></header><nav>{nav}</nav>"
            f"<main>{problems}{main}</main><script>{_JS}</script></body></html>")


def build(results_dir: str | Path, out_dir: str | Path, *, threshold: float = DEFAULT_THRESHOLD,
          stderr=None, compare: str | Path | None = None, html_path: str | Path | None = None
          ) -> tuple[Path, Results]:
    """:func:`build_report` that also returns what was read (``Results.problems``, ``Results.files_read``);
    ``compare``: an older results folder to diff against; ``html_path``: the file (default OUT/report.html)."""
    res = load_results(results_dir)
    old = None
    if compare is not None:
        old = load_results(compare)
        for p in old.problems:
            res.problem(p.path, f"(compared run) {p.message}")
    text = render(res, threshold, old)
    out = write_text(Path(html_path) if html_path else Path(out_dir) / "report.html", text)
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
