r"""Verdicts: the finished units turned into the table of seed claims, at the final epoch and at matched accuracy.

Every claim compares two models paired by seed (:mod:`._stats`: bootstrap 95% interval of the mean paired
difference, exact sign-flip test; the verdict from the interval). Each claim is judged

* at the **final epoch** and at the **matched-accuracy checkpoint** (the first epoch whose probe clean accuracy
  reached the target; the accuracies compared are recorded beside the verdict);
* on **both ends** when it is a smoothness claim (``*.local_lipschitz``): ``supported (certified)`` when the
  interval of :math:`\log U_a-\log L_b` (a's certified upper bound against b's empirical lower bound, geometric
  means over the certified probe points) lies below 0, ``contradicted (certified)`` when that of
  :math:`\log L_a-\log U_b` lies above 0, otherwise the empirical verdict (``supported (empirical)`` ...) from the
  empirical lower bounds alone;
* over a **sensitivity grid** (final epoch): the TopoLip variant (A, B; raw and scale-normalised are separate
  claims), the probe size and the noise level of the perturbed cloud (one factor at a time, from the unit's
  ``sensitivity`` measurements), and the radius eps (PGD accuracy and local brackets per eps). A cell is ``n/a``
  where the setting does not enter the claim's metric.
"""

from __future__ import annotations

import math

import numpy as np

from ...io.seeds import derive_seed
from ..certify.brackets import eps_label as _eps_label
from ._stats import bootstrap_mean_ci, paired, sign_flip_test, verdict_from_interval

__all__ = ["summarise_unit", "CLAIMS", "verdicts", "grid_settings"]

#: which settings change each metric (the others are n/a in the grid)
_FACTORS = {"variance": {"probe"}, "id_twonn": {"probe"}, "stability": {"probe"},
            "topolip": {"probe", "sigma", "variant"}, "topolip_normalised": {"probe", "sigma", "variant"},
            "robust_accuracy": {"eps"}, "local_lipschitz": {"eps"}}
_LOG = {"variance", "stability", "topolip", "topolip_normalised", "local_lipschitz"}


def _hidden(layers: list) -> list[dict]:
    """Per-layer rows without the logits (the claims are about hidden representations)."""
    layers = layers or []
    return layers[:-1] if len(layers) > 1 else layers


def _mean(values) -> float | None:
    values = list(values)
    vals = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)]
    return float(np.mean(vals)) if vals and len(vals) == len(values) else None


def _gmean(values) -> float | None:
    vals = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not vals or len(vals) != len(values) or any(not v > 0 for v in vals):
        return None
    return float(np.exp(np.mean(np.log(vals)))) if all(math.isfinite(v) for v in vals) else math.inf


def _key_label(key: str) -> str:
    try:
        return _eps_label(float(key), tol=0.014)
    except ValueError:
        return key


def _checkpoint(doc: dict, at: str) -> tuple[dict | None, dict | None]:
    """(epoch entry, certify brackets) of the final epoch or of the matched-accuracy checkpoint."""
    eps = doc.get("epochs") or []
    if at == "final":
        return (eps[-1] if eps else None), doc.get("certify")
    m = doc.get("matched") or {}
    e = m.get("epoch")
    if e is None:
        return None, None
    ep = next((x for x in eps if x.get("epoch") == e), None)
    return ep, m.get("certify")


def summarise_unit(doc: dict, topo_degree: int = 0, topo_order="inf", variant: str = "A", how: str = "max",
                   at: str = "final", setting: dict | None = None) -> dict:
    """The per-model numbers the claims compare (``None`` where a measurement is missing).

    ``at``: ``"final"`` or ``"matched"``; ``setting``: ``None`` (the base), ``{"variant": v}``,
    ``{"sensitivity": i}`` (the i-th sensitivity measurement's layers) or ``{"eps": e}``."""
    ep, cert = _checkpoint(doc, at)
    if ep is None:
        return {}
    setting = setting or {}
    variant = setting.get("variant", variant)
    layers = ep.get("layers") or []
    if "sensitivity" in setting:
        sens = doc.get("sensitivity") or []
        i = setting["sensitivity"]
        layers = sens[i].get("layers") if 0 <= i < len(sens) else None
        if layers is None:
            return {}
    hidden = _hidden(layers)
    key_h, key_p = f"H{topo_degree}", str(topo_order)

    def dist(row):
        d = (row.get("diagram_distance_to_previous") or {}).get(key_h) or {}
        return d.get(key_p)

    def topolip(suffix):
        vals = [(row.get("topolip") or {}).get(variant + suffix) for row in hidden]
        if not vals or any(not isinstance(v, (int, float)) or not math.isfinite(v) for v in vals):
            return None
        return float(max(vals) if how == "max" else np.mean(vals))

    pgd = (ep.get("robustness") or {}).get("pgd") or {}
    if "eps" in setting:
        robust = next((v for k, v in pgd.items() if _key_label(k) == setting["eps"]), None)
        robust = robust if isinstance(robust, (int, float)) else None
    else:
        robust = _mean(list(pgd.values())) if pgd else None
    lip_emp = lip_cert = None
    per_eps = (cert or {}).get("per_eps") or {}
    if per_eps:
        lab = setting["eps"] if "eps" in setting else next(iter(per_eps))
        row = per_eps.get(lab)
        if row:
            pts = row.get("points") or []
            lip_emp = _gmean([p.get("empirical_lower") for p in pts])
            lip_cert = _gmean([p.get("certified_upper") for p in pts])
    return {"variance": _mean([r.get("variance") for r in hidden]),
            "id_twonn": _mean([r.get("id_twonn") for r in hidden]),
            "stability": _mean([dist(r) for r in hidden]),
            "topolip": topolip(""), "topolip_normalised": topolip("_normalised") if variant in "AB" else None,
            "robust_accuracy": robust, "clean_accuracy": ep.get("clean_accuracy"),
            "local_lipschitz": lip_emp, "local_lipschitz_certified": lip_cert}


# (id, claim, source, metric key, model a, model b, direction: a "lower"/"higher" than b)
CLAIMS = (
    ("attn_vs_conv.variance", "Attn has lower activation variance than Conv", "TopoLip v1 abstract; rev. 2",
     "variance", "attn", "conv", "lower"),
    ("attn_vs_conv.intrinsic_dimension", "Attn has lower intrinsic dimension than Conv", "v1 abstract; rev. 4",
     "id_twonn", "attn", "conv", "lower"),
    ("attn_vs_conv.stability", "Attn is more stable (smaller diagram distance between layer input and output)",
     "v1 abstract", "stability", "attn", "conv", "lower"),
    ("attn_vs_conv.topolip", "Attn is smoother (smaller TopoLip) than Conv", "v2 abstract", "topolip",
     "attn", "conv", "lower"),
    ("attn_vs_conv.topolip_normalised", "Attn has smaller scale-normalised TopoLip than Conv",
     "v2 abstract; scale check of docs/research/topolip.md 5.2 L5", "topolip_normalised", "attn", "conv", "lower"),
    ("attn_vs_conv.local_lipschitz", "Attn is smoother (smaller local Lipschitz constant around data) than Conv",
     "v2 abstract (smoothness), judged on certified and empirical local bounds", "local_lipschitz", "attn", "conv",
     "lower"),
    ("attn_vs_conv.robust_accuracy", "Attn is more robust (higher PGD accuracy) than Conv", "v2 abstract",
     "robust_accuracy", "attn", "conv", "higher"),
    ("vit_vs_resnet.variance", "ViT has higher activation variance than ResNet-18", "v1 abstract; rev. 2",
     "variance", "vit", "resnet", "higher"),
    ("vit_vs_resnet.stability", "ViT is more stable (smaller diagram distance between layer input and output)",
     "v1 abstract", "stability", "vit", "resnet", "lower"),
    ("vit_vs_resnet.topolip", "ViT is smoother (smaller TopoLip) than ResNet-18", "v2 abstract", "topolip",
     "vit", "resnet", "lower"),
    ("vit_vs_resnet.topolip_normalised", "ViT has smaller scale-normalised TopoLip than ResNet-18",
     "v2 abstract; scale check of docs/research/topolip.md 5.2 L5", "topolip_normalised", "vit", "resnet", "lower"),
    ("vit_vs_resnet.local_lipschitz", "ViT is smoother (smaller local Lipschitz constant around data) than "
     "ResNet-18", "v2 abstract (smoothness), judged on certified and empirical local bounds", "local_lipschitz",
     "vit", "resnet", "lower"),
    ("vit_vs_resnet.robust_accuracy", "ViT is more robust (higher PGD accuracy) than ResNet-18", "v2 abstract",
     "robust_accuracy", "vit", "resnet", "higher"),
)

_METRIC_TEXT = {"variance": "activation variance, mean over hidden layers",
                "id_twonn": "TwoNN intrinsic dimension, mean over hidden layers",
                "stability": "W_p(H_k) between consecutive layers' diagrams, mean over hidden layers",
                "topolip": "TopoLip variant {v}, {how} over hidden layers",
                "topolip_normalised": "TopoLip variant {v}_normalised, {how} over hidden layers",
                "robust_accuracy": "PGD accuracy, mean over eps, probe set",
                "local_lipschitz": "local l2 Lipschitz constant on eps-boxes around probe points (geometric mean "
                                   "over the certified points): empirical lower and certified upper bounds"}


def _fmt(vals) -> str:
    a = np.asarray([v for v in vals if v is not None], dtype=float)
    if not a.size:
        return "-"
    return f"{np.mean(a):.4g} +- {np.std(a, ddof=1) if a.size > 1 else 0.0:.2g}"


def _label(verdict: str, evidence: str | None) -> str:
    return f"{verdict} ({evidence})" if evidence and verdict != "inconclusive" else verdict


def _judge(by_model: dict, a: str, b: str, metric: str, direction: str, n_boot: int, seed: int) -> dict:
    """One claim at one checkpoint and setting: values, paired interval, test, verdict (+ the certified end)."""
    va = {s: v.get(metric) for s, v in by_model.get(a, {}).items()}
    vb = {s: v.get(metric) for s, v in by_model.get(b, {}).items()}
    scale = "log" if metric in _LOG else "linear"
    res = paired(va, vb, scale, direction, n_boot, seed)
    res["paired_seeds"] = res.pop("seeds")
    out = {**res, "values": {a: [va[s] for s in sorted(va)], b: [vb[s] for s in sorted(vb)]},
           "seeds": {a: sorted(va), b: sorted(vb)}, "evidence": "empirical" if metric == "local_lipschitz" else None}
    acc_a = {s: v.get("clean_accuracy") for s, v in by_model.get(a, {}).items()}
    acc_b = {s: v.get("clean_accuracy") for s, v in by_model.get(b, {}).items()}
    out["clean_accuracy"] = {a: [acc_a[s] for s in sorted(acc_a)], b: [acc_b[s] for s in sorted(acc_b)]}
    if metric == "local_lipschitz":
        ca = {s: v.get("local_lipschitz_certified") for s, v in by_model.get(a, {}).items()}
        cb = {s: v.get("local_lipschitz_certified") for s, v in by_model.get(b, {}).items()}
        out["certified_values"] = {a: [ca[s] for s in sorted(ca)], b: [cb[s] for s in sorted(cb)]}
        up_lo = paired(ca, vb, "log", "lower", n_boot, derive_seed(seed, "certified.a"))   # U_a vs L_b
        lo_up = paired(va, cb, "log", "higher", n_boot, derive_seed(seed, "certified.b"))  # L_a vs U_b
        if direction == "higher":
            up_lo, lo_up = (paired(va, cb, "log", "higher", n_boot, derive_seed(seed, "certified.a")),
                            paired(ca, vb, "log", "lower", n_boot, derive_seed(seed, "certified.b")))
        out["certified"] = {"a_upper_vs_b_lower": up_lo, "a_lower_vs_b_upper": lo_up}
        if up_lo["verdict"] == "supported":
            out["verdict"], out["evidence"] = "supported", "certified"
        elif lo_up["verdict"] == "supported":
            out["verdict"], out["evidence"] = "contradicted", "certified"
    out["label"] = _label(out["verdict"], out["evidence"])
    return out


def _detail(j: dict, a: str, b: str) -> str:
    vals = j.get("values", {})
    text = f"{a} {_fmt(vals.get(a, []))} vs {b} {_fmt(vals.get(b, []))} over {j.get('n', 0)} seed(s)"
    diff = j.get("difference")
    if diff:
        lo, hi = diff["ci95"]
        text += f"; {diff['what']} = {diff['mean']:.3g}, 95% CI [{lo:.3g}, {hi:.3g}], sign-flip p = {j['test']['p']:.3g}"
    if j.get("reason"):
        text += f" ({j['reason']})"
    if j.get("evidence") == "certified":
        text += "; decided by the certified bounds"
    return text


def grid_settings(results: list[dict], variant: str = "A") -> list[dict]:
    """The settings of the sensitivity grid found in the finished units (each with a column label)."""
    out = [{"label": "base", "factor": None, "setting": None}]
    out.append({"label": f"variant {'B' if variant == 'A' else 'A'}", "factor": "variant",
                "setting": {"variant": "B" if variant == "A" else "A"}})
    sens = None
    for d in results:
        if d.get("status") == "finished" and d.get("sensitivity"):
            sens = d["sensitivity"]
            break
    for i, st in enumerate(sens or []):
        if st.get("factor") == "probe":
            lab = f"probe {st['probe']}" + (f" (whole split: {st['n']})" if st["n"] != st["probe"] else "")
        else:
            lab = f"noise {_eps_label(st['sigma'])}"
        out.append({"label": lab, "factor": "probe" if st.get("factor") == "probe" else "sigma",
                    "setting": {"sensitivity": i}})
    eps: dict[str, float] = {}
    for d in results:
        if d.get("status") != "finished":
            continue
        ep = (d.get("epochs") or [{}])[-1]
        for k in ((ep.get("robustness") or {}).get("pgd") or {}):
            try:
                eps.setdefault(_key_label(k), float(k))
            except ValueError:
                pass
        for lab, row in ((d.get("certify") or {}).get("per_eps") or {}).items():
            if isinstance(row.get("eps"), (int, float)):
                eps[lab] = float(row["eps"])
    for lab, e in sorted(eps.items(), key=lambda kv: kv[1]):
        out.append({"label": f"eps {lab}", "factor": "eps", "setting": {"eps": lab}})
    return out


def _by_model(results, at, setting, topo_degree, topo_order, variant, how):
    by_model: dict[str, dict[int, dict]] = {}
    for doc in results:
        if doc.get("status") == "finished":
            by_model.setdefault(doc["model"], {})[doc["seed"]] = summarise_unit(
                doc, topo_degree, topo_order, variant, how, at=at, setting=setting)
    return by_model


def _spearman_claim(by_model: dict, metric: str, cid: str, label: str, n_boot: int, seed: int,
                    what: str | None = None) -> dict:
    from scipy.stats import spearmanr

    models = sorted(by_model)
    seeds = sorted(set.intersection(*(set(by_model[m]) for m in models))) if models else []
    values = {m: {"topolip": [by_model[m][s].get(metric) for s in seeds],
                  "robust_accuracy": [by_model[m][s].get("robust_accuracy") for s in seeds]} for m in models}
    rhos = []
    for s in seeds:
        t = [by_model[m][s].get(metric) for m in models]
        r = [by_model[m][s].get("robust_accuracy") for m in models]
        if any(v is None for v in t + r):
            continue
        rhos.append(float(spearmanr(t, r).statistic) if len(set(t)) > 1 and len(set(r)) > 1 else float("nan"))
    base = {"id": cid, "claim": f"smaller {label} goes with higher robust accuracy across models (Spearman rho < 0)",
            "source": "v2 abstract (TopoLip correlates with adversarial robustness)",
            "metric": f"Spearman rho between {what or label} and PGD accuracy, per seed, across models",
            "values": {**values, "rho_per_seed": rhos}, "evidence": "empirical"}
    if len(models) < 3:
        return {**base, "verdict": "inconclusive", "detail": f"only {len(models)} model(s); need >= 3 for a rank test"}
    if not rhos or len(rhos) < len(seeds) or any(math.isnan(r) for r in rhos):
        return {**base, "verdict": "inconclusive", "detail": "measurement missing (null) or ties for some seed"}
    mean, lo, hi = bootstrap_mean_ci(rhos, n_boot, seed)
    p = sign_flip_test(rhos, seed)
    detail = (f"rho per seed {[round(r, 3) for r in rhos]} over {len(models)} models; mean {mean:.3g}, 95% CI "
              f"[{lo:.3g}, {hi:.3g}], sign-flip p = {p:.3g}")
    out = {**base, "difference": {"mean": mean, "ci95": [lo, hi], "what": "mean Spearman rho"},
           "test": {"name": "paired sign-flip permutation test of the mean rho", "p": p}, "n": len(rhos)}
    if len(rhos) < 2:
        return {**out, "verdict": "inconclusive", "detail": detail + " (fewer than 2 seeds)"}
    return {**out, "verdict": verdict_from_interval(lo, hi, "lower"), "detail": detail}


def verdicts(results: list[dict], *, topo_degree: int = 0, topo_order="inf", variant: str = "A",
             how: str = "max", n_boot: int = 2000, seed: int = 2024) -> list[dict]:
    """The verdict table over :data:`CLAIMS` plus the TopoLip-robustness rank correlations (raw and normalised),
    each at the final epoch (``verdict``, ``detail``, ``final``), at matched accuracy (``matched``) and over the
    sensitivity grid (``grid``: column label -> verdict label)."""
    args = (topo_degree, topo_order, variant, how)
    settings = grid_settings(results, variant)
    views = {("final", None): _by_model(results, "final", None, *args),
             ("matched", None): _by_model(results, "matched", None, *args)}
    for st in settings[1:]:
        views[("final", st["label"])] = _by_model(results, "final", st["setting"], *args)
    # the radii each eps-dependent metric was measured at (attack budgets; bracket radii): other radii are n/a
    measured = {"robust_accuracy": set(), "local_lipschitz": set()}
    for d in results:
        if d.get("status") == "finished":
            ep = (d.get("epochs") or [{}])[-1]
            measured["robust_accuracy"].update(_key_label(k) for k in ((ep.get("robustness") or {}).get("pgd") or {}))
            measured["local_lipschitz"].update(((d.get("certify") or {}).get("per_eps") or {}).keys())
    out = []
    for cid, text, source, metric, a, b, direction in CLAIMS:
        final = _judge(views[("final", None)], a, b, metric, direction, n_boot, derive_seed(seed, cid, "final"))
        matched = _judge(views[("matched", None)], a, b, metric, direction, n_boot, derive_seed(seed, cid, "matched"))
        gap = paired({s: v for s, v in zip(matched["seeds"][a], matched["clean_accuracy"][a])},
                     {s: v for s, v in zip(matched["seeds"][b], matched["clean_accuracy"][b])}, "linear", "higher",
                     n_boot, derive_seed(seed, cid, "gap"))
        matched["accuracy_gap"] = {k: gap.get(k) for k in ("difference", "n", "reason")}
        grid = {"base": final["label"]}
        for st in settings[1:]:
            if st["factor"] not in _FACTORS[metric] or (
                    st["factor"] == "eps" and st["setting"]["eps"] not in measured.get(metric, {st["setting"]["eps"]})):
                grid[st["label"]] = "n/a"  # the setting does not enter the metric, or nothing was measured there
                continue
            j = _judge(views[("final", st["label"])], a, b, metric, direction, n_boot,
                       derive_seed(seed, cid, st["label"]))
            grid[st["label"]] = j["label"]
        out.append({"id": cid, "claim": text, "source": source,
                    "metric": _METRIC_TEXT[metric].format(v=variant, how=how), "direction": direction,
                    "models": [a, b], "verdict": final["verdict"], "evidence": final["evidence"],
                    "label": final["label"], "detail": _detail(final, a, b), "values": final["values"],
                    "seeds": final["seeds"], "final": final, "matched": {**matched, "detail": _detail(matched, a, b)},
                    "grid": grid})
    for key, cid, lab in (("topolip", "topolip_vs_robustness.spearman", "TopoLip"),
                          ("topolip_normalised", "topolip_vs_robustness.spearman_normalised",
                           "scale-normalised TopoLip")):
        what = _METRIC_TEXT[key].format(v=variant, how=how)  # the variant named, never a "{v}" placeholder
        final = _spearman_claim(views[("final", None)], key, cid, lab, n_boot, derive_seed(seed, cid, "final"), what)
        matched = _spearman_claim(views[("matched", None)], key, cid, lab, n_boot, derive_seed(seed, cid, "matched"),
                                  what)
        grid = {"base": final["verdict"]}
        for st in settings[1:]:
            if st["factor"] not in {"probe", "sigma", "variant", "eps"}:
                grid[st["label"]] = "n/a"
                continue
            j = _spearman_claim(views[("final", st["label"])], key, cid, lab, n_boot,
                                derive_seed(seed, cid, st["label"]), what)
            grid[st["label"]] = j["verdict"]
        out.append({**final, "label": final["verdict"], "final": {k: final.get(k) for k in
                                                                   ("verdict", "difference", "test", "n", "detail")},
                    "matched": {k: matched.get(k) for k in ("verdict", "difference", "test", "n", "detail")},
                    "grid": grid})
    return out
