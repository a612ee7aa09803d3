r"""The network as a graph of its linear maps, ReLUs and residual sums: back-substitution bounds and the telescoped
Jacobian bound (float64, every rounding folded outward).

The forward pass of :mod:`theory.local.propagate` records every layer as a node of a :class:`Graph` (``input``,
``lin``, ``relu``, ``add``, ``smooth``: an attention or LayerNorm layer with its interval Jacobian over the region;
``opaque``: a smooth layer bounded only by a constant). Back-substitution is used only below the first smooth
node, the telescoped bound wherever no node is opaque. Each node keeps a bound ``mag`` of :math:`|y|` over the
region (the zonotope's hull), used only to bound roundings.

**Back-substitution** (:func:`relu_bounds`, DeepPoly / CROWN, Singh et al. POPL 2019, Zhang et al. NeurIPS 2018).
A row :math:`\lambda` over the pre-activation :math:`z_p` of a ReLU is pulled back to the input: through a linear
node :math:`\lambda\cdot(Wz+b)=(W^\top\lambda)\cdot z+\lambda\cdot b` exactly; through a ReLU with pre-activation
bounds [l, u] by its linear relaxation, :math:`\mathrm{relu}(z)\le s z+t` (the chord, :math:`s=u/(u-l)`,
:math:`t\ge\max(-sl,(1-s)u)`, valid on [l, u] since relu - s z is convex) where :math:`\lambda_u>0`, and
:math:`\mathrm{relu}(z)\ge a z` (:math:`a\in\{0,1\}`, the larger of the two areas) where :math:`\lambda_u<0`;
stable ReLUs are exact; a residual sum passes :math:`\lambda` to both summands. At the input
:math:`\lambda\cdot x\le\lambda\cdot m+|\lambda|\cdot r` on the region's box :math:`m\pm r`. Rounding: each float
operation on :math:`\lambda` errs by at most a known multiple of :math:`|\lambda|` (:math:`\gamma_k|W|^\top|\lambda|`
for a pull-back, u for a product or a sum), so the bound moves by at most :math:`|\lambda_n|\cdot w_n` with the
per-node weight :math:`w_n` (e.g. :math:`\gamma_k|W|\,\mathrm{mag}_{in}` for a linear node: :math:`(|W|^\top
|\lambda|)\cdot\mathrm{mag}=|\lambda|\cdot(|W|\mathrm{mag})`), computed once per node and added, rounded up.
The result is an upper bound of :math:`\lambda\cdot z_p` over the region for every row (lower bounds: the rows
negated). :mod:`.propagate` intersects these with the zonotope's hull (both enclose :math:`z_p`).

**Telescoped Jacobian bound** (:func:`telescoped_bound`, derived here). Stated for ReLUs; a smooth node k is one
more factor :math:`\bar J_k+\Delta_k` with :math:`|\Delta_k|\le\rho_k` entrywise, written
:math:`\Delta_k=\|\rho_k\|_2S_k`, :math:`\|S_k\|_2\le1` (spectral norms are monotone on non-negative
matrices), with its tap :math:`A_k=\|\rho_k\|_2X_k`, :math:`P_k` the midpoint Jacobian of its whole input and
the entrywise alternative :math:`|X_k|\rho_k|P_k|` (the block-diagonal
:math:`\mathrm{diag}(S_k)` of rectangular blocks still has norm <= 1). Number the ReLUs in forward order, let
:math:`D_k=\bar D_k+\Delta_k` be the diagonal Clarke derivative of ReLU k (:math:`\bar D_k` the midpoint,
:math:`|\Delta_k|\le R_k`, non-zero only on the unstable set :math:`U_k`). The Jacobian of any quantity y (the
logits, or the pre-activations of an unstable set) with respect to the input is multilinear in the
:math:`D_k`, each ReLU being one node on every path, so replacing :math:`D_k` by :math:`\bar D_k` one ReLU at a time
from the top gives exactly

.. math:: J_y(D)=P_y+\sum_kX_k\,\Delta_k\,J_k(D_{<k}),\qquad J_k=P_k+\mathrm{Dev}_k,

with :math:`X_k=\partial y/\partial\mathrm{relu}_k` at the midpoints of the ReLUs above k, :math:`P` the
midpoint Jacobians to the input, :math:`J_k` the Jacobian of ReLU k's unstable pre-activations (masks below k
uncertain). With :math:`A_k=X_k[:,U_k]R_k` and :math:`\Delta_k=R_kS_k`, :math:`\|S_k\|\le1`:

.. math:: \sup\|J_y-P_y\|_2\le\min(\|[A_k]_k\|\,\|[P_k]_k\|,\ \|\textstyle\sum_k|A_k||P_k|\|)
   +\min(\textstyle\sum_k\|A_k\|\,\mathrm{dev}_k,\ \|[A_k]_k\|\sqrt{\sum_k\mathrm{dev}_k^2})

(:math:`[A_k]_k` side by side, :math:`[P_k]_k` stacked: :math:`\sum_kA_kS_kP_k=[A_k]\,\mathrm{diag}(S_k)\,[P_k]`;
the stacked :math:`[S_k\mathrm{Dev}_k]` has norm at most :math:`\sqrt{\sum\mathrm{dev}_k^2}`), where
:math:`\mathrm{dev}_k` is the same bound for y = ReLU k's unstable pre-activations, computed first (bottom-up). So
the first-order term keeps the signs of the exact midpoint maps, and the higher orders are bounded by norms of
exact midpoint maps rather than by entrywise absolute values of later weights. Every matrix is computed in float
with an entrywise error bound (as :class:`theory.local.propagate._Back`'s remainder), and every norm is an upper
bound of the exact one: :math:`\|X\|\le\|\tilde X\|+\|E\|_F`, spectral norms rounded up
(:func:`theory.numerics.round_up`), Gram matrices with their rounding :math:`\gamma_k\|X\|_F^2` added.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..numerics import UNIT_ROUNDOFF as U
from ..numerics import round_up, spectral_norm
from .interval import TINY, Box, gamma, up

__all__ = ["Graph", "relu_bounds", "telescoped_bound", "norm_up"]

_ROWS = 256  # target neurons per back-substitution batch (two rows each)


@dataclass
class _Node:
    kind: str
    ins: tuple
    shape: tuple
    mag: np.ndarray                 # |value| <= mag over the region (output of the node)
    w: np.ndarray | None = None     # rounding weight of a pull-back through the node (see the module docstring)
    lin: object = None
    relu_index: int = -1
    lo: np.ndarray | None = None    # the pre-activation bounds the relaxation was built on
    hi: np.ndarray | None = None
    slope_up: np.ndarray | None = None
    icpt_up: np.ndarray | None = None
    slope_lo: np.ndarray | None = None
    deriv: Box | None = None
    jac: object = None              # a smooth node's interval Jacobian (theory.local.propagate._SmoothJac)


@dataclass
class Graph:
    """The nodes in creation (topological) order. ``pure`` (back-substitution applies) is False once a smooth or
    opaque node is added; ``telescopable`` (the telescoped bound applies) only once an opaque one is.
    ``uncertain``: the ReLU and smooth nodes (the factors of the Jacobian that vary over the region), in order."""

    nodes: list = field(default_factory=list)
    relus: list = field(default_factory=list)
    uncertain: list = field(default_factory=list)
    pure: bool = True
    telescopable: bool = True
    x_mid: np.ndarray | None = None
    x_rad: np.ndarray | None = None

    # ------------------------------------------------------------------ construction
    def input(self, lo: np.ndarray, hi: np.ndarray) -> int:
        b = Box.from_bounds(lo, hi)
        self.x_mid, self.x_rad = b.mid, b.rad
        self.nodes.append(_Node("input", (), tuple(lo.shape), b.mag))
        return 0

    def lin(self, src: int, lin, mag_out: np.ndarray) -> int:
        m_in = self.nodes[src].mag
        n = int(np.prod(lin.out_shape))
        w = gamma(lin.fan_out + 1) * lin.fwd_abs(m_in[None])[0]
        if lin.fwd_rad is not None:
            w = w + lin.fwd_rad(m_in[None])[0]
        if lin.bias is not None:
            w = w + lin.bias.rad + gamma(n + 2) * np.abs(lin.bias.mid)
        w = up(w + 2 * U * mag_out, lin.fan_in + 16)
        self.nodes.append(_Node("lin", (src,), tuple(lin.out_shape), np.asarray(mag_out), w, lin=lin))
        return len(self.nodes) - 1

    def relu(self, src: int, lo: np.ndarray, hi: np.ndarray, deriv: Box, mag_out: np.ndarray) -> int:
        """A ReLU whose pre-activation lies in [lo, hi] on the region (floats, lo <= hi)."""
        pos, neg = lo >= 0, hi <= 0
        unst = ~pos & ~neg
        with np.errstate(divide="ignore", invalid="ignore"):
            s = np.where(unst, hi / np.where(unst, hi - lo, 1.0), np.where(pos, 1.0, 0.0))
        s = np.clip(np.nan_to_num(s, nan=1.0), 0.0, 1.0)
        t = np.maximum(-s * lo, (1.0 - s) * hi) * (1 + 4 * U)
        t = np.where(unst, np.nextafter(np.maximum(t, 0.0), np.inf) + TINY, 0.0)
        a = np.where(unst, (hi > -lo).astype(float), np.where(pos, 1.0, 0.0))
        m_in = np.maximum(np.abs(lo), np.abs(hi))
        n = lo.size
        w = up(U * m_in + gamma(n + 2) * t + 2 * U * mag_out, 8)
        idx = len(self.relus)
        self.nodes.append(_Node("relu", (src,), tuple(lo.shape), np.asarray(mag_out), w, relu_index=idx, lo=lo,
                                hi=hi, slope_up=s, icpt_up=t, slope_lo=a, deriv=deriv))
        self.relus.append(len(self.nodes) - 1)
        self.uncertain.append(len(self.nodes) - 1)
        return len(self.nodes) - 1

    def smooth(self, src: int, jac, mag_out: np.ndarray) -> int:
        """A smooth layer (attention, LayerNorm) whose Jacobian lies in the interval matrix ``jac`` on the region."""
        self.pure = False
        self.nodes.append(_Node("smooth", (src,), tuple(jac.out_shape), np.asarray(mag_out), jac=jac))
        self.uncertain.append(len(self.nodes) - 1)
        return len(self.nodes) - 1

    def add(self, a: int, b: int, mag_out: np.ndarray) -> int:
        self.nodes.append(_Node("add", (a, b), self.nodes[a].shape, np.asarray(mag_out), up(2 * U * mag_out, 2)))
        return len(self.nodes) - 1

    def opaque(self, src: int, shape, mag_out: np.ndarray) -> int:
        self.pure = self.telescopable = False
        self.nodes.append(_Node("opaque", (src,), tuple(shape), np.asarray(mag_out)))
        return len(self.nodes) - 1


# ============================================================================ back-substitution
def _pull(g: Graph, p: int, rows: np.ndarray, intercepts: bool = True) -> np.ndarray:
    """Upper bounds of ``rows[i] . z_p`` over the region (rows: (R, *shape of node p), exact reals).
    ``intercepts=False`` drops the ReLU chords' intercepts: a deliberate slip (unsound) for the tests."""
    R = rows.shape[0]
    lam = {p: rows}
    const = np.zeros(R)
    cabs = np.zeros(R)
    err = np.zeros(R)
    steps = 0
    for n in range(p, -1, -1):
        L = lam.pop(n, None)
        if L is None:
            continue
        node = g.nodes[n]
        steps += 1
        if node.kind == "input":
            Lf = L.reshape(R, -1)
            aL = np.abs(Lf)
            a = Lf @ g.x_mid.ravel()
            b = aL @ g.x_rad.ravel()
            k = Lf.shape[1]
            err += gamma(k + 2) * (aL @ np.abs(g.x_mid).ravel() + b)
            val = a + b + const
            tot = up(err + gamma(steps + 4) * (cabs + np.abs(a) + b) + 4 * U * np.abs(val), k + 8)
            return np.nextafter(val + tot, np.inf)
        if node.kind in ("opaque", "smooth"):  # pragma: no cover - callers only pull back on pure graphs
            raise ValueError(f"back-substitution through a {node.kind} node")
        aL = np.abs(L).reshape(R, -1)
        err += up(aL @ node.w.ravel(), aL.shape[1] + 2)
        if node.kind == "lin":
            lin = node.lin
            if lin.bias is not None:
                c = L.reshape(R, -1) @ lin.bias.mid.ravel()
                const += c
                cabs += np.abs(c)
            nxt = lin.bwd(L)
        elif node.kind == "relu":
            pos = L > 0
            t = node.icpt_up.ravel() if intercepts else np.zeros(node.icpt_up.size)
            c = np.where(pos, L, 0.0).reshape(R, -1) @ t
            const += c
            cabs += np.abs(c)
            nxt = L * np.where(pos, node.slope_up, node.slope_lo)
        else:  # add
            for i in node.ins:
                lam[i] = L if i not in lam else lam[i] + L
            continue
        i = node.ins[0]
        lam[i] = nxt if i not in lam else lam[i] + nxt
    raise ValueError("back-substitution did not reach the input")  # pragma: no cover


def relu_bounds(g: Graph, p: int, cand: np.ndarray, intercepts: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper bounds of the entries ``cand`` (flat indices) of node ``p`` over the region
    (``intercepts=False``: the planted slip of :func:`_pull`)."""
    shape = g.nodes[p].shape
    n = int(np.prod(shape))
    lo, hi = np.empty(cand.size), np.empty(cand.size)
    for i0 in range(0, cand.size, _ROWS):
        ci = cand[i0:i0 + _ROWS]
        k = ci.size
        rows = np.zeros((2 * k, n))
        rows[np.arange(k), ci] = 1.0
        rows[k + np.arange(k), ci] = -1.0
        ub = _pull(g, p, rows.reshape(2 * k, *shape), intercepts)
        hi[i0:i0 + k], lo[i0:i0 + k] = ub[:k], -ub[k:]
    return lo, hi


# ============================================================================ the telescoped Jacobian bound
def norm_up(a: np.ndarray) -> float:
    """An upper bound of the spectral norm of the float matrix ``a`` (``inf`` if an entry is not finite)."""
    a = np.asarray(a)
    if a.size == 0:
        return 0.0
    if not np.isfinite(a).all():
        return math.inf
    a = a.reshape(a.shape[0], -1)
    k = min(a.shape)
    if k <= 256:
        return round_up(spectral_norm(a))
    g = a @ a.T if a.shape[0] <= a.shape[1] else a.T @ a
    lam = float(np.linalg.eigvalsh(g)[-1])
    fro2 = float(up(np.sum(a * a), a.size + 2))
    return round_up(math.sqrt(max(lam, 0.0) + gamma(max(a.shape) + 2) * fro2 + 1e-300))


def _fro_up(e: np.ndarray) -> float:
    """An upper bound of the Frobenius (>= spectral) norm of a non-negative error matrix."""
    if e.size == 0:
        return 0.0
    return round_up(math.sqrt(float(up(np.sum(e * e), e.size + 2))))


def _mid_back(g: Graph, p: int, rows: np.ndarray, base: int = 0):
    r"""Pull ``rows`` back from node ``p`` with the ReLUs at their midpoint derivatives and the smooth layers at
    their midpoint Jacobians: returns the taps ``{node id: (A, EA, W)}`` and ``(P, EP)`` at node ``base`` (the
    input, or a cut node every path from ``p`` to the input passes through): the midpoint Jacobian of the rows
    with respect to it and its error. A ReLU's tap: ``A = M[:, U_k] R_k`` (M the rows pulled back to ReLU k's
    output, ``R_k`` the derivative radii on its unstable set), ``EA`` its entrywise error, ``W = |A| + EA``. A smooth
    layer's (Jacobian :math:`\bar J_k+\Delta_k`, :math:`|\Delta_k|\le\rho`): ``A = ||rho||_2 M`` (then
    :math:`\Delta_k=\|\rho\|_2S_k`, :math:`\|S_k\|_2\le1`), ``W = (|M| + E) rho`` (the entrywise bound
    :math:`|M\Delta_k|\le W`)."""
    R = rows.shape[0]
    st = {p: (rows, np.zeros_like(rows))}
    taps = {}
    for n in range(p, base - 1, -1):
        cur = st.pop(n, None)
        if cur is None:
            continue
        M, E = cur
        node = g.nodes[n]
        if n == base:
            if st:  # pragma: no cover - base is not a cut of p
                raise ValueError("the pull-back passes beside the base node")
            return taps, (M.reshape(R, -1), E.reshape(R, -1))
        if node.kind == "lin":
            lin = node.lin
            am = np.abs(M)
            E2 = lin.bwd_abs(E + gamma(lin.fan_out + 1) * am)
            if lin.bwd_rad is not None:
                E2 = E2 + lin.bwd_rad(am + E)
            nxt = (lin.bwd(M), up(E2, lin.fan_out + 12))
        elif node.kind == "smooth":
            jac = node.jac
            jm, jr = jac.box.mid, jac.box.rad
            fan = jm.shape[-2]
            am = np.abs(M)
            if (jr > 0).any():
                rho = (norm_up(jr) if jac.kind == "dense" else max(norm_up(b) for b in jr))
                A = rho * M.reshape(R, -1)
                EA = up(rho * E.reshape(R, -1) + U * np.abs(A), 2)
                W = up(jac.mat_back(jr, am + E).reshape(R, -1), fan + 4)
                taps[n] = (A, EA, W)
            E2 = jac.mat_back(np.abs(jm), E + gamma(fan + 1) * am)
            nxt = (jac.mat_back(jm, M), up(E2, fan + 12))
        elif node.kind == "relu":
            dm, dr = node.deriv.mid, node.deriv.rad
            u = np.flatnonzero(dr.ravel() > 0)
            if u.size:
                drs = dr.ravel()[u]
                A = M.reshape(R, -1)[:, u] * drs
                EA = up(E.reshape(R, -1)[:, u] * drs + U * np.abs(A), 2)
                taps[n] = (A, EA, up(np.abs(A) + EA, 1))
            M2 = M * dm
            nxt = (M2, up(E * np.abs(dm) + U * np.abs(M2), 2))
        else:  # add: both summands
            for i in node.ins:
                if i in st:
                    Ms = st[i][0] + M
                    st[i] = (Ms, up(st[i][1] + E + U * np.abs(Ms), 2))
                else:
                    st[i] = (M, E)
            continue
        i = node.ins[0]
        if i in st:
            Ms = st[i][0] + nxt[0]
            st[i] = (Ms, up(st[i][1] + nxt[1] + U * np.abs(Ms), 2))
        else:
            st[i] = nxt
    raise ValueError("the backward pass did not reach the input")  # pragma: no cover


@dataclass
class _Level:
    P: np.ndarray        # midpoint Jacobian of the unstable pre-activations (|U_k|, n_in)
    EP: np.ndarray       # its entrywise error
    dev: float           # sup ||J_k(D) - P_k||_2 over the Clarke product set (upper bound)
    gram: np.ndarray | None   # P^T P + error term (n_in small) or None


def _stage(taps: dict, levels: dict, n_in: int) -> tuple[float, float]:
    """(first-order bound, higher-order bound) of the telescoped sum over the taps."""
    if any(k not in levels for k in taps):  # pragma: no cover - every tap's level is computed before it is used
        return math.inf, math.inf
    ks = sorted(taps)
    if not ks:
        return 0.0, 0.0
    A = np.concatenate([taps[k][0] for k in ks], axis=1)
    EA = np.concatenate([taps[k][1] for k in ks], axis=1)
    nA = round_up(norm_up(A) + _fro_up(EA))
    if all(levels[k].gram is not None for k in ks):
        gsum = sum(levels[k].gram for k in ks)
        nP = round_up(math.sqrt(max(float(np.linalg.eigvalsh(gsum)[-1]), 0.0) * (1 + 1e-9) + 1e-300))
    else:
        P = np.concatenate([levels[k].P for k in ks])
        EP = np.concatenate([levels[k].EP for k in ks])
        nP = round_up(norm_up(P) + _fro_up(EP))
    ent = None
    for k in ks:
        a = taps[k][2]
        b = np.abs(levels[k].P) + levels[k].EP
        t = a @ b
        ent = t if ent is None else ent + t
    ent = up(ent, A.shape[1] + 4)
    first = min(round_up(nA * nP), norm_up(ent))
    devs = [levels[k].dev for k in ks]
    if not any(devs):
        return first, 0.0
    per = 0.0
    for k, d in zip(ks, devs):
        if d:
            per += round_up(norm_up(taps[k][0]) + _fro_up(taps[k][1])) * d
    cs = nA * math.sqrt(round_up(sum(d * d for d in devs)))
    return first, round_up(min(per, cs) * (1 + 8 * len(ks) * U))


def _gram(P: np.ndarray, EP: np.ndarray) -> np.ndarray | None:
    """``P^T P`` widened so that its largest eigenvalue bounds ``||P_exact||^2`` (for small inputs)."""
    n_in = P.shape[1]
    if n_in > 1024:
        return None
    g = P.T @ P
    # ||P + E||^2 <= (||P|| + ||E||_F)^2 = ||P||^2 + 2||P|| ||E||_F + ||E||_F^2; fold the Gram's own rounding too
    fe = _fro_up(EP)
    fp = _fro_up(np.abs(P))
    extra = round_up(2 * fp * fe + fe * fe + gamma(P.shape[0] + 2) * fp * fp)
    return g + extra * np.eye(n_in)


def _telescope(g: Graph, out: int, base: int, higher: bool) -> dict:
    """The telescoped bound of the Jacobian of node ``out`` with respect to node ``base`` (a cut)."""
    n_in = int(np.prod(g.nodes[base].shape))
    levels: dict = {}
    for nid in g.uncertain:
        if not base < nid <= out:
            continue
        node = g.nodes[nid]
        p = node.ins[0]
        shape = g.nodes[p].shape
        if node.kind == "relu":   # the unstable pre-activations
            u = np.flatnonzero(node.deriv.rad.ravel() > 0)
        else:                     # a smooth layer: its whole input
            u = np.arange(int(np.prod(shape))) if (node.jac.box.rad > 0).any() else np.zeros(0, dtype=np.int64)
        if not u.size:
            continue
        rows = np.zeros((u.size, int(np.prod(shape))))
        rows[np.arange(u.size), u] = 1.0
        taps, (P, EP) = _mid_back(g, p, rows.reshape(u.size, *shape), base)
        first, hi = _stage(taps, levels, n_in)
        dev = round_up(first + (hi if higher else 0.0))
        if not math.isfinite(dev):
            return {"value": math.inf}
        levels[nid] = _Level(P, EP, dev, _gram(P, EP))
    shape = g.nodes[out].shape
    n = int(np.prod(shape))
    taps, (P, EP) = _mid_back(g, out, np.eye(n).reshape(n, *shape), base)
    first, hi = _stage(taps, levels, n_in)
    hi = hi if higher else 0.0
    mid = round_up(norm_up(P) + _fro_up(EP))
    value = round_up(mid + first + hi)
    return {"value": value if math.isfinite(value) else math.inf, "mid": mid, "first_order": first,
            "higher_order": hi}


def telescoped_bound(g: Graph, out: int, higher: bool = True) -> dict:
    """The telescoped bound of ``sup ||J_f(D)||_2`` over the Clarke product set (module docstring): ``{"value",
    "mid", "first_order", "higher_order"}``; ``value`` is ``inf`` when the graph is not pure. ``higher=False``
    leaves the higher-order terms out: a deliberate slip (not a bound) for the tests."""
    if not g.telescopable:
        return {"value": math.inf}
    return _telescope(g, out, 0, higher)
