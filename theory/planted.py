r"""Planted false bounds: deliberately wrong statements the verification suite must falsify, proving its teeth.

Each is a record of its own (``planted.*``, confidence ``planted``, ``expect="falsified"``) with the refutation that
shows it false, so the CLI, the report and ``boundlab mutate`` treat them like every other record (they are listed
only on request: they are nobody's claim). Each is a *plausible* slip of a real bound in this package: a dropped
factor, a shrunk constant, an exact value shaved by a fraction, a missing term.
"""

from __future__ import annotations

import math

import numpy as np

from .attention import AttentionLayer
from .convex_attention import as_tokens, lifted_problem, solve, target_matrix
from .convolution import ConvLayer, circular_spectral_norm, kernel_matrix
from .lipsdp import FeedForward, lipsdp
from .numerics import spectral_norm
from .persistence import uniform_w2
from .rank_collapse import single_head_collapse_bound
from .registry import register

__all__ = ["conv_no_k_factor", "circular_exact_shrunk", "dp_global_lipschitz", "lipsdp_shrunk",
           "persistence_bottleneck_no_sqrt_n", "rank_collapse_tenth_constant", "convex_no_gram"]


@register(
    "planted.conv_no_k_factor",
    kind="upper",
    norm="l2",
    assumptions=("any padding", "any stride"),
    source="planted: the im2col bound conv.kernel_matrix without its sqrt(k_h k_w) factor",
    confidence="planted",
    expect="falsified",
    refutation="a constant 1x1-channel kernel with k_h k_w > 1 taps on a circular grid: the exact norm is "
    "k_h k_w |c| while ||W_mat|| = sqrt(k_h k_w) |c|",
    input_type=ConvLayer,
)
def conv_no_k_factor(layer: ConvLayer) -> float:
    r"""The planted im2col bound without :math:`\sqrt{k_hk_w}`.

    .. math:: \|T_W\|_2\le\|W_{mat}\|_2
    """
    return spectral_norm(kernel_matrix(layer.kernel))


@register(
    "planted.circular_exact_shrunk",
    kind="exact",
    norm="l2",
    assumptions=("circular padding", "stride 1"),
    source="planted: the exact circular value conv.circular_exact times (1 - 1e-3)",
    confidence="planted",
    expect="falsified",
    refutation="any non-zero kernel: the exact value differs by 1e-3 relative, 4 orders above the 1e-7 tolerance",
    input_type=ConvLayer,
    applies=lambda layer: layer.padding_mode == "circular" and layer.stride == 1,
)
def circular_exact_shrunk(layer: ConvLayer) -> float:
    r"""The planted exact value, shaved by a thousandth.

    .. math:: \|T_W\|_2=(1-10^{-3})\max_\omega\sigma_{\max}(\hat W(\omega))
    """
    return circular_spectral_norm(layer.kernel, layer.input_size) * (1 - 1e-3)


@register(
    "planted.dp_global_lipschitz",
    kind="upper",
    norm="l2",
    assumptions=("dot-product attention", "any domain"),
    source="planted: dot-product attention globally Lipschitz (contradicts Kim et al. 2021, Thm 3.1)",
    confidence="planted",
    expect="falsified",
    refutation="tokens far from the origin: the local constant grows like t^2 (attention.kim_dp_not_lipschitz), "
    "past any fixed bound once R is large",
    input_type=AttentionLayer,
    applies=lambda layer: layer.attention == "dot_product",
)
def dp_global_lipschitz(layer: AttentionLayer) -> float:
    r"""A planted radius-free bound of dot-product attention.

    .. math:: \mathrm{Lip}(\mathrm{MHA})\le\sum_h\|V_hO_h\|_2\|Q_hK_h^\top\|_2/\sqrt{d_k}
    """
    w = layer.weights
    qk = w.query @ np.swapaxes(w.key, 1, 2)
    mv = w.value_output_matrices()
    return float(sum(spectral_norm(m) * spectral_norm(a) for m, a in zip(mv, qk)) / math.sqrt(w.head_dim))


@register(
    "planted.lipsdp_shrunk",
    kind="upper",
    norm="l2",
    assumptions=("activations slope-restricted on [alpha, beta]", "feed-forward"),
    source="planted: the certified LipSDP-Neuron bound sdp.lipsdp_neuron times 0.9",
    confidence="planted",
    expect="falsified",
    refutation="networks where LipSDP is tight (width-1 layers, aligned weights): the true constant equals the "
    "certified value, 1/0.9 above the planted one",
    input_type=FeedForward,
)
def lipsdp_shrunk(net: FeedForward) -> float:
    r"""A false "SDP" bound: 0.9 times the certified LipSDP-Neuron value.

    .. math:: \mathrm{Lip}_2(f)\le0.9\sqrt{\rho^\star_{\mathrm{Neuron}}}
    """
    return 0.9 * lipsdp(net, "neuron").certified


@register(
    "planted.persistence_bottleneck_no_sqrt_n",
    kind="upper",
    norm="bottleneck",
    assumptions=("|X| = |Y| = N, uniform empirical measures", "Vietoris-Rips in ripser's convention"),
    source="planted: the stability lemma persistence.bottleneck_w2 without its sqrt(N) factor",
    confidence="planted",
    expect="falsified",
    refutation="one point of N moved by D: W2 = D / sqrt(N) while the H0 bottleneck distance reaches D / 2 or more",
)
def persistence_bottleneck_no_sqrt_n(x, y) -> float:
    r"""The planted lemma L2 without :math:`\sqrt N`.

    .. math:: d_B\big(\mathrm{Dgm}\,\mathrm{VR}(X),\mathrm{Dgm}\,\mathrm{VR}(Y)\big)\le2\,W_2(\mu_X,\mu_Y)
    """
    return 2.0 * uniform_w2(x, y)


@register(
    "planted.rank_collapse_tenth_constant",
    kind="upper",
    norm="composite",
    assumptions=("single-head self-attention network", "as rank.dong_thm22"),
    source="planted: Dong et al. Thm 2.2 (rank.dong_thm22) with its constant 4 replaced by 0.4",
    confidence="planted",
    expect="falsified",
    refutation="n = 2 tokens, d = 1: the gamma-free bound's certified ratio reaches 0.125 there, so a tenth of the "
    "constant is exceeded (ratio 1.25)",
)
def rank_collapse_tenth_constant(layers, x) -> float:
    r"""Thm 2.2 with :math:`\gamma=0.1` (constant 0.4 instead of 4).

    .. math:: \|\mathrm{res}(\mathrm{SA}(X))\|_{1,\infty}\le\frac{0.4\,\beta}{\sqrt{d_{qk}}}\|\mathrm{res}(X)\|_{1,\infty}^3
    """
    return single_head_collapse_bound(layers, x, gamma=0.1).value


@register(
    "planted.convex_no_gram",
    kind="exact",
    norm="none",
    assumptions=("linear self-attention, as convex.linear_attention",),
    source="planted: the linear-attention convex program with the Gram factor dropped from the lifting",
    confidence="planted",
    expect="falsified",
    refutation="data whose token Gram matrices are far from the identity: the planted optimum differs from the "
    "attained non-convex objective",
    value=lambda sol: sol.lower,
)
def convex_no_gram(tokens, targets, beta: float, *, loss: str = "squared", pool: bool = False,
                   classes: int | None = None):
    r"""Certified optimum of the planted program: lifting :math:`X[t,a]\,\delta_{k\ell}` instead of
    :math:`X[t,a]G[k,\ell]`.

    .. math:: p^*_{planted}=\min_Z\sum_iF\Big(\sum_{k}X_iZ^{(k,k)}\Big)+\beta\|Z\|_*
    """
    x = as_tokens(tokens)
    n, s, d = x.shape
    eye = np.broadcast_to(np.eye(d), (1, n, s, d, d))
    lift = np.einsum("ita,gitkl->gitkal", x, eye).reshape(1, n, s, d**3)
    c = target_matrix(targets, loss, n, s, pool or loss == "cross_entropy", classes)[1]
    kw = {"loss": loss, "pool": pool, **({"classes": classes} if classes is not None else {})}
    prob = lifted_problem(lift, targets, beta, block_shape=(d * d, d * c), kind="linear_attention", **kw)
    return solve(prob)
