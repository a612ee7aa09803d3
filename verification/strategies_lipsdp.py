"""Hypothesis strategies for the LipSDP properties: small random MLPs (widths, depth, activation, scale, seed).

Kept tiny (input <= 3, hidden widths <= 5, <= 2 hidden layers) so each SDP solves in tens of milliseconds and
the ``ci`` profile stays fast; the thorough profile draws many more of them.
"""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from boundlab.theory.lipsdp import FeedForward

from .cases import Case
from .strategies import log_uniform, seeds

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "gelu", "silu")


@st.composite
def mlp_cases(draw, max_in: int = 3, max_width: int = 5, max_hidden_layers: int = 2, max_out: int = 2,
              activations=ACTIVATIONS):
    """Weights ``w0..wL`` (``(out, in)``), activation name, negative slope, search radius."""
    depth = draw(st.integers(1, max_hidden_layers))
    widths = [draw(st.integers(1, max_in))] + [draw(st.integers(1, max_width)) for _ in range(depth)]
    widths.append(draw(st.integers(1, max_out)))
    act = draw(st.sampled_from(activations))
    slope = draw(st.sampled_from([0.01, 0.2, -0.5])) if act == "leaky_relu" else 0.01
    seed = draw(seeds)
    scale = draw(log_uniform(0.3, 3.0))
    rng = np.random.default_rng(seed)
    arrays = {f"w{i}": rng.standard_normal((widths[i + 1], widths[i])) * scale / math.sqrt(widths[i])
              for i in range(len(widths) - 1)}
    radius = draw(log_uniform(0.5, 5.0))
    return Case({"widths": widths, "activation": act, "negative_slope": slope, "seed": seed, "scale": scale,
                 "radius": radius}, arrays)


def net_of(case: Case) -> FeedForward:
    ws = [case[f"w{i}"] for i in range(len(case["widths"]) - 1)]
    return FeedForward.from_weights(ws, case["activation"], negative_slope=case["negative_slope"])
