r"""Brackets ``[empirical lower, certified upper]`` of a model's local Lipschitz constant around data points.

For each point x of a probe set and each radius eps, the region is :math:`R=\{x':\|x'-x\|\le\varepsilon\}\cap[0,1]^D`
(pixel scale; ``linf`` box or ``l2`` ball) and the bracket is

* **empirical lower** :func:`empirical.certify.ascent.region_lower_bound`: the largest :math:`\|J_f(x')\|_2` met at
  searched points x' of R (a lower bound of the local constant);
* **certified upper** the registered bound ``local.lipschitz_l2`` on the :mod:`theory.local` description of the
  model (:func:`empirical.certify.convert.network_of`), an upper bound in float64, or the global bound where
  that is smaller (both bound the local constant; ``certified_source`` says which, and ``local_note`` why a region
  was not bounded locally; ``parts.backward`` which of the certificate's two Jacobian bounds, the generator set
  or the telescoped expansion, gave the value);

beside the model's **global** certified bound on the pixel box (:func:`empirical.models.certified_bounds`) and
what makes it vacuous (its largest per-layer factors). A certified value is never reported below the empirical one:
that would be a soundness failure, and :func:`bracket` raises instead of writing it.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass

import numpy as np
import torch

from boundlab.theory.local import LocalProblem, Options, Region, local_lipschitz_l2
from boundlab.theory.validate import InputError, choice, positive_float, positive_int

from ...io.errors import CheckError
from ...io.progress import emit
from ...io.seeds import derive_seed
from ..models import certified_bounds
from .ascent import region_lower_bound
from .convert import network_of

__all__ = ["SearchConfig", "bracket_model", "global_summary", "summarise_points", "eps_label"]


@dataclass(frozen=True)
class SearchConfig:
    """The empirical search per region (recorded with every bracket)."""

    samples: int = 64
    restarts: int = 4
    steps: int = 16
    smooth: float | None = 50.0   # softplus sharpness of the ReLU surrogate steering the ascent (ascent.py)

    def as_dict(self) -> dict:
        return asdict(self)


def eps_label(eps: float, tol: float = 1e-9) -> str:
    """``2/255``-style label of a radius on the pixel scale: ``k/255`` for an integer k (within ``tol``, which admits
    rounded keys such as 0.0078 -> 2/255), ``0.05/255`` for k < 1 with at most 2 decimals, else 4 significant digits."""
    k = eps * 255
    if abs(k - round(k)) < tol and round(k) > 0:
        return f"{int(round(k))}/255"
    k2 = round(k, 2)
    if 0 < k2 < 1 and abs(k - k2) <= 1e-9 * k:
        return f"{k2:g}/255"
    return f"{eps:.4g}"


def _factor_text(table: list[dict], top: int = 3) -> list[dict]:
    rows = [r for r in table if isinstance(r.get("lipschitz"), (int, float)) and r["lipschitz"] > 0]
    rows.sort(key=lambda r: -abs(math.log(r["lipschitz"])))
    out = []
    for r in rows[:top]:
        item = {"layer": r["layer"], "lipschitz": r["lipschitz"]}
        if isinstance(r.get("radius_in"), (int, float)) and math.isfinite(r["radius_in"]):
            item["radius_in"] = r["radius_in"]
        out.append(item)
    return out


def global_summary(model) -> dict:
    """The global certified bound on the pixel box and what makes it vacuous (its largest per-layer factors)."""
    cb = certified_bounds(model)
    top = _factor_text(cb["table"])
    has_attention = any("attn" in r["layer"] for r in cb["table"])
    if has_attention:
        why = ("a product of per-layer constants on the whole pixel box: each attention layer's bounded-domain "
               "constant grows with its input token radius R (the radius of every reachable token, not of the "
               "region), like R^2, and R itself grows through the un-normalised layers")
    else:
        why = ("a product of per-layer operator norms on the whole pixel box: every ReLU counted as the identity "
               "and every layer's worst direction assumed aligned with the next one's")
    return {"value": cb["network"], "why_vacuous": why, "largest_factors": top, "layers": len(cb["table"])}


def _float64(model):
    m = copy.deepcopy(model).to("cpu").double().eval()
    for p in m.parameters():
        p.requires_grad_(False)
    return m


def bracket_model(model, images, eps_list, *, norm: str = "linf", seed: int = 0, search: SearchConfig | None = None,
                  options: Options | None = None, progress=None, label: str = "certify") -> dict:
    """Brackets of ``model`` (eval mode) at every image of ``images`` (N, C, H, W in [0, 1]) and radius of
    ``eps_list``; returns ``{"per_eps": {label: {...summary, "points": [...]}}, "global": ..., "search": ...}``.

    Raises :class:`InputError` on a NaN image or a radius <= 0, and :class:`CheckError` (never expected) on a
    certified value below the empirical one, which would mean the certificate is unsound."""
    choice("norm", norm, ("linf", "l2"))
    search = search or SearchConfig()
    eps_list = [positive_float(f"eps[{i}]", e) for i, e in enumerate(eps_list)]
    if not eps_list:
        raise InputError("eps: expected at least one radius")
    x = torch.as_tensor(images).detach().to("cpu", torch.float64)
    if x.dim() != 4:
        raise InputError(f"images: expected (N, C, H, W), got shape {tuple(x.shape)}")
    if not torch.isfinite(x).all():
        raise InputError("images: a probe image holds NaN or inf")
    positive_int("images", x.shape[0])
    m64 = _float64(model)
    net = network_of(m64)
    glob = global_summary(m64)
    opts = options or Options()
    out = {"norm": norm, "search": search.as_dict(), "global": glob, "per_eps": {},
           "options": {"max_generators": opts.max_generators, "generator_entries": opts.generator_entries, "back_substitution": opts.back_substitution,
                       "telescoped": opts.telescoped}}
    total, done = len(eps_list) * x.shape[0], 0
    for e in eps_list:
        pts = []
        for i in range(x.shape[0]):
            t0 = time.perf_counter()
            centre = x[i]
            region = Region.create(centre.numpy(), e, norm, 0.0, 1.0)
            bv = local_lipschitz_l2(LocalProblem.create(net, region))
            cert = bv.details
            t1 = time.perf_counter()
            s = region_lower_bound(m64, centre, e, norm=norm, samples=search.samples, restarts=search.restarts,
                                   steps=search.steps, seed=derive_seed(seed, "certify.search", eps_label(e), i),
                                   smooth=search.smooth)
            t2 = time.perf_counter()
            if bv.value < s.lower_bound * (1 - 1e-9):
                raise CheckError(f"certify: the certified bound {bv.value} is below the empirical lower bound "
                                 f"{s.lower_bound} at point {i}, eps {e}: the certificate is unsound")
            # the global bound on the pixel box also bounds the local constant: report the smaller, labelled
            upper, source = (bv.value, "local") if bv.value <= glob["value"] else (glob["value"], "global")
            pts.append({"point": i, "empirical_lower": s.lower_bound, "centre_value": s.centre_value,
                        "certified_upper": upper, "certified_source": source, "local_certificate": bv.value,
                        "local_note": cert.enclosure if not math.isfinite(bv.value) else "",
                        "ratio": (upper / s.lower_bound) if s.lower_bound > 0
                        else math.inf, "unstable_relus": cert.unstable(), "fallbacks": cert.fallbacks(),
                        "parts": {"mid": cert.jacobian_mid_norm, "generators": cert.generator_norm,
                                  "remainder": cert.remainder_norm, "factors": [f["value"] for f in cert.factors],
                                  "backward": cert.backward,
                                  "telescoped": {k: v for k, v in cert.telescoped.items() if k != "seconds"}},
                        "seconds": {"certify": t1 - t0, "search": t2 - t1}, "searched_points": s.points})
            done += 1
            emit(progress, label, done, total, f"{label}: eps {eps_label(e)} point {i + 1}/{x.shape[0]}: "
                 f"[{s.lower_bound:.4g}, {bv.value:.4g}]")
        out["per_eps"][eps_label(e)] = {"eps": e, **summarise_points(pts, glob["value"]), "points": pts}
    return out


def _gmean(v) -> float | None:
    a = np.asarray([x for x in v if isinstance(x, (int, float)) and x > 0], dtype=float)
    if not a.size:
        return None
    return float(np.exp(np.mean(np.log(a)))) if np.isfinite(a).all() else math.inf


def summarise_points(points: list[dict], global_value: float) -> dict:
    """Geometric means over the points, the median and worst certified / empirical ratios, and a vacuity flag."""
    emp = [p["empirical_lower"] for p in points]
    cert = [p["certified_upper"] for p in points]
    ratios = [p["ratio"] for p in points]
    finite = [r for r in ratios if math.isfinite(r)]
    return {"n_points": len(points), "empirical_lower_gmean": _gmean(emp), "certified_upper_gmean": _gmean(cert),
            "empirical_lower_max": max(emp) if emp else None, "certified_upper_max": max(cert) if cert else None,
            "ratio_median": float(np.median(ratios)) if ratios else None,
            "ratio_max": max(ratios) if ratios else None, "finite_points": len(finite),
            "vacuous_points": sum(1 for c in cert if not math.isfinite(c) or c >= global_value),
            "local_points": sum(1 for p in points if p.get("certified_source", "local") == "local"),
            "global_upper": global_value}
