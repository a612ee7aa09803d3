r"""Local LipSDP / ECLipsE bounds on an input region: slopes restricted by interval bounds on the pre-activations.

On a region :math:`\mathcal X` (an :math:`\ell_\infty` box or an :math:`\ell_2` ball around a point), every
pre-activation :math:`z_i(x)` of hidden neuron :math:`i` stays in an interval :math:`[l_i,u_i]` computed by interval
bound propagation (IBP, with the biases), and for :math:`x,y\in\mathcal X` the secant slope
:math:`(\phi(z_i(x))-\phi(z_i(y)))/(z_i(x)-z_i(y))` lies in :math:`[\min_{[l_i,u_i]}\phi',\max_{[l_i,u_i]}\phi']`
(mean value theorem). These per-neuron slopes replace the global :math:`[\alpha,\beta]` in the LipSDP LMI, whose
derivation only uses the incremental quadratic constraint on pairs of points of :math:`\mathcal X`, so its
certificate bounds :math:`\mathrm{Lip}_2(f|_{\mathcal X})=\sup_{x\ne y\in\mathcal X}\|f(x)-f(y)\|/\|x-y\|`. For ReLU:
an inactive neuron (:math:`u_i\le0`) has slope :math:`[0,0]` and is removed (its output is constant on
:math:`\mathcal X`), a stable active one (:math:`l_i\ge0`) has :math:`[1,1]` (linear), an unstable one
:math:`[0,1]`. This is the local information of ECLipsE-Gen-Local (Xu, Sivaranjani, arXiv 2510.05261; their
intervals come from Lipschitz propagation, here from IBP, as the issue asks) and of local LipSDP (Hashemi, Ruths,
Fazlyab, L4DC 2021).

Soundness in floating point: the region is :math:`\{x:|x_j-c_j|\le r\}` or :math:`\{x:\|x-c\|_2\le r\}` for the
float64 ``center`` and ``radius`` as real numbers. IBP in center-radius form :math:`z=Wc_h+b\pm|W|r_h` widens
every interval by :math:`\gamma_{n+2}(|W||c_h|+|b|)` and :math:`\gamma_{n+1}|W|r_h` (Higham's dot-product bound)
and then by one ulp outward; the ball's first layer uses :math:`r\|W_{i,:}\|_2` inflated by :math:`\gamma_{n+2}`.
Activation images of monotone activations are widened by a few ulps (relu and leaky ReLU exactly up to one
product), GELU/SiLU images by their Lipschitz constant around the midpoint. Derivative bounds of tanh/sigmoid
(unimodal :math:`\phi'` with its maximum at 0) are widened by :math:`10^{-14}` absolute and clipped to the global
slopes; GELU/SiLU keep their global slopes. An interval narrower than :math:`\kappa\max(|\alpha_i|,|\beta_i|)`
(a point interval :math:`[s,s]`, :math:`s\ne0`, or :math:`\tanh'` on a tiny pre-activation interval) is widened
to that width (:math:`\kappa` = :data:`~theory.lipsdp_chordal.FIXED_SLOPE_WIDTH`) inside the global interval, as
in :mod:`theory.lipsdp_chordal` (still sound; it keeps the multipliers, of order one over the width, in the range
where the interior-point method reaches the optimum).

Ordering: if the local slope intervals are non-degenerate subsets of the global ones, the S-lemma gives
:math:`\mu_i\ge0` with :math:`q_{[\alpha,\beta]}\ge\mu_iq_{[\alpha_i,\beta_i]}` for every increment, so every
global certificate :math:`(\rho,\lambda)` yields a local one :math:`(\rho,\mu\lambda)`: the local LipSDP optimum is
at most the global one (removing an inactive neuron keeps this when :math:`\alpha\beta=0`, e.g. ReLU).
The LMI is then certified by
:func:`theory.lipsdp_chordal.certify_chain` like every other bound of this package.

Cost: the multipliers are found on the chain with its first weight reduced to :math:`U\Sigma` (exact, as in
:func:`theory.lipsdp.reduce_network`; the intervals are computed before, on the original weights and region), and
certified on it and then once more on the original chain (:func:`theory.lipsdp_chordal.certify_with_original`).
On the 784-50-10 MNIST net this took one local bound from 50-90 s (an LMI of size 784 + N in every Newton step) to
about 2 s on 2 loaded cores.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .lipsdp import FeedForward, LipSDPError, LipSDPResult, naive_product_bound
from .lipsdp_chordal import FIXED_SLOPE_WIDTH, Chain, StructuredProblem, certify_with_original, solve_structured
from .numerics import UNIT_ROUNDOFF, round_up
from .registry import Mutant, register
from .validate import InputError, as_real_array, choice, positive_float

__all__ = ["Region", "LocalNetwork", "interval_bounds", "local_slopes", "local_chain", "lipsdp_local",
           "eclipse_fast_local", "local_unstable_as_inactive", "REGION_KINDS"]

REGION_KINDS = ("linf", "l2")
_U = UNIT_ROUNDOFF


def _gamma(k: int) -> float:
    return k * _U / (1.0 - k * _U)


@dataclass(frozen=True)
class Region:
    r"""An input region: ``kind="linf"`` the box :math:`\|x-c\|_\infty\le r`, ``"l2"`` the ball :math:`\|x-c\|_2\le r`."""

    kind: str
    center: np.ndarray
    radius: float

    @classmethod
    def create(cls, kind: str, center, radius, dim: int | None = None) -> "Region":
        """Validated region (``dim``: the expected input dimension)."""
        if not isinstance(kind, str):
            raise InputError(f"kind: expected one of {REGION_KINDS}, got {kind!r}")
        choice("kind", kind, REGION_KINDS)
        c = as_real_array("center", center, ndim=1)
        if dim is not None and c.shape[0] != dim:
            raise InputError(f"center: expected {dim} coordinates (the network's input width), got {c.shape[0]}")
        r = positive_float("radius", radius)
        return cls(kind, c, r)

    def summary(self) -> dict:
        return {"kind": self.kind, "radius": self.radius, "dim": int(self.center.shape[0]),
                "center_norm": float(np.linalg.norm(self.center))}


@dataclass(frozen=True)
class LocalNetwork:
    """A feed-forward network with its biases, restricted to an input :class:`Region` (the local bounds' input)."""

    net: FeedForward
    biases: tuple
    region: Region

    @classmethod
    def create(cls, net: FeedForward, region: Region, biases=None) -> "LocalNetwork":
        if not isinstance(net, FeedForward):
            raise InputError(f"net: expected FeedForward (use FeedForward.from_weights), got {type(net).__name__}")
        if net.residual:
            raise InputError("net: local bounds need a feed-forward chain, got a residual block")
        if not isinstance(region, Region):
            raise InputError(f"region: expected a Region (Region.create), got {type(region).__name__}")
        n0 = net.weights[0].shape[1]
        if region.center.shape[0] != n0:
            raise InputError(f"center: expected {n0} coordinates (the network's input width), got "
                             f"{region.center.shape[0]}")
        if biases is None:
            bs = tuple(np.zeros(w.shape[0]) for w in net.weights)
        else:
            if len(biases) != len(net.weights):
                raise InputError(f"biases: expected {len(net.weights)} vectors (one per weight), got {len(biases)}")
            bs = []
            for i, (b, w) in enumerate(zip(biases, net.weights)):
                arr = as_real_array(f"biases[{i}]", b, ndim=1)
                if arr.shape != (w.shape[0],):
                    raise InputError(f"biases[{i}]: expected shape ({w.shape[0]},), got {arr.shape}")
                bs.append(arr)
            bs = tuple(bs)
        return cls(net, bs, region)

    def summary(self) -> dict:
        return {**self.net.summary(), "region": self.region.summary()}

    def describe(self) -> str:
        r = self.region
        return f"{self.net.describe()} on the {r.kind} region of radius {r.radius:g}"


def _down(x):
    return np.nextafter(x, -np.inf)


def _up(x):
    return np.nextafter(x, np.inf)


def _affine_box(w: np.ndarray, b: np.ndarray, c: np.ndarray, r: np.ndarray):
    """Sound enclosure of {W h + b : |h - c| <= r} (center-radius IBP with rounding allowances)."""
    n = w.shape[1]
    aw = np.abs(w)
    mid = w @ c + b
    rad = aw @ r
    err = _gamma(n + 2) * (aw @ np.abs(c) + np.abs(b)) + _gamma(n + 1) * rad
    width = (rad + err) * (1 + 4 * _U) + 1e-300
    return _down(mid - width), _up(mid + width)


def _first_layer(local: LocalNetwork):
    w, b = local.net.weights[0], local.biases[0]
    c, r = local.region.center, local.region.radius
    if local.region.kind == "linf":
        return _affine_box(w, b, c, np.full(c.shape, r))
    n = w.shape[1]
    mid = w @ c + b
    rn = np.sqrt(np.sum(w * w, axis=1)) * (1 + _gamma(n + 2)) * r
    err = _gamma(n + 2) * (np.abs(w) @ np.abs(c) + np.abs(b))
    width = (rn + err) * (1 + 4 * _U) + 1e-300
    return _down(mid - width), _up(mid + width)


def _leaky_slope(net: FeedForward) -> float:
    return net.alpha if net.beta == 1.0 else net.beta


def _activation_image(name: str, net: FeedForward, lo: np.ndarray, hi: np.ndarray):
    """Sound enclosure of phi([lo, hi]) (elementwise)."""
    if name == "relu":
        return np.maximum(lo, 0.0), np.maximum(hi, 0.0)
    if name == "identity":
        return lo, hi
    if name == "leaky_relu":
        s = _leaky_slope(net)
        f = lambda x: np.where(x >= 0, x, s * x)  # noqa: E731
        a, b = f(lo), f(hi)
        if s < 0:  # non-monotone: the image of an interval containing 0 includes 0
            a, b = np.minimum(a, b), np.maximum(a, b)
            a = np.where((lo < 0) & (hi > 0), np.minimum(a, 0.0), a)
        pad = 2 * _U * np.maximum(np.abs(a), np.abs(b)) + 1e-300
        return a - pad, b + pad
    if name in ("tanh", "sigmoid"):
        from scipy.special import expit

        f = np.tanh if name == "tanh" else expit
        a, b = f(lo), f(hi)
        pad = 8 * _U * np.maximum(np.abs(a), np.abs(b)) + 1e-300
        return a - pad, b + pad
    # gelu, silu, custom: phi(mid) +- L_phi * half-width, phi(mid) computed with a generous allowance
    mid, half = (lo + hi) / 2, (hi - lo) / 2 * (1 + 4 * _U)
    lip = net.activation_lipschitz
    if name == "gelu":
        from scipy.special import ndtr

        fm = mid * ndtr(mid)
    elif name == "silu":
        from scipy.special import expit

        fm = mid * expit(mid)
    else:
        raise InputError(f"net: local bounds need a named activation to propagate intervals, got {name!r}")
    pad = 1e-13 * (np.abs(fm) + 1.0)
    return fm - lip * half - pad, fm + lip * half + pad


def interval_bounds(local: LocalNetwork, first=None) -> list[tuple[np.ndarray, np.ndarray]]:
    """Sound interval bounds ``(lo, hi)`` on the pre-activations of every hidden layer over the region
    (``first``: replaces the first layer's intervals, for the mutants)."""
    net = local.net
    bounds = [_first_layer(local) if first is None else first]
    for k in range(1, len(net.weights) - 1):
        lo, hi = _activation_image(net.activation, net, *bounds[-1])
        c = (lo + hi) / 2
        r = np.maximum(hi - c, c - lo) * (1 + 2 * _U) + 1e-300
        bounds.append(_affine_box(net.weights[k], local.biases[k], c, r))
    return bounds


def _derivative_range(name: str, lo: np.ndarray, hi: np.ndarray, a: float, b: float):
    if name in ("tanh", "sigmoid"):
        from scipy.special import expit

        if name == "tanh":
            d = lambda x: 1.0 - np.tanh(x) ** 2  # noqa: E731
        else:
            d = lambda x: expit(x) * (1.0 - expit(x))  # noqa: E731
        dl, dh = d(lo), d(hi)
        low = np.minimum(dl, dh) - 1e-14
        top = np.where((lo <= 0) & (hi >= 0), b, np.maximum(dl, dh) + 1e-14)
        return np.clip(low, a, b), np.clip(top, a, b)
    n = lo.shape[0]
    return np.full(n, a), np.full(n, b)


def local_slopes(local: LocalNetwork, bounds=None) -> tuple[np.ndarray, np.ndarray]:
    """Per-neuron slope intervals ``(alpha, beta)`` of shape ``(N,)`` on the region (module docstring)."""
    net = local.net
    bounds = interval_bounds(local) if bounds is None else bounds
    lo = np.concatenate([b[0] for b in bounds])
    hi = np.concatenate([b[1] for b in bounds])
    name = net.activation
    if name == "relu":
        alpha = np.where(lo >= 0, 1.0, 0.0)
        beta = np.where(hi <= 0, 0.0, 1.0)
    elif name == "leaky_relu":
        s = _leaky_slope(net)
        alpha = np.where(lo >= 0, 1.0, np.where(hi <= 0, s, min(s, 1.0)))
        beta = np.where(lo >= 0, 1.0, np.where(hi <= 0, s, max(s, 1.0)))
    elif name == "identity":
        alpha = beta = np.ones(lo.shape[0])
    else:
        alpha, beta = _derivative_range(name, lo, hi, net.alpha, net.beta)
    return alpha, beta


def local_chain(local: LocalNetwork, slope_rule=None, zero_lower: bool = False) -> tuple[Chain | None, dict]:
    r"""The chain of the local LMI: per-neuron slopes, constant neurons removed, point slopes widened.
    ``None`` when a whole hidden layer is constant on the region (then f is constant there). ``slope_rule``
    replaces :func:`local_slopes` (the planted bound and the mutants use it). ``zero_lower``: every
    :math:`\alpha_i>0` lowered to 0 (after removing the constant neurons), the slopes ECLipsE-Gen-Local's closed
    form ("CF") uses: :math:`[0,\beta_i]\supseteq[\alpha_i,\beta_i]`, and the closed-form step is tuned for
    :math:`\alpha\beta=0` (with :math:`\alpha_i=\beta_i` it gives bounds far above the global ones)."""
    bounds = interval_bounds(local)
    alpha, beta = (slope_rule or local_slopes)(local, bounds)
    chain = Chain.from_net(local.net, alpha, beta)
    stable = int(np.sum(alpha == beta))
    inactive = int(np.sum((alpha == 0) & (beta == 0)))
    info = {"neurons": int(alpha.size), "inactive": inactive, "stable": stable, "unstable": int(alpha.size - stable)}
    pruned = chain.pruned()
    if pruned is None:
        return None, info
    if zero_lower:
        pruned = Chain(pruned.weights, np.where(pruned.alpha > 0, 0.0, pruned.alpha), pruned.beta)
    a, b = pruned.alpha.copy(), pruned.beta.copy()
    # every interval narrower than kappa*max(|a|, |b|) (a point interval [s, s], or tanh'/sigmoid' on a
    # pre-activation interval of width 1e-4: [1 - 1e-8, 1]) is widened to that width inside the global
    # [alpha, beta] (so that the local slopes stay a subset of the global ones, which is what orders the local
    # LipSDP optimum below the global one): an interval of width w needs multipliers of order 1/w, and below
    # kappa the interior-point method stalls short of the optimum (the certificate then backs off by up to 1% or
    # fails outright; found by test_lipsdp_local on tanh nets with first-layer weights of 1e-3)
    ga, gb = local.net.alpha, local.net.beta
    step = FIXED_SLOPE_WIDTH * np.maximum(np.maximum(np.abs(a), np.abs(b)), 1e-3 * max(gb - ga, 1e-300))
    narrow = (b - a) < step
    if np.any(narrow):
        lo_new = np.maximum(b - step, ga)  # widen downwards first, then upwards for what the global floor stops
        hi_new = np.maximum(b, lo_new + step)
        if gb > ga:
            hi_new = np.minimum(hi_new, gb)
        a = np.where(narrow, np.minimum(a, lo_new), a)
        b = np.where(narrow, np.maximum(b, hi_new), b)
        pruned = Chain(pruned.weights, a, b)
    return pruned, info


def _result(cert: float, solver: str, status: str, info: dict, local: LocalNetwork, method: str,
            certified=None) -> LipSDPResult:
    size = sum(local.net.hidden) + local.net.weights[0].shape[1]
    if certified is None:
        return LipSDPResult("neuron", 0.0, 0.0, 0.0, 0.0, -math.inf, solver, "constant on the region", 0.0,
                            naive_product_bound(local.net), size, [], method, info)
    rc, lm, star, seconds = certified
    return LipSDPResult("neuron", round_up(math.sqrt(rc)), math.sqrt(max(star, 0.0)), star, rc, lm, solver, status,
                        seconds, naive_product_bound(local.net), size, [], method, info)


def _solve_local(local: LocalNetwork, fast: bool, slope_rule=None, blas_threads: int | None = 1) -> LipSDPResult:
    from threadpoolctl import threadpool_limits

    from .certified_solve import solve_and_certify
    from .eclipse import eclipse_proposal

    if not isinstance(local, LocalNetwork):
        raise InputError(f"local: expected LocalNetwork (LocalNetwork.create), got {type(local).__name__}")
    method = "eclipse-fast" if fast else "chordal"
    with threadpool_limits(limits=blas_threads) if blas_threads else _Null():
        chain, info = local_chain(local, slope_rule, zero_lower=fast)
        info["region"] = local.region.summary()
        if chain is None:
            return _result(0.0, "none", "constant", info, local, method)
        work = chain.reduced()  # exact (first weight -> U Sigma): the proposal is cheap, the certificate on `chain`
        info["lmi_size_solved"] = work.lmi_size
        if fast:
            prob = StructuredProblem(lambda: eclipse_proposal(work, "layer", fast=True), "CLOSED-FORM")
        else:
            prob = StructuredProblem(lambda: solve_structured(work, "neuron"))

        def certify(values):
            lam = np.asarray(values["lam"], dtype=np.float64).ravel()
            rc, lm, star, lam_c = certify_with_original(work, chain if work is not chain else None,
                                                        float(values["rho"]), lam,
                                                        None if fast else prob.result.info.get("interior"), ray=fast)
            return rc, {"lambda_max": lm, "rho_solver": star, "lam": lam_c}

        res = solve_and_certify(prob, prob.variables, certify, solver=prob.name, error=LipSDPError)
    return _result(0.0, res.solver, res.status, info, local, method,
                   (res.value, res.checks["lambda_max"], res.checks["rho_solver"], res.seconds))


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _is_local(x) -> bool:
    return isinstance(x, LocalNetwork)


def _slopes_without_active(local, bounds):
    alpha, beta = local_slopes(local, bounds)
    stable = alpha == beta
    return np.where(stable, 0.0, alpha), np.where(stable, 0.0, beta)


def _slopes_l2_rows(local, bounds):
    # the l2 row norm in place of the l1 row norm for a box's first layer (a plausible slip)
    if local.region.kind == "linf":
        w, b = local.net.weights[0], local.biases[0]
        mid = w @ local.region.center + b
        rn = np.sqrt(np.sum(w * w, axis=1)) * local.region.radius
        bounds = interval_bounds(local, (mid - rn, mid + rn))
    return local_slopes(local, bounds)


def _mutant(rule, fast=False):
    def evaluate(local, **kw):
        return _solve_local(local, fast, rule).certified

    return evaluate


@register(
    "sdp.lipsdp_neuron_local",
    kind="upper",
    norm="l2",
    assumptions=("activations slope-restricted; slopes restricted further by IBP intervals on the region",
                 "feed-forward chain with its biases", "the Lipschitz constant of f restricted to the region",
                 "certified in float64 in the full LMI"),
    source="LipSDP (Fazlyab et al. 2019) with local slopes as in ECLipsE-Gen-Local (Xu, Sivaranjani, arXiv "
           "2510.05261) and local LipSDP (Hashemi, Ruths, Fazlyab, L4DC 2021); intervals by IBP (derived here)",
    confidence="derived",
    covers="MLPs on an l_inf box or l2 ball around a point",
    input_type=LocalNetwork,
    applies=_is_local,
    value=lambda res: res.certified,
    mutants=[Mutant("stable neurons dropped", _mutant(_slopes_without_active), "known_false",
                    "a region on which a neuron is stably active: its linear path through the net is lost (all "
                    "neurons stable: the mutant says 0)"),
             Mutant("l2 row norm for a box", _mutant(_slopes_l2_rows), "unknown",
                    "an l_inf box whose first-layer intervals are under-estimated by ||w||_2 r < ||w||_1 r, so "
                    "that an unstable neuron is taken for stable")],
)
def lipsdp_local(local: LocalNetwork, *, blas_threads: int | None = 1) -> LipSDPResult:
    r"""LipSDP-Neuron with per-neuron slopes :math:`[\alpha_i,\beta_i]\supseteq\phi'([l_i,u_i])` from interval
    bounds on the region, solved by the chordal method and certified.

    .. math:: M\big(\rho,\mathrm{diag}(\lambda);[\alpha_i,\beta_i]_{i}\big)\preceq0,\ \lambda\ge0,\
        z_i(\mathcal X)\subseteq[l_i,u_i]\ \Rightarrow\ \sup_{x\ne y\in\mathcal X}\frac{\|f(x)-f(y)\|_2}{\|x-y\|_2}
        \le\sqrt\rho

    ``local``: a :class:`LocalNetwork` (weights, biases, region). A network that is constant on the region (a
    hidden layer entirely inactive) has bound 0.
    """
    return _solve_local(local, False, None, blas_threads)


@register(
    "sdp.eclipse_fast_local",
    kind="upper",
    norm="l2",
    assumptions=("activations slope-restricted; slopes restricted further by IBP intervals on the region",
                 "feed-forward chain with its biases", "the Lipschitz constant of f restricted to the region",
                 "certified in float64 in the full LMI"),
    source="ECLipsE-Fast (Xu, Sivaranjani, NeurIPS 2024) with local slopes (ECLipsE-Gen-Local, arXiv 2510.05261); "
           "intervals by IBP",
    confidence="derived",
    covers="MLPs on an l_inf box or l2 ball around a point",
    input_type=LocalNetwork,
    applies=_is_local,
    value=lambda res: res.certified,
    mutants=[Mutant("stable neurons dropped", _mutant(_slopes_without_active, True), "known_false",
                    "a region on which a neuron is stably active: its linear path through the net is lost"),
             Mutant("l2 row norm for a box", _mutant(_slopes_l2_rows, True), "unknown",
                    "first-layer box intervals under-estimated by ||w||_2 r")],
)
def eclipse_fast_local(local: LocalNetwork, *, blas_threads: int | None = 1) -> LipSDPResult:
    r"""ECLipsE-Fast with per-neuron slopes from interval bounds on the region (lower slopes set to 0 as in
    ECLipsE-Gen-Local's closed form, :func:`local_chain`), certified in the full local LMI.

    .. math:: \sup_{x\ne y\in\mathcal X}\frac{\|f(x)-f(y)\|_2}{\|x-y\|_2}\le\sqrt{\lambda_{\max}(W_LM_L^{-1}W_L^\top)},
        \quad M_k\ \text{from}\ \lambda_k=2/\lambda_{\max}(D_{\alpha+\beta}W_{k-1}M_{k-1}^{-1}W_{k-1}^\top
        D_{\alpha+\beta}),\ [\alpha_i,\beta_i]\supseteq\phi'([l_i,u_i])
    """
    return _solve_local(local, True, None, blas_threads)


def _unstable_as_inactive(local, bounds):
    alpha, beta = local_slopes(local, bounds)
    lo = np.concatenate([b[0] for b in bounds])
    hi = np.concatenate([b[1] for b in bounds])
    unstable = (lo < 0) & (hi > 0)
    return np.where(unstable, 0.0, alpha), np.where(unstable, 0.0, beta)


@register(
    "planted.local_unstable_as_inactive",
    kind="upper",
    norm="l2",
    assumptions=("feed-forward chain with its biases", "the Lipschitz constant of f restricted to the region"),
    source="planted: sdp.lipsdp_neuron_local with every neuron whose interval contains 0 treated as inactive",
    confidence="planted",
    expect="falsified",
    refutation="a region around a point where some pre-activations change sign (zero biases, the center in the "
               "region): the unstable neurons are active on part of the region and carry a Jacobian the planted "
               "bound ignores (every neuron unstable: it says 0)",
    input_type=LocalNetwork,
    applies=_is_local,
    value=lambda res: res.certified,
)
def local_unstable_as_inactive(local: LocalNetwork) -> LipSDPResult:
    r"""A false local bound: unstable neurons dropped as if they were inactive.

    .. math:: \mathrm{Lip}_2(f|_{\mathcal X})\le\sqrt\rho\ \text{with}\ [\alpha_i,\beta_i]=[0,0]\ \text{whenever}\
        l_i<0<u_i
    """
    return _solve_local(local, False, _unstable_as_inactive)
