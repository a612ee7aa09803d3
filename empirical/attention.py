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


def multi_head_attention(x: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, o: torch.Tensor,
                         return_probs: bool = False):
    r"""The one dot-product attention forward pass of boundlab (functions, models and experiments all use it).

    .. math:: \mathrm{MHA}(X)=\sum_h\mathrm{softmax}\big(XQ_h(XK_h)^\top/\sqrt{d_k}\big)XV_hO_h

    Parameters
    ----------
    x : Tensor, shape (B, n, d)
    q, k : Tensor, shape (H, d, d_k)
    v : Tensor, shape (H, d, d_v)
    o : Tensor, shape (H, d_v, d_out)
    return_probs : bool
        Also return the attention matrices, shape (B, H, n, n).
    """
    qx = torch.einsum("bnd,hdk->bhnk", x, q)  # (B, H, n, dk)
    kx = torch.einsum("bnd,hdk->bhnk", x, k)  # (B, H, n, dk)
    vx = torch.einsum("bnd,hdv->bhnv", x, v)  # (B, H, n, dv)
    p = torch.softmax(qx @ kx.transpose(-1, -2) / math.sqrt(q.shape[-1]), dim=-1)  # (B, H, n, n)
    y = torch.einsum("bhnv,hvo->bno", p @ vx, o)  # (B, n, d_out)
    return (y, p) if return_probs else y


def dot_product_attention(weights: AttentionWeights, device=None) -> Callable[[torch.Tensor], torch.Tensor]:
    r""":math:`\mathrm{MHA}(X)=\sum_h\mathrm{softmax}(XQ_hK_h^\top X^\top/\sqrt{d_k})XV_hO_h`, batched over B
    (:func:`multi_head_attention` with the weights on ``device``)."""
    q, k, v, o = _tensors(weights, device)

    def f(x: torch.Tensor) -> torch.Tensor:
        return multi_head_attention(x, q, k, v, o)

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


def attention_weights_from_torch(state: dict, heads: int, where: str = "state_dict") -> tuple[AttentionWeights, list]:
    """The weights of an ``nn.MultiheadAttention`` ``state_dict`` as :class:`AttentionWeights` (row convention).

    Reads ``in_proj_weight`` ``(3E, E)`` (or ``q_proj_weight``/``k_proj_weight``/``v_proj_weight``) and
    ``out_proj.weight`` ``(E, E)``; PyTorch stores ``(out, in)``, so each is transposed to the ``x @ W`` convention of
    :mod:`theory.attention`, and split into ``heads`` heads (PyTorch scales the logits by ``1/sqrt(E/heads)``, as the
    bounds do). Biases: a key bias shifts every logit of a row equally and a value or output bias shifts the output
    by a constant, so neither changes a Lipschitz constant; a non-zero *query* bias changes the map (the bounds are
    for bias-free logits) and is an error. Returns the weights and the notes on what was assumed.
    """
    import numpy as np

    def arr(key):
        return state[key].detach().cpu().to(torch.float64).numpy()

    known = {"in_proj_weight", "in_proj_bias", "q_proj_weight", "k_proj_weight", "v_proj_weight", "out_proj.weight",
             "out_proj.bias", "bias_k", "bias_v"}
    unknown = sorted(set(state) - known)
    if unknown:
        raise InputError(f"{where}: tensors {unknown} are not those of an nn.MultiheadAttention")
    if "bias_k" in state or "bias_v" in state:
        raise InputError(f"{where}: add_bias_kv (bias_k, bias_v) adds a token; not covered by the bounds")
    if "in_proj_weight" in state:
        w = arr("in_proj_weight")
        if w.ndim != 2 or w.shape[0] != 3 * w.shape[1]:
            raise InputError(f"{where}: in_proj_weight must be (3E, E), got {w.shape}")
        e = w.shape[1]
        q, k, v = w[:e], w[e:2 * e], w[2 * e:]
    elif {"q_proj_weight", "k_proj_weight", "v_proj_weight"} <= set(state):
        q, k, v = arr("q_proj_weight"), arr("k_proj_weight"), arr("v_proj_weight")
        e = q.shape[0]
        if k.shape[1] != q.shape[1] or v.shape[1] != q.shape[1]:
            raise InputError(f"{where}: kdim/vdim differ from embed_dim (cross-attention); self-attention only")
    else:
        raise InputError(f"{where}: neither in_proj_weight nor q/k/v_proj_weight: not an nn.MultiheadAttention")
    if "out_proj.weight" not in state:
        raise InputError(f"{where}: out_proj.weight is missing")
    o = arr("out_proj.weight")
    if "in_proj_bias" in state:
        b = arr("in_proj_bias")
        if np.any(b[:e] != 0):
            raise InputError(f"{where}: the query bias (in_proj_bias[:E]) is non-zero; the bounds cover bias-free "
                             f"logits only")
    if e % heads:
        raise InputError(f"heads: embed_dim {e} is not divisible by --heads {heads}")
    notes = [f"nn.MultiheadAttention state_dict: E = {e}, {heads} head(s) of width {e // heads}; weights transposed "
             f"from PyTorch's (out, in) to the row convention x @ W",
             "key, value and output biases change no Lipschitz constant and are ignored"]
    return AttentionWeights.from_arrays(q.T, k.T, v.T, o.T, heads=heads), notes
