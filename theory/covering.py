r"""Covering-number bounds: balls, Lipschitz images, the matrix and network bounds of Bartlett, Foster & Telgarsky
(2017), a norm-based convolutional bound (Graf et al. 2022 structure) and the attention-head bound of Edelman et al.

Conventions. :math:`\mathcal N(\varepsilon,S,\|\cdot\|)` is the least number of closed :math:`\varepsilon`-balls covering
S; every function returns an **upper bound on** :math:`\ln\mathcal N` (natural log), rounded outward. For a class
:math:`\mathcal F` and data :math:`X=(x_1..x_n)`, :math:`\mathcal F|_X=\{(f(x_1),\dots,f(x_n))\}` with the Euclidean
(Frobenius) norm over all n outputs (BFT's :math:`\|\cdot\|_2`), except for the attention head (:math:`\ell_\infty`
over samples). Matrix norms: :math:`\|A\|_{p,q}=\|(\|A_{:,1}\|_p,\dots,\|A_{:,m}\|_p)\|_q` (p-norms of *columns*, then
q-norm), :math:`\|X\|_p=\|X\|_{p,p}` (entrywise), :math:`\|A\|_\sigma` the spectral norm.

The Maurey argument behind the matrix and convolutional bounds (derived here, it is the proof of BFT Lemma 3.2):
if :math:`v=\alpha\sum_k\lambda_kg_k` with :math:`\lambda` in the simplex and atoms :math:`\|g_k\|\le1` (K of them, signs
included), the average of k i.i.d. draws :math:`g_{k_1..k_k}` from :math:`\lambda` satisfies
:math:`\mathbb E\|v-\frac\alpha k\sum_lg_{k_l}\|^2\le\alpha^2/k`, so every v is within :math:`\varepsilon` of one of at most
:math:`K^k` averages once :math:`k=\lceil\alpha^2/\varepsilon^2\rceil`: :math:`\ln\mathcal N\le\lceil\alpha^2/\varepsilon^2\rceil\ln K`.

References: Bartlett, Foster, Telgarsky, *Spectrally-normalized margin bounds for neural networks*, NeurIPS 2017
(Lemma 3.2, Theorem 3.3, Lemma A.7); Graf, Zeng, Rieck, Niethammer, Kwitt, *Measuring Excess Capacity in Neural
Networks*, NeurIPS 2022 (conv-aware terms as implemented in ``rkwitt/excess_capacity:bounds/rademacher_bounds.py``);
Edelman, Goel, Kakade, Zhang, *Inductive Biases and Variable Creation in Self-Attention Mechanisms*, ICML 2022;
Vershynin, *High-Dimensional Probability*, Cor. 4.2.13 (balls).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .validate import InputError, as_real_array, positive_float, positive_int
from .numerics import round_up, spectral_norm
from .registry import Mutant, TightFamily, register

__all__ = [
    "CoveringBound",
    "norm_pq",
    "conv_l21_norm",
    "network_norms",
    "ball_log_covering",
    "lipschitz_image",
    "bartlett17_matrix",
    "bartlett17_network",
    "graf22_conv",
    "edelman22_attention",
]


def _eps(eps) -> float:
    return positive_float("eps", eps)


def norm_pq(matrix, p: float, q: float) -> float:
    r""":math:`\|A\|_{p,q}`: the q-norm of the vector of column p-norms (``inf`` allowed for either)."""
    a = as_real_array("matrix", matrix, ndim=2)
    cols = np.linalg.norm(a, ord=p, axis=0)
    return float(np.linalg.norm(cols, ord=q))


def conv_l21_norm(kernel) -> float:
    r""":math:`\sum_{o,u}\|K[o,:,u]\|_2`: 2-norms over input channels, summed over output channels and taps.

    The norm ``weight.norm(dim=1).norm(p=1)`` of Graf et al.'s code (their ``dist21`` with a zero reference).
    """
    k = as_real_array("kernel", kernel, ndim=4)
    return float(np.linalg.norm(k, axis=1).sum())


def network_norms(weights: Sequence, reference: Sequence | None = None) -> tuple[list[float], list[float]]:
    r"""Per layer :math:`s_i=\|A_i\|_\sigma` and :math:`b_i=\|A_i^\top-M_i^\top\|_{2,1}` (row 2-norms of
    :math:`A_i-M_i` summed); ``weights`` in the ``(out, in)`` layout, ``reference`` :math:`M_i` default 0."""
    ws = [as_real_array(f"weights[{i}]", w, ndim=2) for i, w in enumerate(weights)]
    if not ws:
        raise InputError("weights: expected at least one matrix")
    refs = [np.zeros_like(w) for w in ws] if reference is None else [
        as_real_array(f"reference[{i}]", m, ndim=2) for i, m in enumerate(reference)]
    if len(refs) != len(ws) or any(m.shape != w.shape for m, w in zip(refs, ws)):
        raise InputError("reference: expected one matrix per layer with the shape of weights")
    return [spectral_norm(w) for w in ws], [float(np.linalg.norm(w - m, axis=1).sum()) for w, m in zip(ws, refs)]


@dataclass(frozen=True)
class CoveringBound:
    """``log_n`` bounds :math:`\\ln\\mathcal N` at scale ``scale`` (both rounded outward)."""

    scale: float
    log_n: float

    @property
    def count(self) -> float:
        """:math:`e^{\\ln\\mathcal N}` (``inf`` on overflow)."""
        return math.exp(self.log_n) if self.log_n < 700 else math.inf


@register(
    "covering.ball",
    norm="covering",
    kind="upper",
    assumptions=("S inside a Euclidean ball of radius R in R^m", "M = largest eps-separated subset (pairwise > eps)"),
    source="standard volumetric argument; e.g. Vershynin, High-Dimensional Probability, Cor. 4.2.13",
    confidence="standard",
    covers="any subset of a Euclidean ball; bounds the packing number too",
    tight=TightFamily("m = 1, k + 1 points spaced just over eps = 2R/k on a diameter: the eps-separated set has "
                      "k + 1 = 1 + 2R/eps points", "the volumetric bound is exact in one dimension", ratio=1.0),
    mutants=[Mutant("R/eps for 2R/eps", lambda radius, eps, dim: dim * math.log1p(radius / eps), "known_false",
                    "k + 1 points spaced 2R/k on a diameter (m = 1) exceed 1 + k/2 for k >= 1"),
             Mutant("m - 1 for m", lambda radius, eps, dim: (dim - 1) * math.log1p(2.0 * radius / eps),
                    "known_false", "m = 1: two points 2R apart need two balls, the mutant allows one")],
)
def ball_log_covering(radius: float, eps: float, dim: int) -> float:
    r""":math:`\ln\mathcal N(\varepsilon,S)\le m\ln(1+2R/\varepsilon)` for every :math:`S\subseteq B_R\subset\mathbb R^m`.

    .. math:: \mathcal N(\varepsilon,S)\le M(\varepsilon,S)\le\Big(1+\frac{2R}{\varepsilon}\Big)^m\quad(S\subseteq B_R\subset\mathbb R^m)

    Proof: a maximal :math:`\varepsilon`-separated subset of S is an :math:`\varepsilon`-cover of S; the balls of radius
    :math:`\varepsilon/2` around its points are disjoint and lie in :math:`B_{R+\varepsilon/2}`, so there are at most
    :math:`((R+\varepsilon/2)/(\varepsilon/2))^m` of them. The bound therefore holds for the *packing* number
    :math:`M(\varepsilon,S)` (and for any greedy :math:`\varepsilon`-net, which is such a subset).
    """
    r = positive_float("radius", radius)
    m = positive_int("dim", dim)
    return round_up(m * math.log1p(2.0 * r / _eps(eps)))


@register(
    "covering.lipschitz_image",
    value=lambda cov: cov.log_n,
    norm="covering",
    kind="upper",
    assumptions=("f is L-Lipschitz on S (any norms)", "internal covers: centres in the set"),
    source="standard (image of a cover); used in TopoLip (Chen, arXiv 2410.17628) v1 sec. 3.4 as reconstructed in "
    "docs/research/topolip.md sec. 4.6",
    confidence="standard",
    covers="any Lipschitz layer; certified constants from boundlab.theory.convolution / theory.attention",
    mutants=[Mutant("scale without L", lambda log_covering, eps, lipschitz: CoveringBound(round_up(eps), log_covering),
                    "known_false", "f(x) = c x with c > 1 stretches every covering radius by exactly c")],
)
def lipschitz_image(log_covering: float, eps: float, lipschitz: float) -> CoveringBound:
    r"""Transport a covering bound through an L-Lipschitz map: :math:`\ln\mathcal N(L\varepsilon,f(S))\le\ln\mathcal N(\varepsilon,S)`.

    .. math:: \mathcal N\big(L\varepsilon,f(S)\big)\le\mathcal N(\varepsilon,S)\quad(f\ L\text{-Lipschitz on }S)

    Proof: if :math:`c_1..c_N\in S` cover S at scale :math:`\varepsilon`, then :math:`\|f(x)-f(c_{k(x)})\|\le L\|x-c_{k(x)}\|\le L\varepsilon`,
    so :math:`f(c_1)..f(c_N)` cover f(S) at scale :math:`L\varepsilon`. Returns the scale :math:`L\varepsilon` (rounded up:
    a larger scale needs no more balls) and the unchanged log count. With L = 0 the image is a point (scale 0).
    Note the rule says nothing about dimension: :math:`\dim_B f(S)\le\dim_B S` for every Lipschitz f, whatever L.
    """
    log_n = positive_float("log_covering", log_covering, allow_zero=True)
    lip = positive_float("lipschitz", lipschitz, allow_zero=True)
    return CoveringBound(round_up(lip * _eps(eps)), log_n)


def _maurey(alpha: float, eps: float, atoms: float) -> float:
    r""":math:`\lceil\alpha^2/\varepsilon^2\rceil\ln K` with :math:`\alpha` rounded up (0 when :math:`\alpha=0`: a single point).

    The ratio is rounded up before the ceiling, so at an exact integer the count may be one larger: sound, and
    the price of not knowing the float64 error of the inputs."""
    if alpha == 0:
        return 0.0
    alpha = round_up(alpha)
    return math.ceil(round_up(alpha * alpha / (eps * eps))) * math.log(atoms)


@register(
    "covering.bartlett17_matrix",
    norm="covering",
    kind="upper",
    assumptions=("X in R^{n x d} with ||X||_p <= b (entrywise p-norm), p <= 2", "1/p + 1/q = 1, 1/r + 1/s = 1",
                 "A in R^{d x m}"),
    source="Bartlett, Foster, Telgarsky, Spectrally-normalized margin bounds for neural networks, NeurIPS 2017, "
    "Lemma 3.2 (statement recalled; proof re-derived in the docstring)",
    confidence="derived",
    covers="linear maps with a (q,s) group-norm constraint, on a fixed data matrix, Frobenius norm over outputs",
)
def bartlett17_matrix(data, a: float, eps: float, out_dim: int, *, p: float = 2.0, s: float = 1.0) -> float:
    r"""BFT Lemma 3.2: :math:`\ln\mathcal N(\{XA:\|A\|_{q,s}\le a\},\varepsilon)\le\lceil a^2b^2m^{2/r}/\varepsilon^2\rceil\ln(2dm)`.

    .. math:: \ln\mathcal N\big(\{XA:\|A\|_{q,s}\le a\},\varepsilon,\|\cdot\|_2\big)\le\Big\lceil\frac{a^2b^2m^{2/r}}{\varepsilon^2}\Big\rceil\ln(2dm)

    ``data`` X is ``(n, d)`` (rows = samples), ``b`` = :math:`\|X\|_p` (entrywise), q and r are the conjugates of p
    and s. Proof (Maurey, module docstring): :math:`XA=\sum_{i,j}A_{ij}\|Xe_i\|_p\cdot\frac{Xe_ie_j^\top}{\|Xe_i\|_p}`; the
    atoms :math:`\pm Xe_ie_j^\top/\|Xe_i\|_p` (2dm of them) have Frobenius norm :math:`\le1` because :math:`p\le2`, and
    the total weight is :math:`\alpha=\sum_j\sum_i|A_{ij}|\|Xe_i\|_p\le\sum_j\|A_{:,j}\|_q\|X\|_p\le m^{1/r}\|A\|_{q,s}\,b`
    (Hölder twice). The default (p, s) = (2, 1) is the case used by BFT's Theorem 3.3: q = 2, r = ∞.
    """
    x = as_real_array("data", data, ndim=2)
    a = positive_float("a", a, allow_zero=True)
    eps = _eps(eps)
    m = positive_int("out_dim", out_dim)
    p = positive_float("p", p)
    s = positive_float("s", s)
    if p < 1 or p > 2:
        raise InputError(f"p: expected 1 <= p <= 2, got {p}")
    if s < 1:
        raise InputError(f"s: expected s >= 1, got {s}")
    r = math.inf if s == 1 else s / (s - 1.0)
    b = float(np.linalg.norm(x.ravel(), ord=p))
    alpha = a * b * (m ** (1.0 / r) if math.isfinite(r) else 1.0)
    return round_up(_maurey(alpha, eps, 2.0 * x.shape[1] * m))


@register(
    "covering.bartlett17_network",
    norm="covering",
    kind="upper",
    assumptions=("f(x) = sigma_L(A_L sigma_{L-1}(... sigma_1(A_1 x))) with rho_i-Lipschitz sigma_i, sigma_i(0) = 0",
                 "class: ||A_i||_sigma <= s_i and ||A_i^T - M_i^T||_{2,1} <= b_i", "W = largest layer width",
                 "||X||_2 = Frobenius norm of the data (rows = samples)"),
    source="Bartlett, Foster, Telgarsky, NeurIPS 2017, Thm 3.3 (recalled; constants to verify)",
    confidence="reconstructed",
    covers="feed-forward networks with spectral and (2,1) constraints, Frobenius norm over the n outputs",
    notes="ceil=True returns the per-layer form sum_i ceil(T_i) ln(2W^2) of the same proof (Lemma 3.2 + Lemma A.7 "
    "with the 2/3-power allocation of eps), which cannot be below the closed form; the closed form drops the "
    "ceilings, which we could not confirm from the paper.",
)
def bartlett17_network(data, spectral: Sequence[float], l21: Sequence[float], eps: float, *, width: int, rho=1.0,
                       ceil: bool = False) -> float:
    r"""BFT Theorem 3.3, the network covering bound with the optimal per-layer allocation of :math:`\varepsilon`.

    .. math:: \ln\mathcal N(\mathcal F_{\mathcal A}|_S,\varepsilon,\|\cdot\|_2)\le\frac{\|X\|_2^2\ln(2W^2)}{\varepsilon^2}\Big(\prod_{j}s_j^2\rho_j^2\Big)\Big(\sum_i\big(\tfrac{b_i}{s_i}\big)^{2/3}\Big)^3

    With :math:`S=\sum_i(b_i/s_i)^{2/3}` and :math:`T_i=\|X\|_2^2\prod_js_j^2\rho_j^2\,(b_i/s_i)^{2/3}S^2/\varepsilon^2`
    the closed form is :math:`\sum_iT_i\ln(2W^2)`; ``ceil=True`` gives :math:`\sum_i\lceil T_i\rceil\ln(2W^2)` (what
    Lemma 3.2's ceiling gives layer by layer). ``width`` is W, the largest layer width of the class (not visible
    from the norms); ``rho`` is one constant or one per layer.
    *Reconstructed*: the statement was recalled (``docs/research/anchors.md`` §5, "[verify constants]").
    """
    x = as_real_array("data", data, ndim=2)
    eps = _eps(eps)
    s = [positive_float(f"spectral[{i}]", v) for i, v in enumerate(spectral)]
    b = [positive_float(f"l21[{i}]", v, allow_zero=True) for i, v in enumerate(l21)]
    if not s or len(s) != len(b):
        raise InputError(f"l21: expected one value per layer ({len(s)}), got {len(b)}")
    rhos = [rho] * len(s) if np.isscalar(rho) else list(rho)
    if len(rhos) != len(s):
        raise InputError(f"rho: expected one constant or {len(s)} of them, got {len(rhos)}")
    rhos = [positive_float(f"rho[{i}]", v, allow_zero=True) for i, v in enumerate(rhos)]
    w = positive_int("width", width)
    lip2 = float(np.prod([(sj * rj) ** 2 for sj, rj in zip(s, rhos)]))
    ratios = [(bi / si) ** (2.0 / 3.0) for bi, si in zip(b, s)]
    total = sum(ratios)
    base = float(np.sum(x * x)) * lip2 * total * total / (eps * eps)
    log_atoms = math.log(2.0 * w * w)
    if ceil:
        return round_up(sum(math.ceil(round_up(base * t)) for t in ratios if t > 0) * log_atoms)
    return round_up(base * total * log_atoms)


@register(
    "covering.graf22_conv",
    norm="covering",
    kind="upper",
    assumptions=("2-D convolution, zero or circular padding, any stride", "||X||_2 = Frobenius norm of all inputs",
                 "each filter tap counted once (weight sharing)"),
    source="derived here (Maurey with shifted-input atoms); matches the per-layer term of Graf, Zeng, Rieck, "
    "Niethammer, Kwitt, Measuring Excess Capacity in Neural Networks, NeurIPS 2022, Thm 3.5 (their code's "
    "dist21 and data norm); cf. Ledent, Mustafa, Lei, Kloft, AAAI 2021",
    confidence="derived",
    covers="one convolutional layer on a fixed data set, Frobenius norm over all outputs",
    notes="Graf et al.'s theorem number and lemma statement were not read; the bound implemented is the one "
    "proved in the docstring, whose norm and data terms coincide with their code.",
)
def graf22_conv(data, b: float, eps: float, kernel_shape: Sequence[int]) -> float:
    r"""Conv covering bound :math:`\lceil b^2\|X\|_2^2/\varepsilon^2\rceil\ln(2c_{out}c_{in}k_hk_w)`, independent of the image size.

    .. math:: \ln\mathcal N\big(\{x\mapsto K*x:\textstyle\sum_{o,u}\|K_{o,:,u}\|_2\le b\}|_S,\varepsilon,\|\cdot\|_2\big)\le\Big\lceil\frac{b^2\|X\|_2^2}{\varepsilon^2}\Big\rceil\ln\big(2c_{out}c_{in}k_hk_w\big)

    Proof: :math:`(K*x)_o=\sum_{u}\sum_iK[o,i,u]\,S_u(x)_i` where :math:`S_u` shifts the input by tap u (with the
    layer's padding and stride) — a coordinate selection, so :math:`\|S_u(X)\|_2\le\|X\|_2` over the whole data set.
    Atoms :math:`\pm e_o\otimes S_u(X)_i/\|S_u(X)_i\|` (:math:`2c_{out}c_{in}k_hk_w` of them) have norm 1 and weights
    summing to :math:`\sum_{o,u}\sum_i|K_{oiu}|\|S_u(X)_i\|\le\sum_{o,u}\|K_{o,:,u}\|_2\|S_u(X)\|_2\le b\|X\|_2`
    (Cauchy-Schwarz over i); Maurey's lemma (module docstring) finishes.
    ``data``: inputs ``(n, c_in, h, w)``; ``kernel_shape``: ``(c_out, c_in, k_h, k_w)``.
    """
    x = as_real_array("data", data, ndim=4)
    b = positive_float("b", b, allow_zero=True)
    eps = _eps(eps)
    shape = tuple(positive_int(f"kernel_shape[{i}]", v) for i, v in enumerate(kernel_shape))
    if len(shape) != 4 or shape[1] != x.shape[1]:
        raise InputError(f"kernel_shape: expected (c_out, {x.shape[1]}, k_h, k_w), got {tuple(kernel_shape)}")
    alpha = b * float(np.linalg.norm(x.ravel()))
    return round_up(_maurey(alpha, eps, 2.0 * float(np.prod(shape))))


@register(
    "covering.edelman22_attention",
    norm="covering",
    kind="upper",
    assumptions=("f(X) = w^T sigma(W_V^T X^T softmax(X W_QK x_1)), query = first token, sigma L_sigma-Lipschitz, "
                 "sigma(0) = 0", "||x_t|| <= B_X, ||w|| <= B_w, ||W_V||_2 <= B_V, ||W_V||_{2,1} <= B_V^{2,1}, "
                 "||W_QK||_{2,1} <= B_QK^{2,1}", "l_inf over the m samples, T tokens each"),
    source="Edelman, Goel, Kakade, Zhang, Inductive Biases and Variable Creation in Self-Attention Mechanisms, "
    "ICML 2022, Sec. 4 (form reconstructed: theorem not readable here)",
    confidence="reconstructed",
    covers="one scalar-output self-attention head (query token attends to the sequence), l_inf over samples",
    notes="UNVERIFIED: the absolute constant C (the paper states the bound with a hidden constant), the exact "
    "norm products and the log argument. Structure: 2/3-power allocation over the three covered factors with "
    "the Lipschitz constants listed (softmax is 2-Lipschitz from l_inf to l_1); log(mT) is the paper's headline.",
)
def edelman22_attention(data, eps: float, *, b_w: float, b_v: float, b_v21: float, b_qk21: float,
                        lipschitz_sigma: float = 1.0, constant: float = 1.0) -> float:
    r"""Edelman et al.'s covering bound of a bounded-norm attention head, in the reconstructed form

    .. math:: \ln\mathcal N_\infty(\mathcal F_{head};\varepsilon;X^{(1..m)})\le C\,\frac{\big(\alpha_w^{2/3}+\alpha_V^{2/3}+\alpha_{QK}^{2/3}\big)^3}{\varepsilon^2}\ln(2\,d\,m\,T),\ \alpha_w=L_\sigma B_wB_VB_X,\ \alpha_V=L_\sigma B_wB_V^{2,1}B_X,\ \alpha_{QK}=2L_\sigma B_wB_VB_X^3B_{QK}^{2,1}

    with :math:`\alpha_w=L_\sigma B_wB_VB_X`, :math:`\alpha_V=L_\sigma B_wB_V^{2,1}B_X`,
    :math:`\alpha_{QK}=2L_\sigma B_wB_VB_X\cdot B_X^2B_{QK}^{2,1}` (:math:`B_X` = the largest token norm in ``data``,
    ``(m, T, d)``). *Reconstructed*: only the structure ("sum of 2/3-powers of norm products, cubed, times
    log(mT)/ε²") is corroborated (``docs/research/anchors.md`` §5, [verify Thm 4.x]); ``constant`` is the
    unknown absolute constant (default 1, unverified). The property can only catch gross errors.
    """
    x = as_real_array("data", data, ndim=3)
    eps = _eps(eps)
    vals = {k: positive_float(k, v, allow_zero=True) for k, v in
            (("b_w", b_w), ("b_v", b_v), ("b_v21", b_v21), ("b_qk21", b_qk21), ("lipschitz_sigma", lipschitz_sigma))}
    c = positive_float("constant", constant)
    m, t, d = x.shape
    bx = float(np.linalg.norm(x, axis=2).max())
    ls, bw = vals["lipschitz_sigma"], vals["b_w"]
    alphas = [ls * bw * vals["b_v"] * bx, ls * bw * vals["b_v21"] * bx, 2.0 * ls * bw * vals["b_v"] * bx**3 * vals["b_qk21"]]
    total = sum(al ** (2.0 / 3.0) for al in alphas)
    return round_up(c * total**3 / (eps * eps) * math.log(2.0 * d * m * t))
