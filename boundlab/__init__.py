"""boundlab: executable, falsifiable Lipschitz bounds for attention and convolution.

Layers, importing in one direction only (import-linter contracts in ``pyproject.toml``):
:mod:`boundlab.io` (result files, config hash, seeds, executor, progress protocol) <- :mod:`boundlab.theory`
(bounds and the registry; numpy/scipy/cvxpy) <- :mod:`boundlab.empirical` (measurements; torch, gudhi, POT) <-
:mod:`boundlab.verification` (the Hypothesis properties) and :mod:`boundlab.reports` (HTML from result files) <-
the command line (:mod:`boundlab.cli`, :mod:`boundlab.commands`). The repository keeps them as the top-level
folders ``theory/``, ``empirical/``, ... (setuptools ``package-dir``).
"""

__version__ = "0.1.0"
