"""SDP bounds beside the analytic bounds and an empirical lower bound, on the same seeded networks (the demo).

:func:`write_sdp_comparison` writes ``OUT/lipsdp/<name>.json`` in the shape of :func:`empirical.compare.compare_layer`
(the one ``boundlab lipsdp --json`` writes and the report reads): a ReLU MLP of the reference shape 2-10-30-20-2 and
one dot-product attention head on :math:`B_R^n`, each with every registered bound that applies to it (LipSDP-Neuron
and -Layer and the product of spectral norms; the attention SDP, the analytic bounds and the mean-field bound, whose
norm is W2). Every upper bound is certified; the empirical values are lower bounds, one per norm. Seeded; seconds on
2 cores.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..io.results import metadata_block, write_json
from ..theory.attention import AttentionLayer, AttentionWeights
from ..theory.lipsdp import FeedForward
from .compare import compare_layer

__all__ = ["write_sdp_comparison", "demo_mlp", "demo_attention"]


def demo_mlp(seed: int, widths=(2, 10, 30, 20, 2)) -> FeedForward:
    """The demo ReLU MLP: weights N(0, 1/fan_in) from ``seed``."""
    rng = np.random.default_rng(seed)
    ws = [rng.standard_normal((widths[i + 1], widths[i])) / np.sqrt(widths[i]) for i in range(len(widths) - 1)]
    return FeedForward.from_weights(ws, "relu")


def demo_attention(seed: int, d: int = 3, n: int = 3, radius: float = 1.0) -> AttentionLayer:
    """The demo attention head: d = n = 3, R = 1, query/key/value N(0, 1/d) from ``seed``, identity output."""
    rng = np.random.default_rng(seed)
    q, k, v = (rng.standard_normal((1, d, d)) / np.sqrt(d) for _ in range(3))
    return AttentionLayer.create(AttentionWeights.from_arrays(q, k, v, np.eye(d)[None]), n, radius)


def write_sdp_comparison(out_dir, seed: int = 0) -> list[Path]:
    """Write ``OUT/lipsdp/demo_mlp.json`` and ``OUT/lipsdp/demo_attention.json``; returns their paths."""
    folder = Path(out_dir) / "lipsdp"
    mlp, att = demo_mlp(seed), demo_attention(seed)
    docs = {
        "demo_mlp": (mlp, {"command": "demo", "network": mlp.describe(), "weights": "N(0, 1/fan_in), seeded"},
                     {"radius": 10.0, "restarts": 16, "steps": 30}),
        "demo_attention": (att, {"command": "demo", "network": att.describe()}, {"restarts": 12, "steps": 40}),
    }
    out = []
    for name, (layer, cfg, search) in docs.items():
        doc = compare_layer(layer, seed=seed, search=search)
        out.append(write_json(folder / f"{name}.json", {**metadata_block({**cfg, "search": search}, seed),
                                                         "title": cfg["network"], **doc}))
    return out
