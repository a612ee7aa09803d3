"""Tables of a results folder as CSV (``boundlab report --csv DIR``) and what changed between two results folders
(``boundlab report --compare OLD``). Both read :class:`reports.load.Results` only; nothing is recomputed."""

from __future__ import annotations

import csv
import html
import io
import math
from pathlib import Path

from ..io.results import write_text
from ..theory.registry import expectation_met
from .load import Results, num
from .teeth import load_mutation

__all__ = ["write_csv", "changes", "compare_section"]


def _csv(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in columns})
    return buf.getvalue()


def write_csv(res: Results, out_dir: str | Path) -> list[Path]:
    """``bounds.csv`` (one row per property of verify.json), ``comparisons.csv`` (every row of every bound
    comparison file), ``verdicts.csv`` (the TopoLip claims), ``mutants.csv`` (the mutation analysis): the tables
    of the report, each written atomically; tables with no source file are not written. Returns the paths."""
    out = Path(out_dir)
    written = []
    if res.verify is not None:
        rows = [{**p, "met": expectation_met(p.get("expect", "holds"), bool(p.get("falsified")))}
                for p in res.verify["properties"]]
        cols = ["bound", "kind", "confidence", "expect", "examples", "falsified", "met", "worst_ratio", "worst_gap",
                "source", "counterexample"]
        written.append(write_text(out / "bounds.csv", _csv(rows, cols)))
    if res.lipsdp:
        rows = [{"file": name, **r} for name, doc in res.lipsdp for r in doc.get("results", [])]
        cols = ["file", "name", "kind", "norm", "value", "tightness", "seconds", "confidence", "source", "covers",
                "refutation"]
        written.append(write_text(out / "comparisons.csv", _csv(rows, cols)))
    if res.verdicts is not None:
        cols = ["id", "claim", "metric", "verdict", "detail", "source"]
        written.append(write_text(out / "verdicts.csv", _csv(res.verdicts.get("claims", []), cols)))
    mutation = load_mutation(res)
    if mutation is not None:
        cols = ["bound", "name", "kind", "falsity", "factor", "caught", "property", "detail", "error", "seconds"]
        written.append(write_text(out / "mutants.csv", _csv(mutation["mutants"], cols)))
    return written


def changes(new: Results, old: Results, rtol: float = 0.01) -> dict[str, list[dict]]:
    """What changed from ``old`` to ``new``: ``falsified`` (newly falsified), ``unfalsified``, ``expectation`` (a
    property whose expectation became unmet or met), ``ratio`` (worst ratio moved by more than ``rtol``
    relative), ``added`` / ``removed`` properties, ``verdicts`` (a claim's verdict changed)."""
    out: dict[str, list[dict]] = {k: [] for k in ("falsified", "unfalsified", "expectation", "ratio", "added",
                                                  "removed", "verdicts")}
    a = {p["bound"]: p for p in (old.verify or {}).get("properties", [])}
    b = {p["bound"]: p for p in (new.verify or {}).get("properties", [])}
    for name in sorted(set(b) - set(a)):
        out["added"].append({"bound": name})
    for name in sorted(set(a) - set(b)):
        out["removed"].append({"bound": name})
    for name in sorted(set(a) & set(b)):
        p, q = a[name], b[name]
        if bool(q.get("falsified")) and not p.get("falsified"):
            out["falsified"].append({"bound": name, "expect": q.get("expect")})
        if p.get("falsified") and not q.get("falsified"):
            out["unfalsified"].append({"bound": name, "expect": q.get("expect")})
        m0 = expectation_met(p.get("expect", "holds"), bool(p.get("falsified")))
        m1 = expectation_met(q.get("expect", "holds"), bool(q.get("falsified")))
        if m0 != m1:
            out["expectation"].append({"bound": name, "before": m0, "after": m1})
        r0, r1 = num(p.get("worst_ratio")), num(q.get("worst_ratio"))
        if r0 is not None and r1 is not None and math.isfinite(r0) and math.isfinite(r1) and (
                abs(r1 - r0) > rtol * max(abs(r0), abs(r1), 1e-300)):
            out["ratio"].append({"bound": name, "before": r0, "after": r1})
    va = {c["id"]: c for c in (old.verdicts or {}).get("claims", [])}
    for c in (new.verdicts or {}).get("claims", []):
        prev = va.get(c["id"])
        if prev is not None and prev.get("verdict") != c.get("verdict"):
            out["verdicts"].append({"id": c["id"], "before": prev.get("verdict"), "after": c.get("verdict")})
    return out


def compare_section(new: Results, old: Results) -> str:
    """HTML of :func:`changes` (the report's first section when ``--compare`` is given)."""
    e = lambda x: html.escape(str(x))  # noqa: E731
    ch = changes(new, old)
    head = (f'<p class="muted">This run ({e(new.root)}, commit {e((new.verify or {}).get("commit"))}) against '
            f'{e(old.root)} (commit {e((old.verify or {}).get("commit"))}).</p>')
    if not any(ch.values()):
        return head + '<p class="ok">Nothing changed: same properties, same falsifications, worst ratios within 1%, '\
                      "same verdicts.</p>"
    parts = [head]
    label = {"falsified": ("bad", "newly falsified"), "unfalsified": ("warn", "no longer falsified"),
             "expectation": ("bad", "expectation changed"), "ratio": ("", "worst ratio moved by more than 1%"),
             "added": ("", "new properties"), "removed": ("warn", "properties gone"),
             "verdicts": ("warn", "verdicts changed")}
    for key, items in ch.items():
        if not items:
            continue
        cls, text = label[key]
        cells = []
        for it in items:
            who = it.get("bound") or it.get("id")
            extra = ""
            if "before" in it:
                b, a = it["before"], it["after"]
                extra = (f": {b:.6g} -> {a:.6g}" if isinstance(b, float) else f": {b} -> {a}")
            elif "expect" in it:
                extra = f" (expected: {it['expect']})"
            cells.append(f"<li><code>{e(who)}</code>{e(extra)}</li>")
        parts.append(f'<p class="{cls}"><b>{e(text)}</b> ({len(items)})</p><ul>{"".join(cells)}</ul>')
    return "".join(parts)
