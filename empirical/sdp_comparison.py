"""SDP bounds beside the analytic bounds and an empirical lower bound, on the same seeded networks.

:func:`write_sdp_comparison` writes ``OUT/lipsdp/<name>.json`` (the format ``boundlab lipsdp --json`` writes and the
report reads): a ReLU MLP of the reference shape 2-10-30-20-2 (LipSDP-Neuron and -Layer vs the product of spectral
norms) and one dot-product attention head on :math:`B_R^n` (the SDP bound of :mod:`theory.attention_sdp` vs the
analytic bounds of :mod:`theory.attention`). Every upper bound is certified; the empirical value is a lower bound
(projected gradient ascent of the local Jacobian norm over the domain). Seeded; seconds on 2 cores.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from boundlab.io.results import metadata_block, write_json
from boundlab.theory.attention import AttentionWeights, bounded_dot_product_bound, castin_bounded_dot_product_bound
from boundlab.theory.attention_sdp import attention_sdp_details
from boundlab.theory.lipsdp import FeedForward, lipsdp

from .attention import dot_product_attention
from .lipschitz import global_lipschitz_lower_bound
from .mlp import feedforward_function

__all__ = ["write_sdp_comparison"]


def _mlp_doc(seed: int, widths=(2, 10, 30, 20, 2), radius: float = 10.0) -> dict:
    rng = np.random.default_rng(seed)
    ws = [rng.standard_normal((widths[i + 1], widths[i])) / np.sqrt(widths[i]) for i in range(len(widths) - 1)]
    net = FeedForward.from_weights(ws, "relu")
    rows = []
    for form in ("neuron", "layer"):
        t = time.perf_counter()
        res = lipsdp(net, form)
        rows.append({**res.as_dict(), "wall_seconds": time.perf_counter() - t})
    # ReLU nets are piecewise linear: the global constant is the largest local one; search a big ball
    lb = global_lipschitz_lower_bound(feedforward_function(net), (widths[0],), radius, restarts=16, steps=30,
                                      seed=seed).lower_bound
    cfg = {"network": "relu MLP", "widths": list(widths), "weights": "N(0, 1/fan_in), seeded", "search_radius": radius}
    return {**metadata_block(cfg, seed), "network": f"ReLU MLP {list(widths)}", "results": rows,
            "empirical_lower": lb,
            "analytic": {"product of spectral norms (composition.product)": rows[0]["naive_bound"]}}


def _attention_doc(seed: int, d: int = 3, n: int = 3, radius: float = 1.0) -> dict:
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((1, d, d)) / np.sqrt(d) for _ in range(3))
    w = AttentionWeights.from_arrays(q, k, v, np.eye(d)[None])
    t = time.perf_counter()
    det = attention_sdp_details(w, n, radius)
    seconds = time.perf_counter() - t
    lb = global_lipschitz_lower_bound(dot_product_attention(w), (n, d), radius, restarts=12, steps=40,
                                      seed=seed).lower_bound
    cfg = {"network": "one dot-product attention head on B_R^n", "d": d, "n_tokens": n, "radius": radius}
    row = {"form": "attention SDP (attention.sdp_bounded_dp)", "certified": det.bound, "solver_value": None,
           "naive_bound": None, "solve_seconds": seconds, "status": "certified"}
    return {**metadata_block(cfg, seed), "network": f"attention head d={d}, n={n}, R={radius}", "results": [row],
            "empirical_lower": lb,
            "analytic": {"attention.bounded_dp": bounded_dot_product_bound(w, n, radius),
                         "attention.castin_bounded_dp": castin_bounded_dot_product_bound(w, n, radius)}}


def write_sdp_comparison(out_dir, seed: int = 0) -> list[Path]:
    """Write ``OUT/lipsdp/demo_mlp.json`` and ``OUT/lipsdp/demo_attention.json``; returns their paths."""
    folder = Path(out_dir) / "lipsdp"
    return [write_json(folder / "demo_mlp.json", _mlp_doc(seed)),
            write_json(folder / "demo_attention.json", _attention_doc(seed))]
