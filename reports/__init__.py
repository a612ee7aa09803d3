"""boundlab.reports: renders result files into one self-contained HTML report; tracks benchmarks across commits.

This package reads result files only; it never recomputes a number and never imports torch.
``build_report(results_dir, out_dir) -> Path`` writes ``out_dir/report.html`` (see :mod:`reports.html`).
"""

from boundlab.io.results import read_json

from .html import build, build_report

__all__ = ["build", "build_report", "read_json"]
