r"""Torch implementations of the attention layers that :mod:`theory.attention` bounds.

Each builder takes :class:`theory.attention.AttentionWeights` and returns a function on batches
``X: (B, n, d) -> (B, n, d_out)`` that acts on each sample independently (as the estimators require). The
manual (unfused) computation is used so that forward-mode AD (jvp) and double backward work.
"""

from __future__ import annotations

import math
from typing import Callable

import torch

from boundlab.theory.attention import AttentionWeights
from boundlab.theory.validate import InputError

from ._torch import DTYPE, resolve_device


def _tensors(weights: AttentionWeights, device) -> tuple[torch.Tensor, ...]:
    if not isinstance(weights, AttentionWeights):
        raise InputError(f"weights: expected AttentionWeights, got {type(weights).__name__}")
    dev = resolve_device(device)
    return tuple(torch.as_tensor(a, dtype=DTYPE, device=dev) for a in (weights.query, weights.key, weights.value, weights.output))


def dot_product_attention(weights: AttentionWeights, device=None) -> Callable[[torch.Tensor], torch.Tensor]:
    r""":math:`\mathrm{MHA}(X)=\sum_h\mathrm{softmax}(XQ_hK_h^\top X^\top/\sqrt{d_k})XV_hO_h`, batched over B."""
    q, k, v, o = _tensors(weights, device)
    scale = 1.0 / math.sqrt(q.shape[-1])

    def f(x: torch.Tensor) -> torch.Tensor:
        qx = torch.einsum("bnd,hdk->bhnk", x, q)  # (B, H, n, dk)
        kx = torch.einsum("bnd,hdk->bhnk", x, k)
        vx = torch.einsum("bnd,hdv->bhnv", x, v)  # (B, H, n, dv)
        p = torch.softmax(qx @ kx.transpose(-1, -2) * scale, dim=-1)  # (B, H, n, n)
        return torch.einsum("bhnv,hvo->bno", p @ vx, o)

    return f


def l2_attention(weights: AttentionWeights, device=None) -> Callable[[torch.Tensor], torch.Tensor]:
    r"""Kim et al.'s L2 multi-head attention with tied :math:`W^Q=W^K` (the query weights are used for both).

    :math:`P^h_{ij}\propto\exp(-\|x_i^\top Q_h-x_j^\top Q_h\|^2/\sqrt{d_k})`, value :math:`XA_hV_h`,
    :math:`A_h=Q_hQ_h^\top/\sqrt{d_k}`, output :math:`\sum_hP^hXA_hV_hO_h`.
    """
    q, _, v, o = _tensors(weights, device)
    dk = q.shape[-1]
    a = q @ q.transpose(-1, -2) / math.sqrt(dk)  # (H, d, d)

    def f(x: torch.Tensor) -> torch.Tensor:
        qx = torch.einsum("bnd,hdk->bhnk", x, q)
        sq = (qx * qx).sum(-1)
        d2 = sq.unsqueeze(-1) + sq.unsqueeze(-2) - 2 * qx @ qx.transpose(-1, -2)
        p = torch.softmax(-d2 / math.sqrt(dk), dim=-1)
        vals = torch.einsum("bnd,hde,hev->bhnv", x, a, v)
        return torch.einsum("bhnv,hvo->bno", p @ vals, o)

    return f
