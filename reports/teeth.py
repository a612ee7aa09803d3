"""The report's Teeth section: how wrong each bound would have to be before the suite catches it.

Reads ``OUT/mutate/summary.json`` (written by ``boundlab mutate``, layout in docs/results.md) and, where present,
the worst witness ratio of the unmutated run from ``verify.json``. Per bound it shows the best witness ratio
(empirical / bound), the smallest generic slip caught (``x(1 - eps)`` of an upper bound, ``x(1 + eps)`` of a lower
bound), the known-false mutants caught, and what the numbers mean: a bound with a tight family whose x0.99 is caught
has teeth to 1%; a bound without one is limited by its own looseness, and all the witnesses show is that "the
constant could be at most 1/r times smaller", r the best witness ratio. Nothing is recomputed.
"""

from __future__ import annotations

import html
import math

from .load import Malformed, Results, num, read_doc

__all__ = ["load_mutation", "teeth_section", "teeth_verdict"]


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _f(x, digits: int = 4) -> str:
    v = num(x)
    if v is None:
        return "-"
    return f"{v:.{digits}g}"


def load_mutation(res: Results) -> dict | None:
    """``OUT/mutate/summary.json`` or ``None``; a malformed file becomes a problem line."""
    path = res.root / "mutate" / "summary.json"
    if not path.is_file():
        return None
    try:
        doc = read_doc(path)
        for key, types in (("mutants", list), ("bounds", list), ("areas", dict)):
            if not isinstance(doc.get(key), types):
                raise Malformed(f"key {key!r} should be a {types.__name__}")
    except Malformed as exc:
        res.problem(path, str(exc))
        return None
    res.files_read.append(str(path))
    return doc


def _verify_ratios(res: Results) -> dict[str, float]:
    out = {}
    for p in (res.verify or {}).get("properties", []):
        r = num(p.get("worst_ratio"))
        if r is not None and p.get("expect") == "holds":
            out[p["bound"]] = r
    return out


def teeth_verdict(bound: dict, ratio: float | None) -> tuple[str, str]:
    """``(css class, sentence)`` for one bound row of the summary (``ratio``: best witness ratio, or None)."""
    missed = bound.get("known_false", 0) - bound.get("known_false_caught", 0)
    if missed:
        return "bad", f"{missed} known-false mutant(s) NOT caught: the properties miss a wrong statement"
    eps = num(bound.get("smallest_eps_caught"))
    tight = bound.get("tight")
    if tight and eps is not None and eps <= 0.01 + 1e-12:
        return "ok", "tight family drawn: a 1% slip is caught"
    if tight:
        return "warn", (f"tight family known (ratio {_f(tight.get('ratio'))}) but the smallest slip caught is "
                        f"{'none' if eps is None else f'{eps:.3g}'}: the strategies do not reach it")
    if ratio is not None and ratio > 0 and math.isfinite(ratio):
        if ratio >= 0.99:
            return "ok", f"no tight family declared, but the witnesses reach {ratio:.4g} of the bound"
        return "muted", (f"limited by its own looseness (no tight family known): for all the witnesses show, the "
                         f"constant could be at most {1 / ratio:.3g} times smaller (best ratio {ratio:.3g})")
    if bound.get("kind") in ("exact", "claim"):
        return ("ok" if bound.get("caught") == bound.get("mutants") else "muted"), (
            f"{bound.get('kind')}: {bound.get('caught')} of {bound.get('mutants')} mutants caught")
    return "muted", "no witness ratio recorded"


def teeth_section(res: Results) -> str:
    doc = load_mutation(res)
    if doc is None:
        return ('<p class="muted">No mutation analysis in this results folder: run <code>boundlab mutate --out '
                f'{_e(res.root)}</code> to measure how wrong each bound would have to be before it is caught.</p>')
    cfg = doc.get("config") or {}
    head = (f'<p class="muted">{len(doc["mutants"])} mutants of {len(doc["bounds"])} bounds, profile '
            f'{_e(cfg.get("profile"))}, seed {_e(doc.get("seed"))}, commit {_e(doc.get("commit"))}. A mutant is a '
            "plausible slip put in place of a bound (generic: the value scaled; formula: a dropped factor, a wrong "
            "exponent...); <i>known false</i> mutants are wrong statements and must be caught. Witness ratio = best "
            "empirical / bound seen (1 = tight).</p>")
    area_rows = "".join(
        f'<tr><td>{_e(a)}</td><td class="num">{v["caught"]} / {v["mutants"]}</td><td class="num '
        f'{"ok" if v["known_false_caught"] == v["known_false"] else "bad"}">{v["known_false_caught"]} / '
        f'{v["known_false"]}</td></tr>' for a, v in sorted(doc["areas"].items()))
    areas = ("<table><tr><th>area</th><th>caught / mutants</th><th>known-false caught</th></tr>"
             f"{area_rows}</table>")
    ratios = _verify_ratios(res)
    rows = []
    for b in doc["bounds"]:
        ratio = ratios.get(b["bound"], num(b.get("witness_ratio")))
        cls, text = teeth_verdict(b, ratio)
        tight = b.get("tight")
        rows.append(
            f'<tr data-status="{cls}"><td><code>{_e(b["bound"])}</code></td><td>{_e(b.get("confidence") or "")}</td>'
            f'<td>{_e(tight["description"]) + " (" + _f(tight.get("ratio")) + ")" if tight else "none known"}</td>'
            f'<td class="num">{_f(ratio)}</td><td class="num">{_f(b.get("smallest_eps_caught"), 3)}</td>'
            f'<td class="num">{b["caught"]} / {b["mutants"]}</td>'
            f'<td class="num">{b["known_false_caught"]} / {b["known_false"]}</td>'
            f'<td class="{cls}">{_e(text)}</td></tr>')
    per_bound = ('<table class="sortable"><tr><th>bound</th><th>confidence</th><th>tight family (ratio)</th>'
                 "<th>witness ratio</th><th>smallest slip caught</th><th>caught</th><th>known-false caught</th>"
                 f"<th>what it means</th></tr>{''.join(rows)}</table>")
    mrows = []
    for m in sorted(doc["mutants"], key=lambda r: (r["bound"], r.get("kind", ""), r["name"])):
        caught = bool(m.get("caught"))
        cls = "ok" if caught else ("bad" if m.get("falsity") == "known_false" else "muted")
        label = "caught" if caught else ("MISSED" if m.get("falsity") == "known_false" else "not caught")
        detail = m.get("error") or m.get("detail") or ""
        mrows.append(f'<tr><td><code>{_e(m["bound"])}</code></td><td>{_e(m["name"])}</td>'
                     f'<td>{_e(m.get("falsity"))}</td><td class="{cls}">{label}</td>'
                     f'<td>{_e(m.get("property") or "-")}</td><td>{_e(detail[:200])}</td>'
                     f'<td>{_e((m.get("witness") or "")[:200])}</td></tr>')
    mutants = ('<details><summary>Every mutant</summary><table><tr><th>bound</th><th>mutant</th><th>falsity</th>'
               "<th>result</th><th>caught by</th><th>detail</th><th>why it is false / what is known</th></tr>"
               f"{''.join(mrows)}</table></details>")
    return head + areas + per_bound + mutants
