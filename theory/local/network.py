r"""A network as the local certificate sees it: a validated chain of typed float64 layers, and a region of inputs.

Every layer is a frozen dataclass created through its ``create`` classmethod (shapes, finiteness, parameter
constraints checked once, :class:`boundlab.io.errors.InputError` naming the argument otherwise). The parameters
are read as exact reals: the certificate is about the real-valued function the float weights define (the torch
model evaluates the same function in float32/float64 with its own rounding, which is not part of the claim).

Layer types (``S`` the shape a layer acts on; one sample, no batch axis):

* :class:`Dense` ``(out, in)`` on the flattened state (PyTorch's ``nn.Linear`` convention ``y = W x + b``);
* :class:`Conv` a :class:`theory.convolution.ConvLayer` (exact zero padding per side and stride) + bias, on
  ``(C, H, W)``;
* :class:`ChannelAffine` per-channel :math:`y_c = s_c x_c + t_c` on ``(C, H, W)``: the input normalisation
  :math:`(x-m)/s` (:meth:`ChannelAffine.normalise`) and eval-mode BatchNorm with its running statistics
  (:meth:`ChannelAffine.batchnorm`); the scale and shift are enclosed in float intervals from the exact
  statistics (:math:`\gamma/\sqrt{\mathrm{var}+\epsilon}` is not a float);
* :class:`Patchify` image ``(C, H, W)`` -> tokens ``(T, C p^2)`` (:func:`boundlab.empirical.data.patch_tokens`'s
  order: tokens row-major over the grid, features (channel, row, column)): a permutation;
* :class:`TokenDense` per-token ``y_i = W x_i + b`` on ``(n, d)``; :class:`AddConstant` ``y = x + t``;
* :class:`Mean` the mean over tokens (``(n, d) -> (d,)``) or over the spatial grid (``(C, H, W) -> (C,)``);
* :class:`Relu`; :class:`LayerNorm` per token (biased variance, ``eps`` inside the square root);
* :class:`Attention` bias-free dot-product multi-head attention (:class:`theory.attention.AttentionWeights`);
* :class:`Residual` :math:`x\mapsto s(x)+g(x)`, ``branch`` g and ``shortcut`` s (empty: the identity).

A :class:`Region` is an :math:`\ell_\infty` box or :math:`\ell_2` ball of radius ``eps`` around a centre,
intersected with the pixel box ``[lower, upper]`` (``None``: not intersected). :class:`LocalProblem` pairs a
network with a region of its input shape: the input type of the local bounds of :mod:`theory.local.bound`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..attention import AttentionWeights
from ..convolution import ConvLayer
from ..validate import InputError, as_real_array, choice, positive_float, positive_int
from .interval import Box

__all__ = ["Dense", "Conv", "ChannelAffine", "Patchify", "TokenDense", "AddConstant", "Mean", "Relu", "LayerNorm",
           "Attention", "Residual", "Network", "Region", "LocalProblem", "LAYER_TYPES", "NORMS"]

NORMS = ("linf", "l2")


def _vec(name: str, value, n: int | None = None) -> np.ndarray:
    a = as_real_array(name, value, ndim=1)
    if n is not None and a.shape != (n,):
        raise InputError(f"{name}: expected shape ({n},), got {a.shape}")
    return np.ascontiguousarray(a)


def _shape(name: str, shape) -> tuple[int, ...]:
    try:
        items = tuple(shape)
    except TypeError:
        raise InputError(f"{name}: expected a shape (tuple of positive integers), got {shape!r}") from None
    if not items:
        raise InputError(f"{name}: expected a non-empty shape")
    return tuple(positive_int(f"{name}[{i}]", s) for i, s in enumerate(items))


class _Layer:
    """Common interface: ``out_shape(in_shape)`` (raises :class:`InputError` naming the layer on a mismatch)."""

    kind = "layer"

    def out_shape(self, shape: tuple[int, ...], where: str) -> tuple[int, ...]:  # pragma: no cover - abstract
        raise NotImplementedError

    def summary(self) -> dict:
        return {"kind": self.kind}


@dataclass(frozen=True, eq=False)
class Dense(_Layer):
    """``y = W vec(x) + b`` with ``W`` of shape ``(out, in)``."""

    weight: np.ndarray
    bias: np.ndarray
    kind = "dense"

    @classmethod
    def create(cls, weight, bias=None) -> "Dense":
        w = np.ascontiguousarray(as_real_array("weight", weight, ndim=2))
        b = np.zeros(w.shape[0]) if bias is None else _vec("bias", bias, w.shape[0])
        return cls(w, b)

    def out_shape(self, shape, where):
        if int(np.prod(shape)) != self.weight.shape[1]:
            raise InputError(f"{where}: dense layer expects {self.weight.shape[1]} inputs, got shape {shape}")
        return (self.weight.shape[0],)

    def summary(self):
        return {"kind": self.kind, "in": self.weight.shape[1], "out": self.weight.shape[0]}


@dataclass(frozen=True, eq=False)
class Conv(_Layer):
    """A zero-padded convolution (any stride) with a per-channel bias, on ``(C, H, W)``."""

    layer: ConvLayer
    bias: np.ndarray
    kind = "conv"

    @classmethod
    def create(cls, layer: ConvLayer, bias=None) -> "Conv":
        if not isinstance(layer, ConvLayer):
            raise InputError(f"layer: expected a ConvLayer (ConvLayer.create), got {type(layer).__name__}")
        if layer.padding_mode != "zeros":
            raise InputError("layer: the local certificate covers zero-padded convolutions only")
        co = layer.kernel.shape[0]
        b = np.zeros(co) if bias is None else _vec("bias", bias, co)
        return cls(layer, b)

    def out_shape(self, shape, where):
        ci = self.layer.kernel.shape[1]
        if shape != (ci, *self.layer.input_size):
            raise InputError(f"{where}: convolution expects input shape {(ci, *self.layer.input_size)}, got {shape}")
        return (self.layer.kernel.shape[0], *self.layer.output_size)

    def summary(self):
        k = self.layer.kernel
        return {"kind": self.kind, "kernel": list(k.shape), "input_size": list(self.layer.input_size),
                "padding": list(self.layer.padding), "stride": self.layer.stride}


@dataclass(frozen=True, eq=False)
class ChannelAffine(_Layer):
    """``y[c] = s_c x[c] + t_c`` on ``(C, ...)``; ``scale``/``shift`` are float enclosures of the exact reals."""

    scale: Box
    shift: Box
    source: dict = field(default_factory=dict)
    kind = "channel_affine"

    @classmethod
    def normalise(cls, mean, std) -> "ChannelAffine":
        """``(x - m_c) / s_c`` (the models' fixed input normalisation)."""
        m, s = _vec("mean", mean), _vec("std", std)
        if m.shape != s.shape:
            raise InputError(f"std: expected shape {m.shape} (like mean), got {s.shape}")
        if (s <= 0).any():
            raise InputError("std: expected positive standard deviations")
        inv = Box.point(s).reciprocal()
        return cls(inv, -(Box.point(m) * inv), {"from": "normalise", "mean": m.tolist(), "std": s.tolist()})

    @classmethod
    def batchnorm(cls, gamma, beta, running_mean, running_var, eps: float) -> "ChannelAffine":
        r"""Eval-mode BatchNorm :math:`\gamma_c(x-\mu_c)/\sqrt{v_c+\epsilon}+\beta_c` with its running statistics."""
        g = _vec("gamma", gamma)
        n = g.size
        b, mu, var = _vec("beta", beta, n), _vec("running_mean", running_mean, n), _vec("running_var", running_var, n)
        if (var < 0).any():
            raise InputError("running_var: expected non-negative variances")
        e = positive_float("eps", eps)
        inv_sd = (Box.point(var) + e).sqrt().reciprocal()
        s = Box.point(g) * inv_sd
        t = Box.point(b) - s * Box.point(mu)
        return cls(s, t, {"from": "batchnorm_eval", "eps": e, "channels": n})

    def out_shape(self, shape, where):
        if shape[0] != self.scale.mid.size:
            raise InputError(f"{where}: per-channel affine map of {self.scale.mid.size} channels got shape {shape}")
        return tuple(shape)

    def summary(self):
        return {"kind": self.kind, **self.source}


@dataclass(frozen=True, eq=False)
class Patchify(_Layer):
    """``(C, H, W)`` -> ``(T, C p^2)``, non-overlapping ``p x p`` patches: ``index[t, f]`` is the flat pixel."""

    channels: int
    size: int
    patch: int
    index: np.ndarray
    kind = "patchify"

    @classmethod
    def create(cls, channels: int, size: int, patch: int) -> "Patchify":
        c, n, p = positive_int("channels", channels), positive_int("size", size), positive_int("patch", patch)
        if n % p:
            raise InputError(f"patch: image size {n} is not divisible by patch={p}")
        g = n // p
        ci, r, s = np.meshgrid(np.arange(c), np.arange(p), np.arange(p), indexing="ij")
        feats = np.stack([ci.ravel(), r.ravel(), s.ravel()], 1)  # feature order (channel, row, column)
        idx = np.empty((g * g, c * p * p), dtype=np.int64)
        for gi in range(g):
            for gj in range(g):
                rows, cols = gi * p + feats[:, 1], gj * p + feats[:, 2]
                idx[gi * g + gj] = (feats[:, 0] * n + rows) * n + cols
        return cls(c, n, p, idx)

    def out_shape(self, shape, where):
        if shape != (self.channels, self.size, self.size):
            raise InputError(f"{where}: patchify expects {(self.channels, self.size, self.size)}, got {shape}")
        return tuple(self.index.shape)

    def summary(self):
        return {"kind": self.kind, "patch": self.patch, "tokens": self.index.shape[0]}


@dataclass(frozen=True, eq=False)
class TokenDense(_Layer):
    """Per-token ``y_i = W x_i + b`` on ``(n, d_in)``, ``W`` of shape ``(d_out, d_in)``."""

    weight: np.ndarray
    bias: np.ndarray
    kind = "token_dense"

    @classmethod
    def create(cls, weight, bias=None) -> "TokenDense":
        w = np.ascontiguousarray(as_real_array("weight", weight, ndim=2))
        b = np.zeros(w.shape[0]) if bias is None else _vec("bias", bias, w.shape[0])
        return cls(w, b)

    def out_shape(self, shape, where):
        if len(shape) != 2 or shape[1] != self.weight.shape[1]:
            raise InputError(f"{where}: token map expects (n, {self.weight.shape[1]}), got {shape}")
        return (shape[0], self.weight.shape[0])

    def summary(self):
        return {"kind": self.kind, "in": self.weight.shape[1], "out": self.weight.shape[0]}


@dataclass(frozen=True, eq=False)
class AddConstant(_Layer):
    """``y = x + t`` (a learned position embedding)."""

    value: np.ndarray
    kind = "add_constant"

    @classmethod
    def create(cls, value) -> "AddConstant":
        return cls(np.ascontiguousarray(as_real_array("value", value)))

    def out_shape(self, shape, where):
        if tuple(self.value.shape) != tuple(shape):
            raise InputError(f"{where}: constant of shape {self.value.shape} added to shape {shape}")
        return tuple(shape)


@dataclass(frozen=True, eq=False)
class Mean(_Layer):
    """Mean over tokens (``over="tokens"``: ``(n, d) -> (d,)``) or the grid (``"spatial"``: ``(C,H,W) -> (C,)``)."""

    over: str
    kind = "mean"

    @classmethod
    def create(cls, over: str) -> "Mean":
        return cls(choice("over", over, ("tokens", "spatial")))

    def out_shape(self, shape, where):
        if self.over == "tokens":
            if len(shape) != 2:
                raise InputError(f"{where}: token mean expects (n, d), got {shape}")
            return (shape[1],)
        if len(shape) != 3:
            raise InputError(f"{where}: spatial mean expects (C, H, W), got {shape}")
        return (shape[0],)

    def summary(self):
        return {"kind": self.kind, "over": self.over}


@dataclass(frozen=True, eq=False)
class Relu(_Layer):
    kind = "relu"

    @classmethod
    def create(cls) -> "Relu":
        return cls()

    def out_shape(self, shape, where):
        return tuple(shape)


@dataclass(frozen=True, eq=False)
class LayerNorm(_Layer):
    r"""Per token :math:`\gamma\odot(x-\bar x)/\sqrt{\mathrm{var}(x)+\epsilon}+\beta` (biased variance)."""

    gamma: np.ndarray
    beta: np.ndarray
    eps: float
    kind = "layernorm"

    @classmethod
    def create(cls, gamma, beta, eps: float) -> "LayerNorm":
        g = _vec("gamma", gamma)
        b = _vec("beta", beta, g.size)
        if g.size < 2:
            raise InputError("gamma: LayerNorm over fewer than 2 features is constant; expected d >= 2")
        return cls(g, b, positive_float("eps", eps))

    def out_shape(self, shape, where):
        if len(shape) != 2 or shape[1] != self.gamma.size:
            raise InputError(f"{where}: LayerNorm expects (n, {self.gamma.size}), got {shape}")
        return tuple(shape)

    def summary(self):
        return {"kind": self.kind, "dim": self.gamma.size, "eps": self.eps}


@dataclass(frozen=True, eq=False)
class Attention(_Layer):
    """Bias-free dot-product multi-head attention on ``(n, d)`` (the formula of :mod:`theory.attention`)."""

    weights: AttentionWeights
    kind = "attention"

    @classmethod
    def create(cls, weights: AttentionWeights) -> "Attention":
        if not isinstance(weights, AttentionWeights):
            raise InputError(f"weights: expected AttentionWeights, got {type(weights).__name__}")
        return cls(weights)

    def out_shape(self, shape, where):
        if len(shape) != 2 or shape[1] != self.weights.dim:
            raise InputError(f"{where}: attention expects (n, {self.weights.dim}), got {shape}")
        return (shape[0], self.weights.out_dim)

    def summary(self):
        w = self.weights
        return {"kind": self.kind, "heads": w.heads, "dim": w.dim, "head_dim": w.head_dim, "out_dim": w.out_dim}


@dataclass(frozen=True, eq=False)
class Residual(_Layer):
    """``x -> shortcut(x) + branch(x)`` (``shortcut=()``: the identity)."""

    branch: tuple
    shortcut: tuple = ()
    kind = "residual"

    @classmethod
    def create(cls, branch, shortcut=()) -> "Residual":
        br, sc = tuple(branch), tuple(shortcut)
        if not br:
            raise InputError("branch: expected at least one layer")
        for i, layer in enumerate(br + sc):
            if not isinstance(layer, _Layer):
                raise InputError(f"branch[{i}]: expected a theory.local layer, got {type(layer).__name__}")
        return cls(br, sc)

    def out_shape(self, shape, where):
        a = _chain_shape(self.branch, shape, f"{where}.branch")
        b = _chain_shape(self.shortcut, shape, f"{where}.shortcut")
        if a != b:
            raise InputError(f"{where}: branch output {a} and shortcut output {b} differ")
        return a

    def summary(self):
        return {"kind": self.kind, "branch": [layer.summary() for layer in self.branch],
                "shortcut": [layer.summary() for layer in self.shortcut]}


LAYER_TYPES = (Dense, Conv, ChannelAffine, Patchify, TokenDense, AddConstant, Mean, Relu, LayerNorm, Attention,
               Residual)


def _chain_shape(layers, shape, where):
    for i, layer in enumerate(layers):
        if not isinstance(layer, LAYER_TYPES):
            raise InputError(f"{where}[{i}]: expected a theory.local layer, got {type(layer).__name__}")
        shape = layer.out_shape(tuple(shape), f"{where}[{i}]")
    return tuple(shape)


@dataclass(frozen=True, eq=False)
class Network:
    """A chain of layers on inputs of ``input_shape``; ``names`` label the layers in certificates."""

    input_shape: tuple[int, ...]
    layers: tuple
    names: tuple[str, ...]
    output_shape: tuple[int, ...]

    @classmethod
    def create(cls, input_shape, layers, names=None) -> "Network":
        shape = _shape("input_shape", input_shape)
        layers = tuple(layers)
        if not layers:
            raise InputError("layers: expected at least one layer")
        names = tuple(names) if names is not None else tuple(f"{layer.kind}{i}" for i, layer in enumerate(layers))
        if len(names) != len(layers):
            raise InputError(f"names: expected {len(layers)} names, got {len(names)}")
        out = _chain_shape(layers, shape, "layers")
        return cls(shape, layers, tuple(str(n) for n in names), out)

    @property
    def input_dim(self) -> int:
        return int(np.prod(self.input_shape))

    @property
    def output_dim(self) -> int:
        return int(np.prod(self.output_shape))

    def summary(self) -> dict:
        return {"input_shape": list(self.input_shape), "output_shape": list(self.output_shape),
                "layers": [{"name": n, **layer.summary()} for n, layer in zip(self.names, self.layers)]}


@dataclass(frozen=True, eq=False)
class Region:
    r""":math:`\{x:\|x-x_0\|\le\varepsilon\}\cap[\mathrm{lower},\mathrm{upper}]^D` in the ``norm`` (linf or l2)."""

    center: np.ndarray
    eps: float
    norm: str = "linf"
    lower: float | None = 0.0
    upper: float | None = 1.0

    @classmethod
    def create(cls, center, eps: float, norm: str = "linf", lower: float | None = 0.0,
               upper: float | None = 1.0) -> "Region":
        c = np.ascontiguousarray(as_real_array("center", center))
        e = positive_float("eps", eps)
        choice("norm", norm, NORMS)
        lo = None if lower is None else float(lower)
        hi = None if upper is None else float(upper)
        for name, v in (("lower", lo), ("upper", hi)):
            if v is not None and not math.isfinite(v):
                raise InputError(f"{name}: expected a finite pixel bound or None, got {v}")
        if lo is not None and hi is not None and not lo < hi:
            raise InputError(f"upper: expected lower < upper, got [{lo}, {hi}]")
        if (lo is not None and (c < lo).any()) or (hi is not None and (c > hi).any()):
            raise InputError(f"center: expected a point of the pixel box [{lo}, {hi}]")
        return cls(c, e, norm, lo, hi)

    def box(self) -> tuple[np.ndarray, np.ndarray]:
        """Float bounds ``lo <= x <= hi`` of every point of the region (the l2 ball's bounding box; rounded out)."""
        lo = np.nextafter(self.center - self.eps, -np.inf)
        hi = np.nextafter(self.center + self.eps, np.inf)
        if self.lower is not None:
            lo = np.maximum(lo, self.lower)
        if self.upper is not None:
            hi = np.minimum(hi, self.upper)
        return lo, hi

    def summary(self) -> dict:
        return {"eps": self.eps, "norm": self.norm, "pixel_box": [self.lower, self.upper],
                "center_shape": list(self.center.shape)}


@dataclass(frozen=True, eq=False)
class LocalProblem:
    """A network and a region of its inputs: what the local bounds take (validated by :meth:`create`)."""

    network: Network
    region: Region

    @classmethod
    def create(cls, network: Network, region: Region) -> "LocalProblem":
        if not isinstance(network, Network):
            raise InputError(f"network: expected a theory.local Network, got {type(network).__name__}")
        if not isinstance(region, Region):
            raise InputError(f"region: expected a theory.local Region, got {type(region).__name__}")
        if tuple(region.center.shape) != tuple(network.input_shape):
            raise InputError(f"region: centre of shape {region.center.shape} for a network on inputs of shape "
                             f"{network.input_shape}")
        return cls(network, region)

    def summary(self) -> dict:
        return {"network": self.network.summary(), "region": self.region.summary()}
