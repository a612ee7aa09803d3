"""Certified local smoothness of the studied models: torch model -> :mod:`theory.local` description, empirical
local ascent in the region, and the brackets ``[empirical lower, certified upper]`` per point and radius."""

from .ascent import RegionSearch, project, region_lower_bound
from .brackets import SearchConfig, bracket_model, eps_label, global_summary, summarise_points
from .convert import network_of
from .torch_net import torch_function

__all__ = ["RegionSearch", "project", "region_lower_bound", "SearchConfig", "bracket_model", "eps_label",
           "global_summary", "summarise_points", "network_of", "torch_function"]
