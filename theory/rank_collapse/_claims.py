"""The empirical collapse claims of Sec. 5 (orderings of residual curves)."""

from __future__ import annotations

import numpy as np

from ..registry import register
from ..validate import InputError, as_real_array, positive_float

_EMPIRICAL = dict(
    kind="claim",
    source="Dong, Cordonnier, Loukas, ICML 2021, Sec. 5.1 / Fig. 2 (trend restated; numbers not recovered)",
    confidence="reconstructed",
)


@register(
    "rank.empirical_collapse",
    value=lambda sides: sides[1],
    norm="none",
    assumptions=("same attention weights in both networks", "residual ratio with the token-mean shift",
                 "fan-in initialisation, qk_scale <= 1 (regime recorded per case)"),
    covers="pure attention collapses faster than skip-connected variants (random and real-image inputs)",
    **_EMPIRICAL,
)
def collapse_order(collapsing, reference) -> tuple[float, float]:
    r"""The sides of "pure attention ends more collapsed": ``(ratio_L(SAN), ratio_L(reference))`` from per-layer
    residual ratios (:func:`residual_ratio`, column 0 the input); the claim is ``lower <= upper``.

    .. math:: \frac{\|\mathrm{res}(\mathrm{SAN}_L(X))\|_{1,\infty}}{\|\mathrm{SAN}_L(X)\|_{1,\infty}}\le\frac{\|\mathrm{res}(\mathrm{Net}_L(X))\|_{1,\infty}}{\|\mathrm{Net}_L(X)\|_{1,\infty}},\ \mathrm{Net}\in\{\mathrm{SAN{+}skip},\ \mathrm{transformer}\}
    """
    a = as_real_array("collapsing", collapsing, ndim=1)
    b = as_real_array("reference", reference, ndim=1)
    if a.shape != b.shape:
        raise InputError(f"reference: expected the shape of collapsing {a.shape}, got {b.shape}")
    return float(a[-1]), float(b[-1])


@register(
    "rank.empirical_collapse_sharp",
    value=lambda sides: sides[1],
    expect="falsified",
    refutation="sharp attention (qk scale 2-8): the skip-connected network ends more collapsed than pure attention "
    "in some cases (ratio 1.69; corpus rank.empirical_collapse_sharp)",
    norm="none",
    assumptions=("single head, qk_scale in [2, 8] (sharp, near-permutation attention)",),
    covers="the same ordering where it is expected to FAIL",
    notes="Expected falsified: attention close to a permutation preserves the residual; outside 4 beta H < sqrt(d).",
    **_EMPIRICAL,
)
def collapse_order_sharp(collapsing, reference) -> tuple[float, float]:
    """:func:`collapse_order` in the sharp-attention regime.

    .. math:: \\mathrm{ratio}_L(\\mathrm{SAN})\\le\\mathrm{ratio}_L(\\mathrm{SAN{+}skip})\\quad\\text{(sharp attention)}
    """
    return collapse_order.raw(collapsing, reference)


@register(
    "rank.empirical_mlp_slows",
    value=lambda sides: sides[1],
    expect="falsified",
    refutation="contracting MLPs (Lipschitz constant < 1) speed the collapse up instead of slowing it (corpus "
    "rank.empirical_mlp_slows)",
    norm="none",
    assumptions=("same attention weights", "MLP relu(zA+a)B+b at fan-in scale 1 (contracting, lambda < 1)",
                 "factor 1/2 and float floor 1e-10 so that only clear reversals count"),
    covers="'MLP alone only slows collapse' at initialisation",
    notes="Expected falsified for contracting MLPs; the paper's remark is that a larger lambda slows collapse.",
    **_EMPIRICAL,
)
def mlp_slowing(san, mlp, margin: float = 0.5, floor: float = 1e-10) -> tuple[float, float, int]:
    r"""The sides of "an MLP only slows collapse" at the layer where it is most violated:
    ``(margin * ratio_l(SAN), ratio_l(SAN+MLP), l)`` over layers whose SAN ratio exceeds ``floor``.

    .. math:: \mathrm{ratio}_l(\mathrm{SAN{+}MLP})\ge\tfrac12\,\mathrm{ratio}_l(\mathrm{SAN})\ \ \forall l\ \text{with}\ \mathrm{ratio}_l(\mathrm{SAN})>10^{-10}
    """
    a = as_real_array("san", san, ndim=1)
    b = as_real_array("mlp", mlp, ndim=1)
    if a.shape != b.shape:
        raise InputError(f"mlp: expected the shape of san {a.shape}, got {b.shape}")
    m = positive_float("margin", margin)
    live = np.flatnonzero(a > positive_float("floor", floor))
    if live.size == 0:
        raise InputError("san: every ratio is below the float floor; nothing to compare")
    l = int(live[np.argmax(a[live] / np.maximum(b[live], 1e-300))])
    return m * float(a[l]), float(b[l]), l

