"""The path decomposition of a self-attention network and the path counts."""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from ..registry import register
from ..validate import InputError, as_real_array, positive_int


@dataclass(frozen=True)
class Path:
    """One path of the decomposition: the head taken at each layer (0 is the skip branch when ``skip``)."""

    heads: tuple[int, ...]
    attention: np.ndarray  # P_path = P^L_{h_L} ... P^1_{h_1}, (n, n)
    weight: np.ndarray  # W_path = W^1_{h_1} ... W^L_{h_L}, (d, d)
    skip: bool = False

    @property
    def length(self) -> int:
        """Number of attention hops (non-skip layers); the depth when there are no skips."""
        return sum(1 for h in self.heads if h != 0) if self.skip else len(self.heads)


def _probs(name: str, attention, n: int | None = None) -> list[np.ndarray]:
    """Validate per-layer attention matrices: a list of (H, n, n) arrays."""
    if not isinstance(attention, (list, tuple)) or not attention:
        raise InputError(f"{name}: expected a non-empty list of (heads, n, n) arrays (depth >= 1)")
    out = []
    for l, p in enumerate(attention):
        a = as_real_array(f"{name}[{l}]", p, ndim=3)
        if a.shape[1] != a.shape[2] or (n is not None and a.shape[1] != n):
            raise InputError(f"{name}[{l}]: expected shape (heads, n, n) with n = {n}, got {a.shape}")
        n = a.shape[1]
        out.append(a)
    return out


@register(
    "rank.path_decomposition",
    value=lambda out: float(np.max(np.abs(out[0]))),
    norm="none",
    kind="exact",
    assumptions=("bias-free SAN", "P^l_h computed on the forward pass", "skips: head 0 with P_0 = I, W_0 = I"),
    source="Dong, Cordonnier, Loukas, ICML 2021, Thm 2.1 (restated in secondary sources)",
    confidence="reconstructed",
    covers="pure self-attention networks with and without skip connections",
    notes="The identity is multilinearity of the layer maps once the P^l_h are fixed; P_path is row-stochastic.",
)
def path_decomposition(x, attention, values, skip: bool = False) -> tuple[np.ndarray, list[Path]]:
    r"""Sum over paths :math:`\sum_{\mathrm{path}}P_{\mathrm{path}}XW_{\mathrm{path}}` and the paths themselves.

    .. math:: \mathrm{SAN}(X)=\sum_{\mathrm{path}\in[H]^L}P_{\mathrm{path}}XW_{\mathrm{path}},\ P_{\mathrm{path}}=P^L_{h_L}\cdots P^1_{h_1},\ W_{\mathrm{path}}=W^1_{h_1}\cdots W^L_{h_L}

    ``attention[l]``: the ``(H, n, n)`` attention matrices of layer l+1 (from a forward pass);
    ``values[l]``: the ``(H, d, d)`` effective value matrices :math:`W^l_h=V^l_hO^l_h`. With ``skip`` a head 0
    with :math:`P_0=I`, :math:`W_0=I` is added per layer, so there are :math:`(1+H)^L` paths
    (:math:`H^L` without). Exact: expanding :math:`X^l=\sum_hP^l_hX^{l-1}W^l_h` (or with the identity term)
    layer by layer distributes the product over the sums.
    """
    a = as_real_array("x", x, ndim=2)
    probs = _probs("attention", attention, a.shape[0])
    if not isinstance(values, (list, tuple)) or len(values) != len(probs):
        raise InputError(f"values: expected a list of {len(probs)} (heads, d, d) arrays, one per layer")
    ws = []
    d = a.shape[1]
    for l, (w, p) in enumerate(zip(values, probs)):
        w = as_real_array(f"values[{l}]", w, ndim=3)
        if w.shape != (p.shape[0], d, d):
            raise InputError(f"values[{l}]: expected shape ({p.shape[0]}, {d}, {d}), got {w.shape}")
        ws.append(w)
    n = a.shape[0]
    if skip:
        probs = [np.concatenate([np.eye(n)[None], p]) for p in probs]
        ws = [np.concatenate([np.eye(d)[None], w]) for w in ws]
    paths = []
    total = np.zeros_like(a)
    for heads in itertools.product(*(range(p.shape[0]) for p in probs)):
        pp, ww = np.eye(n), np.eye(d)
        for l, h in enumerate(heads):
            pp = probs[l][h] @ pp
            ww = ww @ ws[l][h]
        total += pp @ a @ ww
        paths.append(Path(tuple(heads), pp, ww, skip))
    return total, paths


@register(
    "rank.path_count",
    value=lambda counts: float(np.sum(counts)),
    norm="count",
    kind="exact",
    assumptions=("SAN with skip connections, depth L, H heads per layer",),
    source="Dong, Cordonnier, Loukas, ICML 2021, Sec. 3.1; paper-plotting/paths_counting.ipynb (Binomial(L, H/(H+1)))",
    confidence="standard",
    covers="path counts by length; without skips all H^L paths have length L",
)
def path_counts(depth: int, heads: int, skip: bool = True) -> np.ndarray:
    r"""Number of paths of each length :math:`l=0..L`: :math:`\binom Ll H^l` with skips, :math:`H^L\,[l=L]` without.

    .. math:: |\mathcal P_l|=\binom Ll H^l,\qquad \sum_{l=0}^L|\mathcal P_l|=(1+H)^L
    """
    L = positive_int("depth", depth)
    H = positive_int("heads", heads)
    if skip:
        return np.array([math.comb(L, l) * H**l for l in range(L + 1)], dtype=np.int64)
    out = np.zeros(L + 1, dtype=np.int64)
    out[L] = H**L
    return out


def path_length_pmf(depth: int, heads: int) -> np.ndarray:
    r"""Proportion of paths of length l with skips, :math:`\binom Ll H^l/(1+H)^L`: the Binomial(L, H/(H+1)) pmf."""
    counts = path_counts(depth, heads, skip=True).details
    return counts / float((1 + heads) ** depth)


# --------------------------------------------------------------------------- collapse bounds
