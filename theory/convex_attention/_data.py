"""Tokens and targets, the liftings of the data (attention and two-layer heads) and the losses."""

from __future__ import annotations

import numpy as np

from ..validate import InputError, as_real_array, positive_int

LOSSES = ("squared", "cross_entropy")


# --------------------------------------------------------------------------- validation
def as_tokens(tokens) -> np.ndarray:
    """``(n, s, d)`` token arrays; ``(n, d)`` is read as one token per sample."""
    x = as_real_array("tokens", tokens, ndim=(2, 3))
    return x[:, None, :] if x.ndim == 2 else x


def target_matrix(targets, loss: str, n: int, s: int, pool: bool, classes: int | None) -> tuple[np.ndarray, int]:
    """Targets as a float matrix ``(N, c)``: squared-loss values, or one-hot labels for cross-entropy.

    Squared loss: ``(n, c)`` (or ``(n,)``) when pooled or with one token per sample, else ``(n, s, c)``.
    Cross-entropy: ``(n,)`` integer labels in ``[0, classes)``.
    """
    if loss == "cross_entropy":
        y = as_real_array("targets", targets, ndim=1)
        if y.shape[0] != n:
            raise InputError(f"targets: expected {n} labels (one per sample), got shape {y.shape}")
        if not np.all(y == np.round(y)) or y.min() < 0:
            raise InputError("targets: cross-entropy labels must be non-negative integers")
        c = int(y.max()) + 1 if classes is None else positive_int("classes", classes)
        if y.max() >= c:
            raise InputError(f"targets: label {int(y.max())} is out of range for classes={c}")
        return np.eye(c)[y.astype(int)], c
    y = as_real_array("targets", targets, ndim=(1, 2, 3))
    if pool or s == 1:
        y = y[:, None] if y.ndim == 1 else y
        if y.ndim != 2 or y.shape[0] != n:
            raise InputError(f"targets: expected shape (n, c) with n={n}, got {y.shape}")
        return y, y.shape[1]
    if y.shape[:2] != (n, s) or y.ndim != 3:
        raise InputError(f"targets: expected shape (n, s, c) with n={n}, s={s}, got {y.shape}")
    return y.reshape(n * s, y.shape[2]), y.shape[2]


def _gates(name: str, gates, shape_tail: tuple[int, ...]) -> np.ndarray:
    g = as_real_array(name, gates, ndim=len(shape_tail) + 1)
    if g.shape[1:] != shape_tail:
        raise InputError(f"{name}: expected shape (P, {', '.join(map(str, shape_tail))}), got {g.shape}")
    return g


# --------------------------------------------------------------------------- liftings
def attention_masks(tokens, gates=None) -> np.ndarray:
    r"""Masks :math:`M^{(i)}_g=\mathbb 1\{X_iH_gX_i^\top\ge0\}`, shape ``(P, n, s, s)``; all ones without gates."""
    x = as_tokens(tokens)
    n, s, d = x.shape
    if gates is None:
        return np.ones((1, n, s, s))
    h = _gates("gates", gates, (d, d))
    return (np.einsum("ita,gab,iub->gitu", x, h, x) >= 0).astype(np.float64)


def attention_lifting(tokens, gates=None) -> np.ndarray:
    r"""Lifted features :math:`U_g[(i,t),(k,a,\ell)]=X_i[t,a]\,\tilde G^{(i)}_g[t;k,\ell]`, shape ``(P, n, s, d^3)``.

    :math:`\tilde G^{(i)}_g[t;k,\ell]=\sum_{t'}M^{(i)}_g[t,t']X_i[t',k]X_i[t',\ell]` (the Gram matrix
    :math:`X_i^\top X_i` for every t when unmasked). The column order :math:`(k,a,\ell)` matches the C-order reshape
    of :math:`Z\in\mathbb R^{d^2\times dc}` to :math:`\mathbb R^{d^3\times c}` (row :math:`(k,a)`, column :math:`(\ell,b)`).
    """
    x = as_tokens(tokens)
    n, s, d = x.shape
    if gates is None:
        gram = np.einsum("iuk,iul->ikl", x, x)[None, :, None]  # (1, n, 1, d, d), the same for every t
        gram = np.broadcast_to(gram, (1, n, s, d, d))
    else:
        gram = np.einsum("gitu,iuk,iul->gitkl", attention_masks(x, gates), x, x)
    return np.einsum("ita,gitkl->gitkal", x, gram).reshape(gram.shape[0], n, s, d**3)


def mlp_masks(tokens, gates=None) -> np.ndarray:
    r"""Gate patterns :math:`\mathbb 1\{x_t^\top h_g\ge0\}` of the two-layer head, shape ``(P, n, s)``; ones without gates."""
    x = as_tokens(tokens)
    if gates is None:
        return np.ones((1, *x.shape[:2]))
    h = _gates("gates", gates, (x.shape[2],))
    return (np.einsum("itd,gd->git", x, h) >= 0).astype(np.float64)


def mlp_lifting(tokens, gates=None) -> np.ndarray:
    r"""Lifted features of the two-layer head: :math:`D_gX` per token, shape ``(P, n, s, d)``.

    ``gates``: ``(P, d)`` gate vectors :math:`h_g` (:math:`D_g=\mathrm{diag}(\mathbb 1\{Xh_g\ge0\})`), or ``None``
    for the linear two-layer network (:math:`P=1`, :math:`D=I`).
    """
    x = as_tokens(tokens)
    return mlp_masks(x, gates)[..., None] * x[None]


# --------------------------------------------------------------------------- losses
def loss_value(loss: str, pred: np.ndarray, targets: np.ndarray) -> float:
    """:math:`F`: ``squared`` :math:`\\frac12\\|\\hat Y-Y\\|_F^2`; ``cross_entropy`` :math:`\\sum_i\\mathrm{lse}(L_i)-L_{i,y_i}` (one-hot Y)."""
    if loss == "squared":
        return 0.5 * float(np.sum((pred - targets) ** 2))
    top = pred.max(axis=1, keepdims=True)
    lse = np.log(np.exp(pred - top).sum(axis=1)) + top[:, 0]
    return float(np.sum(lse - np.sum(pred * targets, axis=1)))


def loss_gradient(loss: str, pred: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """:math:`\\nabla F`: the residual, or softmax minus one-hot."""
    if loss == "squared":
        return pred - targets
    e = np.exp(pred - pred.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True) - targets


