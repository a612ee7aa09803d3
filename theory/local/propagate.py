r"""Sound bound propagation over a region: zonotopes forward, interval Jacobians backward (float64, numpy).

**Forward.** The region's image at every layer is enclosed in a zonotope with a box term,

.. math:: Z=\{c+\textstyle\sum_j\varepsilon_jg_j+\delta:\ |\varepsilon_j|\le1,\ |\delta|\le r\},

starting from the region's bounding box (one generator per input coordinate). Affine layers map it exactly (their
float rounding goes into r: :math:`|\mathrm{fl}(Lx)-Lx|\le\gamma_k|L||x|`); a ReLU whose pre-activation interval
:math:`[l,u]` (the zonotope's exact interval hull, rounded out) is non-negative is the identity on the region, one
with :math:`u\le0` is zero, and an unstable one gets the DeepZ relaxation
:math:`\mathrm{relu}(x)\in\lambda x+[0,t]`, :math:`\lambda=u/(u-l)`, :math:`t\ge\max(-\lambda l,(1-\lambda)u)`, with a
new generator :math:`t/2`. On a graph of linear layers, ReLUs and residual sums (no smooth layer below) the
interval [l, u] of every neuron the hull leaves unstable is intersected with the back-substitution bounds of
:func:`theory.local.graph.relu_bounds` (DeepPoly/CROWN relaxations pulled back to the input box; both enclose the
pre-activations, so the intersection does; the relaxation, the derivative sets and later back-substitutions use
it). Attention is mapped by zonotope arithmetic: :math:`Q=XA_h`, :math:`V=XM_h` exactly,
the logits :math:`S=QX^\top` and the output :math:`P(V-\bar V)+\bar V` (:math:`\bar V` the centre's output rows:
exact because softmax rows sum to 1) as bilinear products whose linear part is exact and whose quadratic part
:math:`|\Delta_a\Delta_b|\le(s_a+r_a)(s_b+r_b)` goes into the box term, and the softmax as
:math:`p_{ij}=1/\sum_k\exp(S_{ik}-S_{ij})` with exact differences (so what two logits share cancels) and sound
chord/tangent relaxations of exp and of the reciprocal (the denominator is >= 1); the box term is turned back into
generators before every attention layer. So the logits and the softmax are bounded on the region's actual
tokens. LayerNorm is mapped by zonotope arithmetic on its parts (:func:`_zlayernorm`): the centred input
:math:`x_c` (linear), :math:`v=|x_c|^2/d` (first order in the generators, the second-order part
:math:`\frac1d\sum_a\Delta_a^2\in[0,\frac1d\sum_a(s_a+r_a)^2]` in the box term), :math:`1/\sigma=(v+\epsilon)^{-1/2}`
by a chord relaxation (convex, decreasing; the lower offset in closed form), and :math:`y=x_c/\sigma` as an
entrywise product; so first-order correlations survive LayerNorm (the earlier mean-value form
:math:`F(c)+J_{mid}(Z-c)+J_{rad}|Z-c|` put a first-order term in the box: on the trained ViT at 2/255 its
logits' enclosure was 5x wider). After every smooth layer the box term is turned into generators, so that
the following linear maps carry it with its signs rather than through :math:`|W|`.

Attention's interval Jacobian over the region comes from the closed form
:math:`\partial Y_{io}/\partial X_{pa}=P_{ip}M_{ao}+\delta_{ip}C_i[a,o]+P_{ip}q_{ia}(v_p-\bar v_i)_o`,
:math:`C_i=\sum_jP_{ij}k_j(v_j-\bar v_i)^\top`, with the boxes of the zonotopes above; LayerNorm's from
:math:`J=\mathrm{diag}(\gamma)(I-\mathbf 1\mathbf 1^\top/d-yy^\top/d)/\sigma` with :math:`\sigma,y` bounded on the
region. When an enclosure overflows, its radius exceeds 1e3 (1 + |centre|), or a softmax entry can move by more
than 0.5, nothing is claimed (value ``inf``; callers fall back to a global bound, labelled).

**Backward.** The Clarke Jacobian of the network at every point of the region lies in the product of the layers'
Jacobian sets (chain rule for Clarke Jacobians, Clarke 1983 Thm 2.6.6): ReLU's derivative is 1 / 0 on stable
neurons and [0, 1] on unstable ones, smooth layers' lie in their interval Jacobians, residual blocks add the
shortcut's. The product is evaluated from the logits backwards (few rows) as a set

.. math:: \{M+\textstyle\sum_ja_jb_j^\top+E:\ |a_j|\le\bar a_j,\ |E|\le\bar E\}

(:class:`_Back`): an uncertain factor (an unstable ReLU, a smooth layer's spread) creates generators whose
coefficient is the uncertainty times the current set and whose vector is propagated *exactly* through the later
layers, so the first-order spread never passes through entrywise absolute values of the weights; float rounding
and folded generators go to the entrywise remainder E. At the input,

.. math:: \mathrm{Lip}_2(f|_R)\le\sup_{x\in R}\|\partial f(x)\|_2\le\|M\|_2+\min(\|\bar A\|_2\|B\|_2,
   \|\bar A^\top|B|\|_2)+\|\bar E\|_2

(mean-value theorem for Clarke Jacobians on the convex region R; :math:`\|\tilde A^\top B\|_2\le\|\tilde A\|_2
\|B\|_2\le\|\bar A\|_2\|B\|_2`, :math:`\|\tilde A^\top B\|_2\le\|\bar A^\top|B|\|_2` and
:math:`\|E\|_2\le\|\bar E\|_2` since the spectral norm is monotone on entrywise-dominating non-negative matrices). Spectral norms of float matrices are rounded up with the project's
margin (:func:`theory.numerics.round_up`).

**Telescoped bound.** The same Clarke product set is also bounded by
:func:`theory.local.graph.telescoped_bound` (the midpoint Jacobian plus, factor by factor, the first-order term
with exact midpoint maps and the higher orders through norms of exact midpoint maps, bottom-up; the uncertain
factors are the unstable ReLUs and the smooth layers' interval Jacobians), which does not pass the higher orders
through entrywise absolute values; the certificate is the smaller of the two (``LocalCertificate.backward``;
``telescoped`` holds its parts). Only a fallback constant (a smooth layer not bounded locally) rules it out. On the trained ResNet-18 (17 ReLU layers) the
generator set's entrywise spread grows ~2x per ReLU layer, the telescoped bound ~1.5x.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from ..numerics import UNIT_ROUNDOFF as U
from ..numerics import round_up, spectral_norm
from .graph import Graph, relu_bounds, telescoped_bound
from .interval import Box, gamma, up
from .network import (AddConstant, Attention, ChannelAffine, Conv, Dense, LayerNorm, LocalProblem, Mean, Patchify,
                      Relu, Residual, TokenDense)

__all__ = ["Options", "Zonotope", "LocalCertificate", "certify", "forward", "analyse", "evaluate"]

_CHUNK = 128  # generators per convolution GEMM (bounds the im2col buffer)


@dataclass(frozen=True)
class Options:
    """Knobs of the propagation. ``max_generators``: zonotope generators kept between top-level layers (the
    smallest are folded into the box term, which stays sound and costs tightness), raised to
    ``generator_entries // size`` where the layer is small (``size`` entries per generator: a ViT's 16 x 32 tokens
    keep 32768, a ResNet's 64 x 16 x 16 feature map 3000), so memory stays ~``8 * generator_entries`` bytes. ``back_substitution`` /
    ``telescoped``: the back-substitution pre-activation bounds and the telescoped Jacobian bound of
    :mod:`theory.local.graph` (each only tightens; off: the zonotope/generator certificate alone). The ``mutant_*``
    flags are the deliberate slips the verification suite must catch; they are never set by a user-facing path."""

    max_generators: int = 3000
    generator_entries: int = 2 ** 24        # the memory cap: generators x entries per generator
    back_substitution: bool = True          # ReLU pre-activation bounds also by back-substitution (graph.py)
    telescoped: bool = True                 # also the telescoped Jacobian bound (graph.py); the smaller is reported
    mutant_drop_unstable: bool = False      # unstable ReLUs get derivative 0 instead of [0, 1]
    mutant_smooth_at_centre: bool = False   # attention/LayerNorm Jacobians at the centre only (region ignored)
    mutant_layernorm_at_centre: bool = False

    def keep(self, size: int) -> int:
        """Generators kept for a layer of ``size`` entries per generator (see ``max_generators``)."""
        return max(int(self.max_generators), int(self.generator_entries) // max(int(size), 1))


# ============================================================================ linear maps
def _conv_fwd(x, k, pads, stride):
    """Zero-padded correlation of a batch ``x`` (B, C, H, W) with ``k`` (Co, C, kh, kw): im2col in the channel-first
    "wide" layout (one GEMM ``(Co, C kh kw) @ (C kh kw, b Ho Wo)`` per chunk of the batch)."""
    t, b_, l, r = pads
    co, c, kh, kw = k.shape
    n, _, h, w = x.shape
    ho, wo = (h + t + b_ - kh) // stride + 1, (w + l + r - kw) // stride + 1
    km = k.reshape(co, -1)
    out = np.empty((n, co, ho, wo))
    for i0 in range(0, n, _CHUNK):
        xb = x[i0:i0 + _CHUNK]
        nb = xb.shape[0]
        xp = np.zeros((c, nb, h + t + b_, w + l + r))
        xp[:, :, t:t + h, l:l + w] = xb.transpose(1, 0, 2, 3)
        cols = np.empty((c, kh, kw, nb, ho, wo))
        for i in range(kh):
            for j in range(kw):
                cols[:, i, j] = xp[:, :, i:i + stride * (ho - 1) + 1:stride, j:j + stride * (wo - 1) + 1:stride]
        out[i0:i0 + nb] = (km @ cols.reshape(c * kh * kw, -1)).reshape(co, nb, ho, wo).transpose(1, 0, 2, 3)
    return out


def _conv_bwd(g, k, pads, stride, in_hw):
    """The transpose of :func:`_conv_fwd`: ``g`` dilated by the stride, correlated with the flipped kernel."""
    t, _, l, _ = pads
    h, w = in_hw
    kh, kw = k.shape[2:]
    n, co, ho, wo = g.shape
    if stride > 1:
        gd = np.zeros((n, co, (ho - 1) * stride + 1, (wo - 1) * stride + 1))
        gd[:, :, ::stride, ::stride] = g
    else:
        gd = g
    kf = np.ascontiguousarray(k[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    pt, pl = kh - 1 - t, kw - 1 - l
    pb = h - gd.shape[2] - pt + kh - 1
    pr = w - gd.shape[3] - pl + kw - 1
    return _conv_fwd(gd, kf, (pt, pb, pl, pr), 1)


class _Lin:
    """A linear layer's maps on batches (leading axis): ``fwd``/``bwd`` with the float (mid) parameters,
    ``fwd_abs``/``bwd_abs`` with their absolute values, ``fwd_rad``/``bwd_rad`` with the parameters' radii (or
    ``None``: exact parameters), ``bias`` (a Box or ``None``), ``fan_in``/``fan_out`` (terms per output of fwd/bwd)."""

    def __init__(self, layer, in_shape):
        self.layer, self.in_shape = layer, tuple(in_shape)
        self.out_shape = layer.out_shape(self.in_shape, "layer")
        self.bias, self.fwd_rad, self.bwd_rad = None, None, None
        L = layer
        if isinstance(L, Dense):
            w, aw = L.weight, np.abs(L.weight)
            flat = lambda x: x.reshape(x.shape[0], -1)  # noqa: E731
            self.fwd = lambda x: flat(x) @ w.T
            self.fwd_abs = lambda x: flat(x) @ aw.T
            self.bwd = lambda g: (g @ w).reshape(g.shape[0], *self.in_shape)
            self.bwd_abs = lambda g: (g @ aw).reshape(g.shape[0], *self.in_shape)
            self.bias, self.fan_in, self.fan_out = Box.point(L.bias), w.shape[1], w.shape[0]
        elif isinstance(L, Conv):
            cl = L.layer
            k, ak = cl.kernel, np.abs(cl.kernel)
            p, s, hw = cl.padding, cl.stride, cl.input_size
            self.fwd = lambda x: _conv_fwd(x, k, p, s)
            self.fwd_abs = lambda x: _conv_fwd(x, ak, p, s)
            self.bwd = lambda g: _conv_bwd(g, k, p, s, hw)
            self.bwd_abs = lambda g: _conv_bwd(g, ak, p, s, hw)
            self.bias = Box.point(np.broadcast_to(L.bias[:, None, None], self.out_shape).copy())
            self.fan_in = int(np.prod(k.shape[1:]))
            self.fan_out = int(k.shape[0] * k.shape[2] * k.shape[3])
        elif isinstance(L, ChannelAffine):
            extra = (1,) * (len(self.in_shape) - 1)
            sm, sr = L.scale.mid.reshape(-1, *extra), L.scale.rad.reshape(-1, *extra)
            self.fwd = self.bwd = lambda x: x * sm
            self.fwd_abs = self.bwd_abs = lambda x: x * np.abs(sm)
            self.fwd_rad = self.bwd_rad = lambda x: x * sr
            sh = L.shift
            self.bias = Box(np.broadcast_to(sh.mid.reshape(-1, *extra), self.out_shape).copy(),
                            np.broadcast_to(sh.rad.reshape(-1, *extra), self.out_shape).copy())
            self.fan_in = self.fan_out = 1
        elif isinstance(L, Patchify):
            idx = L.index
            n_in = int(np.prod(self.in_shape))
            inv = np.empty(n_in, dtype=np.int64)
            inv[idx.ravel()] = np.arange(idx.size)

            def gather(x):
                return x.reshape(x.shape[0], -1)[:, idx]

            def scatter(g):
                return g.reshape(g.shape[0], -1)[:, inv].reshape(g.shape[0], *self.in_shape)

            self.fwd = self.fwd_abs = gather
            self.bwd = self.bwd_abs = scatter
            self.fan_in = self.fan_out = 1
        elif isinstance(L, TokenDense):
            w, aw = L.weight, np.abs(L.weight)
            self.fwd = lambda x: x @ w.T
            self.fwd_abs = lambda x: x @ aw.T
            self.bwd = lambda g: g @ w
            self.bwd_abs = lambda g: g @ aw
            self.bias = Box.point(np.broadcast_to(L.bias, self.out_shape).copy())
            self.fan_in, self.fan_out = w.shape[1], w.shape[0]
        elif isinstance(L, AddConstant):
            self.fwd = self.fwd_abs = self.bwd = self.bwd_abs = lambda x: x
            self.bias = Box.point(L.value)
            self.fan_in = self.fan_out = 1
        elif isinstance(L, Mean):
            axes = (1,) if L.over == "tokens" else (2, 3)
            n = int(np.prod([self.in_shape[a - 1] for a in axes]))
            self.fwd = self.fwd_abs = lambda x: x.sum(axis=axes) * (1.0 / n)
            if L.over == "tokens":
                self.bwd = self.bwd_abs = lambda g: np.broadcast_to((g * (1.0 / n))[:, None, :],
                                                                    (g.shape[0], *self.in_shape)).copy()
            else:
                self.bwd = self.bwd_abs = lambda g: np.broadcast_to((g * (1.0 / n))[:, :, None, None],
                                                                    (g.shape[0], *self.in_shape)).copy()
            self.fan_in, self.fan_out = n + 2, 2  # the float 1/n is within u of 1/n
        else:  # pragma: no cover - every linear type is handled above
            raise TypeError(type(L).__name__)


def _linear_forward(lin: _Lin, z: "Zonotope") -> "Zonotope":
    both = lin.fwd(np.concatenate([z.c[None], z.G]))
    c, G = both[0], both[1:]
    s = z.gsum()
    ac = np.abs(z.c)
    g = gamma(lin.fan_in + 1)
    r = lin.fwd_abs((z.r + g * (ac + s))[None])[0]
    if lin.fwd_rad is not None:
        r = r + lin.fwd_rad((ac + s + z.r)[None])[0]
    if lin.bias is not None:
        c = c + lin.bias.mid
        r = r + g * np.abs(lin.bias.mid) + lin.bias.rad + U * np.abs(c)
    return Zonotope(c, G, up(r, lin.fan_in + 12))


def _linear_backward(lin: _Lin, gb: Box) -> Box:
    m = lin.bwd(gb.mid)
    am = np.abs(gb.mid)
    r = lin.bwd_abs(gb.rad + gamma(lin.fan_out + 1) * am)
    if lin.bwd_rad is not None:
        r = r + lin.bwd_rad(am + gb.rad)
    return Box(m, up(r, lin.fan_out + 12))


# ============================================================================ zonotopes
@dataclass
class Zonotope:
    """``c`` (shape S), generators ``G`` (m, *S), box term ``r`` (S, >= 0)."""

    c: np.ndarray
    G: np.ndarray
    r: np.ndarray

    @property
    def m(self) -> int:
        return self.G.shape[0]

    def gsum(self) -> np.ndarray:
        """An upper bound of :math:`\\sum_j|g_j|` (entrywise)."""
        if not self.m:
            return np.zeros_like(self.c)
        return up(np.abs(self.G).sum(axis=0), self.m + 2)

    def box(self) -> Box:
        return Box(self.c, up(self.gsum() + self.r, 2))

    def fold(self, keep: int) -> "Zonotope":
        """Keep the ``keep`` generators of largest l1 mass; fold the others into the box term (sound)."""
        if self.m <= keep:
            return self
        mass = np.abs(self.G).reshape(self.m, -1).sum(axis=1)
        order = np.argsort(mass)[::-1]
        kept, dropped = order[:keep], order[keep:]
        extra = up(np.abs(self.G[dropped]).sum(axis=0), len(dropped) + 2)
        return Zonotope(self.c, self.G[np.sort(kept)], up(self.r + extra, 2))


def _region_zonotope(problem: LocalProblem) -> Zonotope:
    lo, hi = problem.region.box()
    c = 0.5 * lo + 0.5 * hi
    w = np.maximum(hi - c, c - lo)
    w = up(w, 1) + 2 * U * np.abs(c)
    flat = w.ravel()
    nz = np.flatnonzero(flat > 0)
    G = np.zeros((nz.size, flat.size))
    G[np.arange(nz.size), nz] = flat[nz]
    return Zonotope(c, G.reshape(nz.size, *c.shape), np.zeros_like(c))


def _relu_forward(z: Zonotope, opts: Options, bounds=None):
    """DeepZ on the pre-activation interval ``bounds`` (any sound enclosure of the pre-activations on the region,
    e.g. the zonotope's hull intersected with back-substitution bounds; default: the hull): the relaxation only
    has to hold for the values the region reaches, which lie in it."""
    if bounds is None:
        b = z.box()
        lo, hi = b.lower, b.upper
    else:
        lo, hi = bounds
    pos, neg = lo >= 0, hi <= 0
    unst = ~pos & ~neg
    with np.errstate(divide="ignore", invalid="ignore"):
        lam = np.where(unst, hi / (hi - lo), np.where(pos, 1.0, 0.0))
    lam = np.clip(np.nan_to_num(lam, nan=1.0), 0.0, 1.0)
    t = np.maximum(-lam * lo * (1 + 4 * U), (1.0 - lam) * hi * (1 + 4 * U))
    t = np.where(unst, np.nextafter(np.maximum(t, 0.0), np.inf), 0.0)
    mu = 0.5 * t
    c = lam * z.c + mu
    G = z.G * lam
    s = z.gsum()
    r = up(lam * z.r + U * (np.abs(lam * z.c) + lam * s) + U * np.abs(c), 6)
    idx = np.flatnonzero(unst.ravel())
    new = np.zeros((idx.size, z.c.size))
    new[np.arange(idx.size), idx] = mu.ravel()[idx]
    out = Zonotope(c, np.concatenate([G, new.reshape(idx.size, *z.c.shape)]), r)
    dmid = np.where(pos, 1.0, np.where(unst, 0.5, 0.0))
    drad = np.where(unst, 0.5, 0.0)
    if opts.mutant_drop_unstable:
        dmid, drad = np.where(unst, 0.0, dmid), np.zeros_like(drad)
    stats = {"neurons": int(z.c.size), "active": int(pos.sum()), "inactive": int(neg.sum()),
             "unstable": int(unst.sum())}
    return out, Box(dmid, drad), stats


# ============================================================================ zonotope arithmetic
def _zmap(z: Zonotope, mat: Box) -> Zonotope:
    """``x @ mat`` on the last axis, ``mat`` a float enclosure (its radius covers the matrix's own rounding)."""
    k = mat.mid.shape[0]
    mm, am = mat.mid, np.abs(mat.mid)
    c = z.c @ mm
    G = z.G @ mm if z.m else np.zeros((0, *c.shape))
    s = z.gsum()
    ac = np.abs(z.c)
    r = (z.r + gamma(k) * (ac + s)) @ am + (ac + s + z.r) @ mat.rad
    return Zonotope(c, G, up(r, k + 10))


def _zadd(a: Zonotope, b: Zonotope) -> Zonotope:
    """The sum of two zonotopes over the same generators (same symbols)."""
    c = a.c + b.c
    G = a.G + b.G
    sg = up(np.abs(G).sum(axis=0), G.shape[0] + 2) if G.shape[0] else 0.0
    return Zonotope(c, G, up(a.r + b.r + U * (np.abs(c) + sg), 4))


def _zbilinear(a: Zonotope, b: Zonotope) -> Zonotope:
    r"""``a @ b`` (matrices over the same generators): linear part exact, the rest in the box term:
    :math:`(a_c+\Delta_a)(b_c+\Delta_b)=a_cb_c+\Delta_ab_c+a_c\Delta_b+\Delta_a\Delta_b` with
    :math:`|\Delta_a\Delta_b|\le(s_a+r_a)(s_b+r_b)` entrywise."""
    k = a.c.shape[-1]
    c = a.c @ b.c
    G = (a.G @ b.c + a.c @ b.G) if a.m else np.zeros((0, *c.shape))
    sa, sb = a.gsum(), b.gsum()
    aa, ab = np.abs(a.c), np.abs(b.c)
    da, db = sa + a.r, sb + b.r
    r = (a.r @ ab + aa @ b.r + da @ db
         + gamma(k + 1) * (aa @ ab + sa @ ab + aa @ sb))
    return Zonotope(c, G, up(r, 2 * k + 12))


def _relax(z: Zonotope, kind: str, floor: float | None = None, eps: float = 0.0) -> Zonotope:
    r"""Entrywise sound affine relaxation of a convex function (``exp``; ``recip`` = 1/x on x > 0; ``rsqrt`` =
    :math:`(x+\epsilon)^{-1/2}` on x >= 0, ``eps`` the :math:`\epsilon > 0`):
    :math:`f(x)\in\lambda x+[\beta_{lo},\beta_{hi}]` on the entry's interval [l, u], with the chord slope
    :math:`\lambda`; :math:`\beta_{hi}` is the larger endpoint value of :math:`f-\lambda x` (convex), and
    :math:`\beta_{lo}` its global minimum (where :math:`f'=\lambda`; for rsqrt in closed form,
    :math:`\min_{t>0}(t^{-1/2}-\lambda t)+\lambda\epsilon=\tfrac32(-2\lambda)^{1/3}+\lambda\epsilon`), valid
    for any float :math:`\lambda` (< 0 for the decreasing ones)."""
    b = z.box()
    lo, hi = b.lower, b.upper
    if floor is not None:  # a known lower bound of every entry (e.g. a softmax denominator >= 1)
        lo = np.minimum(np.maximum(lo, floor), hi)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        if kind == "rsqrt":  # every entry is a mean of squares: clip at 0
            lo = np.maximum(lo, 0.0)
            hi = np.maximum(hi, lo)
            f_lo, f_hi = 1.0 / np.sqrt(lo + eps), 1.0 / np.sqrt(hi + eps)
            w = hi - lo
            # the chord; on a (near-)degenerate interval the derivative at lo (any lambda < 0 is sound)
            lam = np.where(w > 1e-12 * (lo + eps), (f_hi - f_lo) / np.where(w > 0, w, 1.0), -0.5 * f_lo / (lo + eps))
            lam = np.minimum(lam, -1e-300)
            f_lo_hi, f_hi_hi = f_lo * (1 + 8 * U), f_hi * (1 + 8 * U)   # upper bounds of f at the ends
            cube = np.cbrt(-2.0 * lam)
            g_min = 1.5 * cube + lam * eps - 16 * U * (1.5 * cube + np.abs(lam * eps)) - 1e-300
        elif kind == "exp":
            e_lo, e_hi = np.exp(lo), np.exp(hi)
            w = hi - lo
            lam = np.where(w > 1e-300, np.exp(lo) * np.expm1(w) / np.where(w > 1e-300, w, 1.0), e_lo)
            lam = np.maximum(lam, 1e-300)
            f_lo_hi, f_hi_hi = e_lo * (1 + 16 * U), e_hi * (1 + 16 * U)
            ln = np.log(lam)
            g_min = lam - lam * ln
            g_min = g_min - 16 * U * (np.abs(lam) + np.abs(lam * ln)) - 1e-300
        else:
            if (lo <= 0).any():
                return Zonotope(z.c, z.G, np.full_like(z.r, np.inf))
            lam = -1.0 / (lo * hi)
            f_lo_hi, f_hi_hi = (1.0 / lo) * (1 + 4 * U), (1.0 / hi) * (1 + 4 * U)
            g_min = 2.0 * np.sqrt(-lam) * (1 - 8 * U) - 1e-300
        a_lo, a_hi = lam * lo, lam * hi
        g1 = f_lo_hi - a_lo + 4 * U * (np.abs(f_lo_hi) + np.abs(a_lo))
        g2 = f_hi_hi - a_hi + 4 * U * (np.abs(f_hi_hi) + np.abs(a_hi))
        g_max = np.nextafter(np.maximum(g1, g2), np.inf)
        beta = 0.5 * g_max + 0.5 * g_min
        brad = up(np.maximum(g_max - beta, beta - g_min), 2) + 2 * U * np.abs(beta)
        c = lam * z.c + beta
        G = z.G * lam
        s = z.gsum()
        r = np.abs(lam) * z.r + brad + U * (np.abs(lam * z.c) + np.abs(lam) * s + np.abs(c))
    return Zonotope(c, G, up(r, 6))


def _zsoftmax(zs: Zonotope) -> tuple[Zonotope, Box, Box]:
    r"""Row softmax of a zonotope of logits as :math:`p_{ij}=1/\sum_k\exp(S_{ik}-S_{ij})`: the differences are
    exact (generators subtract, so what rows share cancels), ``exp`` and the reciprocal are relaxed entrywise
    (:func:`_relax`). Returns (P zonotope, P box, S box)."""
    sb = zs.box()
    n = zs.c.shape[-1]
    m = zs.m
    eye = np.eye(n, dtype=bool)
    tot_c = np.zeros((n, n))
    tot_G = np.zeros((m, n, n))
    tot_r = np.zeros((n, n))
    for i in range(n):  # row by row: the differences of row i are (m, n, n)
        c = zs.c[i][None, :] - zs.c[i][:, None]               # (j, k) = S_ik - S_ij
        G = zs.G[:, i, None, :] - zs.G[:, i, :, None]         # (m, j, k)
        sg = up(np.abs(G).sum(axis=0), m + 2) if m else 0.0
        r = np.where(eye, 0.0, up(zs.r[i][None, :] + zs.r[i][:, None] + U * (np.abs(c) + sg), 3))
        e = _relax(Zonotope(np.where(eye, 0.0, c), np.where(eye[None], 0.0, G), r), "exp")
        tot_c[i] = e.c.sum(-1)
        tot_G[:, i] = e.G.sum(-1)
        tot_r[i] = up(e.r.sum(-1) + gamma(n) * (np.abs(e.c).sum(-1) + e.gsum().sum(-1)), n + 4)
    zp = _relax(Zonotope(tot_c, tot_G, tot_r), "recip", floor=1.0)   # the term k = j is exp(0) = 1
    pb = sb.softmax()
    return zp, _intersect(zp.box(), pb), sb


def _as_generators(z: Zonotope) -> Zonotope:
    """The box term turned into one new generator per entry (sound: the same set), so that later products see
    its correlations (a logit difference cancels what two logits share)."""
    flat = z.r.ravel()
    nz = np.flatnonzero(flat > 0)
    new = np.zeros((nz.size, flat.size))
    new[np.arange(nz.size), nz] = flat[nz]
    return Zonotope(z.c, np.concatenate([z.G, new.reshape(nz.size, *z.c.shape)]), np.zeros_like(z.r))


def _zmix(zp: Zonotope, zv: Zonotope) -> Zonotope:
    r"""``Y = P v`` for row-stochastic P, as :math:`Y_i=\sum_jP_{ij}(v_j-\bar v_i)+\bar v_i` with the constant
    :math:`\bar v_i` = the centre's output row (exact for every real P whose rows sum to 1, which softmax rows do),
    so the uncertainty of P multiplies the small :math:`v_j-\bar v_i` rather than v."""
    n, do = zv.c.shape
    vbar = zp.c @ zv.c                                         # any float constant rows will do
    wc = zv.c[None, :, :] - vbar[:, None, :]                   # (i, j, o)
    wr = up(zv.r[None] + U * np.abs(wc), 2)
    sw = zv.gsum()[None]
    sp = zp.gsum()
    c = np.einsum("ij,ijo->io", zp.c, wc) + vbar
    if zp.m:
        G = np.einsum("mij,ijo->mio", zp.G, wc) + zp.c @ zv.G
    else:
        G = np.zeros((0, n, do))
    ap, aw = np.abs(zp.c), np.abs(wc)
    dp = sp + zp.r
    dw = sw + wr
    r = (np.einsum("ij,ijo->io", zp.r, aw) + np.einsum("ij,ijo->io", ap, wr) + np.einsum("ij,ijo->io", dp, dw)
         + gamma(n + 2) * (np.einsum("ij,ijo->io", ap, aw) + np.einsum("ij,ijo->io", sp, aw) + ap @ zv.gsum()
                           + np.abs(vbar)))
    return Zonotope(c, G, up(r, 2 * n + 14))


def _intersect(a: Box, b: Box) -> Box:
    lo, hi = np.maximum(a.lower, b.lower), np.minimum(a.upper, b.upper)
    return Box.from_bounds(lo, np.maximum(hi, lo))


def _zdiff_box(zv: Zonotope, zy: Zonotope) -> Box:
    """Box of ``v_p - y_i`` for all pairs (i, p): shape (n, n, d), correlations through the generators kept."""
    c = zv.c[None, :, :] - zy.c[:, None, :]
    if zv.m:
        s = np.abs(zv.G[:, None, :, :] - zy.G[:, :, None, :]).sum(axis=0)
        s = up(s, zv.m + 3)
    else:
        s = 0.0
    return Box(c, up(s + zv.r[None] + zy.r[:, None] + U * np.abs(c), 3))


# ============================================================================ smooth layers
@dataclass
class _SmoothJac:
    """An interval Jacobian: ``dense`` ``(N_out, N_in)`` or ``blockdiag`` ``(n, d_out, d_in)`` (per token)."""

    box: Box
    kind: str
    in_shape: tuple
    out_shape: tuple

    @property
    def fan_in(self) -> int:
        return self.box.mid.shape[-1]

    def mat_apply(self, mat: np.ndarray, x: np.ndarray) -> np.ndarray:
        """``mat`` (mid, |mid| or rad) applied to a batch ``x`` (B, *in) -> (B, *out)."""
        if self.kind == "dense":
            return (x.reshape(x.shape[0], -1) @ mat.T).reshape(x.shape[0], *self.out_shape)
        return (mat @ x.transpose(1, 2, 0)).transpose(2, 0, 1)  # (n, do, di) @ (n, di, B)

    def mat_back(self, mat: np.ndarray, g: np.ndarray) -> np.ndarray:
        """Rows ``g`` (B, *out) times ``mat`` -> (B, *in)."""
        if self.kind == "dense":
            return (g.reshape(g.shape[0], -1) @ mat).reshape(g.shape[0], *self.in_shape)
        return (g.transpose(1, 0, 2) @ mat).transpose(1, 0, 2)  # (n, B, do) @ (n, do, di)

    def norm_bound(self) -> float:
        """An upper bound of the operator norm of every matrix in the box (block-diagonal: the worst block)."""
        if self.kind == "dense":
            return round_up(spectral_norm(self.box.mid) + spectral_norm(self.box.rad))
        return round_up(max(spectral_norm(m) + spectral_norm(r) for m, r in zip(self.box.mid, self.box.rad)))


_CACHE: dict = {}


def _attention_mats(w):
    key = id(w)
    hit = _CACHE.get(key)
    if hit is not None and hit[0] is w:
        return hit[1]
    c = 1.0 / math.sqrt(w.head_dim)
    mats = [((Box.point(q) @ Box.point(k.T)).scale(c, 3 * U), Box.point(v) @ Box.point(o))
            for q, k, v, o in zip(w.query, w.key, w.value, w.output)]
    _CACHE[key] = (w, mats)
    if len(_CACHE) > 256:
        _CACHE.pop(next(iter(_CACHE)))
    return mats


def attention_box(w, x: Box) -> Box:
    """An enclosure of the attention output over the token box ``x`` (plain interval arithmetic)."""
    out = None
    for a, m in _attention_mats(w):
        p = ((x @ a) @ x.swap()).softmax()
        y = p @ (x @ m)
        out = y if out is None else out + y
    return out


def _attention_jacobian(parts, n: int, d: int, do: int) -> _SmoothJac:
    r"""The interval Jacobian :math:`\partial Y_{io}/\partial X_{pa}=P_{ip}M_{ao}+\delta_{ip}C_i[a,o]+P_{ip}q_{ia}
    (v_p-\bar v_i)_o`, :math:`C_i=\sum_jP_{ij}k_j(v_j-\bar v_i)^\top`, from boxes valid over the region."""
    jac = None
    ii = np.arange(n)
    for q, k, p, wdiff, m in parts:
        t = p[:, :, None] * wdiff                              # (i, j, o)
        cov = k.swap()[None] @ t                               # (i, d, o)
        j1 = p[:, None, :, None] * m.swap()[None, :, None, :]  # (i, o, p, a) = P_ip M_ao
        uq = p[:, :, None] * q[:, None, :]                     # (i, p, a) = P_ip q_ia
        j3 = uq[:, None, :, :] * wdiff.transpose(0, 2, 1)[:, :, :, None]
        dm, dr = np.zeros((n, do, n, d)), np.zeros((n, do, n, d))
        dm[ii, :, ii, :] = cov.mid.transpose(0, 2, 1)
        dr[ii, :, ii, :] = cov.rad.transpose(0, 2, 1)
        head = j1 + j3 + Box(dm, dr)
        jac = head if jac is None else jac + head
    return _SmoothJac(jac.reshape(n * do, n * d), "dense", (n, d), (n, do))


def _attention_forward(w, z: Zonotope, opts: Options):
    """Zonotope transformer of attention (logits and products bilinear, softmax by the mean-value form) and the
    interval Jacobian over the region; returns (zonotope, jacobian, info)."""
    z = _as_generators(z)
    n, d = z.c.shape
    do = w.out_dim
    out, parts = None, []
    lo, hi, pw = np.inf, -np.inf, 0.0
    centre = Zonotope(z.c, np.zeros((0, n, d)), np.zeros_like(z.c))
    for a, m in _attention_mats(w):
        zq, zk, zv = _zmap(z, a), _zmap(z, a.swap()), _zmap(z, m)
        zs = _zbilinear(zq, Zonotope(z.c.T, np.swapaxes(z.G, 1, 2), z.r.T))
        zp, pbox, sbox = _zsoftmax(zs)
        zy = _zmix(zp, zv)
        out = zy if out is None else _zadd(out, zy)
        if opts.mutant_smooth_at_centre:  # the slip: the Jacobian at the centre only
            cq, ck, cv = _zmap(centre, a), _zmap(centre, a.swap()), _zmap(centre, m)
            cs = _zbilinear(cq, Zonotope(z.c.T, np.zeros((0, d, n)), np.zeros_like(z.c.T)))
            cp, cpb, _ = _zsoftmax(cs)
            cy = _zbilinear(cp, cv)
            parts.append((cq.box(), ck.box(), cpb, _zdiff_box(cv, cy), m))
        else:
            parts.append((zq.box(), zk.box(), pbox, _zdiff_box(zv, zy), m))
        lo, hi = min(lo, float(sbox.lower.min())), max(hi, float(sbox.upper.max()))
        pw = max(pw, float((pbox.upper - pbox.lower).max()))
    jac = _attention_jacobian(parts, n, d, do)
    return out, jac, {"logits": [lo, hi], "max_softmax_width": pw}


def _ln_parts(layer: LayerNorm, xc: Box):
    """``1/sigma`` and ``y = (x - mean)/sigma`` over the region from a box of the centred input ``x - mean``."""
    d = layer.gamma.size
    inv_d = Box(np.array(1.0 / d), np.array(U / d))
    var = xc.square().sum(-1) * inv_d
    inv = (var + layer.eps).sqrt().reciprocal()      # (n,)
    y = xc * Box(inv.mid[:, None], inv.rad[:, None])
    return inv, y, inv_d


def _centring(d: int) -> Box:
    inv_d = Box(np.array(1.0 / d), np.array(U / d))
    return Box.point(np.eye(d)) - inv_d               # I - 11^T/d (symmetric)


def layernorm_box(layer: LayerNorm, x: Box) -> Box:
    _, y, _ = _ln_parts(layer, x @ _centring(layer.gamma.size))
    return y * Box.point(layer.gamma) + Box.point(layer.beta)


def _layernorm_jacobian(layer: LayerNorm, xc: Box, parts=None) -> _SmoothJac:
    r"""LayerNorm's interval Jacobian over the region from boxes of ``1/sigma`` and ``y`` (``parts``: a sound
    ``(inv, y)`` pair, e.g. from :func:`_zlayernorm`; default: from the centred input's box ``xc``)."""
    inv, y, inv_d = _ln_parts(layer, xc)
    if parts is not None:
        inv, y = _intersect(inv, parts[0]), _intersect(y, parts[1])
    n, d = xc.mid.shape
    core = _centring(d)[None] - (y[:, :, None] * y[:, None, :]) * inv_d   # (n, d, d)
    scale = Box.point(layer.gamma)[None, :] * Box(inv.mid[:, None], inv.rad[:, None])  # (n, d)
    return _SmoothJac(core * Box(scale.mid[:, :, None], scale.rad[:, :, None]), "blockdiag", (n, d), (n, d))


def _zmul(a: Zonotope, b: Zonotope) -> Zonotope:
    r"""Entrywise product of two zonotopes over the same symbols (numpy broadcasting):
    :math:`(a_c+\Delta_a)(b_c+\Delta_b)=a_cb_c+a_c\Delta_b+b_c\Delta_a+\Delta_a\Delta_b`, the linear part exact
    in the generators, :math:`|a_c|r_b+|b_c|r_a+(s_a+r_a)(s_b+r_b)` in the box term."""
    c = a.c * b.c
    G = a.G * b.c + a.c * b.G
    sa, sb = a.gsum(), b.gsum()
    aa, ab = np.abs(a.c), np.abs(b.c)
    r = (aa * b.r + ab * a.r + (sa + a.r) * (sb + b.r)
         + gamma(2) * (sa * ab + aa * sb) + U * np.abs(c))
    return Zonotope(c, G, up(r, 8))


def _zsqmean(z: Zonotope) -> Zonotope:
    r""":math:`v=\frac1d\sum_ax_a^2` over the last axis (d entries): centre :math:`\frac1d\sum c_a^2`, generators
    :math:`\frac2d\sum_ac_ag_{ja}` (exact first order), and the second-order part
    :math:`\frac1d\sum_a(\Delta_a)^2\in[0,\frac1d\sum_a(s_a+r_a)^2]` (one-sided) plus :math:`\frac2d\sum|c_a|r_a`
    in the box term."""
    d = z.c.shape[-1]
    inv_d, err = 1.0 / d, U                       # fl(1/d) = (1/d)(1 + e), |e| <= u
    s = z.gsum()
    ac = np.abs(z.c)
    q = up(((s + z.r) ** 2).sum(-1), d + 4)          # >= sum_a Delta_a^2
    c0 = (z.c * z.c).sum(-1)
    G0 = 2.0 * (z.G * z.c).sum(-1) if z.m else np.zeros((0, *c0.shape))
    r0 = (2.0 * (ac * z.r).sum(-1) + gamma(d + 2) * ((ac * ac).sum(-1) + 2.0 * (ac * s).sum(-1)))
    c0 = c0 + 0.5 * q                              # the one-sided part [0, q] as q/2 +- q/2
    r0 = up(r0 + 0.5 * q + U * np.abs(c0), d + 8)
    c = c0 * inv_d
    G = G0 * inv_d
    gs = up(np.abs(G0).sum(axis=0), z.m + 2) if z.m else 0.0
    r = up(r0 * inv_d * (1 + err) + (np.abs(c0) + gs) * inv_d * (err + 2 * U), 6)
    return Zonotope(c, G, r)


def _zlayernorm(layer: LayerNorm, z: Zonotope) -> tuple[Zonotope, Box, Box]:
    r"""LayerNorm by zonotope arithmetic on its parts: the centred input :math:`x_c=x(I-\mathbf1\mathbf1^\top/d)`
    (linear), the variance :math:`v=|x_c|^2/d` (:func:`_zsqmean`), :math:`1/\sigma=(v+\epsilon)^{-1/2}`
    (:func:`_relax`), :math:`y=x_c/\sigma` (:func:`_zmul`, one :math:`1/\sigma` per token) and
    :math:`\gamma\odot y+\beta`. First-order terms stay in the generators (correlations kept); only second-order
    terms and the relaxation's width go to the box term. Returns (output zonotope, box of 1/sigma, box of y)."""
    d = layer.gamma.size
    xc = _zmap(z, _centring(d))
    inv = _relax(_zsqmean(xc), "rsqrt", eps=float(layer.eps))
    inv_t = Zonotope(inv.c[..., None], inv.G[..., None], inv.r[..., None])    # (n,) -> (n, 1): per token
    y = _zmul(xc, inv_t)
    g = layer.gamma
    c = y.c * g + layer.beta
    G = y.G * g
    r = up(y.r * np.abs(g) + U * (np.abs(y.c * g) + y.gsum() * np.abs(g)) + U * np.abs(c), 6)
    return Zonotope(c, G, r), inv.box(), y.box()


def _layernorm_forward(layer: LayerNorm, z: Zonotope, opts: Options):
    """LayerNorm's transformer (:func:`_zlayernorm`) and its interval Jacobian over the region. Under the
    ``mutant_*_at_centre`` slips: the mean-value form with the Jacobian at the centre only (region ignored)."""
    d = layer.gamma.size
    centre_only = opts.mutant_smooth_at_centre or opts.mutant_layernorm_at_centre
    xc = _zmap(Zonotope(z.c, z.G[:0], np.zeros_like(z.c)) if centre_only else z, _centring(d)).box()
    if centre_only:
        jac = _layernorm_jacobian(layer, xc)
        fc = layernorm_box(layer, Box.point(z.c))
        s = z.gsum()
        G = jac.mat_apply(jac.box.mid, z.G) if z.m else np.zeros((0, *z.c.shape))
        r = (fc.rad + jac.mat_apply(np.abs(jac.box.mid), (z.r + gamma(d) * s)[None])[0]
             + jac.mat_apply(jac.box.rad, (s + z.r)[None])[0])
        out = Zonotope(fc.mid, G, up(r, d + 12))
        inv = _ln_parts(layer, xc)[0]
    else:
        out, inv_box, y_box = _zlayernorm(layer, z)
        jac = _layernorm_jacobian(layer, xc, (inv_box, y_box))
        inv = _intersect(_ln_parts(layer, xc)[0], inv_box)
    info = {"sigma_inverse": [float(inv.lower.min()), float(inv.upper.max())],
            "global_constant": round_up(float(np.max(np.abs(layer.gamma))) / math.sqrt(layer.eps))}
    return out, jac, info


def _smooth_forward(layer, z: Zonotope, opts: Options):
    """(zonotope, interval Jacobian, info) of a smooth layer; ``(None, None, info)`` when not finite."""
    b = z.box()
    with np.errstate(over="ignore", invalid="ignore"):
        tr = float(np.sqrt((b.mag ** 2).sum(-1)).max())
    info = {"token_radius": round_up(tr) if math.isfinite(tr) else math.inf}
    with np.errstate(over="ignore", invalid="ignore"):
        if isinstance(layer, Attention):
            z2, jac, extra = _attention_forward(layer.weights, z, opts)
        else:
            z2, jac, extra = _layernorm_forward(layer, z, opts)
    info.update(extra)
    ok = jac.box.finite() and np.isfinite(z2.c).all() and np.isfinite(z2.r).all() and np.isfinite(z2.G).all()
    # the box term as fresh generators: later linear maps then carry it with its signs, not through |W|
    return (_as_generators(z2), jac, info) if ok else (None, None, info)


def _global_constant(layer, info: dict) -> tuple[float, str]:
    """The labelled fallback of a smooth layer not bounded locally: its constant on the region's token radius."""
    if isinstance(layer, Attention):
        from ..attention import AttentionLayer, bounded_dot_product_bound

        r = info["token_radius"]
        if not math.isfinite(r):
            return math.inf, "attention on an unbounded enclosure: no constant"
        val = bounded_dot_product_bound(AttentionLayer.create(layer.weights, info["n_tokens"], r)).value
        return val, f"global bounded-domain attention constant on B_R^n, R = {r:.4g} (the region's token radius)"
    from ..composition import layernorm_lipschitz

    return layernorm_lipschitz(layer.gamma, layer.eps).value, "global LayerNorm constant ||gamma||_inf / sqrt(eps)"


# ============================================================================ the forward chain
@dataclass
class _Rec:
    """What the backward pass needs of one layer: the linear map, the ReLU derivative box, the smooth Jacobian,
    the nested records of a residual, or a fallback constant."""

    name: str
    kind: str
    lin: _Lin | None = None
    deriv: Box | None = None
    jac: _SmoothJac | None = None
    branch: list | None = None
    shortcut: list | None = None
    constant: float | None = None
    note: str = ""
    out_shape: tuple = ()


def _as_box(z: Zonotope) -> Zonotope:
    return Zonotope(z.c, np.zeros((0, *z.c.shape)), z.box().rad)


class _Abort(Exception):
    """The enclosure grew past any use (or overflowed): the region is not bounded locally (value inf)."""


_BLOWUP = 1e3


def _check(z: Zonotope, name: str, info: dict | None = None) -> None:
    """Stop when the enclosure is not finite, its radius exceeds 1e3 (1 + |centre|), or a softmax row can move by more
    than 0.5 over the region: past that point no later layer is bounded usefully (the certificate is then inf:
    nothing local is claimed, and the brackets fall back to the global bound)."""
    if not (np.isfinite(z.c).all() and np.isfinite(z.r).all() and (not z.m or np.isfinite(z.G).all())):
        raise _Abort(f"{name}: the enclosure overflowed")
    rad = float((z.gsum() + z.r).max()) if z.c.size else 0.0
    if rad > _BLOWUP * (1.0 + float(np.abs(z.c).max())):
        raise _Abort(f"{name}: the enclosure's radius {rad:.3g} exceeds 1e3 (1 + |centre|)")
    if info and info.get("max_softmax_width", 0.0) > 0.5:
        raise _Abort(f"{name}: a softmax entry can move by {info['max_softmax_width']:.2f} over the region")


def _pre_bounds(z: Zonotope, graph, src: int, opts: Options, row: dict):
    """The pre-activation interval of a ReLU: the zonotope's hull, intersected with the back-substitution bounds
    of the neurons the hull leaves unstable (when the graph below is pure)."""
    b = z.box()
    lo, hi = b.lower, b.upper
    if graph is None or not graph.pure or not opts.back_substitution:
        return lo, hi
    cand = np.flatnonzero(((lo < 0) & (hi > 0)).ravel())
    if not cand.size:
        return lo, hi
    bl, bu = relu_bounds(graph, src, cand)
    lo, hi = lo.copy(), hi.copy()
    lf, hf = lo.reshape(-1), hi.reshape(-1)
    lf[cand] = np.maximum(lf[cand], bl)
    hf[cand] = np.minimum(hf[cand], bu)
    hf[cand] = np.maximum(hf[cand], lf[cand])  # both enclose the real values: never empty (guard)
    row["unstable_hull"] = int(cand.size)
    return lo, hi


def _run(layers, names, z: Zonotope, shape, opts: Options, stats: list, top: bool, graph=None, src: int = 0):
    recs = []
    for layer, name in zip(layers, names):
        t0 = time.perf_counter()
        row = {"layer": name, "kind": layer.kind, "generators_in": z.m}
        if isinstance(layer, Relu):
            lo, hi = _pre_bounds(z, graph, src, opts, row)
            z, deriv, st = _relu_forward(z, opts, (lo, hi))
            rec = _Rec(name, "relu", deriv=deriv, out_shape=shape)
            row.update(st)
            if graph is not None:
                src = graph.relu(src, lo, hi, deriv, z.box().mag)
        elif isinstance(layer, (Attention, LayerNorm)):
            out_shape = layer.out_shape(shape, name)
            z2, jac, info = _smooth_forward(layer, z, opts)
            info["n_tokens"] = shape[0]
            if isinstance(layer, Attention) and math.isfinite(info["token_radius"]):
                from ..attention import AttentionLayer, bounded_dot_product_bound

                info["bounded_domain_constant"] = bounded_dot_product_bound(
                    AttentionLayer.create(layer.weights, shape[0], info["token_radius"])).value
            if z2 is None:  # not bounded locally: enclose by interval arithmetic, cut the chain
                b = z.box()
                with np.errstate(over="ignore", invalid="ignore"):
                    fb = attention_box(layer.weights, b) if isinstance(layer, Attention) else layernorm_box(layer, b)
                z2 = Zonotope(fb.mid, np.zeros((0, *out_shape)), fb.rad)
                const, note = _global_constant(layer, info)
                rec = _Rec(name, "constant", constant=const, note=note, out_shape=out_shape)
                row["fallback"] = note
            else:
                rec = _Rec(name, "smooth", jac=jac, out_shape=out_shape)
                row["region_constant"] = jac.norm_bound()
            row.update(info)
            z, shape = z2, out_shape
            if graph is not None:
                src = (graph.smooth(src, jac, z.box().mag) if rec.kind == "smooth"
                       else graph.opaque(src, shape, z.box().mag))
        elif isinstance(layer, Residual):
            m0 = z.m
            zb, sb_shape, rb, nb = _run(layer.branch, [f"{name}.branch.{i}" for i in range(len(layer.branch))], z,
                                        shape, opts, stats, False, graph, src)
            if layer.shortcut:
                zs, _, rs, ns = _run(layer.shortcut, [f"{name}.shortcut.{i}" for i in range(len(layer.shortcut))],
                                     z, shape, opts, stats, False, graph, src)
            else:
                zs, rs, ns = z, [], src
            if zb.m < m0 or zs.m < m0:  # a branch fell back to a box: merge as boxes
                zb, zs, m0 = _as_box(zb), _as_box(zs), 0
            c = zb.c + zs.c
            shared = zb.G[:m0] + zs.G[:m0]
            G = np.concatenate([shared, zs.G[m0:], zb.G[m0:]])
            ss = up(np.abs(shared).sum(axis=0), m0 + 2) if m0 else 0.0
            r = up(zb.r + zs.r + U * (np.abs(c) + ss), 4)
            z, shape = Zonotope(c, G, r), sb_shape
            rec = _Rec(name, "residual", branch=rb, shortcut=rs, out_shape=shape)
            if graph is not None:
                src = graph.add(nb, ns, z.box().mag)
        else:
            lin = _Lin(layer, shape)
            z = _linear_forward(lin, z)
            shape = lin.out_shape
            rec = _Rec(name, "linear", lin=lin, out_shape=shape)
            if graph is not None:
                src = graph.lin(src, lin, z.box().mag)
        keep = opts.keep(z.c.size)
        if top and z.m > keep:
            row["folded"] = z.m - keep
            z = z.fold(keep)
        row["generators_out"] = z.m
        row["seconds"] = time.perf_counter() - t0
        stats.append(row)
        recs.append(rec)
        _check(z, name, row)
    return z, shape, recs, src


def forward(problem: LocalProblem, opts: Options | None = None):
    """The forward pass: ``(output zonotope, records, per-layer stats)``."""
    opts = opts or Options()
    z = _region_zonotope(problem)
    stats: list = []
    graph = _graph(problem)
    z, _, recs, _ = _run(problem.network.layers, problem.network.names, z, problem.network.input_shape, opts, stats,
                         True, graph, 0)
    return z, recs, stats


def analyse(problem: LocalProblem, opts: Options | None = None):
    """The forward pass with its graph: ``(graph, output node, records, per-layer stats)`` (for checks of the
    enclosures: every ReLU node of the graph holds the pre-activation bounds ``lo``/``hi`` it was relaxed on)."""
    opts = opts or Options()
    z = _region_zonotope(problem)
    stats: list = []
    graph = _graph(problem)
    with np.errstate(all="ignore"):
        _, _, recs, out = _run(problem.network.layers, problem.network.names, z, problem.network.input_shape, opts,
                               stats, True, graph, 0)
    return graph, out, recs, stats


def _graph(problem: LocalProblem) -> Graph:
    g = Graph()
    lo, hi = problem.region.box()
    g.input(np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64))
    return g


# ============================================================================ the backward chain
@dataclass
class _Back:
    r"""A set of Jacobians (rows: the outputs) :math:`\{M+\sum_ja_jb_j^\top+E:\ |a_j|\le\bar a_j,\ |E|\le\bar E\}`.

    ``M`` (k, *S) the midpoint product; ``A`` (m, k) the magnitudes :math:`\bar a_j` of generator coefficients;
    ``B`` (m, *S) the generator vectors, propagated exactly (in float, rounding into E) through the later layers;
    ``E`` (k, *S) an entrywise remainder (rounding, folded generators). An uncertain factor (an unstable ReLU's
    derivative in [0, 1], a smooth layer's interval Jacobian) creates generators whose coefficient is the
    product of the uncertainty with the current set (first order from M, higher orders from the generators), so
    the first-order spread never passes through entrywise absolute values of later weights."""

    M: np.ndarray
    A: np.ndarray
    B: np.ndarray
    E: np.ndarray

    @property
    def m(self) -> int:
        return self.A.shape[0]

    def spread(self) -> np.ndarray:
        """:math:`\\sum_j\\bar a_j|b_j|^\\top` as (k, *S), an upper bound."""
        k = self.M.shape[0]
        if not self.m:
            return np.zeros_like(self.M)
        out = self.A.T @ np.abs(self.B).reshape(self.m, -1)
        return up(out, self.m + 2).reshape(k, *self.M.shape[1:])

    def fold(self, keep: int) -> "_Back":
        if self.m <= keep:
            return self
        mass = np.linalg.norm(self.A, axis=1) * np.abs(self.B).reshape(self.m, -1).sum(axis=1)
        order = np.argsort(mass)[::-1]
        kept, dropped = np.sort(order[:keep]), order[keep:]
        k = self.M.shape[0]
        extra = up(self.A[dropped].T @ np.abs(self.B[dropped]).reshape(len(dropped), -1), len(dropped) + 2)
        return _Back(self.M, self.A[kept], self.B[kept], up(self.E + extra.reshape(k, *self.M.shape[1:]), 2))


def _back_linear(lin: _Lin, st: _Back) -> _Back:
    g = gamma(lin.fan_out + 1)
    am = np.abs(st.M)
    M = lin.bwd(st.M)
    B = lin.bwd(st.B) if st.m else np.zeros((0, *lin.in_shape))
    spread = st.spread()
    e_in = st.E + g * (am + spread)
    E = lin.bwd_abs(e_in)
    if lin.bwd_rad is not None:
        E = E + lin.bwd_rad(am + spread + st.E)
    return _Back(M, st.A, B, up(E, lin.fan_out + 12))


def _back_relu(deriv: Box, st: _Back) -> _Back:
    dm, dr = deriv.mid, deriv.rad
    unst = np.flatnonzero(dr.ravel() > 0)
    k = st.M.shape[0]
    coeff = (np.abs(st.M) + st.spread()).reshape(k, -1)[:, unst] * dr.ravel()[unst][None, :]
    newB = np.zeros((unst.size, dm.size))
    newB[np.arange(unst.size), unst] = 1.0
    A = np.concatenate([st.A, up(coeff.T, 4)])
    B = np.concatenate([st.B * dm[None], newB.reshape(unst.size, *dm.shape)])
    return _Back(st.M * dm[None], A, B, up(st.E * (dm + dr)[None], 2))


def _back_smooth(jac: _SmoothJac, st: _Back) -> _Back:
    jm, jr = jac.box.mid, jac.box.rad
    g = gamma(jac.box.mid.shape[-2] + 1)
    k = st.M.shape[0]
    am = np.abs(st.M)
    spread = st.spread()
    M = jac.mat_back(jm, st.M)
    B = jac.mat_back(jm, st.B) if st.m else np.zeros((0, *jac.in_shape))
    coeff = jac.mat_back(jr, am + spread).reshape(k, -1)      # (k, N_in): new generators e_i
    n_in = coeff.shape[1]
    E = jac.mat_back(np.abs(jm) + jr, st.E) + jac.mat_back(np.abs(jm), g * (am + spread))
    A = np.concatenate([st.A, up(coeff.T, jac.box.mid.shape[-2] + 4)])
    B = np.concatenate([B, np.eye(n_in).reshape(n_in, *jac.in_shape)])
    return _Back(M, A, B, up(E, jac.box.mid.shape[-2] + 12))


def _back_sum(a: _Back, b: _Back, m0: int) -> _Back:
    """The sum of the two paths of a residual block (generators ``< m0`` are shared)."""
    M = a.M + b.M
    shared = a.B[:m0] + b.B[:m0]
    A = np.concatenate([a.A[:m0], a.A[m0:], b.A[m0:]])
    B = np.concatenate([shared, a.B[m0:], b.B[m0:]])
    k = a.M.shape[0]
    sh = (a.A[:m0].T @ np.abs(shared).reshape(m0, -1)).reshape(k, *a.M.shape[1:]) if m0 else 0.0
    return _Back(M, A, B, up(a.E + b.E + U * (np.abs(M) + sh), m0 + 6))


def _has_constant(recs) -> bool:
    for r in recs:
        if r.kind == "constant" or (r.kind == "residual" and (_has_constant(r.branch) or _has_constant(r.shortcut))):
            return True
    return False


def _start(shape) -> _Back:
    n = int(np.prod(shape))
    return _Back(np.eye(n).reshape(n, *shape), np.zeros((0, n)), np.zeros((0, *shape)), np.zeros((n, *shape)))


def _snorm(a: np.ndarray) -> float:
    """``round_up`` of the spectral norm; ``inf`` for a matrix with a non-finite entry (nothing is certified)."""
    if not np.isfinite(a).all():
        return math.inf
    return round_up(spectral_norm(a))


def _norm_bound(st: _Back) -> tuple[float, float, float]:
    r"""Upper bounds of ``||M||``, ``||sum_j a_j b_j^T||`` and ``||E||`` (spectral norms, rounded up).

    The generator part is the smaller of two sound bounds of :math:`\|\tilde A^\top B\|_2` over
    :math:`|\tilde A|\le\bar A`: :math:`\|\bar A\|_2\|B\|_2` (keeps the signs of B, loses the alignment of the
    factors) and :math:`\|\bar A^\top|B|\|_2` (entrywise :math:`|\tilde A^\top B|\le\bar A^\top|B|`, and the
    spectral norm is monotone on entrywise-dominating non-negative matrices; :meth:`_Back.spread` rounds it up).
    On the trained ToyConv the second is 5x smaller: the unstable neurons' generators are nearly disjoint."""
    k = st.M.shape[0]
    mid = _snorm(st.M.reshape(k, -1))
    if st.m:
        product = round_up(_snorm(st.A) * _snorm(st.B.reshape(st.m, -1)))
        entrywise = _snorm(st.spread().reshape(k, -1))
        gen = min(product, entrywise)
    else:
        gen = 0.0
    rem = _snorm(st.E.reshape(k, -1))
    return mid, gen, rem


def _total(st: _Back) -> float:
    return round_up(sum(_norm_bound(st)))


def _chain(recs: list, st: _Back, in_shape, factors: list, opts: Options, top: bool = True) -> _Back:
    """Backward through ``recs``. A fallback constant cuts the chain: the bound of the part after it and the
    constant are appended to ``factors`` and the walk restarts from the identity."""
    for i in range(len(recs) - 1, -1, -1):
        rec = recs[i]
        prev_shape = recs[i - 1].out_shape if i > 0 else in_shape
        if rec.kind == "linear":
            st = _back_linear(rec.lin, st)
        elif rec.kind == "relu":
            st = _back_relu(rec.deriv, st)
        elif rec.kind == "smooth":
            st = _back_smooth(rec.jac, st)
        elif rec.kind == "residual" and not (_has_constant(rec.branch) or _has_constant(rec.shortcut)):
            m0 = st.m
            a = _chain(rec.shortcut, st, prev_shape, [], opts, False) if rec.shortcut else st
            b = _chain(rec.branch, st, prev_shape, [], opts, False)
            st = _back_sum(a, b, m0)
        else:  # a constant, or a residual with a constant inside: cut the chain here
            if rec.kind == "constant":
                const = rec.constant
            else:
                const = round_up(_sub_bound(rec.branch, prev_shape, opts) + _sub_bound(rec.shortcut, prev_shape, opts))
            factors.append({"part": "after " + rec.name, "value": _total(st)})
            factors.append({"part": rec.name, "value": const, "note": rec.note or "residual bounded by parts"})
            st = _start(prev_shape)
        if top:  # never inside a residual path: its first generators must stay those shared with the other path
            st = st.fold(opts.keep(int(np.prod(st.M.shape[1:]))))
    return st


def _sub_bound(recs, in_shape, opts) -> float:
    if not recs:
        return 1.0
    factors: list = []
    st = _chain(recs, _start(recs[-1].out_shape), in_shape, factors, opts)
    return round_up(math.prod([f["value"] for f in factors]) * _total(st))


@dataclass(frozen=True)
class LocalCertificate:
    """The result of :func:`certify`: the bound and what it consists of."""

    value: float
    jacobian_mid_norm: float
    generator_norm: float
    remainder_norm: float
    factors: tuple
    layers: tuple
    seconds: float
    region: dict
    enclosure: str
    telescoped: dict = field(default_factory=lambda: {"value": math.inf})
    backward: str = "generators"

    def as_dict(self) -> dict:
        return {"value": self.value, "jacobian_mid_norm": self.jacobian_mid_norm,
                "generator_norm": self.generator_norm, "remainder_norm": self.remainder_norm,
                "factors": list(self.factors), "layers": list(self.layers), "seconds": self.seconds,
                "region": self.region, "enclosure": self.enclosure, "telescoped": dict(self.telescoped),
                "backward": self.backward}

    def unstable(self) -> int:
        return int(sum(r.get("unstable", 0) for r in self.layers))

    def fallbacks(self) -> list[str]:
        return [f"{r['layer']}: {r['fallback']}" for r in self.layers if r.get("fallback")]


def certify(problem: LocalProblem, opts: Options | None = None) -> LocalCertificate:
    """The certified local l2 Lipschitz bound of ``problem`` (see the module docstring)."""
    if not isinstance(problem, LocalProblem):
        from ..validate import InputError

        raise InputError(f"problem: expected a LocalProblem, got {type(problem).__name__}")
    opts = opts or Options()
    t0 = time.perf_counter()
    stats: list = []
    graph = _graph(problem)
    try:
        with np.errstate(all="ignore"):  # overflow only widens enclosures; a non-finite result certifies nothing
            z = _region_zonotope(problem)
            _, _, recs, out = _run(problem.network.layers, problem.network.names, z, problem.network.input_shape,
                                   opts, stats, True, graph, 0)
    except _Abort as exc:
        return LocalCertificate(math.inf, math.inf, math.inf, math.inf, (), tuple(stats), time.perf_counter() - t0,
                                problem.region.summary(), "not bounded locally: " + str(exc))
    factors: list = []
    with np.errstate(all="ignore"):
        st = _chain(recs, _start(problem.network.output_shape), problem.network.input_shape, factors, opts)
        mid, gen, rem = _norm_bound(st)
    if not all(math.isfinite(v) for v in (mid, gen, rem)) or not all(math.isfinite(f["value"]) for f in factors):
        value = math.inf
    else:
        value = round_up(mid + gen + rem)
        for f in factors:
            value = round_up(value * f["value"])
    tele: dict = {"value": math.inf}
    if opts.telescoped and graph.telescopable:
        t1 = time.perf_counter()
        with np.errstate(all="ignore"):
            tele = telescoped_bound(graph, out)
        tele["seconds"] = time.perf_counter() - t1
    backward = "generators"
    if tele["value"] < value:
        value, backward = tele["value"], "telescoped"
    enclosure = ("the region's bounding box (an l2 ball is enclosed in its l_inf box)"
                 if problem.region.norm == "l2" else "the region itself (a box)")
    return LocalCertificate(value, mid, gen, rem, tuple(factors), tuple(stats), time.perf_counter() - t0,
                            problem.region.summary(), enclosure, tele, backward)


def evaluate(network, x) -> np.ndarray:
    """The network at one input ``x`` in float64 (mid-point arithmetic; for checks of a description, not a bound)."""
    def run(layers, h, shape):
        for layer in layers:
            if isinstance(layer, Relu):
                h = np.maximum(h, 0.0)
            elif isinstance(layer, Attention):
                h = attention_box(layer.weights, Box.point(h)).mid
                shape = h.shape
            elif isinstance(layer, LayerNorm):
                h = layernorm_box(layer, Box.point(h)).mid
            elif isinstance(layer, Residual):
                a, shape_a = run(layer.branch, h, shape)
                b, _ = run(layer.shortcut, h, shape)
                h, shape = a + b, shape_a
            else:
                lin = _Lin(layer, shape)
                h = lin.fwd(h[None])[0] + (lin.bias.mid if lin.bias is not None else 0.0)
                shape = lin.out_shape
        return h, shape

    out, _ = run(network.layers, np.asarray(x, dtype=np.float64).reshape(network.input_shape), network.input_shape)
    return out
