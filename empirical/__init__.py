"""boundlab.empirical: measurements (torch). Every Lipschitz estimate here is a lower bound."""

from . import attention, lipschitz
from .lipschitz import conv_operator_norm, global_lipschitz_lower_bound, local_lipschitz

__all__ = ["attention", "lipschitz", "conv_operator_norm", "global_lipschitz_lower_bound", "local_lipschitz"]
