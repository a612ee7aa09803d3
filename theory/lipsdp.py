r"""LipSDP: semidefinite upper bounds on the Lipschitz constant of feed-forward networks (cvxpy), certified.

Network (column convention, biases irrelevant): :math:`f(x)=W_l\,\phi(W_{l-1}\cdots\phi(W_0x))` with hidden
widths :math:`n_1..n_l`, :math:`N=\sum_k n_k`, activations slope-restricted on :math:`[\alpha,\beta]`:
:math:`\alpha\le(\phi(a)-\phi(b))/(a-b)\le\beta`. Optionally a residual block :math:`f(x)=x+W_1\phi(W_0x)`.

LipSDP (Fazlyab et al. 2019, Thm 2): with :math:`z=(x_0,x_1,\dots,x_l)` stacking the input and the hidden
activations, :math:`A=[\mathrm{blkdiag}(W_0..W_{l-1}),0]`, :math:`B=[0,I_N]`, the output written as
:math:`y=Cz` and a multiplier :math:`T\succeq0` in the admissible class,

.. math::
    M(\rho,T)=\begin{bmatrix}A\\B\end{bmatrix}^{\!\top}\!\begin{bmatrix}-2\alpha\beta T&(\alpha+\beta)T\\(\alpha+\beta)T&-2T\end{bmatrix}
    \!\begin{bmatrix}A\\B\end{bmatrix}+C^\top C-\rho\,E_{00}\preceq0\ \Longrightarrow\ \mathrm{Lip}_2(f)\le\sqrt\rho .

Forms: **Neuron** :math:`T=\mathrm{diag}(\lambda)`, :math:`\lambda\ge0` (one multiplier per neuron); **Layer**
:math:`T=\mathrm{blkdiag}(\lambda_kI_{n_k})`. The coupled "Network" form is not offered (its soundness for
repeated nonlinearities is disputed). The matrix is block tridiagonal (plus :math:`C^\top C`), which is how it is
assembled here; :math:`E_{00}` is the identity on the input block.

Certification: the solver's :math:`(\rho,T)` is re-assembled in float64 with numpy and its largest eigenvalue is
computed; it must be :math:`\le-\delta`, where :math:`\delta=10\,n\,\varepsilon_{mach}\|\,|M|\,\|_F` dominates the
rounding error of both the assembly and the eigenvalue solver (:math:`|M|` is the same assembly with absolute
values). If not, :math:`\rho` is raised by bisection until it is; only :math:`\sqrt{\rho_{cert}}` (rounded up) is
reported as an upper bound. When a reduction (below) was solved, the certified :math:`(\rho,T)` is checked once more
on the LMI of the *original* weights (and raised there if needed), so the certificate never rests on the SVD/QR
factors. A solve or certification failure raises :class:`LipSDPError` and never yields a number. SCS is offered
only through this check: unchecked, its answers violate the LMI (up to +4e-6 here) and can fall below the SDP optimum.
Raising :math:`\rho` cannot repair a violation outside the input block, which a solver leaves within its feasibility
tolerance; so when the eigenvalue check fails, or had to raise :math:`\rho` by more than :math:`10^{-9}` relative,
the same multipliers are also certified by the block-Cholesky certificate of :mod:`theory.lipsdp_chordal`
(:func:`~theory.lipsdp_chordal.certify_backoff`: a rigorous rounding allowance on the block-equilibrated LMI, and a
back-off towards ECLipsE-Fast's strictly feasible point), and the smaller certified :math:`\rho` is kept (recorded
as ``certificate`` in the piece). Measured on 120 seeded small nets (1-4 hidden layers, widths 1-7, all
activations): with CVXOPT's default ``feastol`` 1e-7 the eigenvalue check failed on 5 and the back-off cost up to
4e-5 relative; with ``feastol=1e-9`` (the default here, retried with CVXOPT's defaults if it fails, recorded as
``solver_fallback``) every net certified within 1.1e-7 of the chordal optimum.

Soundness of the split: :math:`f=g_K\circ\phi\circ g_{K-1}\circ\cdots\circ\phi\circ g_1` with each
:math:`g_k` a sub-network (or a lone linear map), so :math:`\mathrm{Lip}(f)\le\prod_k\mathrm{Lip}(g_k)\cdot
\max(|\alpha|,|\beta|)^{K-1}` and each factor is certified separately.

Default solver, by measurement (2 shared cores, cvxpy 1.9, LipSDP-Neuron): 2-10-30-20-2 net CVXOPT 0.9 s,
Clarabel 14 s, SCS (eps 1e-9) 108 s; 784-50-10 net after the SVD reduction CVXOPT 1.6 s, Clarabel 130 s; all to
the same value (7 digits). Hence CVXOPT. Warm, with one BLAS thread: 784-50-10 Neuron 1.5 s, Layer 0.6 s
(``benchmarks/test_lipsdp.py``); peak RSS of a fresh process solving both: 164 MB.

Exact reductions (the bound is unchanged): the first weight :math:`W_0=U\Sigma V^\top` with :math:`m<n` columns is
replaced by :math:`U\Sigma` (:math:`f(x)=h(V^\top x)` with :math:`V^\top` a co-isometry, and the LMI splits into
range(V), where it is the reduced LMI, and its complement, where it is :math:`-\rho I`); the last weight enters only
through :math:`W_l^\top W_l` and is replaced by its :math:`R` factor when it has more rows than columns.

Convolutional nets (:func:`conv_feedforward`): every conv is unrolled to its dense (doubly block Toeplitz /
circulant) matrix by :func:`theory.convolution.conv_matrix`, so the LMI has :math:`\sum_k c_kh_kw_k` rows. It works
for 8x8 inputs with 4 channels, but slowly: a residual block there (LMI 512) took 75 s (Layer) and 356 s (Neuron)
with CVXOPT on 2 loaded cores; 4x4 inputs take well under a second.

Methods (``method=``): ``"monolithic"`` (the LMI above through cvxpy, the reference), ``"chordal"`` (the same
optimum from the chordal structure of the LMI, :mod:`theory.lipsdp_chordal`; solver ``"STRUCTURED"`` by default,
or Chordal-LipSDP's clique LMIs through cvxpy), ``"eclipse"`` and ``"eclipse-fast"`` (the multipliers of ECLipsE
and ECLipsE-Fast, :mod:`theory.eclipse`: a feasible point of the same LMI, not its optimum), ``"auto"`` (the
default: chordal for chains of 3 or more weight matrices, monolithic otherwise). Every method's answer is
certified on the full LMI of the original weights; only the chordal methods reach the optimum.

References: Fazlyab, Robey, Hassani, Morari, Pappas, *Efficient and Accurate Estimation of Lipschitz Constants
for Deep Neural Networks*, NeurIPS 2019; reference implementation ``arobey1/LipSDP`` (MIT).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from ..io.errors import SolveError
from .certified_solve import solve_and_certify
from .numerics import round_up, spectral_norm
from .registry import TightFamily, register
from .validate import InputError, as_real_array, choice, positive_float, positive_int

__all__ = [
    "SLOPES",
    "slope_bounds",
    "FeedForward",
    "LipSDPError",
    "LipSDPResult",
    "lipsdp",
    "lipsdp_neuron",
    "lipsdp_layer",
    "spectral_product_bound",
    "lmi_matrix",
    "naive_product_bound",
    "reduce_network",
    "load_mat",
    "conv_feedforward",
    "METHODS",
    "METHOD_SOLVERS",
    "resolve_method",
    "check_options",
]

#: slope-restriction intervals [alpha, beta] of supported activations (GELU/SiLU: extrema of the derivative,
#: at x = ±sqrt(2) and x = ±2.3994, rounded outward)
SLOPES: dict[str, tuple[float, float]] = {
    "relu": (0.0, 1.0),
    "tanh": (0.0, 1.0),
    "sigmoid": (0.0, 0.25),
    "gelu": (-0.12891, 1.12891),
    "silu": (-0.09985, 1.09985),
    "identity": (1.0, 1.0),
}
DEFAULT_SOLVER = "CVXOPT"
SOLVERS = ("CVXOPT", "CLARABEL", "SCS")
#: how the multipliers are found (module docstring); ``auto`` resolves per (sub-)network with :func:`resolve_method`
METHODS = ("auto", "monolithic", "chordal", "eclipse", "eclipse-fast")
#: the solvers each method accepts (the first is its default); ``eclipse-fast`` is closed form
METHOD_SOLVERS = {"monolithic": SOLVERS, "chordal": ("STRUCTURED", *SOLVERS), "eclipse": ("STRUCTURED",),
                  "eclipse-fast": ("CLOSED-FORM",)}


class LipSDPError(SolveError):
    """The SDP could not be solved or certified: no bound is returned."""


def slope_bounds(activation: str, negative_slope: float = 0.01) -> tuple[float, float]:
    r"""``(alpha, beta)`` with :math:`\alpha\le(\phi(a)-\phi(b))/(a-b)\le\beta` for an activation name.

    relu (0, 1); leaky_relu with slope s for x < 0: (min(s, 1), max(s, 1)); tanh (0, 1); sigmoid (0, 1/4);
    gelu (-0.12891, 1.12891) and silu (-0.09985, 1.09985): the extrema of the derivative (GELU at
    :math:`\pm\sqrt2`, SiLU at :math:`\pm2.3994`), rounded outward; identity (1, 1).
    """
    if activation == "leaky_relu":
        if isinstance(negative_slope, bool) or not isinstance(negative_slope, (int, float, np.floating)) \
                or not math.isfinite(float(negative_slope)):
            raise InputError(f"negative_slope: expected a finite real number, got {negative_slope!r}")
        a = float(negative_slope)
        return (min(a, 1.0), max(a, 1.0))  # slopes a (x < 0) and 1 (x > 0)
    if activation not in SLOPES:
        raise InputError(f"activation: expected one of {sorted([*SLOPES, 'leaky_relu'])}, got {activation!r}")
    return SLOPES[activation]


@dataclass(frozen=True)
class FeedForward:
    """Weights ``W_0..W_l`` (each ``(out, in)``, PyTorch's ``nn.Linear.weight`` layout) and the slope interval.

    ``residual=True`` means :math:`f(x)=x+W_1\\phi(W_0x)` (one hidden layer, square input/output).
    """

    weights: tuple
    alpha: float
    beta: float
    activation: str = "custom"
    residual: bool = False

    @classmethod
    def from_weights(cls, weights, activation: str = "relu", *, alpha: float | None = None,
                     beta: float | None = None, negative_slope: float = 0.01, residual: bool = False) -> "FeedForward":
        ws = [as_real_array(f"weights[{i}]", w, ndim=2) for i, w in enumerate(weights)]
        if len(ws) < 2:
            raise InputError(f"weights: expected at least 2 matrices (one hidden layer), got {len(ws)}")
        for i in range(1, len(ws)):
            if ws[i].shape[1] != ws[i - 1].shape[0]:
                raise InputError(f"weights[{i}]: expected {ws[i - 1].shape[0]} columns to follow weights[{i - 1}] "
                                      f"{ws[i - 1].shape}, got shape {ws[i].shape}")
        if alpha is None and beta is None:
            a, b = slope_bounds(activation, negative_slope)
        else:
            if alpha is None or beta is None:
                raise InputError("alpha: give both alpha and beta, or an activation name")
            a, b = float(alpha), float(beta)
            if not (math.isfinite(a) and math.isfinite(b)):
                raise InputError(f"alpha: expected finite slopes, got alpha={a}, beta={b}")
            activation = "custom"
        if a > b:
            raise InputError(f"alpha: expected alpha <= beta, got alpha={a} > beta={b}")
        if residual:
            if len(ws) != 2 or ws[1].shape[0] != ws[0].shape[1]:
                raise InputError("residual: a residual block needs exactly 2 weights with W_1 W_0 square")
        return cls(tuple(ws), a, b, activation, residual)

    @property
    def hidden(self) -> list[int]:
        return [w.shape[0] for w in self.weights[:-1]]

    @property
    def activation_lipschitz(self) -> float:
        return max(abs(self.alpha), abs(self.beta))

    @property
    def widths(self) -> list[int]:
        """Input width, hidden widths, output width."""
        return [self.weights[0].shape[1], *self.hidden, self.weights[-1].shape[0]]

    def describe(self) -> str:
        kind = "residual block" if self.residual else "feed-forward network"
        return f"{kind} {self.widths} ({self.activation}, slopes [{self.alpha:g}, {self.beta:g}])"

    def summary(self) -> dict:
        return {"widths": self.widths, "activation": self.activation, "alpha": self.alpha, "beta": self.beta,
                "residual": self.residual}


@dataclass
class LipSDPResult:
    """What one LipSDP solve returns. Only ``certified`` is an upper bound."""

    form: str
    certified: float
    solver_value: float
    rho_solver: float
    rho_certified: float
    lambda_max: float
    solver: str
    status: str
    solve_seconds: float
    naive_bound: float
    lmi_size: int
    pieces: list = field(default_factory=list)
    method: str = "monolithic"
    info: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def naive_product_bound(net: FeedForward) -> float:
    r""":math:`\mathrm{Lip}(f)\le\prod_k\|W_k\|_2\cdot\max(|\alpha|,|\beta|)^{l}` (residual: :math:`1+\|W_1\|\|W_0\|L_\phi`)."""
    lphi = net.activation_lipschitz
    norms = [spectral_norm(w) for w in net.weights]
    if net.residual:
        return round_up(1.0 + norms[0] * norms[1] * lphi)
    return round_up(float(np.prod(norms)) * lphi ** len(net.hidden))


def reduce_network(net: FeedForward) -> FeedForward:
    """The exact reductions of the module docstring (first weight to its m x m factor, last to its R factor)."""
    ws = list(net.weights)
    if net.residual:
        return net  # the skip term couples input and output: no reduction
    w0 = ws[0]
    if w0.shape[0] < w0.shape[1]:
        u, s, _ = np.linalg.svd(w0, full_matrices=False)
        ws[0] = u * s
    wl = ws[-1]
    if wl.shape[0] > wl.shape[1]:
        ws[-1] = np.linalg.qr(wl, mode="r")
    return FeedForward(tuple(ws), net.alpha, net.beta, net.activation, net.residual)


def _blocks(net: FeedForward, rho, t_blocks, absolute: bool = False):
    """Block matrix of M(rho, T) for numpy (float arrays) or cvxpy (expressions) alike."""
    ws = [np.abs(w) for w in net.weights] if absolute else list(net.weights)
    a, b = net.alpha, net.beta
    c1, c2 = (abs(2 * a * b), abs(a + b)) if absolute else (-2 * a * b, a + b)
    two = 2.0
    sizes = [ws[0].shape[1], *net.hidden]
    L = len(net.hidden)
    blk = [[np.zeros((sizes[i], sizes[j])) for j in range(L + 1)] for i in range(L + 1)]
    blk[0][0] = -rho * np.eye(sizes[0]) if not absolute else rho * np.eye(sizes[0])
    for k in range(1, L + 1):
        t = t_blocks[k - 1]
        w = ws[k - 1]
        if c1 != 0:
            blk[k - 1][k - 1] = blk[k - 1][k - 1] + c1 * (w.T @ t @ w)
        blk[k][k] = blk[k][k] + (two if absolute else -two) * t
        if c2 != 0:
            blk[k - 1][k] = blk[k - 1][k] + c2 * (w.T @ t)
            blk[k][k - 1] = blk[k][k - 1] + c2 * (t @ w)
    # output map y = C z
    if net.residual:
        n0 = sizes[0]
        cs = {0: np.eye(n0), 1: ws[1]}
    else:
        cs = {L: ws[-1]}
    for i, ci in cs.items():
        for j, cj in cs.items():
            blk[i][j] = blk[i][j] + ci.T @ cj
    return blk


def lmi_matrix(net: FeedForward, rho: float, lambdas, absolute: bool = False) -> np.ndarray:
    """:math:`M(\\rho,T)` in float64 for a Neuron multiplier vector ``lambdas`` (length N)."""
    lam = np.asarray(lambdas, dtype=np.float64)
    splits = np.cumsum(net.hidden)[:-1]
    ts = [np.diag(np.abs(x) if absolute else x) for x in np.split(lam, splits)]
    return np.block(_blocks(net, float(rho), ts, absolute))


def _lambda_max(net: FeedForward, rho: float, lam: np.ndarray) -> tuple[float, float]:
    r"""``(lambda_max(M(rho, T)), delta)`` in float64, delta the rounding allowance of the module docstring."""
    m = lmi_matrix(net, rho, lam)
    delta = 10 * m.shape[0] * np.finfo(float).eps * np.linalg.norm(lmi_matrix(net, rho, lam, absolute=True))
    return float(np.linalg.eigvalsh((m + m.T) / 2)[-1]), float(delta)


def _cholesky_check(net: FeedForward, rho: float, lam: np.ndarray) -> bool:
    r"""True if :math:`-M(\rho,T)-2\delta I` has a float64 Cholesky factor (so :math:`M\preceq-\delta I`).

    A cheaper certificate than the eigenvalue (one factorisation); the factor 2 covers Cholesky's own backward
    error. Used for the check on the original (unreduced) weights."""
    lam = np.maximum(np.asarray(lam, dtype=np.float64), 0.0)
    m = lmi_matrix(net, rho, lam)
    delta = 10 * m.shape[0] * np.finfo(float).eps * np.linalg.norm(lmi_matrix(net, rho, lam, absolute=True))
    try:
        np.linalg.cholesky(-(m + m.T) / 2 - 2 * delta * np.eye(m.shape[0]))
    except np.linalg.LinAlgError:
        return False
    return True


def _certify(net: FeedForward, rho: float, lam: np.ndarray, max_steps: int = 200) -> tuple[float, float]:
    r"""Smallest rho' >= rho (to 1e-12 relative) with lambda_max(M(rho', T)) <= -delta; returns (rho', lambda_max).

    :math:`\lambda_{\max}(M(\rho,T))` is non-increasing in rho (M moves by :math:`-\rho E_{00}`), so the search
    tries rho (1 + 10^{-12}), (1 + 10^{-10}), ..., then doublings, and bisects between the last failure and the
    first success. Raises :class:`LipSDPError` if no rho works (the multipliers are useless).
    """
    lam = np.maximum(np.asarray(lam, dtype=np.float64), 0.0)  # the multipliers must be admissible (T >= 0) exactly
    if not np.all(np.isfinite(lam)) or not math.isfinite(rho):
        raise LipSDPError("certification failed: the solver returned non-finite multipliers or rho")
    lo = max(float(rho), 0.0)
    top, delta = _lambda_max(net, lo, lam)
    if top <= -delta:
        return lo, top
    base = max(lo, 1e-12)
    hi = None
    for rel in (1e-12, 1e-10, 1e-8, 1e-6, 1e-4, 1e-2, 1.0):
        cand = base * (1.0 + rel)
        t, d = _lambda_max(net, cand, lam)
        if t <= -d:
            hi, top = cand, t
            break
        lo = cand
    if hi is None:
        cand = lo
        for _ in range(max_steps):
            cand = cand * 2.0
            t, d = _lambda_max(net, cand, lam)
            if t <= -d:
                hi, top = cand, t
                break
            lo = cand
        else:
            raise LipSDPError("certification failed: no rho makes the LMI negative definite with the solver's "
                              "multipliers")
    for _ in range(60):  # bisection between an uncertified lo and a certified hi
        if hi - lo <= 1e-12 * hi:
            break
        mid = 0.5 * (lo + hi)
        t, d = _lambda_max(net, mid, lam)
        if t <= -d:
            hi, top = mid, t
        else:
            lo = mid
    return hi, top


def _layer_scales(net: FeedForward) -> np.ndarray:
    r"""Per-weight scales :math:`s_k=\|W_k\|_2` (1 for a zero matrix) used to normalise the LMI (module docstring)."""
    s = np.array([spectral_norm(w) for w in net.weights])
    return np.where(s > 0, s, 1.0)


def _solve_piece(net: FeedForward, form: str, solver: str, margin: float, original: FeedForward | None = None):
    r"""Solve LipSDP for ``net`` on the normalised weights and certify the answer on ``net`` itself (and on
    ``original``, the unreduced weights, when a reduction was solved). Returns a :class:`Certified` whose
    ``value`` is the certified :math:`\rho` and whose checks hold the multipliers and :math:`\lambda_{\max}`.

    Normalisation: with :math:`s_k=\|W_k\|_2`, :math:`c_k=\prod_{j<k}s_j` and :math:`C=\prod_ks_k`, the scaled
    weights :math:`\tilde W_k=W_k/s_k` have LMI :math:`\tilde M(\tilde\rho,\tilde T)=DM(\rho,T)D/C^2` with
    :math:`D=\mathrm{blkdiag}(c_kI)`, :math:`\tilde\rho=\rho/C^2` and :math:`\tilde T_k=c_k^2T_k/C^2` (block by block:
    the input block scales by 1, hidden block k by :math:`c_k^2`, the output term by :math:`C^2`). So the two LMIs
    are feasible together and the optimum scales exactly; solving the normalised one keeps the solver's absolute
    tolerances meaningful at any weight scale (at :math:`\|W\|\sim10^{-4}` the unnormalised solve returned
    Neuron > Layer, both 200x above the exact value). The multipliers are mapped back and certified on the
    original weights; the mapping is not trusted (:func:`_certify` raises rho until the float64 check passes).
    Residual blocks are solved unscaled (the skip term does not scale).

    Slopes: the slope interval is normalised too, :math:`[\alpha,\beta]/L_\phi` with :math:`L_\phi=\max(|\alpha|,
    |\beta|)`. With :math:`x_k=a_k\tilde x_k`, :math:`a_k=L_\phi^kc_k`, the quadratic constraint of layer k is
    :math:`q(b\tilde v,a\tilde x;T,\alpha,\beta)=q(\tilde v,\tilde x;a^2T,\alpha b/a,\beta b/a)` with :math:`b_k=a_k/L_\phi`,
    so the scaled LMI has weights :math:`W_k/s_k`, slopes :math:`[\alpha,\beta]/L_\phi`, :math:`\rho=C^2\tilde\rho` and
    :math:`T_k=C^2\tilde T_k/a_k^2` with :math:`C=L_\phi^ls_0\cdots s_l` (the per-layer scaling is the case
    :math:`L_\phi=1`). Without it a sigmoid net (:math:`L_\phi=1/4`, 4 hidden layers) has :math:`\tilde\rho\sim10^{-5}`
    and CVXOPT's absolute tolerances left its answer 2% above the optimum.
    """
    import cvxpy as cp

    if net.residual:
        scales = np.ones(len(net.weights))
        slope = 1.0
    else:
        scales = _layer_scales(net)
        slope = net.activation_lipschitz if net.activation_lipschitz > 0 else 1.0
    hidden = net.hidden
    # a_k = L_phi^k s_0 ... s_{k-1} (a_0 = 1), C = L_phi^l s_0 ... s_l, or the balanced scales of ECLipsE-Fast's point
    a = np.cumprod(np.concatenate([[1.0], scales[:-1]])) * slope ** np.arange(len(scales))
    c_out = float(np.prod(scales)) * slope ** len(hidden)
    point = None if net.residual else _fast_point(net)
    balanced = None if point is None else _balanced_scales(net, point)
    if balanced is not None:
        a, c_out = balanced
    ws = [slope * w * (a[k] / a[k + 1]) for k, w in enumerate(net.weights[:-1])]
    ws.append(net.weights[-1] * (a[-1] / c_out))
    scaled = FeedForward(tuple(ws), net.alpha / slope, net.beta / slope, net.activation, net.residual)
    rho = cp.Variable(nonneg=True)
    if form == "neuron":
        lams = [cp.Variable(h, nonneg=True) for h in hidden]
        ts = [cp.diag(x) for x in lams]
    else:
        lams = [cp.Variable(nonneg=True) for _ in hidden]
        ts = [x * np.eye(h) for x, h in zip(lams, hidden)]
    m = cp.bmat(_blocks(scaled, rho, ts))
    size = m.shape[0]
    scale = 1.0 if balanced is not None else \
        min(max(spectral_norm(w) for w in scaled.weights) ** 2, naive_product_bound(scaled) ** 2)
    prob = cp.Problem(cp.Minimize(rho), [m << -margin * scale * np.eye(size)])
    # rho = C^2 rho~, T_k = C^2 T~_k / a_k^2 (docstring)
    total = c_out ** 2
    per_neuron = np.concatenate([np.full(h, total / a[k + 1] ** 2) for k, h in enumerate(hidden)])

    def certify(values):
        lam_scaled = np.concatenate([np.atleast_1d(values[f"lam{k}"]).ravel() * np.ones(h) if form == "layer"
                                     else np.atleast_1d(values[f"lam{k}"]).ravel() for k, h in enumerate(hidden)])
        lam = lam_scaled * per_neuron
        proposal = float(values["rho"]) * total
        best, failure = None, None
        try:
            rc, lm = _certify(net, proposal, lam)
            if original is not None and not _cholesky_check(original, rc, lam):
                # the reduction is exact in real arithmetic; if the original weights disagree, certify on them
                rc, lm = _certify(original, rc, lam)
            best = (rc, {"lam": lam, "lambda_max": lm, "rho_solver": proposal})
        except LipSDPError as exc:
            failure = exc
        if not net.residual:
            # the eigenvalue check can only raise rho, and the solver's point may violate the LMI outside the input
            # block (by up to its feasibility tolerance): the block-Cholesky certificate of the same multipliers,
            # which starts from their smallest rho and backs off towards a strictly feasible point if needed
            # (theory.lipsdp_chordal.certify_backoff); the smaller certified rho is kept
            chained = _chain_certificate(net, original, proposal, lam, point)
            if chained is not None and (best is None or chained[0] < best[0]):
                best = chained
        if best is None:
            raise failure
        return best
    variables = {"rho": rho, **{f"lam{k}": x for k, x in enumerate(lams)}}
    if solver == "SCS":
        attempts = [{"eps": 1e-9, "max_iters": 200_000}]
    elif solver == "CVXOPT":  # feastol 1e-9 (default 1e-7): see the module docstring; defaults if that fails
        attempts = [dict(_CVXOPT_OPTIONS), {}]
    else:
        attempts = [{}]
    notes = []
    for opts in attempts:
        try:
            res = solve_and_certify(prob, variables, certify, solver=solver, options=opts, error=LipSDPError)
        except LipSDPError as exc:
            notes.append(f"{solver} {opts}: {exc}")
            if opts is attempts[-1]:
                raise
            continue
        if notes:
            res = replace(res, checks={**res.checks, "solver_fallback": f"retried with {opts or 'defaults'}: "
                                                                        + "; ".join(notes)})
        return res


#: CVXOPT's tolerances for the monolithic LMI (defaults feastol 1e-7, abstol 1e-7, reltol 1e-6): see the module
#: docstring; on failure the solve is retried with CVXOPT's defaults (recorded)
_CVXOPT_OPTIONS = {"feastol": 1e-9, "abstol": 1e-10}


def _fast_point(net: FeedForward):
    """ECLipsE-Fast's proposal ``(rho, lam)`` for a chain (in its own units), or ``None`` if it fails."""
    from .eclipse import eclipse_proposal
    from .lipsdp_chordal import Chain

    try:
        chain = Chain.from_net(net)
        fast = eclipse_proposal(chain.relaxed() if np.any(chain.alpha == chain.beta) else chain, "layer", fast=True)
    except (LipSDPError, InputError, ArithmeticError, np.linalg.LinAlgError):
        return None
    if not (math.isfinite(fast.rho) and fast.rho > 0 and np.all(np.isfinite(fast.lam)) and np.all(fast.lam > 0)):
        return None
    return fast.rho, fast.lam


def _balanced_scales(net: FeedForward, point=None):
    r"""``(a, C)`` with :math:`a_0=1`, :math:`a_k^2=\rho_f/\bar T_{f,k}`, :math:`C^2=\rho_f` from ECLipsE-Fast's
    feasible point :math:`(\rho_f,T_f)` (:math:`\bar T_{f,k}` its multiplier of layer k), so that this point has
    :math:`\tilde\rho=1`, :math:`\tilde T=I` in the scaled LMI (docstring of :func:`_solve_piece`); ``None`` when
    ECLipsE-Fast fails (the norm scales are used then)."""
    point = _fast_point(net) if point is None else point
    if point is None:
        return None
    rho_f, lam_f = point
    splits = np.cumsum(net.hidden)[:-1]
    t_bar = np.array([float(np.mean(x)) for x in np.split(lam_f, splits)])
    a = np.concatenate([[1.0], np.sqrt(rho_f / t_bar)])
    if not np.all(np.isfinite(a)) or not np.all(a > 0):
        return None
    return a, math.sqrt(rho_f)


def _chain_certificate(net: FeedForward, original: FeedForward | None, rho: float, lam: np.ndarray, point=None):
    """``(rho_c, checks)`` from :func:`theory.lipsdp_chordal.certify_with_original` with ECLipsE-Fast's point (scaled
    by 1.5 along its ray, strictly feasible) as the interior point of the back-off; ``None`` if it fails."""
    from .lipsdp_chordal import Chain, certify_with_original

    try:
        chain = Chain.from_net(net)
        point = _fast_point(net) if point is None else point
        interior = None if point is None else (1.5 * point[0], 1.5 * point[1])
        rc, lm, star, lam_c = certify_with_original(chain, Chain.from_net(original) if original is not None
                                                    else None, rho, lam, interior)
    except (LipSDPError, ArithmeticError, np.linalg.LinAlgError):
        return None
    # rho_solver: the float64 minimal rho of the multipliers (certified >= it), as for the chordal method
    return rc, {"lam": lam_c, "lambda_max": lm, "rho_solver": min(star, rho), "proposal_rho": rho,
                "certificate": "block Cholesky (back-off)"}


def _split(net: FeedForward, split_size: int) -> list[FeedForward]:
    """Consecutive sub-networks of ``split_size`` weight matrices (the last may be shorter, >= 2 or a linear map)."""
    ws = list(net.weights)
    pieces, i = [], 0
    while i < len(ws):
        chunk = ws[i:i + split_size]
        pieces.append(chunk)
        i += split_size
    return [FeedForward(tuple(c), net.alpha, net.beta, net.activation) if len(c) >= 2 else c[0] for c in pieces]


def resolve_method(net, method: str = "auto") -> str:
    """``auto`` -> ``chordal`` for a non-residual chain of at least 3 weight matrices, ``monolithic`` otherwise."""
    if method != "auto":
        return method
    return "chordal" if isinstance(net, FeedForward) and not net.residual and len(net.weights) >= 3 else "monolithic"


def lipsdp(net: FeedForward, form: str = "neuron", *, method: str = "auto", solver: str | None = None,
           split_size: int | None = None, reduce: bool = True, margin: float = 1e-9,
           blas_threads: int | None = 1) -> LipSDPResult:
    r"""Certified LipSDP upper bound (see the module docstring for the LMI, the certification and the reductions);
    the registered bounds are :func:`lipsdp_neuron` and :func:`lipsdp_layer`.

    ``form``: ``"neuron"`` or ``"layer"``. ``method``: one of :data:`METHODS` (module docstring). ``solver``: the
    method's solver (:data:`METHOD_SOLVERS`; ``None``: its default). ``split_size``: solve consecutive
    sub-networks of that many weight matrices and multiply their bounds by :math:`\max(|\alpha|,|\beta|)` per
    junction (the activation between them); ``auto`` resolves per piece. ``margin``: the cvxpy SDPs ask for
    :math:`M\preceq-\mathrm{margin}\cdot\min(\max_k\|W_k\|^2,\Pi^2)I` (:math:`\Pi` the product bound, the scale
    of rho) so that the certification step rarely has to move :math:`\rho`. ``blas_threads``: BLAS threads during
    the call (threadpoolctl; ``None`` leaves them alone). One thread is the default because these matrices are
    small: on 2 loaded cores a multi-threaded OpenBLAS made the 784-50-10 solve 2-5x slower (busy-waiting threads).
    """
    if blas_threads is None:
        return _lipsdp(net, form, method, solver, split_size, reduce, margin)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=positive_int("blas_threads", blas_threads)):
        return _lipsdp(net, form, method, solver, split_size, reduce, margin)


def _check_solver(method: str, solver) -> str:
    if not isinstance(solver, (str, type(None))):
        raise InputError(f"solver: expected one of {METHOD_SOLVERS.get(method, SOLVERS)}, got {solver!r}")
    options = METHOD_SOLVERS[method]
    sol = (solver or options[0]).upper()
    if method == "eclipse-fast" and solver is None:
        return options[0]
    choice("solver", sol, options)
    return sol


def check_options(net: FeedForward, method: str = "auto", solver: str | None = None,
                  split_size: int | None = None) -> dict[str, str]:
    """Validate ``method``/``solver``/``split_size`` for ``net`` before any work (:class:`InputError` naming the
    argument); returns ``{resolved method: solver}`` for the (sub-)networks that will be solved."""
    if not isinstance(method, str):
        raise InputError(f"method: expected one of {METHODS}, got {method!r}")
    choice("method", method, METHODS)
    if method not in ("auto", "monolithic") and net.residual:
        raise InputError(f"method: {method!r} needs a feed-forward chain; a residual block is solved with "
                         f"method='monolithic' (or 'auto')")
    if split_size is not None:
        split_size = positive_int("split_size", split_size, minimum=2)
        if net.residual:
            raise InputError("split_size: a residual block cannot be split")
    pieces = _split(net, split_size) if split_size else [net]
    methods = {resolve_method(p, method) for p in pieces if not isinstance(p, np.ndarray)}
    return {m: _check_solver(m, solver) for m in methods}


def _lipsdp(net, form, method, solver, split_size, reduce, margin) -> LipSDPResult:
    if not isinstance(net, FeedForward):
        raise InputError(f"net: expected FeedForward (use FeedForward.from_weights), got {type(net).__name__}")
    if not (math.isfinite(net.alpha) and math.isfinite(net.beta)) or net.alpha > net.beta:
        raise InputError(f"net: expected finite slopes alpha <= beta, got alpha={net.alpha}, beta={net.beta}")
    choice("form", form, ("neuron", "layer"))
    solvers = check_options(net, method, solver, split_size)  # validated before any work starts
    margin = positive_float("margin", margin, allow_zero=True)
    pieces = _split(net, split_size) if split_size else [net]
    cert, solv, rho_s, rho_c, top, seconds, status, size, info = 1.0, 1.0, [], [], -math.inf, 0.0, "optimal", 0, []
    used = []
    for piece in pieces:
        if isinstance(piece, np.ndarray):  # a lone linear map at the end of a split
            s = spectral_norm(piece)
            cert, solv = cert * round_up(s), solv * s
            info.append({"kind": "linear", "bound": round_up(s)})
            continue
        m = resolve_method(piece, method)
        sol = solvers[m]
        p = reduce_network(piece) if reduce else piece
        changed = p is not piece and any(a is not b for a, b in zip(p.weights, piece.weights))
        original = piece if changed else None  # certified on the original weights only when they differ
        if m == "monolithic":
            res = _solve_piece(p, form, sol, margin, original=original)
        elif m == "chordal":
            from .lipsdp_chordal import solve_chordal_piece

            res = solve_chordal_piece(p, form, sol, margin, original=original)
        else:
            from .eclipse import solve_eclipse_piece

            res = solve_eclipse_piece(p, form, fast=(m == "eclipse-fast"), original=original)
        used.append((m, res.solver))
        r, rc, lm, st, sec = res.checks["rho_solver"], res.value, res.checks["lambda_max"], res.status, res.seconds
        cert *= round_up(math.sqrt(rc))
        solv *= math.sqrt(max(r, 0.0))
        rho_s.append(r)
        rho_c.append(rc)
        top = max(top, lm)
        seconds += sec
        size = max(size, sum(p.hidden) + p.weights[0].shape[1])
        status = st if st != "optimal" else status
        entry = {"kind": "sdp", "method": m, "solver": res.solver, "rho_solver": r, "rho_certified": rc,
                 "lambda_max": lm, "seconds": sec, "lmi_size": sum(p.hidden) + p.weights[0].shape[1]}
        entry.update({k: v for k, v in res.checks.items() if k in _REPORTED_CHECKS})
        info.append(entry)
    junctions = len(pieces) - 1
    cert = round_up(cert * net.activation_lipschitz ** junctions)
    solv = solv * net.activation_lipschitz ** junctions
    names = sorted({m for m, _ in used}) or ["none"]
    solver_names = sorted({s for _, s in used}) or ["none"]
    return LipSDPResult(form, cert, solv, rho_s[0] if len(rho_s) == 1 else float("nan"),
                        rho_c[0] if len(rho_c) == 1 else float("nan"), top, "+".join(solver_names), status, seconds,
                        naive_product_bound(net), size, info, "+".join(names),
                        {"requested_method": method})


#: the extra checks of a piece that are copied into ``LipSDPResult.pieces`` (numbers and strings only)
_REPORTED_CHECKS = ("newton_steps", "gap", "warm_start", "structured_rho", "algorithm", "algorithm_fallback",
                    "clique_sizes", "fallbacks",
                    "eclipse_rho", "solver_fallback", "requested_solver", "blends", "certificate", "proposal_rho")


def _is_network(net) -> bool:
    return isinstance(net, FeedForward)


@register(
    "sdp.lipsdp_neuron",
    norm="l2",
    kind="upper",
    assumptions=("activations slope-restricted on [alpha, beta]", "feed-forward (or one residual block)",
                 "certified in float64 after the solve"),
    source="Fazlyab, Robey, Hassani, Morari, Pappas, NeurIPS 2019 (LipSDP-Neuron)",
    confidence="standard",
    covers="MLPs; unrolled convolutional nets; a one-hidden-layer residual block",
    input_type=FeedForward,
    value=lambda res: res.certified,
    tight=TightFamily("width-1 layers with positive weights (the ReLU net is linear on the positive cone)",
                      "standard: LipSDP is exact when every hidden layer has one neuron", ratio=1.0),
)
def lipsdp_neuron(net: FeedForward, **kw) -> LipSDPResult:
    r""":func:`lipsdp` with ``form="neuron"`` (one multiplier per neuron); ``kw`` as :func:`lipsdp` (``method``:
    ``auto`` is chordal for 3 or more weight matrices; ``eclipse``/``eclipse-fast`` certify ECLipsE's multipliers
    in this LMI, a feasible point above the optimum).

    .. math:: M(\rho,\mathrm{diag}(\lambda))\preceq0,\ \lambda\ge0\ \Rightarrow\ \mathrm{Lip}_2(f)\le\sqrt\rho
    """
    return lipsdp(net, "neuron", **kw)


@register(
    "sdp.lipsdp_layer",
    norm="l2",
    kind="upper",
    assumptions=("activations slope-restricted on [alpha, beta]", "feed-forward (or one residual block)",
                 "certified in float64 after the solve"),
    source="Fazlyab, Robey, Hassani, Morari, Pappas, NeurIPS 2019 (LipSDP-Layer)",
    confidence="standard",
    covers="MLPs; unrolled convolutional nets; a one-hidden-layer residual block",
    input_type=FeedForward,
    value=lambda res: res.certified,
)
def lipsdp_layer(net: FeedForward, **kw) -> LipSDPResult:
    r""":func:`lipsdp` with ``form="layer"`` (one multiplier per layer: cheaper, looser).

    .. math:: M(\rho,\mathrm{blkdiag}(\lambda_kI_{n_k}))\preceq0,\ \lambda\ge0\ \Rightarrow\ \mathrm{Lip}_2(f)\le\sqrt\rho
    """
    return lipsdp(net, "layer", **kw)


@register(
    "network.spectral_product",
    norm="l2",
    kind="upper",
    assumptions=("activations slope-restricted on [alpha, beta] (Lipschitz max(|alpha|, |beta|))",
                 "feed-forward (or one residual block)"),
    source="standard (product rule with the layers' spectral norms)",
    confidence="standard",
    covers="MLPs; unrolled convolutional nets; a one-hidden-layer residual block",
    input_type=FeedForward,
    tight=TightFamily("aligned linear layers: W_k = s_k u_{k+1} u_k^T with positive entries (ReLU identity on "
                      "the image), the product of the norms is attained", "standard", ratio=1.0),
)
def spectral_product_bound(net: FeedForward) -> float:
    r"""The naive bound of a feed-forward network, the reference every SDP bound must not exceed.

    .. math:: \mathrm{Lip}_2(f)\le\max(|\alpha|,|\beta|)^{l}\prod_{k=0}^{l}\|W_k\|_2\qquad(\text{residual block: }1+\max(|\alpha|,|\beta|)\|W_1\|_2\|W_0\|_2)
    """
    if not isinstance(net, FeedForward):
        raise InputError(f"net: expected FeedForward (use FeedForward.from_weights), got {type(net).__name__}")
    return naive_product_bound(net)


def load_mat(path: str | Path) -> list[np.ndarray]:
    """Weights from a LipSDP ``.mat`` file (a ``weights`` cell array of ``(out, in)`` matrices)."""
    from scipy.io import loadmat

    p = Path(path)
    if not p.is_file():
        raise InputError(f"path: weights file not found: {p}")
    try:
        data = loadmat(p)
    except Exception as exc:  # noqa: BLE001 - any unreadable file
        raise InputError(f"path: cannot read {p} as a .mat file: {exc}") from exc
    if "weights" not in data:
        raise InputError(f"path: {p} has no 'weights' cell array (keys: {[k for k in data if not k.startswith('__')]})")
    return [np.asarray(w, dtype=np.float64) for w in data["weights"].ravel()]


def conv_feedforward(kernels, input_size, padding="circular", activation: str = "relu", *, stride: int = 1,
                     residual: bool = False, negative_slope: float = 0.01) -> FeedForward:
    r"""A small convolutional network as a :class:`FeedForward` by unrolling every convolution to its matrix.

    ``kernels``: a list of ``(c_out, c_in, k_h, k_w)`` arrays, conv -> activation -> ... -> conv, each with
    ``padding`` and ``stride`` (see :func:`theory.convolution.conv_matrix`, which flattens ``(C, H, W)`` as PyTorch
    does). ``residual=True``: :math:`f(x)=x+T_2\phi(T_1x)` (two kernels, same input and output shape). Biases
    do not change the Lipschitz constant and are not needed. The unrolled LMI has size
    :math:`\sum_k c_kh_kw_k`, so this is meant for small inputs (8x8 with 4 channels: 512).
    """
    from .convolution import conv_chain, conv_matrix

    if isinstance(kernels, np.ndarray) or not hasattr(kernels, "__len__") or len(kernels) < 2:
        raise InputError("kernels: expected a list of at least 2 conv kernels (conv -> activation -> conv)")
    mats = [conv_matrix(layer) for layer in conv_chain(kernels, input_size, padding, stride)]
    return FeedForward.from_weights(mats, activation, negative_slope=negative_slope, residual=residual)
