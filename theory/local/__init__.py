"""Certified local Lipschitz bounds of networks on input regions (bound propagation in float64, no torch).

:mod:`.network` describes a network as a validated chain of typed layers and a region of its inputs;
:mod:`.interval` is the sound interval type; :mod:`.propagate` the zonotope / interval-Jacobian propagation;
:mod:`.bound` the registered records (``local.lipschitz_l2`` and the planted ``planted.local_drop_unstable``).
"""

from . import bound
from .bound import local_drop_unstable, local_lipschitz_l2
from .interval import Box
from .network import (AddConstant, Attention, ChannelAffine, Conv, Dense, LayerNorm, LocalProblem, Mean, Network,
                      Patchify, Region, Relu, Residual, TokenDense)
from .propagate import LocalCertificate, Options, certify, evaluate

__all__ = ["bound", "local_lipschitz_l2", "local_drop_unstable", "Box", "AddConstant", "Attention", "ChannelAffine",
           "Conv", "Dense", "LayerNorm", "LocalProblem", "Mean", "Network", "Patchify", "Region", "Relu", "Residual",
           "TokenDense", "LocalCertificate", "Options", "certify", "evaluate"]
