r"""Two bounds on a convolution layer, registered from outside boundlab: one true, one false.

``sample.frobenius`` is true (:math:`\|W_{mat}\|_2\le\|W\|_F`, so the im2col bound gives it); ``sample.frobenius_no_k``
drops the :math:`\sqrt{k_hk_w}` factor and is false (a constant kernel with several taps on a circular grid has norm
:math:`k_hk_w|c|>\sqrt{k_hk_w}|c|=\|W\|_F`). Its record says ``expect="holds"``, as a researcher's wrong bound
would: the suite must catch it.
"""

import math

import numpy as np

from boundlab.theory.convolution import ConvLayer
from boundlab.theory.numerics import round_up
from boundlab.theory.registry import register


@register("sample.frobenius", kind="upper", norm="l2", assumptions=("any padding", "any stride"),
          source="sample package (tests/data/sample_bounds)", confidence="derived", input_type=ConvLayer,
          covers="any padding, any stride")
def frobenius_bound(layer: ConvLayer) -> float:
    r"""The Frobenius form of the im2col bound.

    .. math:: \|T_W\|_2\le\sqrt{k_hk_w}\,\|W\|_F
    """
    kh, kw = layer.kernel_size
    return round_up(math.sqrt(kh * kw) * float(np.linalg.norm(layer.kernel)))


@register("sample.frobenius_no_k", kind="upper", norm="l2", assumptions=("any padding", "any stride"),
          source="sample package (tests/data/sample_bounds): a wrong bound", confidence="derived",
          input_type=ConvLayer, covers="any padding, any stride")
def frobenius_no_k_bound(layer: ConvLayer) -> float:
    r"""A wrong bound: the Frobenius norm alone.

    .. math:: \|T_W\|_2\le\|W\|_F
    """
    return round_up(float(np.linalg.norm(layer.kernel)))
