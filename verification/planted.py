"""Planted false bounds: the suite must falsify each of them (``expect = falsified``), proving it has teeth."""

from __future__ import annotations

import math

import numpy as np

from boundlab.theory.attention import AttentionWeights
from boundlab.theory.convolution import circular_spectral_norm, kernel_matrix
from boundlab.theory.numerics import spectral_norm

PLANTED = {
    "planted.persistence_bottleneck_no_sqrt_n": {
        "source": "planted: stability lemma L2 without its sqrt(N) factor (false, topolip.md 5.2)",
        "latex": r"d_B\big(\mathrm{Dgm}\,\mathrm{VR}(X),\mathrm{Dgm}\,\mathrm{VR}(Y)\big)\le2\,W_2(\mu_X,\mu_Y)",
    },
    "planted.rank_collapse_tenth_constant": {
        "source": "planted: Dong et al. Thm 2.2 with its constant 4 replaced by 0.4",
        "latex": r"\|\mathrm{res}(\mathrm{SA}(X))\|_{1,\infty}\le\frac{0.4\,\beta}{\sqrt{d_{qk}}}\|\mathrm{res}(X)\|_{1,\infty}^3",
    },
    "planted.conv_no_k_factor": {
        "source": "planted: the im2col bound without its sqrt(k_h k_w) factor",
        "latex": r"\|T_W\|_2\le\|W_{mat}\|_2",
    },
    "planted.dp_global_lipschitz": {
        "source": "planted: dot-product attention globally Lipschitz (contradicts Kim et al. 2021, Thm 3.1)",
        "latex": r"\mathrm{Lip}(\mathrm{MHA})\le\sum_h\|V_hO_h\|_2\|Q_hK_h^\top\|_2/\sqrt{d_k}",
    },
    "planted.lipsdp_shrunk": {
        "source": "planted: the certified LipSDP-Neuron bound times 0.9",
        "latex": r"\mathrm{Lip}_2(f)\le0.9\sqrt{\rho^\star_{\mathrm{Neuron}}}",
    },
    "planted.circular_exact_shrunk": {
        "source": "planted: the exact circular value times (1 - 1e-3)",
        "latex": r"\|T_W\|_2\le(1-10^{-3})\max_\omega\sigma_{\max}(\hat W(\omega))",
    },
}


def conv_no_k_factor(kernel) -> float:
    return spectral_norm(kernel_matrix(kernel))


def dp_global_lipschitz(weights: AttentionWeights) -> float:
    qk = weights.query @ np.swapaxes(weights.key, 1, 2)
    mv = weights.value_output_matrices()
    return float(sum(spectral_norm(m) * spectral_norm(a) for m, a in zip(mv, qk)) / math.sqrt(weights.head_dim))


def circular_exact_shrunk(kernel, input_size) -> float:
    return circular_spectral_norm(kernel, input_size) * (1 - 1e-3)


def lipsdp_shrunk(net) -> float:
    """A false "SDP" bound: 0.9 x the certified LipSDP-Neuron value (tight nets, e.g. width-1 layers, break it)."""
    from boundlab.theory.lipsdp import lipsdp

    return 0.9 * lipsdp(net, "neuron").certified
