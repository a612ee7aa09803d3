"""boundlab.theory: published bounds as executable functions (numpy, scipy, cvxpy; no torch).

Topic modules: :mod:`theory.convolution`, :mod:`theory.attention`, :mod:`theory.composition`.
Every bound is registered in :mod:`theory.registry` with its inequality, assumptions, source and confidence.
"""

from . import attention, composition, convolution, numerics, registry
from .validate import InputError
from .attention import AttentionWeights
from .registry import Bound, all_bounds

__all__ = ["attention", "composition", "convolution", "numerics", "registry", "InputError",
           "AttentionWeights", "Bound", "all_bounds"]
