"""boundlab: executable, falsifiable Lipschitz bounds for attention and convolution.

The library lives in the top-level packages :mod:`theory` (bounds; numpy/scipy/cvxpy), :mod:`empirical`
(measurements; torch) and :mod:`reports`; the pytest tree :mod:`verification` falsifies bounds. This package
holds the command line (:mod:`boundlab.cli`) and the result-file helpers (:mod:`boundlab.results`).
"""

__version__ = "0.1.0"
