r"""Torch models of the networks that :mod:`theory.lipsdp` bounds, and loaders between torch and weight lists.

* :func:`mlp_from_weights` / :func:`weights_from_sequential`: ``nn.Sequential`` of ``nn.Linear`` layers and one
  activation type <-> a list of ``(out, in)`` weight matrices and an activation name.
* :func:`load_torch_mlp`: weights from a file written by ``torch.save`` (a ``state_dict`` of such a Sequential,
  read with ``weights_only=True``; a whole pickled module only with ``allow_pickle=True``).
* :func:`conv_net`: conv -> activation -> conv (or a residual block :math:`x+T_2\phi(T_1x)`) as a batched torch
  function with the same padding convention as :func:`theory.convolution.conv_matrix`.
* :func:`feedforward_function`: a :class:`theory.lipsdp.FeedForward` as a batched torch function (for the
  empirical lower bounds of :mod:`empirical.lipschitz`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from boundlab.theory.lipsdp import FeedForward, slope_bounds
from boundlab.theory.validate import InputError, as_real_array
from torch import nn

from ..theory.convolution import conv_chain
from ._torch import DTYPE, resolve_device
from .lipschitz import conv_operator

__all__ = ["ACTIVATIONS", "mlp_from_weights", "weights_from_sequential", "weights_from_state_dict", "load_torch_mlp", "LoadedMLP", "conv_net",
           "feedforward_function", "activation_module"]

#: activation name -> torch module class (the names of theory.lipsdp.slope_bounds)
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "gelu": nn.GELU,
    "silu": nn.SiLU, "identity": nn.Identity,
}


def activation_module(name: str, negative_slope: float = 0.01) -> nn.Module:
    """The torch module of an activation name (``leaky_relu`` takes ``negative_slope``)."""
    slope_bounds(name, negative_slope)  # validates the name
    return nn.LeakyReLU(negative_slope) if name == "leaky_relu" else ACTIVATIONS[name]()


def mlp_from_weights(weights, activation: str = "relu", *, biases=None, negative_slope: float = 0.01,
                     device=None) -> nn.Sequential:
    """``Linear -> act -> ... -> Linear`` in float64 with the given ``(out, in)`` weights (biases default to 0)."""
    ws = [as_real_array(f"weights[{i}]", w, ndim=2) for i, w in enumerate(weights)]
    FeedForward.from_weights(ws, activation, negative_slope=negative_slope)  # shape checks
    dev = resolve_device(device)
    layers: list[nn.Module] = []
    for i, w in enumerate(ws):
        lin = nn.Linear(w.shape[1], w.shape[0], dtype=DTYPE, device=dev)
        with torch.no_grad():
            lin.weight.copy_(torch.as_tensor(w, dtype=DTYPE))
            b = np.zeros(w.shape[0]) if biases is None else as_real_array(f"biases[{i}]", biases[i], ndim=1)
            if b.shape != (w.shape[0],):
                raise InputError(f"biases[{i}]: expected shape ({w.shape[0]},), got {b.shape}")
            lin.bias.copy_(torch.as_tensor(b, dtype=DTYPE))
        layers.append(lin)
        if i < len(ws) - 1:
            layers.append(activation_module(activation, negative_slope))
    return nn.Sequential(*layers).eval()


@dataclass(frozen=True)
class LoadedMLP:
    """An MLP read from torch: ``(out, in)`` weights and ``(out,)`` biases with every eval-mode BatchNorm folded in
    (scale into the weights, shift :math:`\beta-\gamma\mu/\sqrt{\sigma^2+\epsilon}` into the biases), the
    activation, and what was folded (``folded``: one line per BatchNorm; ``bn_eps``: the eps used for layers
    whose eps the file does not record). ``biases``: one per weight (zeros where a Linear has none); global
    Lipschitz bounds ignore them, local bounds on an input region need them."""

    weights: list
    activation: str
    negative_slope: float
    folded: tuple[str, ...] = ()
    bn_eps: float | None = None
    biases: list | None = None

    def __iter__(self):  # (weights, activation, negative_slope), the shape older callers unpack
        return iter((self.weights, self.activation, self.negative_slope))


def _bn_affine(gamma, beta, mean, var, eps: float, name: str) -> tuple[np.ndarray, np.ndarray]:
    """Eval-mode BatchNorm as ``x -> scale * x + shift`` (per channel)."""
    g = as_real_array(f"{name}.weight", gamma, ndim=1)
    v = as_real_array(f"{name}.running_var", var, ndim=1)
    if v.shape != g.shape or (v < 0).any():
        raise InputError(f"{name}: expected running_var >= 0 of the shape of weight {g.shape}, got {v.shape}")
    b = as_real_array(f"{name}.bias", beta, ndim=1)
    mu = as_real_array(f"{name}.running_mean", mean, ndim=1)
    if b.shape != g.shape or mu.shape != g.shape:
        raise InputError(f"{name}: expected bias and running_mean of shape {g.shape}, got {b.shape}, {mu.shape}")
    scale = g / np.sqrt(v + eps)
    return scale, b - scale * mu


def _fold(items: list[tuple], where: str) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """Fold eval-mode BatchNorm into the adjacent linear map. ``items``: ``("linear", name, W, b)``, ``("bn", name,
    scale, shift)`` and ``("act", name)`` in module order. A BatchNorm ``D x + s`` next to a Linear ``W x + b`` with
    no activation between them folds into it (before: ``W D``, ``b + W s``; after: ``D W``, ``D b + s``); one between
    activations cannot be folded (error). Returns the weights, the biases and one note per BatchNorm."""
    out: list[np.ndarray] = []
    bias: list[np.ndarray] = []
    notes: list[str] = []
    pending: tuple | None = None  # a BatchNorm waiting for the next Linear (it came after an activation)
    prev = None
    for it in items:
        kind = it[0]
        if kind == "linear":
            w, b = it[2], it[3]
            if pending is not None:
                d, sh = pending[2], pending[3]
                if d.shape[0] != w.shape[1]:
                    raise InputError(f"{where}: BatchNorm {pending[1]} has {d.shape[0]} channels but {it[1]} takes "
                                     f"{w.shape[1]} inputs")
                b = b + w @ sh
                w = w * d[None, :]
                notes.append(f"BatchNorm {pending[1]} folded into the inputs of {it[1]} (W diag(gamma/sqrt(var+eps)))")
                pending = None
            out.append(w)
            bias.append(b)
        elif kind == "bn":
            d, sh = it[2], it[3]
            if prev is not None and prev[0] == "linear":
                if d.shape[0] != out[-1].shape[0]:
                    raise InputError(f"{where}: BatchNorm {it[1]} has {d.shape[0]} channels but {prev[1]} has "
                                     f"{out[-1].shape[0]} outputs")
                out[-1] = d[:, None] * out[-1]
                bias[-1] = d * bias[-1] + sh
                notes.append(f"BatchNorm {it[1]} folded into the outputs of {prev[1]} (diag(gamma/sqrt(var+eps)) W)")
            elif pending is None:
                pending = it
            else:
                raise InputError(f"{where}: two BatchNorm layers {pending[1]}, {it[1]} without a Linear between them")
        else:  # an activation
            if pending is not None:
                raise InputError(f"{where}: BatchNorm {pending[1]} sits between two activations; it is not affine "
                                 f"next to a Linear and cannot be folded")
        prev = it
    if pending is not None:
        raise InputError(f"{where}: BatchNorm {pending[1]} after the last Linear cannot be folded into a Linear "
                         f"input; put it before the activation or drop it")
    return out, bias, notes


def _linear_bias(b, w: np.ndarray, name: str) -> np.ndarray:
    if b is None:
        return np.zeros(w.shape[0])
    b = as_real_array(f"{name}.bias", b, ndim=1)
    if b.shape != (w.shape[0],):
        raise InputError(f"{name}.bias: expected shape ({w.shape[0]},), got {b.shape}")
    return b


def weights_from_sequential(model: nn.Module) -> LoadedMLP:
    """The weights of ``Linear, [BatchNorm1d], act, ..., Linear, [BatchNorm1d]`` (one activation type; Dropout and
    Flatten are identities in eval mode). Every BatchNorm1d is folded exactly into its neighbouring Linear with its
    running statistics and its own eps; any other module is an error."""
    if not isinstance(model, nn.Sequential):
        raise InputError(f"model: expected nn.Sequential, got {type(model).__name__}")
    items, acts = [], []
    for i, m in enumerate(model):
        if isinstance(m, (nn.Dropout, nn.Flatten)):
            continue
        if isinstance(m, nn.Linear):
            w = m.weight.detach().cpu().to(torch.float64).numpy()
            b = None if m.bias is None else m.bias.detach().cpu().to(torch.float64).numpy()
            items.append(("linear", f"[{i}] Linear", w, _linear_bias(b, w, f"[{i}]")))
        elif isinstance(m, nn.BatchNorm1d):
            if m.running_var is None:
                raise InputError(f"model: BatchNorm1d at position {i} tracks no running statistics; no eval-mode "
                                 f"affine map to fold")
            gamma = m.weight.detach().cpu().double().numpy() if m.affine else np.ones(m.num_features)
            beta = m.bias.detach().cpu().double().numpy() if m.affine else np.zeros(m.num_features)
            items.append(("bn", f"[{i}]", *_bn_affine(gamma, beta, m.running_mean.cpu().double().numpy(),
                                                      m.running_var.cpu().double().numpy(), m.eps, f"[{i}]")))
        else:
            name = next((k for k, c in ACTIVATIONS.items() if type(m) is c), None)
            if name is None:
                raise InputError(f"model: unsupported layer {type(m).__name__} at position {i} (supported: Linear, "
                                 f"BatchNorm1d, Dropout, Flatten and the activations {sorted(ACTIVATIONS)})")
            acts.append((name, float(getattr(m, "negative_slope", 0.01))))
            items.append(("act", name))
    weights, biases, notes = _fold(items, "model")
    if not weights:
        raise InputError("model: expected at least one nn.Linear")
    if len(set(acts)) > 1:
        raise InputError(f"model: expected one activation type, got {sorted(set(acts))}")
    n_lin = sum(1 for it in items if it[0] == "linear")
    if len(acts) != n_lin - 1:
        raise InputError(f"model: expected one activation between consecutive Linear layers, got {len(acts)} for "
                         f"{n_lin} Linear layers")
    name, slope = acts[0] if acts else ("identity", 0.01)
    return LoadedMLP(weights, name, slope, tuple(notes), biases=biases)


_BN_KEYS = {"running_mean", "running_var", "num_batches_tracked"}


def weights_from_state_dict(state: dict, activation: str = "relu", bn_eps: float = 1e-5,
                            where: str = "state_dict") -> LoadedMLP:
    """The weights of an MLP ``state_dict`` (of ``Linear, [BatchNorm1d], act, ..., Linear``), BatchNorm folded.

    Modules are grouped by key prefix. A numeric prefix is the module's position in an ``nn.Sequential``, so a
    gap is a parameter-free module (the activation): a BatchNorm right after a Linear acts before the activation
    and folds into that Linear's outputs, one right before a Linear folds into its inputs. Named prefixes give no
    positions, so a BatchNorm among them is refused. Every tensor must belong to a Linear (``weight`` 2-D,
    ``bias``) or a BatchNorm (``weight``, ``bias``, ``running_mean``, ``running_var``, ``num_batches_tracked``): any
    other tensor is an error, never dropped. A state_dict does not record a BatchNorm's eps: ``bn_eps`` (PyTorch's
    default 1e-5) is used and reported.
    """
    groups: dict[str, dict] = {}
    for key, val in state.items():
        prefix, _, leaf = str(key).rpartition(".")
        groups.setdefault(prefix, {})[leaf] = val
    numeric = all(p.isdigit() for p in groups)
    order = sorted(groups, key=int) if numeric else list(groups)
    items, positions, has_bn = [], [], False
    for prefix in order:
        g = groups[prefix]
        leaves = set(g)
        tensor = lambda k: g[k].detach().cpu().to(torch.float64).numpy()  # noqa: E731
        if leaves & _BN_KEYS:
            unknown = leaves - _BN_KEYS - {"weight", "bias"}
            if unknown or "running_var" not in leaves:
                raise InputError(f"{where}: module {prefix!r} has tensors {sorted(leaves)}; expected a BatchNorm's "
                                 f"running_mean, running_var[, weight, bias, num_batches_tracked]")
            var = tensor("running_var")
            if var.ndim != 1:
                raise InputError(f"{where}: BatchNorm {prefix!r} has running_var of shape {var.shape}; only "
                                 f"BatchNorm1d on vectors is supported (a conv net needs its input size)")
            gamma = tensor("weight") if "weight" in leaves else np.ones_like(var)
            beta = tensor("bias") if "bias" in leaves else np.zeros_like(var)
            mean = tensor("running_mean") if "running_mean" in leaves else None
            if mean is None:
                raise InputError(f"{where}: BatchNorm {prefix!r} has no running_mean; no eval-mode affine map")
            items.append(("bn", repr(prefix), *_bn_affine(gamma, beta, mean, var, bn_eps, prefix)))
            has_bn = True
        else:
            unknown = leaves - {"weight", "bias"}
            if unknown or "weight" not in leaves:
                raise InputError(f"{where}: module {prefix!r} has tensors {sorted(leaves)} that are neither a Linear "
                                 f"(weight, bias) nor a BatchNorm; refusing to drop them")
            w = tensor("weight")
            if w.ndim != 2:
                raise InputError(f"{where}: {prefix}.weight has shape {w.shape}; only Linear (2-D) weights are "
                                 f"supported here (conv nets: theory.lipsdp.conv_feedforward with the input size)")
            items.append(("linear", f"{prefix!r}", w,
                          _linear_bias(tensor("bias") if "bias" in leaves else None, w, prefix)))
        positions.append(int(prefix) if numeric else None)
    if has_bn and not numeric:
        raise InputError(f"{where}: named modules with a BatchNorm ({order}): the state_dict does not say whether it "
                         f"acts before or after the activation; save an nn.Sequential (numbered modules) or the "
                         f"module itself (--allow-pickle)")
    seq: list[tuple] = []
    for k, it in enumerate(items):
        if k and numeric and positions[k] - positions[k - 1] > 2:
            raise InputError(f"{where}: modules {positions[k - 1]} and {positions[k]} have more than one "
                             f"parameter-free module between them; expected one activation")
        if k and (not numeric or positions[k] - positions[k - 1] == 2):
            seq.append(("act", activation))
        elif k and items[k - 1][0] == "linear" and it[0] == "linear":
            raise InputError(f"{where}: Linear modules {positions[k - 1]} and {positions[k]} follow each other "
                             f"without an activation between them")
        seq.append(it)
    weights, biases, notes = _fold(seq, where)
    if not weights:
        raise InputError(f"{where}: holds no Linear '*.weight' tensors")
    return LoadedMLP(weights, activation, 0.01, tuple(notes), bn_eps if has_bn else None, biases)


def load_torch_mlp(path: str | Path, *, allow_pickle: bool = False, activation: str | None = None,
                   bn_eps: float = 1e-5) -> LoadedMLP:
    """The MLP saved with ``torch.save`` at ``path``: a ``state_dict`` (:func:`weights_from_state_dict`) or, with
    ``allow_pickle=True``, the pickled module itself (:func:`weights_from_sequential`; executes code from the file).
    A ``state_dict`` holds no activation: pass ``activation`` (default ``relu``)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"path: weights file not found: {p}")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=not allow_pickle)
    except Exception as exc:  # noqa: BLE001 - any unreadable file
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        hint = "" if allow_pickle else " (a pickled module needs allow_pickle / --allow-pickle)"
        raise InputError(f"path: cannot read {p} as a torch file ({first[:160]}){hint}") from exc
    if isinstance(obj, nn.Module):
        loaded = weights_from_sequential(obj)
        return LoadedMLP(loaded.weights, activation or loaded.activation, loaded.negative_slope, loaded.folded,
                         biases=loaded.biases)
    if isinstance(obj, dict):
        if not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
            raise InputError(f"path: {p} is a dict but not a state_dict of tensors")
        return weights_from_state_dict(obj, activation or "relu", bn_eps, where=f"path: {p}")
    raise InputError(f"path: {p} holds a {type(obj).__name__}, expected a state_dict or nn.Sequential")


def feedforward_function(net: FeedForward, device=None) -> Callable[[torch.Tensor], torch.Tensor]:
    """:math:`f(x)=W_l\\phi(\\cdots\\phi(W_0x))` (or :math:`x+W_1\\phi(W_0x)`) on batches ``(B, n_0)``.

    Needs a named activation (``net.activation`` in :data:`ACTIVATIONS`; leaky ReLU from ``net.alpha``)."""
    if net.activation not in ACTIVATIONS:
        raise InputError(f"net: activation {net.activation!r} has no torch module (custom slopes)")
    dev = resolve_device(device)
    act = activation_module(net.activation, net.alpha if net.activation == "leaky_relu" else 0.01)
    ws = [torch.as_tensor(w, dtype=DTYPE, device=dev) for w in net.weights]

    def f(x: torch.Tensor) -> torch.Tensor:
        z = x
        for w in ws[:-1]:
            z = act(z @ w.T)
        z = z @ ws[-1].T
        return x + z if net.residual else z

    return f


def conv_net(kernels, input_size, padding="circular", activation: str = "relu", *, stride: int = 1,
             residual: bool = False, biases=None, negative_slope: float = 0.01,
             device=None) -> Callable[[torch.Tensor], torch.Tensor]:
    """conv -> act -> ... -> conv on batches ``(B, c, h, w)``; ``residual``: :math:`x+T_2\\phi(T_1x)`.

    ``biases`` (one ``(c_out,)`` array per conv, optional) show that the bound ignores them."""
    dev = resolve_device(device)
    act = activation_module(activation, negative_slope)
    ops, bs = [], []
    for i, layer in enumerate(conv_chain(kernels, input_size, padding, stride)):
        ops.append(conv_operator(layer, device=dev))
        k = layer.kernel
        b = np.zeros(k.shape[0]) if biases is None else as_real_array(f"biases[{i}]", biases[i], ndim=1)
        bs.append(torch.as_tensor(b, dtype=DTYPE, device=dev).view(1, -1, 1, 1))

    def f(x: torch.Tensor) -> torch.Tensor:
        z = x
        for i, (op, b) in enumerate(zip(ops, bs)):
            z = op(z) + b
            if i < len(ops) - 1:
                z = act(z)
        return x + z if residual else z

    return f
