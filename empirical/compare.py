r"""Every registered bound that applies to one layer, beside an empirical lower bound in the same norm.

:func:`compare_layer` is what ``boundlab lipschitz conv|attention``, ``boundlab lipsdp`` and the demo's SDP
comparisons call: it iterates :func:`boundlab.theory.registry.applicable` (no list of bound names anywhere), evaluates
each record, and adds one empirical *lower* bound per norm the rows are measured in, from the estimator registered
for the layer's type in :data:`LOWER_BOUNDS`. Rows of different norms are never compared with one lower bound: a row
whose norm has no estimator says so (``tightness`` is ``None``). A statement known to be false (``expect =
"falsified"``) keeps kind ``falsified`` and carries its refutation; it is never reported as an upper bound.

The document (``{"layer", "results": [{"name", "kind", "norm", "value", ...}], "lower_bounds"}``) is the shape
``docs/results.md`` describes and the report reads.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..theory.attention import AttentionLayer
from ..theory.convolution import ConvLayer
from ..theory.lipsdp import FeedForward
from ..theory.registry import Bound, applicable
from ..io.errors import BoundlabError

__all__ = ["LowerBound", "LOWER_BOUNDS", "lower_bound", "compare_layer", "meanfield_w2_lower_bound"]


@dataclass(frozen=True)
class LowerBound:
    """An empirical lower bound on a layer's constant in ``norm``: ``value`` and how it was found."""

    norm: str
    value: float
    method: str
    seconds: float


def _conv_l2(layer: ConvLayer, seed: int, device, search: dict) -> tuple[float, str]:
    from .lipschitz import conv_operator_norm

    return conv_operator_norm(layer, seed=seed, device=device), "Lanczos on T^T T (exact SVD for small layers)"


def _attention_map(layer: AttentionLayer, device):
    from .attention import dot_product_attention, l2_attention

    return (dot_product_attention if layer.attention == "dot_product" else l2_attention)(layer.weights, device)


def _search_radius(layer: AttentionLayer, search: dict) -> float:
    r = layer.radius if layer.bounded else float(search.get("radius", 1.0))
    return r


def _attention_norm(norm: str):
    def estimate(layer: AttentionLayer, seed: int, device, search: dict) -> tuple[float, str]:
        from .lipschitz import global_lipschitz_lower_bound

        r = _search_radius(layer, search)
        res = global_lipschitz_lower_bound(_attention_map(layer, device), (layer.n_tokens, layer.weights.dim), r,
                                           norm="2" if norm == "l2" else "inf", seed=seed, device=device,
                                           restarts=int(search.get("restarts", 8)), steps=int(search.get("steps", 30)))
        return res.lower_bound, f"projected gradient ascent of the local constant over B_R^n, R = {r:g}"

    return estimate


def meanfield_w2_lower_bound(layer: AttentionLayer, seed: int = 0, pairs: int = 4, extra_tokens: int = 1,
                             device=None) -> float:
    r"""A lower bound on the :math:`W_2` Lipschitz constant of mean-field attention on measures in :math:`B_R`:
    the largest ratio :math:`W_2(F(\mu),F(\nu))/W_2(\mu,\nu)` over seeded pairs of uniform token sets in the ball
    (same sizes with perturbations at two scales, a translation along the top singular direction of
    :math:`\sum_hM_h`, where the ratio is :math:`\|\sum_hM_h^\top t\|/\|t\|` for weak attention, and different sizes).
    Exact :math:`W_2` on both sides (:func:`empirical.wasserstein.wasserstein_uniform`)."""
    import torch

    from .attention import dot_product_attention
    from .wasserstein import wasserstein_uniform

    if not (layer.attention == "dot_product" and layer.bounded):
        raise BoundlabError("layer: the mean-field bound is for dot-product attention on a bounded domain")
    w, n, r = layer.weights, layer.n_tokens, layer.radius
    f = dot_product_attention(w, device)
    rng = np.random.default_rng(seed)

    def ball(k):
        x = rng.standard_normal((k, w.dim))
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        return x * r * rng.random((k, 1)) ** (1 / w.dim)

    def push(x):
        return f(torch.as_tensor(x)[None]).squeeze(0).detach().cpu().numpy()

    def proj(x):
        nrm = np.linalg.norm(x, axis=1, keepdims=True)
        return x * np.minimum(1.0, r / np.maximum(nrm, 1e-300))

    m = sum(w.value_output_matrices())  # (d, d_out): at A = 0 a translation by t is pushed to M^T t
    top = np.linalg.svd(m)[0][:, 0]
    best = 0.0
    for _ in range(pairs):
        x = ball(n)
        half = 0.5 * x  # inside B_{R/2}: a translation by up to R/2 stays in the ball
        cands = [(x, ball(n + extra_tokens)), (half, half + 0.5 * r * rng.random() * top)]
        cands += [(x, proj(x + eps * r * rng.standard_normal(x.shape))) for eps in (1e-1, 1e-3)]
        for a, b in cands:
            d_in = wasserstein_uniform(a, b)
            if d_in > 1e-9 * r:
                best = max(best, wasserstein_uniform(push(a), push(b)) / d_in)
    return best


def _attention_w2(layer: AttentionLayer, seed: int, device, search: dict) -> tuple[float, str]:
    return meanfield_w2_lower_bound(layer, seed, device=device), "W2 ratio over seeded pairs of token sets in B_R"


def _network_l2(net: FeedForward, seed: int, device, search: dict) -> tuple[float, str]:
    from .lipschitz import global_lipschitz_lower_bound
    from .mlp import feedforward_function

    r = float(search.get("radius", 10.0))
    f = feedforward_function(net, device)
    res = global_lipschitz_lower_bound(lambda x: f(x.flatten(1)).unsqueeze(1), (1, net.weights[0].shape[1]), r,
                                       seed=seed, device=device, restarts=int(search.get("restarts", 16)),
                                       steps=int(search.get("steps", 30)))
    return res.lower_bound, f"projected gradient ascent of the local constant over the ball of radius {r:g}"


#: the empirical lower-bound estimator of each (layer type, norm); one place, used by every consumer
LOWER_BOUNDS: dict[tuple[type, str], Callable[..., tuple[float, str]]] = {
    (ConvLayer, "l2"): _conv_l2,
    (AttentionLayer, "l2"): _attention_norm("l2"),
    (AttentionLayer, "linf"): _attention_norm("linf"),
    (AttentionLayer, "W2"): _attention_w2,
    (FeedForward, "l2"): _network_l2,
}


def lower_bound(layer: Any, norm: str, *, seed: int = 0, device=None, **search) -> LowerBound | None:
    """The empirical lower bound of ``layer`` in ``norm`` (``None`` when no estimator is registered for it)."""
    est = next((fn for (typ, nm), fn in LOWER_BOUNDS.items() if nm == norm and isinstance(layer, typ)), None)
    if est is None:
        return None
    t = time.perf_counter()
    value, method = est(layer, seed, device, search)
    return LowerBound(norm, float(value), method, time.perf_counter() - t)


def _row(record: Bound, layer: Any, kwargs: dict) -> dict:
    t = time.perf_counter()
    row = {"name": record.name, "kind": record.reported_kind, "norm": record.norm, "covers": record.covers,
           "source": record.source, "confidence": record.confidence}
    try:
        res = record.evaluate(layer, **kwargs.get(record.name, {}))
    except BoundlabError as exc:  # a solver that failed: no number, and the reason is shown
        return {**row, "value": None, "error": str(exc), "seconds": time.perf_counter() - t}
    row.update(value=res.value, seconds=time.perf_counter() - t)
    if record.expect == "falsified":
        row["refutation"] = record.refutation
    if res.details is not None:
        row["details"] = res.details.as_dict() if hasattr(res.details, "as_dict") else None
    return row


def compare_layer(layer: Any, *, seed: int = 0, device=None, include_planted: bool = False,
                  evaluate_kwargs: dict[str, dict] | None = None, search: dict | None = None) -> dict:
    """Evaluate every bound applicable to ``layer`` and an empirical lower bound per norm.

    Returns ``{"layer": summary, "results": rows, "lower_bounds": {norm: {...}}}``. Each row has ``name, kind,
    norm, value, covers, source, confidence, seconds`` (``refutation`` for a falsified statement, ``details``
    where the evaluator has them) and ``tightness`` = lower bound / value for upper and exact rows of a norm with
    a lower bound (``None`` otherwise). ``evaluate_kwargs`` passes options to named records (a solver), ``search``
    to the lower-bound estimators (restarts, steps, radius).
    """
    search = search or {}
    records = applicable(layer, include_planted=include_planted)
    rows = [_row(b, layer, evaluate_kwargs or {}) for b in records]
    lows: dict[str, LowerBound | None] = {}
    for norm in dict.fromkeys(r["norm"] for r in rows):
        lows[norm] = lower_bound(layer, norm, seed=seed, device=device, **search)
    for r in rows:
        lb = lows.get(r["norm"])
        ok = lb is not None and r["kind"] in ("upper", "exact") and isinstance(r.get("value"), float) \
            and math.isfinite(r["value"]) and r["value"] > 0
        r["tightness"] = lb.value / r["value"] if ok else None
    summary = layer.summary() if hasattr(layer, "summary") else {"type": type(layer).__name__}
    return {"layer": {"type": type(layer).__name__, **summary}, "results": rows,
            "lower_bounds": {k: (None if v is None else {"value": v.value, "method": v.method, "seconds": v.seconds,
                                                         "kind": "lower"}) for k, v in lows.items()}}
