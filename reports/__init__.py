"""boundlab.reports: renders result files (the HTML report builder arrives with its own issue).

This package reads result files only; it never recomputes a number. For now it offers the loader that the
report builder and ``boundlab verify`` share.
"""

from boundlab.results import read_json

__all__ = ["read_json"]
