"""Verdicts: the finished units turned into the table of seed claims (paired by seed)."""

from __future__ import annotations

import math

import numpy as np

__all__ = ["summarise_unit", "CLAIMS", "verdicts"]


def _final(doc: dict) -> dict | None:
    eps = doc.get("epochs") or []
    return eps[-1] if eps else None


def _hidden(epoch: dict) -> list[dict]:
    """Per-layer rows without the logits (the claims are about hidden representations)."""
    layers = epoch.get("layers") or []
    return layers[:-1] if len(layers) > 1 else layers


def _mean(values) -> float | None:
    vals = [v for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    return float(np.mean(vals)) if vals and len(vals) == len(list(values)) else None


def summarise_unit(doc: dict, topo_degree: int = 0, topo_order="inf", variant: str = "A",
                   how: str = "max") -> dict:
    """The per-model numbers the claims compare (final epoch; ``None`` where a measurement is missing)."""
    ep = _final(doc)
    if ep is None:
        return {}
    hidden = _hidden(ep)
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
    return {"variance": _mean([r.get("variance") for r in hidden]),
            "id_twonn": _mean([r.get("id_twonn") for r in hidden]),
            "stability": _mean([dist(r) for r in hidden]),
            "topolip": topolip(""), "topolip_normalised": topolip("_normalised") if variant in "AB" else None,
            "robust_accuracy": _mean(list(pgd.values())) if pgd else None,
            "clean_accuracy": ep.get("clean_accuracy")}


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
    ("vit_vs_resnet.robust_accuracy", "ViT is more robust (higher PGD accuracy) than ResNet-18", "v2 abstract",
     "robust_accuracy", "vit", "resnet", "higher"),
)

_METRIC_TEXT = {"variance": "activation variance, mean over hidden layers, final epoch",
                "id_twonn": "TwoNN intrinsic dimension, mean over hidden layers, final epoch",
                "stability": "W_p(H_k) between consecutive layers' diagrams, mean over hidden layers, final epoch",
                "topolip": "TopoLip variant {v}, {how} over hidden layers, final epoch",
                "topolip_normalised": "TopoLip variant {v}_normalised, {how} over hidden layers, final epoch",
                "robust_accuracy": "PGD accuracy, mean over eps, final epoch, probe set"}


def _fmt(vals: list[float]) -> str:
    a = np.asarray(vals, dtype=float)
    return f"{a.mean():.4g} +- {a.std(ddof=1) if a.size > 1 else 0.0:.2g}"


def _pair_verdict(va: dict, vb: dict, a: str, b: str, direction: str) -> tuple[str, str]:
    seeds = sorted(set(va) & set(vb))
    if not seeds:
        return "inconclusive", f"no finished runs of both {a} and {b}"
    missing = [s for s in seeds if va[s] is None or vb[s] is None]
    if missing:
        return "inconclusive", f"measurement missing (null) for seeds {missing}"
    xa, xb = [va[s] for s in seeds], [vb[s] for s in seeds]
    agree = [(x < y) if direction == "lower" else (x > y) for x, y in zip(xa, xb)]
    detail = f"{a} {_fmt(xa)} vs {b} {_fmt(xb)} over {len(seeds)} seed(s); claim holds for {sum(agree)}/{len(seeds)}"
    if len(seeds) < 2:
        return "inconclusive", detail + " (fewer than 2 seeds)"
    if all(agree):
        return "supported", detail
    if not any(agree):
        return "contradicted", detail
    return "inconclusive", detail + " (seeds disagree)"


def _spearman_claim(by_model: dict, metric: str, cid: str, label: str) -> dict:
    from scipy.stats import spearmanr

    models = sorted(by_model)
    seeds = sorted(set.intersection(*(set(by_model[m]) for m in models))) if models else []
    values = {m: {"topolip": [by_model[m][s].get(metric) for s in seeds],
                  "robust_accuracy": [by_model[m][s].get("robust_accuracy") for s in seeds]} for m in models}
    rhos, pooled_t, pooled_r = [], [], []
    for s in seeds:
        t = [by_model[m][s].get(metric) for m in models]
        r = [by_model[m][s].get("robust_accuracy") for m in models]
        if any(v is None for v in t + r):
            continue
        pooled_t += t
        pooled_r += r
        if len(set(t)) > 1 and len(set(r)) > 1:
            rhos.append(float(spearmanr(t, r).statistic))
        else:
            rhos.append(float("nan"))
    base = {"id": cid, "claim": f"smaller {label} goes with higher robust accuracy across models (Spearman rho < 0)",
            "source": "v2 abstract (TopoLip correlates with adversarial robustness)",
            "metric": f"Spearman rho between {_METRIC_TEXT[metric].split(',')[0]} and PGD accuracy, per seed, "
                      f"across models", "values": {**values, "rho_per_seed": rhos}}
    if len(models) < 3:
        return {**base, "verdict": "inconclusive", "detail": f"only {len(models)} model(s); need >= 3 for a rank test"}
    if not rhos or len(rhos) < len(seeds):
        return {**base, "verdict": "inconclusive", "detail": "measurement missing (null) for some model and seed"}
    pooled = spearmanr(pooled_t, pooled_r)
    detail = (f"rho per seed {[round(r, 3) for r in rhos]} over {len(models)} models; pooled over {len(pooled_t)} "
              f"units rho = {pooled.statistic:.3f} (p = {pooled.pvalue:.3g})")
    if len(rhos) < 2:
        return {**base, "verdict": "inconclusive", "detail": detail + " (fewer than 2 seeds)"}
    if all(r < 0 for r in rhos):
        return {**base, "verdict": "supported", "detail": detail}
    if all(r > 0 for r in rhos):
        return {**base, "verdict": "contradicted", "detail": detail}
    return {**base, "verdict": "inconclusive", "detail": detail + " (seeds disagree or ties)"}


def verdicts(results: list[dict], *, topo_degree: int = 0, topo_order="inf", variant: str = "A",
             how: str = "max") -> list[dict]:
    """The verdict table over :data:`CLAIMS` plus the TopoLip-robustness rank correlation (raw and normalised)."""
    by_model: dict[str, dict[int, dict]] = {}
    for doc in results:
        if doc.get("status") == "finished":
            by_model.setdefault(doc["model"], {})[doc["seed"]] = summarise_unit(doc, topo_degree, topo_order,
                                                                                variant, how)
    out = []
    for cid, text, source, metric, a, b, direction in CLAIMS:
        va = {s: v.get(metric) for s, v in by_model.get(a, {}).items()}
        vb = {s: v.get(metric) for s, v in by_model.get(b, {}).items()}
        verdict, detail = _pair_verdict(va, vb, a, b, direction)
        out.append({"id": cid, "claim": text, "source": source,
                    "metric": _METRIC_TEXT[metric].format(v=variant, how=how),
                    "values": {a: [va[s] for s in sorted(va)], b: [vb[s] for s in sorted(vb)]},
                    "seeds": {a: sorted(va), b: sorted(vb)}, "verdict": verdict, "detail": detail})
    out.append(_spearman_claim(by_model, "topolip", "topolip_vs_robustness.spearman", "TopoLip"))
    out.append(_spearman_claim(by_model, "topolip_normalised", "topolip_vs_robustness.spearman_normalised",
                               "scale-normalised TopoLip"))
    return out


