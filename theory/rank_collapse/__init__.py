r"""Rank collapse of pure self-attention (Dong, Cordonnier, Loukas 2021): residuals, paths, collapse bounds.

Conventions follow :mod:`theory.attention` (row tokens). A self-attention network (SAN) of depth L has layers

.. math:: X^l=\sum_{h=1}^H P^l_h X^{l-1}W^l_h,\qquad P^l_h=\mathrm{softmax}\Big(\frac{X^{l-1}W^l_{Q,h}W^{l\top}_{K,h}X^{l-1\top}}{\sqrt{d_{qk}}}\Big),

(no biases), with the *effective* value matrix :math:`W_h=V_hO_h` of :class:`~theory.attention.AttentionWeights`
(``value @ output``); ``output`` must map back to the token width so that layers stack. With skip connections a
layer is :math:`X^{l-1}+\sum_hP^l_hX^{l-1}W^l_h`; with an MLP it is :math:`f_l\big(\sum_hP^l_hX^{l-1}W^l_h\big)`.

The residual is :math:`\mathrm{res}(X)=X-\mathbf 1x^\top` and collapse is measured in the *composite* quantity

.. math:: \|X\|_{1,\infty}=\sqrt{\|X\|_1\|X\|_\infty},\qquad \|X\|_1=\max_j\sum_i|X_{ij}|,\ \|X\|_\infty=\max_i\sum_j|X_{ij}|,

which is **not a norm** (it fails the triangle inequality) but is sub-multiplicative. The square root matters:
the authors' plotting helper ``functions.py::composite_norm`` drops it (``docs/research/seed_papers.md`` §A.3).

Everything here is *reconstructed*: the paper's text was not readable, the statements come from third-party
restatements (``docs/research/seed_papers.md`` §A, tags [C]/[M]); the uncertain choices (the attention-dependent factor
:math:`\gamma` of arXiv v2, which shift defines the residual, the logit-spread limit 1.256) are parameters.

References
----------
Y. Dong, J.-B. Cordonnier, A. Loukas. *Attention is not all you need: pure attention loses rank doubly
exponentially with depth.* ICML 2021 (arXiv 2103.03404, v2 Aug 2023).
"""

from ._bounds import (
                      SPREAD_LIMIT,
                      VALUE_FORMS,
                      collapse_beta,
                      logit_spread,
                      mlp_collapse_bound,
                      mlp_lipschitz,
                      multi_head_collapse_bound,
                      single_head_collapse_bound,
                      spread_limited_collapse_bound,
)
from ._claims import collapse_order, collapse_order_sharp, mlp_slowing
from ._local import (
                      layernorm_equal_std_rewrite,
                      layernorm_rows,
                      local_collapse_exponent,
                      log_log_slope,
                      right_multiplication_misfit,
                      skip_zero_value_identity,
)
from ._paths import Path, path_counts, path_decomposition, path_length_pmf
from ._residual import (
                      SHIFTS,
                      ResidualBounds,
                      composite_norm,
                      composite_product_bound,
                      one_norm,
                      optimal_residual_bounds,
                      residual,
                      residual_ratio,
                      shift_vector,
)

__all__ = [
    "SPREAD_LIMIT",
    "SHIFTS",
    "one_norm",
    "composite_norm",
    "shift_vector",
    "residual",
    "residual_ratio",
    "ResidualBounds",
    "optimal_residual_bounds",
    "Path",
    "path_decomposition",
    "path_counts",
    "path_length_pmf",
    "collapse_beta",
    "VALUE_FORMS",
    "mlp_lipschitz",
    "logit_spread",
    "single_head_collapse_bound",
    "multi_head_collapse_bound",
    "spread_limited_collapse_bound",
    "mlp_collapse_bound",
    "local_collapse_exponent",
    "log_log_slope",
    "skip_zero_value_identity",
    "layernorm_rows",
    "right_multiplication_misfit",
    "layernorm_equal_std_rewrite",
    "composite_product_bound",
    "collapse_order",
    "collapse_order_sharp",
    "mlp_slowing",
]
