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

from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

from boundlab.theory.validate import InputError, as_real_array
from boundlab.theory.lipsdp import FeedForward, slope_bounds

from ._torch import DTYPE, resolve_device
from .lipschitz import conv_operator

__all__ = ["ACTIVATIONS", "mlp_from_weights", "weights_from_sequential", "load_torch_mlp", "conv_net",
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


def weights_from_sequential(model: nn.Module) -> tuple[list[np.ndarray], str, float]:
    """``(weights, activation, negative_slope)`` of ``Linear, act, Linear, ..., Linear`` (one activation type)."""
    if not isinstance(model, nn.Sequential):
        raise InputError(f"model: expected nn.Sequential, got {type(model).__name__}")
    mods = [m for m in model if not isinstance(m, (nn.Dropout, nn.Flatten))]
    weights, acts = [], []
    for i, m in enumerate(mods):
        expect_linear = i % 2 == 0
        if expect_linear != isinstance(m, nn.Linear):
            raise InputError(f"model: expected Linear and activation layers alternating, got {type(m).__name__} "
                                  f"at position {i}")
        if expect_linear:
            weights.append(m.weight.detach().cpu().to(torch.float64).numpy())
        else:
            name = next((k for k, c in ACTIVATIONS.items() if type(m) is c), None)
            if name is None:
                raise InputError(f"model: unsupported activation {type(m).__name__} (supported: "
                                      f"{sorted(ACTIVATIONS)})")
            acts.append((name, float(getattr(m, "negative_slope", 0.01))))
    if not weights or not isinstance(mods[-1], nn.Linear):
        raise InputError("model: expected the last layer to be nn.Linear")
    if len(set(acts)) > 1:
        raise InputError(f"model: expected one activation type, got {sorted(set(acts))}")
    name, slope = acts[0] if acts else ("identity", 0.01)
    return weights, name, slope


def load_torch_mlp(path: str | Path, *, allow_pickle: bool = False,
                   activation: str | None = None) -> tuple[list[np.ndarray], str, float]:
    """Weights of an MLP saved with ``torch.save`` (a Sequential's ``state_dict``, or the module itself).

    A ``state_dict`` holds no activation: pass ``activation`` (default ``relu``). A pickled module executes code
    when loaded, so it is read only with ``allow_pickle=True``.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"path: weights file not found: {p}")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=not allow_pickle)
    except Exception as exc:  # noqa: BLE001 - any unreadable file
        hint = "" if allow_pickle else " (a pickled module needs allow_pickle / --allow-pickle)"
        raise InputError(f"path: cannot read {p} as a torch MLP: {str(exc).splitlines()[0]}{hint}") from exc
    if isinstance(obj, nn.Module):
        ws, name, slope = weights_from_sequential(obj)
        return ws, activation or name, slope
    if isinstance(obj, dict):
        keys = [k for k, v in obj.items() if k.endswith("weight") and getattr(v, "ndim", 0) == 2]
        if not keys:
            raise InputError(f"path: {p} holds no 2-D '*.weight' tensors")
        return [obj[k].detach().to(torch.float64).numpy() for k in keys], activation or "relu", 0.01
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
    h, w = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    ops, bs = [], []
    for i, k in enumerate(kernels):
        k = as_real_array(f"kernels[{i}]", k, ndim=4)
        op = conv_operator(k, (h, w), padding, stride, device=dev)
        probe = op(torch.zeros((1, k.shape[1], h, w), dtype=DTYPE, device=dev))
        h, w = probe.shape[2:]
        ops.append(op)
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
