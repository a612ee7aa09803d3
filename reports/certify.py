"""Report sections of the certified local brackets and the verdicts with intervals (read from the result files).

* :func:`brackets_section`: per model and radius, the bracket [empirical lower, certified upper] of the local
  Lipschitz constant (geometric means over the certified probe points of every unit), the ratios, and the global
  certified bound beside it with what makes it vacuous;
* :func:`verdicts_section`: every claim at the final epoch and at matched accuracy, with the paired difference,
  its bootstrap 95% interval and the sign-flip p-value, and the accuracies compared at the matched checkpoint;
* :func:`grid_section`: the verdict-by-setting grid (variant, probe size, noise level, eps), so a claim that flips
  with a setting shows at a glance.

Nothing is recomputed; a field that is missing or malformed becomes a :class:`reports.load.Problem` (the rest of
the section still renders).
"""

from __future__ import annotations

import html
import math

from .load import Results, num

__all__ = ["brackets_section", "verdicts_section", "grid_section", "certify_section"]


def _e(x) -> str:
    return html.escape(str(x), quote=True)


def _f(x, digits: int = 4) -> str:
    v = num(x)
    if v is None:
        return "-"
    if math.isinf(v):
        return "inf"
    if math.isnan(v):
        return "nan"
    return f"{v:.{digits}g}"


def _table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    th = "".join(f"<th>{_e(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def _gmean(values) -> float | None:
    vals = [num(v) for v in values]
    vals = [v for v in vals if v is not None and v > 0]
    if not vals:
        return None
    if any(math.isinf(v) for v in vals):
        return math.inf
    return math.exp(sum(math.log(v) for v in vals) / len(vals))


def _median(values) -> float | None:
    vals = sorted(v for v in (num(x) for x in values) if v is not None)
    if not vals:
        return None
    k = len(vals) // 2
    return vals[k] if len(vals) % 2 else 0.5 * (vals[k - 1] + vals[k])


def _collect(res: Results, key: str) -> dict:
    """model -> eps label -> {"points": [...], "globals": [...], "why": str, "factors": [...], "units": n}."""
    out: dict = {}
    for unit, doc in res.topolip_runs:
        block = doc.get(key) if key != "matched" else (doc.get("matched") or {}).get("certify")
        if block is None:
            continue
        where = res.root / "topolip" / unit / "result.json"
        try:
            glob = block["global"]
            per_eps = block["per_eps"]
            if not isinstance(per_eps, dict):
                raise TypeError("per_eps is not an object")
            for lab, row in per_eps.items():
                pts = row["points"]
                slot = out.setdefault(doc.get("model", "?"), {}).setdefault(lab, {"points": [], "globals": [],
                                                                                "units": 0, "why": "",
                                                                                "factors": []})
                slot["points"] += [p for p in pts if isinstance(p, dict)]
                slot["globals"].append(glob.get("value"))
                slot["units"] += 1
                slot["why"] = slot["why"] or glob.get("why_vacuous", "")
                slot["factors"] = slot["factors"] or glob.get("largest_factors", [])
        except (KeyError, TypeError, AttributeError) as exc:
            res.problem(where, f"{key} brackets malformed ({type(exc).__name__}: {exc}); skipped")
    return out


def brackets_section(res: Results) -> str:
    parts = []
    for key, title in (("certify", "final epoch"), ("matched", "matched-accuracy checkpoint")):
        data = _collect(res, key)
        if not data:
            continue
        rows = []
        for model in sorted(data):
            for lab in sorted(data[model], key=lambda s: _eps_value(s)):
                s = data[model][lab]
                pts = s["points"]
                emp = _gmean(p.get("empirical_lower") for p in pts)
                cert = _gmean(p.get("certified_upper") for p in pts)
                ratios = [p.get("ratio") for p in pts]
                fb = sum(1 for p in pts if p.get("fallbacks"))
                loc = sum(1 for p in pts if p.get("certified_source", "local") == "local")
                glob = _median(s["globals"])
                facts = ", ".join(f"{_e(x.get('layer'))} {_f(x.get('lipschitz'), 3)}" for x in s["factors"][:3])
                cls = "ok" if cert is not None and math.isfinite(cert) and glob is not None and cert < glob else "bad"
                rows.append([_e(model), _e(lab), str(s["units"]), f"{len(pts)} ({loc} local)",
                             f"[{_f(emp)}, <span class=\"{cls}\">{_f(cert)}</span>]",
                             _f(cert / emp if cert is not None and emp else None, 3),
                             _f(_median(ratios), 3), _f(max((num(r) for r in ratios if num(r) is not None),
                                                           default=None), 3),
                             str(fb), _f(glob), f"{_e(s['why'])}<br><span class=\"muted\">largest factors: "
                                                f"{facts}</span>"])
        parts.append(f"<h3>Brackets at the {title}</h3>" + _table(
            ["model", "eps", "units", "points (certified locally)",
             "[empirical lower, certified upper] (geometric means)",
             "upper / lower", "median ratio", "worst ratio", "points with fallback", "global upper (median)",
             "what makes the global bound vacuous"], rows, "brackets"))
    if not parts:
        return ('<p class="muted">No certified brackets in the topolip results (run <code>boundlab experiment '
                'topolip</code> with --certify-points &gt; 0, or <code>boundlab certify</code>).</p>')
    note = ('<p class="muted">The empirical lower bound is the largest ||J_f(x)||<sub>2</sub> found at searched points '
            "of the region (a lower bound of the local constant); the certified upper bound is the registered "
            "<code>local.lipschitz_l2</code> (sound in float64), or the global bound where that is smaller or the "
            "region could not be bounded locally (a point not certified locally). A ratio far above 1 means the "
            "certificate is loose there, not that the model is rough. Regions: eps-boxes around probe images "
            "intersected with [0, 1].</p>")
    return note + "".join(parts)


def _eps_value(label: str) -> float:
    try:
        if "/" in label:
            a, b = label.split("/", 1)
            return float(a) / float(b)
        return float(label)
    except ValueError:
        return math.inf


_CLS = {"supported": "ok", "contradicted": "bad"}


def _cell(label) -> str:
    text = str(label)
    head = text.split(" ")[0]
    return f'<span class="{_CLS.get(head, "")}">{_e(text)}</span>' if head in _CLS else _e(text)


def _interval(block: dict) -> str:
    diff = (block or {}).get("difference") or {}
    ci = diff.get("ci95") or [None, None]
    if not isinstance(ci, (list, tuple)) or len(ci) != 2:
        return "-"
    p = ((block or {}).get("test") or {}).get("p")
    return f"{_f(diff.get('mean'), 3)} [{_f(ci[0], 3)}, {_f(ci[1], 3)}]" + (f", p = {_f(p, 2)}" if p is not None else "")


def verdicts_section(res: Results) -> str:
    if res.verdicts is None:
        return '<p class="muted">No readable topolip/verdicts.json.</p>'
    rows = []
    for c in res.verdicts.get("claims", []):
        try:
            final = c.get("final") or {}
            matched = c.get("matched") or {}
            gap = (matched.get("accuracy_gap") or {}).get("difference") or {}
            acc = matched.get("clean_accuracy") or {}
            acc_text = ", ".join(f"{_e(m)} {_f(_median(v), 3)}" for m, v in acc.items()) if isinstance(acc, dict) else ""
            rows.append([_e(c["id"]), _cell(c.get("label", c["verdict"])),
                         _e((final.get("difference") or {}).get("what", "")), _interval(final),
                         _cell(matched.get("label", matched.get("verdict", "-"))), _interval(matched),
                         (f"{acc_text}; gap {_f(gap.get('mean'), 3)}" if gap else acc_text)])
        except (KeyError, TypeError, AttributeError) as exc:
            res.problem(res.root / "topolip" / "verdicts.json", f"claim malformed ({type(exc).__name__}: {exc})")
    cfg = res.verdicts.get("config") or {}
    note = (f'<p class="muted">{_e(cfg.get("verdict_rule", ""))}. Bootstrap: '
            f'{_e(cfg.get("bootstrap", ""))}; matched target accuracy {_e(cfg.get("target_accuracy"))}.</p>')
    return note + _table(["claim", "final epoch", "compared", "mean difference [95% CI], p", "matched accuracy",
                          "mean difference [95% CI], p", "clean accuracy at the matched checkpoint (median)"],
                         rows, "verdicts-ci")


def grid_section(res: Results) -> str:
    if res.verdicts is None:
        return ""
    claims = [c for c in res.verdicts.get("claims", []) if isinstance(c.get("grid"), dict)]
    if not claims:
        return '<p class="muted">The verdicts file has no sensitivity grid (written by an older version).</p>'
    cols: list[str] = []
    for c in claims:
        for k in c["grid"]:
            if k not in cols:
                cols.append(k)
    rows = []
    for c in claims:
        labels = [str(c["grid"].get(k, "-")) for k in cols]
        heads = {lab.split(" ")[0] for lab in labels if lab not in ("n/a", "-")}
        flip = ' <span class="bad">(flips)</span>' if {"supported", "contradicted"} <= heads else ""
        rows.append([_e(c["id"]) + flip] + [_cell(lab) for lab in labels])
    return ('<p class="muted">Final epoch; one factor at a time around the base setting. n/a: the setting does not '
            "enter the claim's metric.</p>" + _table(["claim"] + cols, rows, "grid"))


def certify_section(res: Results) -> str:
    """The three parts in one report section (registered in :mod:`reports.html`)."""
    return (brackets_section(res) + '<h3 id="verdict-intervals">Verdicts with intervals</h3>' + verdicts_section(res)
            + '<h3 id="verdict-grid">Verdict-by-setting grid</h3>' + grid_section(res))
